"""The ActionVLAD video classifier: frame trunk -> NetVLAD -> linear.

Every frame of a video goes through a 2-D conv trunk (VGG16 up to conv5_3
before its ReLU in the paper), the conv descriptors of all frames and
positions are pooled into one VLAD vector by `tfaction.layers.NetVLAD`, and
a linear classifier gives the logits (rohitgirdhar/ActionVLAD,
`nets/nets_factory.py`). The input is a whole video, `[B, T, H, W, C]`,
with any `T`: at test time the frames of several crops are concatenated
along `T` and pooled into a single vector, as the reference does.

Layer names: `trunk` (a `TimeDistributed` wrapper of the trunk model, whose
layers are named `block{i}_conv{j}` as in `keras.applications.VGG16`),
`netvlad`, `classifier`. `ActionVLAD.set_trainable_groups` freezes all but
the groups of a training stage.
"""

import re

import keras

from tfaction import errors
from tfaction.layers.netvlad import NetVLAD
from tfaction.models.backbones import small_convnet
from tfaction.models.backbones import vgg16

TRUNKS = ("vgg16", "small")
GROUPS = ("trunk", "last_block", "netvlad", "classifier")
_BLOCK = re.compile(r"^block(\d+)_")


def _block_index(layer):
    """`i` of a trunk layer named `block{i}_...`."""
    return int(_BLOCK.match(layer.name).group(1))


def _build_trunk(name, input_channels, endpoint, filters, weight_decay,
                 dtype):
    """The per-frame trunk `[N, H, W, C] -> [N, h, w, D]` (pre-ReLU end).

    Raises:
        ConfigError: unknown trunk name.
    """
    if name == "vgg16":
        return vgg16.build_vgg16_trunk(
            input_channels=input_channels, endpoint=endpoint, pre_relu=True,
            weight_decay=weight_decay, dtype=dtype)
    if name == "small":
        return small_convnet.build_small_convnet(
            input_channels, filters=tuple(filters), pre_relu=True,
            weight_decay=weight_decay, dtype=dtype)
    raise errors.ConfigError(f"unknown ActionVLAD trunk {name!r}; expected "
                             f"one of {TRUNKS}")


