"""`ChannelLayerNorm`: LayerNorm over the last axis with a hand-written gradient."""

import keras
from keras import ops

from tfaction.ops.gradient_order import after_upstream


def _layer_norm(x, gamma, beta, epsilon):
    """LayerNorm of float32 `x` over its last axis; analytic gradient.

    The forward pass computes what Keras' `LayerNormalization` computes
    (mean, biased variance of `x - mean`, `inv = rsqrt(var + eps) * gamma`,
    `x * inv + (beta - mean * inv)`; bit-identical on the TF backend). The
    gradient is the closed form `dx = r (g - mean(g) - xhat mean(g xhat))`
    with `g = dy * gamma`, `r = rsqrt(var + eps)`: about 12 ops instead of
    the ~40 that automatic differentiation of the forward pass creates,
    which shortens tracing and the backward pass. The normalised input is
    recomputed only once the upstream gradient arrives
    (`tfaction.ops.gradient_order`), so it is not held through the rest of
    the forward pass.
    """

    @ops.custom_gradient
    def norm(x, gamma, beta):
        mean = ops.mean(x, axis=-1, keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        rstd = ops.rsqrt(var + epsilon)
        inv = rstd * gamma
        out = x * inv + (beta - mean * inv)

        def grad(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            xr, mean_r, rstd_r = after_upstream(dy, x, mean, rstd)
            xhat = (xr - mean_r) * rstd_r
            reduce_axes = tuple(range(len(x.shape) - 1))
            dgamma = ops.sum(dy * xhat, axis=reduce_axes)
            dbeta = ops.sum(dy, axis=reduce_axes)
            g = dy * gamma
            dx = rstd_r * (g - ops.mean(g, axis=-1, keepdims=True)
                         - xhat * ops.mean(g * xhat, axis=-1, keepdims=True))
            return dx, dgamma, dbeta

        return out, grad

    return norm(x, gamma, beta)


@keras.saving.register_keras_serializable(package="tfaction")
class ChannelLayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis, leaner graph.

    Same weights (`gamma`, `beta`), configuration and forward values as
    `keras.layers.LayerNormalization(axis=-1)` with centring and scaling
    (statistics in float32, biased variance); the gradient is written in
    closed form (`_layer_norm`), which makes traced training graphs much
    smaller (ActionFormer has ~50 LayerNorms) and the backward pass faster.

    Args:
        epsilon: added to the variance.
        **kwargs: other `keras.layers.LayerNormalization` arguments; `axis`
            must be the last axis, `center` and `scale` True and
            `rms_scaling` False.

    Example:

    >>> norm = ChannelLayerNorm(epsilon=1e-5)
    >>> y = norm(np.random.rand(2, 8, 4).astype("float32"))  # (2, 8, 4)
    """

    def build(self, input_shape):
        rank = len(input_shape)
        axis = (list(self.axis) if isinstance(self.axis, (list, tuple))
                else [self.axis])
        if (axis not in ([-1], [rank - 1]) or not self.center
                or not self.scale or self.rms_scaling):
            raise ValueError(
                "ChannelLayerNorm normalises the last axis with centring and "
                f"scaling only; got axis={self.axis}, center={self.center}, "
                f"scale={self.scale}, rms_scaling={self.rms_scaling}")
        super().build(input_shape)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        out = _layer_norm(x, ops.cast(self.gamma, "float32"),
                          ops.cast(self.beta, "float32"), self.epsilon)
        return ops.cast(out, self.compute_dtype)
