"""`LocationEmbedding`: the Action Transformer's learned location channels."""

import keras
from keras import ops

from tfaction.layers.positionwise_dense import PositionwiseDense


def _centred_coordinates(size):
    """`(i - (n - 1) / 2) / n` for `i = 0 .. n - 1`, float32 `[n]`.

    `size` may be a Python int or a scalar tensor (dynamic shapes).
    """
    n = ops.cast(size, "float32")
    index = ops.cast(ops.arange(size), "float32")
    return (index - (n - 1.0) / 2.0) / n


def _units_tuple(name, units):
    units = tuple(int(u) for u in units)
    if len(units) != 2 or min(units) < 1:
        raise ValueError(f"LocationEmbedding: {name} must be two positive "
                         f"widths (hidden, output), got {units}")
    return units


@keras.saving.register_keras_serializable(package="tfaction")
class LocationEmbedding(keras.layers.Layer):
    """Appends learned spatial and temporal location channels to a video map.

    For every cell `(t, h, w)` of a trunk feature map `[B, T, H, W, C]`
    the layer builds normalised coordinates relative to the centre of the
    map, `h' = (h - (H - 1) / 2) / H`, `w' = (w - (W - 1) / 2) / W` and
    `t' = (t - (T - 1) / 2) / T` (so each lies in `(-1/2, 1/2)` and the map
    centre is 0). `[h', w']` goes through a two-layer MLP
    (`Dense(spatial_units[0], activation) -> Dense(spatial_units[1])`,
    linear output) and `[t']` through another
    (`Dense(temporal_units[0], activation) -> Dense(temporal_units[1])`);
    the two embeddings are concatenated after the features along the
    channels: `[features, spatial, temporal]`.

    The MLPs run on the `H x W` grid and the `T` steps once and are then
    broadcast, so the cost does not grow with `B * T * H * W`. `T`, `H`
    and `W` may be dynamic (unknown until the call). Under mixed precision
    the coordinates are computed in float32 and the embeddings in the
    compute dtype.

    The paper specifies the coordinate vectors and the two 2-layer MLPs
    but neither the normalisation nor the widths; the defaults (centred
    coordinates divided by the size, widths 4 -> 8 with ReLU for each, i.e.
    16 extra channels) are this package's choice.

    Args:
        spatial_units: `(hidden, output)` widths of the MLP on `[h', w']`.
        temporal_units: `(hidden, output)` widths of the MLP on `[t']`.
        activation: activation of the hidden layer of both MLPs.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[B, T, H, W, C]`.

    Returns:
        `[B, T, H, W, C + spatial_units[1] + temporal_units[1]]`: the
        features followed by the spatial and the temporal embedding.

    Example:

    >>> import numpy as np
    >>> layer = LocationEmbedding(spatial_units=(4, 8), temporal_units=(4, 8))
    >>> trunk = np.zeros((2, 4, 5, 5, 32), "float32")
    >>> tuple(layer(trunk).shape)
    (2, 4, 5, 5, 48)

    Reference:
        Girdhar, Carreira, Doersch, Zisserman. "Video Action Transformer
        Network", CVPR 2019 (arXiv:1812.02707), Section 3.4.
    """

    def __init__(self, spatial_units=(4, 8), temporal_units=(4, 8),
                 activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.spatial_units = _units_tuple("spatial_units", spatial_units)
        self.temporal_units = _units_tuple("temporal_units", temporal_units)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        if len(input_shape) != 5:
            raise ValueError("LocationEmbedding expects a [B, T, H, W, C] "
                             f"feature map, got shape {input_shape}")

        def mlp(name, units, coords):
            hidden = PositionwiseDense(
                units[0], activation=self.activation,
                dtype=self.dtype_policy, name=f"{name}_hidden")
            hidden.build((None, coords))
            output = PositionwiseDense(
                units[1], dtype=self.dtype_policy, name=f"{name}_output")
            output.build((None, units[0]))
            return hidden, output

        self.spatial_hidden, self.spatial_output = mlp(
            "spatial", self.spatial_units, 2)
        self.temporal_hidden, self.temporal_output = mlp(
            "temporal", self.temporal_units, 1)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        shape = ops.shape(x)
        batch, steps, height, width = shape[0], shape[1], shape[2], shape[3]
        h = _centred_coordinates(height)
        w = _centred_coordinates(width)
        t = _centred_coordinates(steps)
        grid = ops.stack(
            [ops.broadcast_to(h[:, None], (height, width)),
             ops.broadcast_to(w[None, :], (height, width))], axis=-1)
        spatial = self.spatial_output(self.spatial_hidden(grid))  # [H, W, s]
        temporal = self.temporal_output(
            self.temporal_hidden(t[:, None]))                     # [T, t]
        spatial = ops.broadcast_to(
            ops.cast(spatial, x.dtype)[None, None],
            (batch, steps, height, width, self.spatial_units[1]))
        temporal = ops.broadcast_to(
            ops.cast(temporal, x.dtype)[None, :, None, None],
            (batch, steps, height, width, self.temporal_units[1]))
        return ops.concatenate([x, spatial, temporal], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        if channels is not None:
            channels += self.spatial_units[1] + self.temporal_units[1]
        return tuple(input_shape[:-1]) + (channels,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "spatial_units": list(self.spatial_units),
            "temporal_units": list(self.temporal_units),
            "activation": keras.activations.serialize(self.activation)})
        return config