@keras.saving.register_keras_serializable(package="tfaction")
class ActionVLAD(keras.Model):
    """ActionVLAD: per-frame trunk, NetVLAD over all frames, linear logits.

    A functional model `frames [B, T, H, W, C] -> logits [B, num_classes]`
    (float32 under any dtype policy), with `T` dynamic. Every argument is a
    plain value, so `get_config` / `from_config` and `.keras` files need no
    custom objects.

    Args:
        num_classes: number of logits.
        trunk: "vgg16" (ActionVLAD) or "small" (CPU-sized, synthetic data).
        input_channels: 3 (RGB) or 2·S (S stacked flow x/y pairs).
        endpoint: VGG16 layer the pooling attaches to (pre-ReLU),
            "conv5_3" or "conv4_3"; ignored by the "small" trunk.
        filters: widths of the "small" trunk's blocks; ignored by VGG16.
        num_clusters: NetVLAD clusters `K` (ActionVLAD: 64).
        alpha: NetVLAD assignment sharpness (ActionVLAD: 1000).
        crop_size: (height, width) of the frames.
        trunk_weight_decay: Keras `L2` factor on the trunk's conv kernels.
        classifier_weight_decay: Keras `L2` factor on the classifier kernel
            (TF-slim's 4e-5 is Keras' 2e-5).
        **kwargs: base `keras.Model` arguments (`name`, default
            "actionvlad"; `dtype`, passed on to every sublayer but the
            float32 classifier).

    Raises:
        ConfigError: unknown trunk, or a bad VGG16 endpoint / channel
            count / decay.

    Example:

    >>> model = ActionVLAD(5, trunk="small", filters=(8, 16),
    ...                    num_clusters=4, crop_size=(32, 32))
    >>> model.output_shape
    (None, 5)
    >>> model.set_trainable_groups(("classifier",))  # stage 1
    """

    def __init__(self, num_classes, trunk="vgg16", input_channels=3,
                 endpoint="conv5_3", filters=(32, 64, 64), num_clusters=64,
                 alpha=1000.0, crop_size=(224, 224), trunk_weight_decay=0.0,
                 classifier_weight_decay=0.0, **kwargs):
        kwargs.setdefault("name", "actionvlad")
        # A functional model ignores `dtype`: the policy is set below and
        # passed to the sublayers.
        dtype = kwargs.pop("dtype", None)
        filters = [int(f) for f in filters]
        crop_size = [int(s) for s in crop_size]

        # === Layers ===
        frame_trunk = _build_trunk(
            trunk, int(input_channels), endpoint, filters,
            float(trunk_weight_decay), dtype)
        trunk_layer = keras.layers.TimeDistributed(frame_trunk, dtype=dtype,
                                                   name="trunk")
        netvlad = NetVLAD(int(num_clusters), alpha=float(alpha), dtype=dtype,
                          name="netvlad")
        regularizer = (keras.regularizers.L2(classifier_weight_decay)
                       if classifier_weight_decay else None)
        # float32 logits keep the softmax / sigmoid losses stable.
        classifier = keras.layers.Dense(
            int(num_classes),
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=0.01),
            kernel_regularizer=regularizer, dtype="float32",
            name="classifier")

        # === Functional Model ===
        frames = keras.Input((None, *crop_size, int(input_channels)),
                             name="frames")
        logits = classifier(netvlad(trunk_layer(frames)))
        super().__init__(inputs=frames, outputs=logits, **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype

        # === Config ===
        self.num_classes = int(num_classes)
        self.trunk = trunk
        self.input_channels = int(input_channels)
        self.endpoint = endpoint
        self.filters = filters
        self.num_clusters = int(num_clusters)
        self.alpha = float(alpha)
        self.crop_size = crop_size
        self.trunk_weight_decay = float(trunk_weight_decay)
        self.classifier_weight_decay = float(classifier_weight_decay)

    # ------------------------------------------------------ stage groups
    @property
    def trunk_model(self):
        """The per-frame trunk model `[N, H, W, C] -> [N, h, w, D]`."""
        return self.get_layer("trunk").layer

    def group_layers(self, group):
        """The layers of a trainable group.

        Args:
            group: "trunk" (every trunk conv), "last_block" (the trunk's
                last conv block: conv5_1..5_3 of VGG16), "netvlad" or
                "classifier".

        Returns:
            List of layers.

        Raises:
            ConfigError: unknown group.

        Example:

        >>> model = ActionVLAD(51)  # VGG16 trunk
        >>> [layer.name for layer in model.group_layers("last_block")]
        ['block5_conv1', 'block5_conv2', 'block5_conv3']
        """
        if group in ("netvlad", "classifier"):
            return [self.get_layer(group)]
        convs = [layer for layer in self.trunk_model.layers
                 if _BLOCK.match(layer.name)]
        if group == "trunk":
            return convs
        if group == "last_block":
            last = max(_block_index(layer) for layer in convs)
            return [layer for layer in convs if _block_index(layer) == last]
        raise errors.ConfigError(f"unknown trainable group {group!r}; "
                                 f"expected some of {GROUPS}")

    def set_trainable_groups(self, groups):
        """Freezes every layer except those of `groups`.

        ActionVLAD trains in two stages: the classifier alone with NetVLAD
        at its k-means initialisation ("classifier"), then classifier,
        NetVLAD and conv5 ("classifier", "netvlad", "last_block").

        Args:
            groups: names from `GROUPS`, or ("all",).

        Raises:
            ConfigError: unknown group.

        Example:

        >>> model = ActionVLAD(5, trunk="small", filters=(8, 16),
        ...                    num_clusters=4, crop_size=(32, 32))
        >>> model.set_trainable_groups(("classifier",))  # stage 1
        >>> [v.path for v in model.trainable_variables]
        ['classifier/kernel', 'classifier/bias']
        """
        groups = tuple(groups)
        trunk = self.trunk_model
        if groups == ("all",):
            for layer in [trunk, *self.layers]:
                layer.trainable = True
            return
        chosen = {id(layer) for group in groups
                  for layer in self.group_layers(group)}
        # Trainability is decided per leaf layer; the wrappers stay
        # trainable so that their chosen children are seen.
        self.get_layer("trunk").trainable = True
        trunk.trainable = True
        for layer in [*trunk.layers, self.get_layer("netvlad"),
                      self.get_layer("classifier")]:
            if layer.weights:
                layer.trainable = id(layer) in chosen

    # ------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, trunk=self.trunk,
            input_channels=self.input_channels, endpoint=self.endpoint,
            filters=list(self.filters), num_clusters=self.num_clusters,
            alpha=self.alpha, crop_size=list(self.crop_size),
            trunk_weight_decay=self.trunk_weight_decay,
            classifier_weight_decay=self.classifier_weight_decay)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
