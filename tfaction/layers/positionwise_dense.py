"""`PositionwiseDense`: a Dense layer over `[..., C]` as one 2-D product."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfaction")
class PositionwiseDense(keras.layers.Dense):
    """`keras.layers.Dense` applied at every position of a sequence.

    Same weights, configuration and outputs as `keras.layers.Dense`; only
    the product is laid out differently. Keras' `Dense` multiplies a
    `[B, T, C]` input by its `(C, units)` kernel with a batched matrix
    product that broadcasts the kernel. On TensorFlow the gradient of that
    product computes one `(C, units)` kernel gradient per batch element (a
    `[B, C, units]` tensor) and then sums them: B small products and a
    reduction where one product over all `B * T` rows is enough. This layer
    flattens the leading axes, multiplies once and restores them, so the
    forward and both gradients are single 2-D matrix products. Rank-2
    inputs and quantised layers take `Dense`'s own path.

    Args:
        units: output channels.
        **kwargs: other `keras.layers.Dense` arguments (`activation`,
            `use_bias`, initialisers, `dtype`, `name`, ...).

    Call arguments:
        inputs: float tensor `[..., C]`.

    Returns:
        Tensor `[..., units]`.

    Example:

    >>> layer = PositionwiseDense(8)
    >>> y = layer(ops.zeros((2, 5, 4)))   # y.shape: (2, 5, 8)
    """

    def call(self, inputs, training=None):
        if len(inputs.shape) <= 2 or self.quantization_mode is not None:
            return super().call(inputs, training=training)
        leading = ops.shape(inputs)[:-1]
        x = ops.matmul(ops.reshape(inputs, (-1, inputs.shape[-1])),
                       self.kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return ops.reshape(x, tuple(leading) + (self.units,))
