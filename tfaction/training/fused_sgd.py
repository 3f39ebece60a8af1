"""Keras' SGD with each variable's momentum update as one fused kernel.

`FusedSGD` is `keras.optimizers.SGD` (same arguments, variables,
checkpoints and formulas) whose `update_step`, on the TensorFlow backend,
is TensorFlow's `ResourceApplyKerasMomentum` kernel: Keras' momentum step
(`m = m * momentum - lr * g`, then `var += m`, or with Nesterov
`var += m * momentum - lr * g`) in one pass over the variable and its
momentum instead of five element-wise ops, each a pass over them. Without
momentum the step is `ResourceApplyGradientDescent` (`var -= lr * g`).
Sparse gradients and other backends use Keras' own `update_step`.
"""

import keras
from keras import ops

from tfaction.training.fused_update import FusedUpdate
from tfaction.training.fused_update import resource_handle


@keras.saving.register_keras_serializable(package="tfaction")
class FusedSGD(FusedUpdate, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with a fused update kernel per variable.

    Args:
        **kwargs: `keras.optimizers.SGD`'s arguments.

    Example:

    >>> import numpy as np
    >>> v = keras.Variable(np.ones(3, "float32"))
    >>> opt = FusedSGD(learning_rate=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.apply([np.ones(3, "float32")], [v])
    >>> [round(float(x), 3) for x in v.numpy()]  # 1 - 0.1 - (0.09 + 0.1)
    [0.71, 0.71, 0.71]
    """

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if (keras.backend.backend() != "tensorflow"
                or isinstance(gradient, tf.IndexedSlices)):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        if self.momentum == 0:
            tf.raw_ops.ResourceApplyGradientDescent(
                var=resource_handle(variable), alpha=lr, delta=gradient)
            return
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=resource_handle(variable),
            accum=resource_handle(
                self.momentums[self._get_variable_index(variable)]),
            lr=lr, grad=gradient,
            momentum=ops.cast(self.momentum, dtype),
            use_nesterov=bool(self.nesterov))
