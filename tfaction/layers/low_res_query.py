"""`LowResQuery`: the Action Transformer's LowRes query preprocessor."""

import keras
from keras import ops

from tfaction.layers.positionwise_dense import PositionwiseDense


@keras.saving.register_keras_serializable(package="tfaction")
class LowResQuery(keras.layers.Layer):
    """Turns a RoI feature into a query vector by spatial averaging.

    The "LowRes" query preprocessor: the `S1 x S2` cells of the RoI feature
    (7 x 7 in the paper) are averaged and a linear layer maps the mean to
    `units` (the query width `D`). The average is computed in float32
    under mixed precision. It discards the spatial layout of the person
    inside the box, which `HighResQuery` keeps.

    Args:
        units: output width `D` (the paper: 128).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[..., S1, S2, C]`, typically RoI features
            `[B, R, 7, 7, C]` (`R` proposals per clip).

    Returns:
        `[..., units]`, e.g. `[B, R, units]`.

    Example:

    >>> import numpy as np
    >>> qpr = LowResQuery(units=128)
    >>> rois = np.random.rand(2, 3, 7, 7, 64).astype("float32")
    >>> tuple(qpr(rois).shape)
    (2, 3, 128)

    Reference:
        Girdhar, Carreira, Doersch, Zisserman. "Video Action Transformer
        Network", CVPR 2019 (arXiv:1812.02707), Section 3.2 (query
        preprocessor, LowRes).
    """

    def __init__(self, units=128, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"LowResQuery: units must be >= 1, got {units}")
        self.units = int(units)

    def build(self, input_shape):
        if len(input_shape) < 4 or input_shape[-1] is None:
            raise ValueError("LowResQuery expects [..., S1, S2, C] RoI "
                             f"features with known C, got shape "
                             f"{input_shape}")
        self.projection = PositionwiseDense(
            self.units, dtype=self.dtype_policy, name="projection")
        self.projection.build(tuple(input_shape[:-3]) + (input_shape[-1],))

    def call(self, inputs):
        mean = ops.mean(ops.cast(inputs, "float32"), axis=(-3, -2))
        return self.projection(ops.cast(mean, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-3]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config
