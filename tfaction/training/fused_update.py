"""`FusedUpdate`: the part every fused Keras optimiser shares.

Keras' TensorFlow optimiser reads `learning_rate` (the schedule's whole
graph) once per decayed variable and lets AutoGraph convert the update
functions once per variable. Neither has control flow, so this mixin reads
the schedule once for the decoupled weight decay and runs the update
functions unconverted: a first step traces in far less time. The ops each
variable gets, and their order, are Keras'. A subclass puts its fused
kernel in `update_step` and names `resource_handle` for its variables.
"""

import keras


class FusedUpdate:
    """Mixin for a `keras.optimizers.Optimizer` subclass (listed first).

    Example:

    ```python
    class FusedSGD(FusedUpdate, keras.optimizers.SGD):
        def update_step(self, gradient, variable, learning_rate):
            ...  # one TensorFlow kernel per variable
    ```
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


def resource_handle(variable):
    """The resource handle of a Keras or TF variable (in an update call,
    a distributed variable's handle is this device's copy).

    Args:
        variable: a `keras.Variable` or `tf.Variable`.

    Returns:
        Its TensorFlow resource handle, for `tf.raw_ops.ResourceApply*`.

    Example:

    >>> import numpy as np
    >>> v = keras.Variable(np.ones(2, "float32"))
    >>> resource_handle(v).dtype.name
    'resource'
    """
    if isinstance(variable, keras.Variable):
        variable = variable.value  # the backend's tf.Variable
    return variable.handle
