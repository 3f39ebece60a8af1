"""`RoIPool`: crop-and-resize RoI pooling (TF Object Detection API style)."""

import keras
from keras import ops

from tfaction.ops.crop_and_resize import crop_and_resize


def _positive_int(value, name, layer):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got "
                         f"{value!r}")
    return value


def _split(inputs, what):
    """`(features, boxes)` from a two-element list or tuple."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(f"RoI pooling layers take {what} = (features, "
                         f"boxes), got {inputs!r}")
    return inputs[0], inputs[1]


def _check_boxes_shape(boxes_shape, layer):
    if len(boxes_shape) != 3 or boxes_shape[-1] != 4:
        raise ValueError(f"{layer} expects boxes [B, R, 4], got shape "
                         f"{boxes_shape}")


def pooled_size(crop_size, pool_size):
    """Side of the pooled RoI features: `crop_size // pool_size`.

    Args:
        crop_size: side of the bilinear crops.
        pool_size: max-pool window and stride (1 = no pooling).

    Returns:
        int: the output side of a `"valid"` max-pool, `floor(crop_size /
        pool_size)` (e.g. 14, 2 -> 7).

    Example:

    >>> pooled_size(14, 2)
    7
    """
    return (crop_size - pool_size) // pool_size + 1


def roi_pool(features, boxes, crop_size=14, pool_size=2):
    """Crop-and-resize RoI pooling, the computation of `RoIPool`.

    Bilinear crops of `crop_size x crop_size` (`crop_and_resize`, the
    sampling of `tf.image.crop_and_resize`, boxes without gradient), then a
    `pool_size x pool_size` max-pool with stride `pool_size` and `"valid"`
    padding (skipped when `pool_size == 1`). Interpolation and pooling run
    in float32; the result is cast to the dtype of `features`.

    Args:
        features: `[B, H, W, C]` feature maps (float).
        boxes: `[B, R, 4]` normalised `[y1, x1, y2, x2]` boxes (float32).
        crop_size: int, side of the bilinear crops.
        pool_size: int, max-pool window and stride.

    Returns:
        `[B, R, S, S, C]` in the dtype of `features`, `S =
        pooled_size(crop_size, pool_size)`.

    Example:

    >>> import numpy as np
    >>> features = np.random.rand(2, 25, 25, 8).astype("float32")
    >>> boxes = np.array([[[0.1, 0.2, 0.6, 0.9]] * 3] * 2, "float32")
    >>> tuple(roi_pool(features, boxes).shape)
    (2, 3, 7, 7, 8)

    Reference:
        Huang et al., "Speed/accuracy trade-offs for modern convolutional
        object detectors", CVPR 2017 (TF Object Detection API Faster R-CNN:
        crop to 14x14, max-pool 2x2 / 2).
    """
    crops = crop_and_resize(features, boxes, crop_size)
    if pool_size > 1:
        shape = ops.shape(crops)
        batch, rois, channels = shape[0], shape[1], shape[4]
        crops = ops.max_pool(
            ops.reshape(crops, (-1, crop_size, crop_size, channels)),
            pool_size, strides=pool_size, padding="valid",
            data_format="channels_last")
        side = pooled_size(crop_size, pool_size)
        crops = ops.reshape(crops, (batch, rois, side, side, channels))
    return ops.cast(crops, features.dtype)


@keras.saving.register_keras_serializable(package="tfaction")
class RoIPool(keras.layers.Layer):
    """Crop-and-resize RoI pooling of the boxes of each image.

    The second-stage feature extractor input of the TF Object Detection
    API's Faster R-CNN, used by the Video Action Transformer's head: each
    normalised box `[y1, x1, y2, x2]` is cropped from its image's feature
    map and bilinearly resized to `crop_size x crop_size` (the sampling of
    `tf.image.crop_and_resize`: the box edges are sampled, samples outside
    the map are 0; boxes may cross the border), then max-pooled with a
    `pool_size` window and stride (`"valid"`): 14x14 -> 7x7 by default.

    The computation uses `keras.ops` gathers (`crop_and_resize`) and
    compiles with XLA, unlike `tf.image.crop_and_resize`. The boxes receive
    no gradient (proposals are constants for the head, as in the TF Object
    Detection API) and stay float32 under mixed precision (the layer does
    not autocast them: rounding a box to float16 or bfloat16 would move it
    by up to a fraction of a cell); the features are cast to the compute
    dtype, interpolated and pooled in float32, and returned in the compute
    dtype. The layer has no weights.

    Args:
        crop_size: int, side of the bilinear crops (TF OD API
            `initial_crop_size`, 14).
        pool_size: int, max-pool window and stride (TF OD API
            `maxpool_kernel_size` = `maxpool_stride`, 2); 1 = no pooling.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a pair `(features, boxes)` (list or tuple):
            `features` `[B, H, W, C]` feature maps; `boxes` `[B, R, 4]`
            normalised `[y1, x1, y2, x2]` boxes, `R` per image (float32).

    Returns:
        `[B, R, S, S, C]` pooled RoI features, `S = crop_size // pool_size`
        (7 by default).

    Example:

    >>> import numpy as np
    >>> pool = RoIPool(crop_size=14, pool_size=2)
    >>> features = np.random.rand(2, 25, 25, 16).astype("float32")
    >>> boxes = np.array([[[0.1, 0.2, 0.6, 0.9]] * 3] * 2, "float32")
    >>> tuple(pool([features, boxes]).shape)
    (2, 3, 7, 7, 16)

    Reference:
        Girdhar et al., "Video Action Transformer Network", CVPR 2019
        (§3.4: RoIPool of the proposals on the trunk features); Huang et
        al., "Speed/accuracy trade-offs for modern convolutional object
        detectors", CVPR 2017 (the TF Object Detection API's
        crop-and-resize RoI pooling).
    """

    def __init__(self, crop_size=14, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.crop_size = _positive_int(crop_size, "crop_size", name)
        self.pool_size = _positive_int(pool_size, "pool_size", name)
        if self.pool_size > self.crop_size:
            raise ValueError(f"{name}: pool_size ({pool_size}) must not "
                             f"exceed crop_size ({crop_size})")
        # Boxes must stay float32: no automatic cast of the inputs to the
        # compute dtype (the features are cast in `call`).
        self.autocast = False

    def build(self, input_shape):
        features_shape, boxes_shape = _split(input_shape, "input_shape")
        if len(features_shape) != 4:
            raise ValueError(f"RoIPool expects features [B, H, W, C], got "
                             f"shape {features_shape}")
        _check_boxes_shape(boxes_shape, "RoIPool")

    def call(self, inputs):
        features, boxes = _split(inputs, "inputs")
        features = ops.cast(features, self.compute_dtype)
        return roi_pool(features, ops.cast(boxes, "float32"), self.crop_size,
                        self.pool_size)

    def compute_output_shape(self, input_shape):
        features_shape, boxes_shape = _split(input_shape, "input_shape")
        side = pooled_size(self.crop_size, self.pool_size)
        return (features_shape[0], boxes_shape[1], side, side,
                features_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"crop_size": self.crop_size,
                       "pool_size": self.pool_size})
        return config
