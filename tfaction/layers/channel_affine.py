"""`ChannelAffine`: a fixed per-channel affine map, optionally after RGB->BGR.

Pretrained trunks expect their inputs normalised as their weights were
trained: torchvision's (and the BYOL / AdaFocus) weights take RGB in
[0, 1] minus the ImageNet mean (0.485, 0.456, 0.406) over the std (0.229,
0.224, 0.225); keras.applications' weights take what
`keras.applications.imagenet_utils.preprocess_input` gives for pixels in
[0, 255]: "caffe" mode (ResNet50: RGB -> BGR, minus (103.939, 116.779,
123.68), no scaling) or "tf" mode (MobileNetV2: `x / 127.5 - 1`).
`ChannelAffine.from_imagenet(mode)` maps the first convention onto one of
those, in the graph, so a model whose data pipeline normalises the
torchvision way can run a trunk with keras.applications weights.
"""

import keras
from keras import ops

from tfaction import errors

# torchvision's ImageNet normalisation of RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# keras.applications' "caffe" mode: mean of BGR pixels in [0, 255].
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
MODES = ("caffe", "tf", "torch")


def _floats(value, what):
    """A float or a list of floats (per channel)."""
    try:
        if isinstance(value, (list, tuple)):
            return [float(v) for v in value]
        return float(value)
    except (TypeError, ValueError):
        raise errors.ConfigError(f"ChannelAffine {what} must be a number or "
                                 f"a list of numbers, got {value!r}") from None


@keras.saving.register_keras_serializable(package="tfaction")
class ChannelAffine(keras.layers.Layer):
    """`x * scale + offset` per channel, optionally after reversing channels.

    A fixed (weightless) input conversion: `y = x[..., ::-1] * scale +
    offset` with `reverse_channels`, else `y = x * scale + offset`.
    `scale` and `offset` are scalars or one value per channel, in the
    output's channel order. Use `from_imagenet(mode)` for the conversions
    between torchvision's and keras.applications' input normalisations.

    Args:
        scale: float or per-channel list.
        offset: float or per-channel list.
        reverse_channels: reverse the last axis first (RGB <-> BGR).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `[..., C]` float tensor (C the length of `scale` / `offset`
            when those are lists).

    Returns:
        Same shape, in the compute dtype.

    Raises:
        ConfigError: `scale` / `offset` not numbers, or lists of different
            lengths.

    Example:

    >>> layer = ChannelAffine.from_imagenet("tf")
    >>> x = (np.full((1, 1, 1, 3), 0.5, "float32") - IMAGENET_MEAN) / \
IMAGENET_STD
    >>> np.round(keras.ops.convert_to_numpy(layer(x)), 5)  # 127.5 -> 0
    array([[[[0., 0., 0.]]]], dtype=float32)

    Reference:
        `keras.applications.imagenet_utils.preprocess_input` ("caffe",
        "tf" and "torch" modes); torchvision's ImageNet normalisation.
    """

    def __init__(self, scale=1.0, offset=0.0, reverse_channels=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.scale = _floats(scale, "scale")
        self.offset = _floats(offset, "offset")
        lengths = {len(v) for v in (self.scale, self.offset)
                   if isinstance(v, list)}
        if len(lengths) > 1:
            raise errors.ConfigError(
                f"ChannelAffine scale {self.scale} and offset {self.offset} "
                f"have different lengths")
        self.reverse_channels = bool(reverse_channels)

    @classmethod
    def from_imagenet(cls, mode, **kwargs):
        """ImageNet mean / std-normalised RGB -> keras.applications' `mode`.

        For `x = (rgb - IMAGENET_MEAN) / IMAGENET_STD` with `rgb` in [0, 1],
        the layer returns `preprocess_input(255 * rgb, mode=mode)`:

        * "caffe": BGR, `255 * rgb` minus `CAFFE_MEAN_BGR` (ResNet50, VGG);
        * "tf": `255 * rgb / 127.5 - 1`, in [-1, 1] (MobileNetV2);
        * "torch": `x` itself (the identity).

        Args:
            mode: "caffe", "tf" or "torch".
            **kwargs: layer arguments (`name`, `dtype`).

        Returns:
            A `ChannelAffine`.

        Raises:
            ConfigError: unknown mode.
        """
        if mode not in MODES:
            raise errors.ConfigError(f"unknown keras.applications "
                                     f"preprocessing mode {mode!r}; expected "
                                     f"one of {MODES}")
        # rgb = x * std + mean, channel c.
        if mode == "torch":
            return cls(1.0, 0.0, **kwargs)
        if mode == "tf":
            return cls([2.0 * s for s in IMAGENET_STD],
                       [2.0 * m - 1.0 for m in IMAGENET_MEAN], **kwargs)
        # caffe: output channel c is input channel 2 - c.
        std, mean = IMAGENET_STD[::-1], IMAGENET_MEAN[::-1]
        return cls([255.0 * s for s in std],
                   [255.0 * m - c for m, c in zip(mean, CAFFE_MEAN_BGR)],
                   reverse_channels=True, **kwargs)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.reverse_channels:
            x = ops.flip(x, axis=-1)
        scale = ops.convert_to_tensor(self.scale, self.compute_dtype)
        offset = ops.convert_to_tensor(self.offset, self.compute_dtype)
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale, offset=self.offset,
                      reverse_channels=self.reverse_channels)
        return config
