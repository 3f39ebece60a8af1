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
far fewer ops (ActionFormer's Ego4D recipe: 295 variables). AMSGrad, sparse
gradients and other backends use Keras' own `update_step`.
"""

import keras
from keras import ops


class _FusedAdamStep:
    """`update_step` through `ResourceApplyAdam` (TensorFlow backend), and
    a first step that traces in less time.

    Keras' TensorFlow optimiser reads `learning_rate` (the schedule's whole
    graph) once per decayed variable and lets AutoGraph convert the update
    functions once per variable; neither has control flow, so here the
    schedule is read once and the functions run unconverted. The ops each
    variable gets, and their order, are Keras'.
    """

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or keras.backend.backend() != "tensorflow":
            return super()._apply_weight_decay(variables)
        import tensorflow as tf

        def distributed(distribution, variables, **kwargs):
            learning_rate = self.learning_rate

            @tf.autograph.experimental.do_not_convert
            def decay(variable):
                if self._use_weight_decay(variable):
                    lr = tf.cast(learning_rate, variable.dtype)
                    wd = tf.cast(self.weight_decay, variable.dtype)
                    variable.assign_sub(variable * wd * lr)

            for variable in variables:
                if isinstance(variable, keras.Variable):
                    variable = variable.value
                distribution.extended.update(variable, decay, group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(
            distributed, self._distribution_strategy, variables)

    def _distributed_tf_update_step(self, distribution, grads_and_vars,
                                    learning_rate):
        import tensorflow as tf

        @tf.autograph.experimental.do_not_convert
        def apply(variable, gradient, learning_rate):
            return self.update_step(gradient, variable, learning_rate)

        for gradient, variable in grads_and_vars:
            distribution.extended.update(
                variable, apply, args=(gradient, learning_rate), group=False)

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if (keras.backend.backend() != "tensorflow" or self.amsgrad
                or isinstance(gradient, tf.IndexedSlices)):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        local_step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=ops.power(ops.cast(self.beta_1, dtype), local_step),
            beta2_power=ops.power(ops.cast(self.beta_2, dtype), local_step),
            lr=ops.cast(learning_rate, dtype),
            beta1=ops.cast(self.beta_1, dtype),
            beta2=ops.cast(self.beta_2, dtype),
            epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype))


def _handle(variable):
    """The resource handle of a Keras or TF variable (in an update call,
    a distributed variable's handle is this device's copy)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value  # the backend's tf.Variable
    return variable.handle


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
