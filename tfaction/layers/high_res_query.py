"""`HighResQuery`: the Action Transformer's HighRes query preprocessor."""

import keras
from keras import ops

from tfaction.layers.positionwise_dense import PositionwiseDense


def _serialize_activation(fn):
    name = keras.activations.serialize(fn)
    return None if name == "linear" else name


@keras.saving.register_keras_serializable(package="tfaction")
class HighResQuery(keras.layers.Layer):
    """Turns a RoI feature into a query vector, keeping its spatial layout.

    The "HighRes" query preprocessor: a 1x1 convolution (a `Dense` on the
    channels, `reduction_channels` wide) reduces the channels of the
    `S1 x S2` RoI feature (7 x 7 in the paper), the cells of the reduced map
    are concatenated into one vector (row-major: `(row, column, channel)`,
    channel fastest) and a linear layer maps it to `units` (the query width
    `D`). Unlike `LowResQuery`, which averages the cells, the query keeps
    where in the box each feature is.

    The paper names no nonlinearity between the two projections; by
    default there is none (`reduction_activation=None`, both layers
    linear), and `reduction_activation` switches one on (e.g. "relu").
    The output layer is always linear. The cell grid `S1 x S2` and the
    channels must be known when the layer is built.

    Args:
        units: output width `D` (the paper: 128).
        reduction_channels: width of the 1x1 convolution (not given in the
            paper; 128 by default).
        reduction_activation: activation after the 1x1 convolution; `None`
            (default) keeps it linear.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[..., S1, S2, C]`, typically RoI features
            `[B, R, 7, 7, C]` (`R` proposals per clip).

    Returns:
        `[..., units]`, e.g. `[B, R, units]`.

    Example:

    >>> import numpy as np
    >>> qpr = HighResQuery(units=128, reduction_channels=128)
    >>> rois = np.random.rand(2, 3, 7, 7, 64).astype("float32")
    >>> tuple(qpr(rois).shape)
    (2, 3, 128)

    Reference:
        Girdhar, Carreira, Doersch, Zisserman. "Video Action Transformer
        Network", CVPR 2019 (arXiv:1812.02707), Section 3.2 (query
        preprocessor, HighRes).
    """

    def __init__(self, units=128, reduction_channels=128,
                 reduction_activation=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1 or int(reduction_channels) < 1:
            raise ValueError("HighResQuery: units and reduction_channels "
                             f"must be >= 1, got {units}, "
                             f"{reduction_channels}")
        self.units = int(units)
        self.reduction_channels = int(reduction_channels)
        self.reduction_activation = keras.activations.get(
            reduction_activation)

    def build(self, input_shape):
        if len(input_shape) < 4 or any(
                d is None for d in input_shape[-3:]):
            raise ValueError(
                "HighResQuery expects [..., S1, S2, C] RoI features with "
                f"known S1, S2 and C, got shape {input_shape}")
        cells = int(input_shape[-3]) * int(input_shape[-2])
        self.flat_dim = cells * self.reduction_channels
        self.reduction = PositionwiseDense(
            self.reduction_channels, activation=self.reduction_activation,
            dtype=self.dtype_policy, name="reduction")
        self.reduction.build(tuple(input_shape))
        self.projection = PositionwiseDense(
            self.units, dtype=self.dtype_policy, name="projection")
        self.projection.build(tuple(input_shape[:-3]) + (self.flat_dim,))

    def call(self, inputs):
        reduced = self.reduction(inputs)  # [..., S1, S2, reduction]
        leading = tuple(ops.shape(reduced)[:-3])
        flat = ops.reshape(reduced, leading + (self.flat_dim,))
        return self.projection(flat)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-3]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "reduction_channels": self.reduction_channels,
            "reduction_activation": _serialize_activation(
                self.reduction_activation)})
        return config
