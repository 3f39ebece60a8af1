"""MobileNet-V2 feature extractor: torchvision's layout, or keras.applications'.

AdaFocus' glance network is torchvision's MobileNet-V2 (`features`, the
`7 x 7 x 1280` map at 224 x 224). `keras.applications.MobileNetV2` is
not the same function with the same weights: it pads its stride-2 3x3
convolutions asymmetrically (the stem with "same", the blocks with
`correct_pad`: 0 before and 1 after on even or unknown sizes), where
PyTorch pads 1 on both sides, so every feature from the first strided conv
on is sampled half a pixel off; and its batch norms use epsilon 1e-3
(torchvision: 1e-5).
This module builds torchvision's network as one functional Keras model
whose layer names are torchvision's module names with `.` replaced by
`_`, so that a torchvision `state_dict` (and the AdaFocus authors'
checkpoints) load by name (`tfaction.checkpoints.adafocus`):

* `features_0_0_pad`, `features_0_0`, `features_0_1`, `features_0_2`
  (`features.0`): zero pad 1, 3x3 conv to 32 channels with stride 2,
  batch norm, ReLU6;
* `features_{i}_conv_0_0`, `_0_1`, `_0_2` (`features.{i}.conv.0`): the
  1x1 expansion conv, batch norm, ReLU6 (blocks with expand ratio > 1);
* `features_{i}_conv_{d}_0_pad` (strided blocks only), `_{d}_0`, `_{d}_1`,
  `_{d}_2` (`features.{i}.conv.{d}`): the 3x3 depthwise conv, batch norm,
  ReLU6;
* `features_{i}_conv_{d+1}`, `_{d+2}` (`features.{i}.conv.{d+1}`,
  `.{d+2}`): the 1x1 linear projection conv and its batch norm;
* `features_{i}_add`: the residual sum (stride 1, in = out channels);
* `features_18_0`, `_1`, `_2` (`features.18`): 1x1 conv to 1280 channels,
  batch norm, ReLU6 (the output).

with `d = 1` for expand ratio > 1 and `d = 0` for block 1 (ratio 1).
Blocks 1 ... 17 follow the inverted-residual table (expand ratio t,
channels c, repeats n, first stride s): (1, 16, 1, 1), (6, 24, 2, 2),
(6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
(6, 320, 1, 1). Convolutions have no bias; batch norms have epsilon 1e-5
and PyTorch's momentum 0.1 (Keras 0.9). Every stride-2 step maps a size
`n` to `ceil(n / 2)`: `H x W` gives `ceil(H / 32) x ceil(W / 32)` (224 ->
7, 96 -> 3). H and W are dynamic.

`width_multiplier` scales every width as torchvision does
(`_make_divisible(c * width, 8)`, at least 8; the last conv keeps 1280
unless the multiplier exceeds 1). The classifier (`classifier.1`) is not
part of the model.

`variant="keras"` builds `keras.applications.MobileNetV2` instead (for its
ImageNet weights, `tfaction.checkpoints.adafocus.
load_keras_mobilenet_v2_weights`): the same layers and names, but every
stride-2 3x3 conv pads as keras.applications does with a static input
size (TF "same": 0 before and 1 after on even sizes, 1 and 1 on odd ones;
no `_pad` layers) and the batch norms use epsilon 1e-3. (A
keras.applications model built for an unknown input size pads its blocks
0 / 1 on odd sizes too; at 224 x 224 and 96 x 96 every strided size is
even and both agree.) The moving-average momentum stays PyTorch's 0.1
(Keras 0.9) in both variants: it only matters in training.

Input normalisation follows the weights. torchvision's weights expect RGB
in [0, 1] normalised by the ImageNet mean (0.485, 0.456, 0.406) and std
(0.229, 0.224, 0.225); keras.applications' expect
`keras.applications.mobilenet_v2.preprocess_input` of pixels in [0, 255]
("tf" mode: `x / 127.5 - 1`, RGB). With `input_normalization="native"`
(the default) the model takes its variant's convention; with "imagenet"
it always takes the torchvision normalisation and the keras variant
converts it in the graph (a fixed `tfaction.layers.ChannelAffine` named
`input_conversion`).
"""

import math

import keras

from tfaction import errors
from tfaction.layers.channel_affine import ChannelAffine
from tfaction.layers.fused_batch_normalization import FusedBatchNormalization

# (expand ratio t, output channels c, repeats n, first stride s).
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
                             (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                             (6, 320, 1, 1))
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
VARIANTS = ("torchvision", "keras")
BN_EPSILON = {"torchvision": 1e-5, "keras": 1e-3}
# "native": the variant's weights' own input convention; "imagenet":
# torchvision's ImageNet mean / std normalisation for both variants.
INPUT_NORMALIZATIONS = ("native", "imagenet")
# keras.applications.mobilenet_v2.preprocess_input's mode.
KERAS_PREPROCESSING_MODE = "tf"


