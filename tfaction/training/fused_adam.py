"""Keras' Adam and AdamW with each variable's update as one fused kernel.

`FusedAdam` / `FusedAdamW` are `keras.optimizers.Adam` / `AdamW` (same
arguments, variables, checkpoints and formulas) whose `update_step`, on
the TensorFlow backend, is TensorFlow's `ResourceApplyAdam` kernel: the
moment updates and the parameter step in one pass over the variable
instead of about ten element-wise ops, each a pass over it. The kernel
computes Keras' expressions in Keras' order (`m += (g - m) * (1 - beta_1)`,
`v += (g^2 - v) * (1 - beta_2)`, `var -= m * alpha / (sqrt(v) + epsilon)`
with `alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`); its vectorised
loop rounds differently in the last bit or so (weights and moments agree
with Keras' to 1e-6 after several steps, tested). A step of a
large model spends less time in the optimiser, and a first step traces
far fewer ops (ActionFormer's Ego4D recipe: 295 variables; the schedule
is read once, `tfaction.training.fused_update`). AMSGrad, sparse gradients
and other backends use Keras' own `update_step`.
"""

import keras
from keras import ops

from tfaction.training.fused_update import FusedUpdate
from tfaction.training.fused_update import resource_handle


class _FusedAdamStep(FusedUpdate):
    """`update_step` through `ResourceApplyAdam` (TensorFlow backend)."""

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if (keras.backend.backend() != "tensorflow" or self.amsgrad
                or isinstance(gradient, tf.IndexedSlices)):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        local_step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=resource_handle(variable),
            m=resource_handle(self._momentums[index]),
            v=resource_handle(self._velocities[index]),
            beta1_power=ops.power(ops.cast(self.beta_1, dtype), local_step),
            beta2_power=ops.power(ops.cast(self.beta_2, dtype), local_step),
            lr=ops.cast(learning_rate, dtype),
            beta1=ops.cast(self.beta_1, dtype),
            beta2=ops.cast(self.beta_2, dtype),
            epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype))


@keras.saving.register_keras_serializable(package="tfaction")
class FusedAdam(_FusedAdamStep, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with a fused update kernel per variable.

    Args:
        **kwargs: `keras.optimizers.Adam`'s arguments.

    Example:

    >>> import numpy as np
    >>> v = keras.Variable(np.ones(3, "float32"))
    >>> FusedAdam(learning_rate=0.1).apply([np.ones(3, "float32")], [v])
    >>> [round(float(x), 3) for x in v.numpy()]
    [0.9, 0.9, 0.9]
    """


@keras.saving.register_keras_serializable(package="tfaction")
class FusedAdamW(_FusedAdamStep, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with a fused update kernel per variable.

    The decoupled weight decay is Keras' own, applied before the step.

    Args:
        **kwargs: `keras.optimizers.AdamW`'s arguments.

    Example:

    >>> import numpy as np
    >>> v = keras.Variable(np.ones(3, "float32"))
    >>> opt = FusedAdamW(learning_rate=0.1, weight_decay=0.5)
    >>> opt.apply([np.ones(3, "float32")], [v])
    >>> [round(float(x), 3) for x in v.numpy()]
    [0.85, 0.85, 0.85]
    """
