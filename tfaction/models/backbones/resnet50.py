"""ResNet-50 frame encoder: torchvision layout (v1.5) and Keras layout (v1).

CARL encodes every frame with a torchvision ResNet-50 (conv1 ... layer3
frozen, layer4 fine-tuned) and AdaFocus runs a torchvision ResNet-50 as its
focus network. `keras.applications.ResNet50` is a different network: it is
ResNet **v1**, whose bottlenecks stride in their first 1x1 conv, while
torchvision's ResNet-50 is **v1.5**, which strides in the 3x3 conv; its
convolutions have biases (torchvision's have none), its batch norms use
epsilon 1.001e-5, and its ImageNet weights are other numbers. This module
builds both, as one functional Keras model whose layer names are
torchvision's module names with `.` replaced by `_`, so the weights of a
torchvision (or BYOL / MoCo / SimCLR) `state_dict` load by name
(`tfaction.checkpoints.resnet50`):

| layer(s) | torchvision module | op |
|---|---|---|
| `conv1_pad`, `conv1` | `conv1` | zero pad 3, 7x7 conv 64, stride 2 |
| `bn1`, `relu` | `bn1`, `relu` | batch norm, ReLU |
| `maxpool_pad`, `maxpool` | `maxpool` | zero pad 1, 3x3 max pool, stride 2 |
| `layer{s}_{b}_conv{k}` | `layer{s}.{b}.conv{k}` | conv k of block b (v1.5's strided `conv2` after `layer{s}_0_conv2_pad`) |
| `layer{s}_{b}_bn{k}` | `layer{s}.{b}.bn{k}` | its batch norm |
| `layer{s}_0_downsample_0` | `layer{s}.0.downsample.0` | shortcut 1x1 conv |
| `layer{s}_0_downsample_1` | `layer{s}.0.downsample.1` | its batch norm |
| `layer{s}` | (output of `layer{s}`) | ReLU after the last add |

Stages `layer1` ... `layer4` have 3, 4, 6, 3 bottlenecks of width 64, 128,
256, 512 (output channels 4x that) and strides 1, 2, 2, 2. A bottleneck is
`relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))`
with 1x1 `conv1`, 3x3 `conv2` and 1x1 `conv3`; the shortcut is the identity
except in the first block of each stage. In **v1.5** the stride of the stage
is in `conv2` (the 3x3); in **v1** it is in `conv1` (the first 1x1).

Padding is PyTorch's, symmetric. A strided convolution or pool gets an
explicit `ZeroPadding2D` layer (`{name}_pad`) and "valid" padding: Keras'
"same" padding is asymmetric for stride 2 on even sizes (it pads 0 before
and 1 after where PyTorch pads 1 on both sides), which would shift every
feature by half a pixel. A stride-1 3x3 convolution pads 1 on both sides
under "same" as well, so it uses "same": no padded copy of its input.
The max pool pads with zeros where PyTorch pads with -inf; its input is the
output of a ReLU (never negative), so the maxima are the same. Every
stride-2 step maps a size `n` to `ceil(n / 2)`: `H x W` input gives
`ceil(H / 32) x ceil(W / 32)` at `layer4` (224 -> 7). H and W are dynamic.

Batch norm follows torchvision: epsilon 1e-5 (v1: 1.001e-5, as
keras.applications), with a learned scale `gamma` and offset `beta`, and
PyTorch's momentum 0.1 for the moving statistics, i.e. Keras momentum 0.9
(`moving = 0.9 * moving + 0.1 * batch`; both variants).

Freezing (CARL trains only layer4 of an ImageNet- or BYOL-initialised
ResNet-50, with conv1 ... layer3 under `no_grad` and their batch norms in
eval mode):

* `frozen_stages=k` freezes the stem (`conv1`, `bn1`) and `layer1` ...
  `layer{k}` (`k = 0`: the stem only; `-1`: nothing). Their convs are
  built with `trainable=False` and their batch norms are
  `tfaction.layers.FrozenBatchNormalization(scale=True, trainable=False)`:
  normalised by the stored statistics in training as in inference, never
  updated, gamma and beta not trained. CARL is `frozen_stages=3`.
* `frozen_batch_norm=True` makes every other batch norm a (trainable)
  `FrozenBatchNormalization` as well: fixed statistics, gamma and beta
  trained (detectron-style fine-tuning with small per-replica batches).
  With `False` (the default, torchvision's `train()` mode) the batch norms
  of the trainable stages are `tfaction.layers.FusedBatchNormalization`
  (Keras' `BatchNormalization`, its training step one fused kernel): batch
  statistics and updated moving statistics when called with
  `training=True`, the moving ones otherwise. CARL's layer4 trains this way.

A frozen stage computes the same function whatever `training` the model is
called with. Setting `model.trainable = True` later makes its weights
trainable again, but its batch norms still never update their statistics.

Input normalisation follows the weights. torchvision's and the BYOL
weights (v1.5) expect RGB in [0, 1] normalised by the ImageNet mean (0.485,
0.456, 0.406) and std (0.229, 0.224, 0.225); keras.applications' v1
weights expect what `keras.applications.resnet50.preprocess_input` gives
for pixels in [0, 255] ("caffe" mode: RGB -> BGR, minus the mean (103.939,
116.779, 123.68), no scaling). With `input_normalization="native"` (the
default) the model takes its variant's convention as is; with
`"imagenet"` it always takes the torchvision normalisation, and the v1
model converts it to "caffe" mode in the graph (a fixed
`tfaction.layers.ChannelAffine` named `input_conversion`, before `conv1`),
so a data pipeline that normalises the torchvision way can run either
variant.
"""

