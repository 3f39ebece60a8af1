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
`netvlad`, `classifier`. `set_trainable_groups` freezes all but the groups
of a training stage.
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


def build_trunk(name, input_channels, *, endpoint="conv5_3",
                filters=(32, 64, 64), weight_decay=0.0):
    """Builds the per-frame trunk.

    Args:
        name: "vgg16" (ActionVLAD) or "small" (CPU-sized, synthetic data).
        input_channels: 3 (RGB) or 2·S (stacked flow).
        endpoint: VGG16 layer the pooling attaches to (pre-ReLU), "conv5_3"
            or "conv4_3".
        filters: widths of the "small" trunk's blocks.
        weight_decay: Keras `L2` factor on conv kernels.

    Returns:
        A functional `keras.Model` `[N, H, W, C] -> [N, h, w, D]`.

    Raises:
        ConfigError: unknown trunk name.
    """
    if name == "vgg16":
        return vgg16.build_vgg16_trunk(
            input_channels=input_channels, endpoint=endpoint, pre_relu=True,
            weight_decay=weight_decay)
    if name == "small":
        return small_convnet.build_small_convnet(
            input_channels, filters=tuple(filters), pre_relu=True,
            weight_decay=weight_decay)
    raise errors.ConfigError(f"unknown ActionVLAD trunk {name!r}; expected "
                             f"one of {TRUNKS}")


def build_actionvlad(num_classes, trunk, *, num_clusters=64, alpha=1000.0,
                     crop_size=(224, 224), classifier_weight_decay=0.0,
                     name="actionvlad"):
    """Assembles trunk, NetVLAD and classifier into a video classifier.

    Args:
        num_classes: number of logits.
        trunk: a per-frame model `[N, H, W, C] -> [N, h, w, D]` (see
            `build_trunk`).
        num_clusters: NetVLAD clusters `K` (ActionVLAD: 64).
        alpha: NetVLAD assignment sharpness (ActionVLAD: 1000).
        crop_size: (height, width) of the frames.
        classifier_weight_decay: Keras `L2` factor on the classifier kernel
            (TF-slim's 4e-5 is Keras' 2e-5).
        name: model name.

    Returns:
        A functional `keras.Model`: `frames` `[B, T, H, W, C]` -> logits
        `[B, num_classes]` (float32).

    Example:

    >>> trunk = build_trunk("small", 3, filters=(8, 16))
    >>> model = build_actionvlad(5, trunk, num_clusters=4,
    ...                          crop_size=(32, 32))
    >>> model.output_shape
    (None, 5)
    """
    channels = trunk.input_shape[-1]
    frames = keras.Input((None, *crop_size, channels), name="frames")
    features = keras.layers.TimeDistributed(trunk, name="trunk")(frames)
    pooled = NetVLAD(num_clusters, alpha=alpha, name="netvlad")(features)
    regularizer = (keras.regularizers.L2(classifier_weight_decay)
                   if classifier_weight_decay else None)
    logits = keras.layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
        kernel_regularizer=regularizer, dtype="float32",
        name="classifier")(pooled)
    return keras.Model(frames, logits, name=name)


def trunk_model(model):
    """The per-frame trunk model inside an ActionVLAD model."""
    return model.get_layer("trunk").layer


def group_layers(model, group):
    """The layers of a trainable group.

    Args:
        model: a `build_actionvlad` model.
        group: "trunk" (every trunk layer), "last_block" (the trunk's last
            conv block: conv5_1..5_3 of VGG16), "netvlad" or "classifier".

    Returns:
        List of layers.

    Raises:
        ConfigError: unknown group.
    """
    if group in ("netvlad", "classifier"):
        return [model.get_layer(group)]
    trunk = trunk_model(model)
    convs = [layer for layer in trunk.layers if _BLOCK.match(layer.name)]
    if group == "trunk":
        return convs
    if group == "last_block":
        last = max(int(_BLOCK.match(layer.name).group(1)) for layer in convs)
        return [layer for layer in convs
                if int(_BLOCK.match(layer.name).group(1)) == last]
    raise errors.ConfigError(f"unknown trainable group {group!r}; expected "
                             f"some of {GROUPS}")


def set_trainable_groups(model, groups):
    """Freezes every layer except those of `groups`.

    ActionVLAD trains in two stages: the classifier alone with NetVLAD at
    its k-means initialisation ("classifier"), then classifier, NetVLAD and
    conv5 ("classifier", "netvlad", "last_block").

    Args:
        model: a `build_actionvlad` model.
        groups: names from `GROUPS`, or ("all",).

    Example:

    ```python
    set_trainable_groups(model, ("classifier",))  # stage 1
    ```
    """
    groups = tuple(groups)
    if groups == ("all",):
        for layer in [trunk_model(model), *model.layers]:
            layer.trainable = True
        return
    chosen = {id(layer) for group in groups
              for layer in group_layers(model, group)}
    trunk = trunk_model(model)
    # Trainability is decided per leaf layer; the wrappers stay trainable
    # so that their chosen children are seen.
    model.get_layer("trunk").trainable = True
    trunk.trainable = True
    for layer in [*trunk.layers, model.get_layer("netvlad"),
                  model.get_layer("classifier")]:
        if layer.weights:
            layer.trainable = id(layer) in chosen
