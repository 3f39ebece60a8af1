"""`L2Normalization`: unit-length vectors along the last axis, in float32."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfaction")
class L2Normalization(keras.layers.Layer):
    """Divides each vector by its L2 norm: `x / max(||x||_2, epsilon)`.

    PyTorch's `F.normalize(x, dim=-1)` convention (a vector shorter than
    `epsilon` is divided by `epsilon`, so zero stays zero). The sum of
    squares is computed in float32 whatever the compute dtype, so float16
    inputs cannot overflow it; the result is cast to the compute dtype.
    Create the layer with `dtype="float32"` to keep unit vectors in float32
    under a mixed policy (as CARL's embeddings for its loss).

    Args:
        epsilon: lower bound of the norm (1e-12 as PyTorch).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[..., C]`.

    Returns:
        Same shape, unit L2 norm along the last axis, compute dtype.

    Example:

    >>> np.asarray(L2Normalization()(np.array([[3.0, 4.0]], "float32")))
    array([[0.6, 0.8]], dtype=float32)
    """

    def __init__(self, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        if self.epsilon <= 0:
            raise ValueError(f"L2Normalization: epsilon must be > 0, got "
                             f"{epsilon}")
        self.supports_masking = True

    def call(self, inputs):
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        x = ops.cast(inputs, "float64" if dtype == "float64" else "float32")
        # 1 / max(||x||, eps) = rsqrt(max(||x||^2, eps^2)), whose gradient
        # stays finite for a zero vector.
        square_sum = ops.sum(ops.square(x), axis=-1, keepdims=True)
        x = x * ops.rsqrt(ops.maximum(square_sum, self.epsilon ** 2))
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config