import numbers

import keras

from tfaction import errors
from tfaction.layers.channel_affine import ChannelAffine
from tfaction.layers.frozen_batch_normalization import FrozenBatchNormalization
from tfaction.layers.fused_batch_normalization import FusedBatchNormalization

VARIANTS = ("v1.5", "v1")
# "native": the variant's weights' own input convention; "imagenet":
# torchvision's ImageNet mean / std normalisation for every variant.
INPUT_NORMALIZATIONS = ("native", "imagenet")
# keras.applications.resnet50.preprocess_input's mode (v1 weights).
KERAS_PREPROCESSING_MODE = "caffe"
# Stage outputs a model can end at (the stem's output is `maxpool`).
ENDPOINTS = ("maxpool", "layer1", "layer2", "layer3", "layer4")
# Output stride of every named feature map (`conv1` is the stem conv).
ENDPOINT_STRIDES = {"conv1": 2, "relu": 2, "maxpool": 4, "layer1": 4,
                    "layer2": 8, "layer3": 16, "layer4": 32}
ENDPOINT_CHANNELS = {"conv1": 64, "relu": 64, "maxpool": 64, "layer1": 256,
                     "layer2": 512, "layer3": 1024, "layer4": 2048}
# (blocks, width, stride) of layer1 ... layer4; output channels 4 * width.
STAGES = ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2))
EXPANSION = 4
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
BN_EPSILON = {"v1.5": 1e-5, "v1": 1.001e-5}


def _check_choice(value, choices, what):
    if value not in choices:
        raise errors.ConfigError(f"unknown ResNet-50 {what} {value!r}; "
                                 f"expected one of {choices}")
    return value


def stage_of(layer_name):
    """The stage (0 = stem, 1-4 = layer1-4) a ResNet-50 layer belongs to.

    Args:
        layer_name: a layer name of a `ResNet50` model.

    Returns:
        An int, or None for the input layer.

    Example:

    >>> stage_of("bn1"), stage_of("layer3_5_conv2"), stage_of("layer4")
    (0, 3, 4)
    """
    if layer_name.startswith("layer") and layer_name[5:6].isdigit():
        return int(layer_name[5])
    if layer_name == "images":
        return None
    return 0


