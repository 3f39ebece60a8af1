"""`SpatioTemporalRoIPool`: RoI pooling of a box tube over all frames."""

import keras
from keras import ops

from tfaction.layers.roi_pool import RoIPool
from tfaction.layers.roi_pool import _check_boxes_shape
from tfaction.layers.roi_pool import _split
from tfaction.layers.roi_pool import pooled_size
from tfaction.layers.roi_pool import roi_pool


@keras.saving.register_keras_serializable(package="tfaction")
class SpatioTemporalRoIPool(RoIPool):
    """RoI pooling of a 2-D box replicated over every frame (a tube).

    The Video Action Transformer's ST-RoIPool (I3D head): each normalised
    box `[y1, x1, y2, x2]` is extended to a tube through all `T` frames of
    the `[B, T, H, W, C]` trunk features, and every frame is pooled exactly
    as `RoIPool` does (bilinear crop to `crop_size x crop_size` with the
    sampling of `tf.image.crop_and_resize`, then `pool_size` max-pool with
    stride `pool_size`). The frames share the sample positions, so they are
    pooled in one pass with the frames folded into the channels; the output
    equals `RoIPool` applied frame by frame.

    Same computation and conventions as `RoIPool` (`keras.ops` gathers,
    compiles with XLA, no gradient to the boxes, boxes kept float32 under
    mixed precision, no weights).

    Args:
        crop_size: int, side of the bilinear crops (14).
        pool_size: int, max-pool window and stride (2); 1 = no pooling.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a pair `(features, boxes)` (list or tuple):
            `features` `[B, T, H, W, C]` feature maps; `boxes` `[B, R, 4]`
            normalised `[y1, x1, y2, x2]` boxes, `R` per clip, the same box
            in every frame (float32).

    Returns:
        `[B, R, T, S, S, C]` pooled tube features, `S = crop_size //
        pool_size` (7 by default).

    Example:

    >>> import numpy as np
    >>> pool = SpatioTemporalRoIPool(crop_size=14, pool_size=2)
    >>> features = np.random.rand(2, 4, 25, 25, 8).astype("float32")
    >>> boxes = np.array([[[0.1, 0.2, 0.6, 0.9]] * 3] * 2, "float32")
    >>> tuple(pool([features, boxes]).shape)
    (2, 3, 4, 7, 7, 8)

    Reference:
        Girdhar et al., "Video Action Transformer Network", CVPR 2019
        (§3.4: the I3D head's ST-RoIPool, the box replicated in time).
    """

    def build(self, input_shape):
        features_shape, boxes_shape = _split(input_shape, "input_shape")
        if len(features_shape) != 5:
            raise ValueError(f"SpatioTemporalRoIPool expects features "
                             f"[B, T, H, W, C], got shape {features_shape}")
        _check_boxes_shape(boxes_shape, "SpatioTemporalRoIPool")

    def call(self, inputs):
        features, boxes = _split(inputs, "inputs")
        features = ops.cast(features, self.compute_dtype)
        batch, frames, height, width, channels = ops.shape(features)
        # [B, T, H, W, C] -> [B, H, W, T * C]: one crop per box serves all
        # frames (channel k * C + c is frame k, channel c).
        folded = ops.reshape(ops.transpose(features, (0, 2, 3, 1, 4)),
                             (batch, height, width, frames * channels))
        pooled = roi_pool(folded, ops.cast(boxes, "float32"),
                          self.crop_size, self.pool_size)
        side = pooled_size(self.crop_size, self.pool_size)
        pooled = ops.reshape(pooled, (batch, -1, side, side, frames,
                                      channels))
        return ops.transpose(pooled, (0, 1, 4, 2, 3, 5))

    def compute_output_shape(self, input_shape):
        features_shape, boxes_shape = _split(input_shape, "input_shape")
        side = pooled_size(self.crop_size, self.pool_size)
        return (features_shape[0], boxes_shape[1], features_shape[1], side,
                side, features_shape[-1])