def make_divisible(value, divisor=8, min_value=None):
    """torchvision's channel rounding: nearest multiple of `divisor`, at
    least `min_value` (default `divisor`) and never below 90 % of `value`.

    Example:

    >>> make_divisible(32 * 0.35), make_divisible(1280 * 1.4)
    (16, 1792)
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def block_table(width_multiplier=1.0):
    """`(in, hidden, out, stride, expand_ratio)` of blocks 1 ... 17.

    Args:
        width_multiplier: torchvision's `width_mult`.

    Returns:
        A list of 5-tuples of ints.

    Example:

    >>> block_table()[1]
    (16, 96, 24, 2, 6)
    """
    table = []
    channels = make_divisible(STEM_CHANNELS * width_multiplier)
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        out = make_divisible(c * width_multiplier)
        for i in range(n):
            table.append((channels, int(round(channels * t)), out,
                          s if i == 0 else 1, t))
            channels = out
    return table


def _conv_initializer(fan_out):
    # torchvision: kaiming_normal_(mode="fan_out"), std sqrt(2 / fan_out),
    # with fan_out = out_channels * k * k (also for the depthwise convs).
    return keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / fan_out))


@keras.saving.register_keras_serializable(package="tfaction")
class MobileNetV2(keras.Model):
    """MobileNet-V2 features (torchvision's or keras.applications' layout).

    Maps `[N, H, W, C]` images (H, W dynamic) to the last feature map
    `[N, ceil(H / 32), ceil(W / 32), last_channels]` (after the final
    ReLU6); see the module docstring for the layers, their torchvision
    names and the padding. Every argument is a plain value, so `.keras`
    files reload with no custom objects. Initialisation is torchvision's
    (convs `N(0, 2 / fan_out)`, batch norms 1 / 0).

    Args:
        width_multiplier: torchvision's `width_mult` (1.0 for the
            ImageNet and AdaFocus weights; smaller for quick tests).
        input_channels: image channels (3).
        variant: "torchvision" (symmetric padding, BN epsilon 1e-5) or
            "keras" (keras.applications' padding, BN epsilon 1e-3).
        input_normalization: "native" (the variant's weights'
            convention) or "imagenet" (torchvision's for both; the keras
            variant converts in the graph; needs `input_channels=3`).
        **kwargs: base `keras.Model` arguments: `name` (default
            "mobilenet_v2") and `dtype` (passed to every layer, e.g.
            "mixed_float16"; batch norms compute in float32).

    Call arguments:
        inputs: `[N, H, W, input_channels]` float images.
        training: batch statistics in the batch norms.

    Returns:
        `[N, ceil(H / 32), ceil(W / 32), last_channels]` in the compute
        dtype.

    Raises:
        ConfigError: non-positive width multiplier or channels, unknown
            variant or input normalisation.

    Example:

    >>> import numpy as np
    >>> model = MobileNetV2(width_multiplier=0.25)
    >>> tuple(model(np.zeros((1, 64, 40, 3), "float32")).shape)
    (1, 2, 2, 1280)
    >>> model.get_layer("features_2_conv_1_0").strides  # the depthwise conv
    (2, 2)

    Reference:
        Sandler et al., "MobileNetV2: Inverted Residuals and Linear
        Bottlenecks", CVPR 2018; torchvision's `mobilenet_v2` (layout,
        names, padding, initialisation).
    """

    def __init__(self, width_multiplier=1.0, input_channels=3,
                 variant="torchvision", input_normalization="native",
                 **kwargs):
        kwargs.setdefault("name", "mobilenet_v2")
        # A functional model ignores `dtype`: it is set below and passed to
        # every layer.
        dtype = kwargs.pop("dtype", None)
        width_multiplier = float(width_multiplier)
        if not width_multiplier > 0:
            raise errors.ConfigError(f"MobileNetV2 width_multiplier must be "
                                     f"> 0, got {width_multiplier}")
        input_channels = int(input_channels)
        if input_channels < 1:
            raise errors.ConfigError(f"MobileNetV2 input_channels must be >= "
                                     f"1, got {input_channels}")
        for value, choices, what in (
                (variant, VARIANTS, "variant"),
                (input_normalization, INPUT_NORMALIZATIONS,
                 "input_normalization")):
            if value not in choices:
                raise errors.ConfigError(f"unknown MobileNetV2 {what} "
                                         f"{value!r}; expected one of "
                                         f"{choices}")
        convert = variant == "keras" and input_normalization == "imagenet"
        if convert and input_channels != 3:
            raise errors.ConfigError(
                f"MobileNetV2 input_normalization='imagenet' converts RGB "
                f"images, but input_channels={input_channels}")
        last_channels = make_divisible(LAST_CHANNELS
                                       * max(1.0, width_multiplier))
        # torchvision pads a strided 3x3 conv 1 / 1 (explicit padding, then
        # "valid"); keras.applications pads it TF-"same" (0 / 1 on even
        # sizes).
        symmetric = variant == "torchvision"

        def pad(x, name, kernel, stride):
            if stride > 1 and symmetric:
                x = keras.layers.ZeroPadding2D(kernel // 2, name=name + "_pad",
                                               dtype=dtype)(x)
            return x, ("valid" if stride > 1 and symmetric else "same")

        def conv(x, name, filters, kernel=1, stride=1):
            x, padding = pad(x, name, kernel, stride)
            return keras.layers.Conv2D(
                filters, kernel, strides=stride, padding=padding,
                use_bias=False,
                kernel_initializer=_conv_initializer(filters * kernel ** 2),
                name=name, dtype=dtype)(x)

        def depthwise(x, name, channels, stride):
            x, padding = pad(x, name, 3, stride)
            return keras.layers.DepthwiseConv2D(
                3, strides=stride, padding=padding, use_bias=False,
                depthwise_initializer=_conv_initializer(channels * 9),
                name=name, dtype=dtype)(x)

        def batch_norm(x, name):
            return FusedBatchNormalization(
                momentum=BN_MOMENTUM, epsilon=BN_EPSILON[variant], name=name,
                dtype=dtype)(x)

        def relu6(x, name):
            return keras.layers.ReLU(6.0, name=name, dtype=dtype)(x)

        # === Functional Model ===
        inputs = keras.Input((None, None, input_channels), name="images")
        x = inputs
        if convert:
            x = ChannelAffine.from_imagenet(
                KERAS_PREPROCESSING_MODE, name="input_conversion",
                dtype=dtype)(x)
        stem = make_divisible(STEM_CHANNELS * width_multiplier)
        x = conv(x, "features_0_0", stem, 3, 2)
        x = relu6(batch_norm(x, "features_0_1"), "features_0_2")
        for index, (c_in, hidden, c_out, stride, ratio) in enumerate(
                block_table(width_multiplier), start=1):
            p = f"features_{index}_conv_"
            y, d = x, 0
            if ratio != 1:
                y = conv(y, p + "0_0", hidden)
                y = relu6(batch_norm(y, p + "0_1"), p + "0_2")
                d = 1
            y = depthwise(y, f"{p}{d}_0", hidden, stride)
            y = relu6(batch_norm(y, f"{p}{d}_1"), f"{p}{d}_2")
            y = conv(y, f"{p}{d + 1}", c_out)
            y = batch_norm(y, f"{p}{d + 2}")
            if stride == 1 and c_in == c_out:
                y = keras.layers.Add(name=f"features_{index}_add",
                                     dtype=dtype)([x, y])
            x = y
        last = len(block_table(width_multiplier)) + 1
        x = conv(x, f"features_{last}_0", last_channels)
        x = relu6(batch_norm(x, f"features_{last}_1"), f"features_{last}_2")
        super().__init__(inputs=inputs, outputs=x, **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype

        # === Config ===
        self.width_multiplier = width_multiplier
        self.input_channels = input_channels
        self.variant = variant
        self.input_normalization = input_normalization
        self.last_channels = last_channels

    def get_config(self):
        config = super().get_config()
        config.update(width_multiplier=self.width_multiplier,
                      input_channels=self.input_channels,
                      variant=self.variant,
                      input_normalization=self.input_normalization)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_mobilenet_v2(width_multiplier=1.0, name="mobilenet_v2", *,
                       input_channels=3, variant="torchvision",
                       input_normalization="native", dtype=None):
    """Builds a MobileNet-V2 feature extractor (`MobileNetV2`).

    AdaFocus' glance network is `build_mobilenet_v2()` with the authors'
    (or torchvision's ImageNet) weights loaded by
    `tfaction.checkpoints.adafocus.load_mobilenet_v2_checkpoint`,
    global-average-pooled by the caller for the 1280-d glance feature;
    `variant="keras"` takes keras.applications' ImageNet weights instead
    (`load_keras_mobilenet_v2_weights`).

    Args:
        width_multiplier: torchvision's `width_mult`.
        name: model name.
        input_channels: image channels (3).
        variant: "torchvision" or "keras" (see `MobileNetV2`).
        input_normalization: "native" or "imagenet" (see `MobileNetV2`).
        dtype: dtype policy of every layer; None uses the global policy.

    Returns:
        A `MobileNetV2` model `[N, H, W, 3] -> [N, ceil(H / 32),
        ceil(W / 32), 1280]`.

    Example:

    >>> build_mobilenet_v2().output_shape
    (None, None, None, 1280)
    """
    return MobileNetV2(width_multiplier=width_multiplier,
                       input_channels=input_channels, variant=variant,
                       input_normalization=input_normalization, name=name,
                       dtype=dtype)
