"""The exact (erf) GELU with a gradient that keeps only its input."""

import math

from keras import ops

from tfaction.ops.gradient_order import after_upstream


def gelu(x):
    """`x * Phi(x)` (the erf form, PyTorch's `nn.GELU()` default).

    The forward value is Keras' `ops.gelu(x, approximate=False)`. The
    gradient `Phi(x) + x * phi(x)` is written by hand and computed from `x`
    once the upstream gradient arrives: automatic differentiation of the
    composite forward keeps three intermediate tensors of `x`'s size per
    call between the passes (and the executor computes parts of the
    derivative early), which in a transformer MLP's 4x-wide hidden layer is
    a large share of a training step's peak memory.

    Args:
        x: float tensor.

    Returns:
        A tensor of `x`'s shape and dtype.

    Example:

    >>> y = gelu(ops.convert_to_tensor([-1.0, 0.0, 2.0]))
    >>> # y: [-0.1587, 0.0, 1.9545]
    """

    @ops.custom_gradient
    def exact_gelu(x):
        out = ops.gelu(x, approximate=False)

        def grad(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            (xr,) = after_upstream(dy, x)
            cdf = 0.5 * (1.0 + ops.erf(xr * (1.0 / math.sqrt(2.0))))
            pdf = ops.exp(-0.5 * ops.square(xr)) * (
                1.0 / math.sqrt(2.0 * math.pi))
            return dy * (cdf + xr * pdf)

        return out, grad

    return exact_gelu(x)