@keras.saving.register_keras_serializable(package="tfaction")
class ResNet50(keras.Model):
    """ResNet-50 up to a stage, torchvision (v1.5) or keras.applications (v1).

    A functional model mapping `[N, H, W, C]` images (H, W dynamic) to the
    output of `endpoint`; see the module docstring for the layers, names,
    padding, batch norm and freezing. Every argument is a plain value, so
    `.keras` files reload with no custom objects. Use `build_resnet50` to
    build one; `endpoint_model()` gives every stage output at once.

    Args:
        variant: "v1.5" (torchvision: stride in the 3x3 conv, no conv
            biases, BN epsilon 1e-5) or "v1" (keras.applications: stride in
            the first 1x1 conv, conv biases, BN epsilon 1.001e-5).
        endpoint: the last stage built, one of `ENDPOINTS` ("layer4":
            stride 32, 2048 channels; "layer3": stride 16, 1024).
        frozen_stages: -1 (nothing frozen), 0 (the stem), or k in 1..4:
            the stem and layer1 ... layer{k} (at most the endpoint's stage).
        frozen_batch_norm: every batch norm outside the frozen stages is a
            trainable `FrozenBatchNormalization` (fixed statistics) instead
            of a `FusedBatchNormalization` (Keras batch norm).
        weight_decay: Keras `L2` factor on the kernels of the trainable
            convs (0 = none; biases and batch norms are not decayed). Note
            that PyTorch's coupled `weight_decay=w` equals Keras `L2(w / 2)`
            on the same weights.
        input_channels: image channels (3).
        input_normalization: "native" (inputs normalised as the variant's
            weights expect: v1.5 ImageNet mean / std RGB, v1 "caffe" BGR)
            or "imagenet" (ImageNet mean / std RGB for both; v1 converts
            in the graph; needs `input_channels=3`).
        **kwargs: base `keras.Model` arguments: `name` (default
            "resnet50") and `dtype` (passed on to every layer, e.g.
            "mixed_float16": float16 compute, float32 variables, batch
            norm in float32).

    Call arguments:
        inputs: `[N, H, W, input_channels]` float images.
        training: batch statistics (and their moving-average update) in
            the trainable `BatchNormalization` layers; no effect on frozen
            stages or with `frozen_batch_norm=True`.

    Returns:
        `[N, ceil(H / s), ceil(W / s), c]` in the compute dtype, with
        `s = ENDPOINT_STRIDES[endpoint]`, `c = ENDPOINT_CHANNELS[endpoint]`.

    Raises:
        ConfigError: unknown variant, endpoint or input normalisation,
            `frozen_stages` outside -1 .. the endpoint's stage, bad
            `weight_decay` or channels.

    Example:

    >>> model = ResNet50(endpoint="layer3", frozen_stages=2)
    >>> tuple(model(np.zeros((1, 64, 48, 3), "float32")).shape)
    (1, 4, 3, 1024)
    >>> model.get_layer("layer2_0_conv2").strides  # v1.5: the 3x3 strides
    (2, 2)
    >>> model.get_layer("layer3_0_conv1").trainable
    True

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", CVPR
        2016 (ResNet-50, v1); torchvision `models/resnet.py` (v1.5 layout
        and names).
    """

    def __init__(self, variant="v1.5", endpoint="layer4", frozen_stages=-1,
                 frozen_batch_norm=False, weight_decay=0.0, input_channels=3,
                 input_normalization="native", **kwargs):
        kwargs.setdefault("name", "resnet50")
        # A functional model ignores `dtype`: it is set below and passed to
        # every layer.
        dtype = kwargs.pop("dtype", None)
        _check_choice(variant, VARIANTS, "variant")
        _check_choice(endpoint, ENDPOINTS, "endpoint")
        _check_choice(input_normalization, INPUT_NORMALIZATIONS,
                      "input_normalization")
        last_stage = ENDPOINTS.index(endpoint)  # 0 = stem ... 4 = layer4
        if isinstance(frozen_stages, numbers.Integral) and not isinstance(
                frozen_stages, bool):
            frozen_stages = int(frozen_stages)
        if not isinstance(frozen_stages, int) or isinstance(
                frozen_stages, bool) or not -1 <= frozen_stages <= last_stage:
            raise errors.ConfigError(
                f"frozen_stages must be an int in -1 (nothing) .. "
                f"{last_stage} (the stages up to endpoint {endpoint!r}), got "
                f"{frozen_stages!r}")
        weight_decay = float(weight_decay)
        if weight_decay < 0:
            raise errors.ConfigError(f"weight_decay must be >= 0, got "
                                     f"{weight_decay}")
        input_channels = int(input_channels)
        if input_channels < 1:
            raise errors.ConfigError(f"input_channels must be >= 1, got "
                                     f"{input_channels}")
        convert = variant == "v1" and input_normalization == "imagenet"
        if convert and input_channels != 3:
            raise errors.ConfigError(
                f"input_normalization='imagenet' converts RGB images, but "
                f"input_channels={input_channels}")
        frozen_batch_norm = bool(frozen_batch_norm)
        regularizer = (keras.regularizers.L2(weight_decay) if weight_decay
                       else None)
        use_bias = variant == "v1"
        epsilon = BN_EPSILON[variant]

        def frozen(stage):
            return stage <= frozen_stages

        def conv(x, name, filters, kernel, stride, stage):
            # Stride 1: "same" is PyTorch's symmetric padding, done inside
            # the convolution (no padded copy, no slice in the gradient).
            padding = "same" if stride == 1 else "valid"
            if kernel > 1 and stride > 1:
                x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad",
                                               dtype=dtype)(x)
            trainable = not frozen(stage)
            return keras.layers.Conv2D(
                filters, kernel, strides=stride, padding=padding,
                use_bias=use_bias,
                kernel_regularizer=regularizer if trainable else None,
                trainable=trainable, name=name, dtype=dtype)(x)

        def batch_norm(x, name, stage):
            if frozen(stage):
                return FrozenBatchNormalization(
                    scale=True, epsilon=epsilon, trainable=False, name=name,
                    dtype=dtype)(x)
            if frozen_batch_norm:
                return FrozenBatchNormalization(
                    scale=True, epsilon=epsilon, name=name, dtype=dtype)(x)
            return FusedBatchNormalization(
                momentum=BN_MOMENTUM, epsilon=epsilon, name=name,
                dtype=dtype)(x)

        def relu(x, name):
            return keras.layers.ReLU(name=name, dtype=dtype)(x)

        def bottleneck(x, stage, block, width, stride, out_name):
            prefix = f"layer{stage}_{block}_"
            stride_1x1, stride_3x3 = ((stride, 1) if variant == "v1"
                                      else (1, stride))
            shortcut = x
            if block == 0:
                shortcut = conv(x, prefix + "downsample_0", width * EXPANSION,
                                1, stride, stage)
                shortcut = batch_norm(shortcut, prefix + "downsample_1",
                                      stage)
            y = conv(x, prefix + "conv1", width, 1, stride_1x1, stage)
            y = relu(batch_norm(y, prefix + "bn1", stage), prefix + "relu1")
            y = conv(y, prefix + "conv2", width, 3, stride_3x3, stage)
            y = relu(batch_norm(y, prefix + "bn2", stage), prefix + "relu2")
            y = conv(y, prefix + "conv3", width * EXPANSION, 1, 1, stage)
            y = batch_norm(y, prefix + "bn3", stage)
            y = keras.layers.Add(name=prefix + "add", dtype=dtype)(
                [y, shortcut])
            return relu(y, out_name)

        # === Functional Model ===
        inputs = keras.Input((None, None, input_channels), name="images")
        x = inputs
        if convert:
            x = ChannelAffine.from_imagenet(
                KERAS_PREPROCESSING_MODE, name="input_conversion",
                dtype=dtype)(x)
        x = conv(x, "conv1", 64, 7, 2, 0)
        x = relu(batch_norm(x, "bn1", 0), "relu")
        x = keras.layers.ZeroPadding2D(1, name="maxpool_pad", dtype=dtype)(x)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="valid",
                                      name="maxpool", dtype=dtype)(x)
        for stage, (blocks, width, stride) in enumerate(
                STAGES[:last_stage], start=1):
            for block in range(blocks):
                out_name = (f"layer{stage}" if block == blocks - 1
                            else f"layer{stage}_{block}_relu3")
                x = bottleneck(x, stage, block, width,
                               stride if block == 0 else 1, out_name)
        super().__init__(inputs=inputs, outputs=x, **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype

        # === Config ===
        self.variant = variant
        self.endpoint = endpoint
        self.frozen_stages = frozen_stages
        self.frozen_batch_norm = frozen_batch_norm
        self.weight_decay = weight_decay
        self.input_channels = input_channels
        self.input_normalization = input_normalization

    @property
    def endpoints(self):
        """The stage outputs this model computes, in order (`ENDPOINTS`)."""
        return list(ENDPOINTS[:ENDPOINTS.index(self.endpoint) + 1])

    def endpoint_model(self, names=None):
        """A model sharing these layers that outputs several feature maps.

        Args:
            names: layer names to output (default: `conv1` (the stem conv,
                before `bn1`) and every entry of `endpoints`).

        Returns:
            A functional `keras.Model` mapping the same images to
            `{name: feature map}`; it shares this model's weights.

        Example:

        >>> feats = ResNet50(endpoint="layer2").endpoint_model()(
        ...     np.zeros((1, 32, 32, 3), "float32"))
        >>> {k: tuple(v.shape)[1:3] for k, v in feats.items()}
        {'conv1': (16, 16), 'maxpool': (8, 8), 'layer1': (8, 8), \
'layer2': (4, 4)}
        """
        names = ["conv1"] + self.endpoints if names is None else list(names)
        outputs = {name: self.get_layer(name).output for name in names}
        return keras.Model(self.input, outputs,
                           name=f"{self.name}_endpoints")

    def stage_layers(self, stage):
        """The layers of a stage (0 = stem, 1-4 = layer1-4), in model order.

        Example:

        >>> [l.name for l in ResNet50(endpoint="maxpool").stage_layers(0)]
        ['conv1_pad', 'conv1', 'bn1', 'relu', 'maxpool_pad', 'maxpool']
        """
        return [layer for layer in self.layers
                if stage_of(layer.name) == stage]

    def get_config(self):
        config = super().get_config()
        config.update(variant=self.variant, endpoint=self.endpoint,
                      frozen_stages=self.frozen_stages,
                      frozen_batch_norm=self.frozen_batch_norm,
                      weight_decay=self.weight_decay,
                      input_channels=self.input_channels,
                      input_normalization=self.input_normalization)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_resnet50(variant="v1.5", endpoint="layer4", frozen_stages=-1,
                   frozen_batch_norm=False, weight_decay=0.0,
                   name="resnet50", *, input_channels=3,
                   input_normalization="native", dtype=None):
    """Builds a ResNet-50 frame encoder (see `ResNet50`).

    CARL's frame encoder is `build_resnet50(endpoint="layer4",
    frozen_stages=3)` with torchvision ImageNet (or BYOL) weights loaded by
    `tfaction.checkpoints.resnet50.load_resnet50_checkpoint`: conv1 ...
    layer3 frozen with their batch-norm statistics, layer4 trained with
    batch statistics. AdaFocus' focus network f_L is the whole ResNet-50
    (`frozen_stages=-1`), global-average-pooled by the caller.

    Args:
        variant: "v1.5" (torchvision) or "v1" (keras.applications).
        endpoint: last stage: "maxpool", "layer1", ..., "layer4".
        frozen_stages: -1 none, 0 the stem, k the stem and layer1..layer{k}.
        frozen_batch_norm: fixed statistics in the trainable stages too.
        weight_decay: Keras `L2` factor on trainable conv kernels.
        name: model name.
        input_channels: image channels (3).
        input_normalization: "native" (the variant's weights' convention)
            or "imagenet" (torchvision's for both variants; see
            `ResNet50`).
        dtype: dtype policy of every layer; None uses the global policy.

    Returns:
        A `ResNet50` model `[N, H, W, 3]` -> `[N, ceil(H / 32), ceil(W /
        32), 2048]` (for "layer4").

    Raises:
        ConfigError: as `ResNet50`.

    Example:

    >>> encoder = build_resnet50(frozen_stages=3)
    >>> encoder.output_shape
    (None, None, None, 2048)
    >>> sorted({stage_of(v.path.split("/")[0])
    ...         for v in encoder.trainable_weights})
    [4]
    """
    return ResNet50(variant=variant, endpoint=endpoint,
                    frozen_stages=frozen_stages,
                    frozen_batch_norm=frozen_batch_norm,
                    weight_decay=weight_decay, input_channels=input_channels,
                    input_normalization=input_normalization, name=name,
                    dtype=dtype)
