"""Exponential moving average (EMA) of a model's weights.

Shadow copies of the model's floating-point weights (trainable and
non-trainable, so batch-norm statistics are averaged too) follow

    shadow <- decay * shadow + (1 - decay) * weight

after every optimizer step. Evaluation and export can swap the shadow values
into the model (`swapped_weights`). The shadows are ordinary `tf.Variable`s
created in the strategy's scope (mirrored like the weights) and tracked by
this `tf.Module`, so `tf.train.Checkpoint(ema=ema)` saves and restores them.
"""

import contextlib

import tensorflow as tf

from tfaction import errors


def _value(weight):
    """The `tf.Variable` behind a Keras variable (or the variable itself)."""
    return getattr(weight, "value", weight)


class ModelEMA(tf.Module):
    """Moving average of a model's floating-point weights.

    Args:
        model: a built Keras model; create the EMA in the same
            `strategy.scope()` as the model.
        decay: EMA decay in [0, 1).

    Example:

    ```python
    with strategy.scope():
        ema = ModelEMA(model, decay=0.999)
    ...  # after each optimizer step (replica or cross-replica context):
    ema.update()
    with ema.swapped_weights():
        evaluate(model)
    ```
    """

    def __init__(self, model, decay):
        super().__init__(name="ema")
        if not 0.0 <= decay < 1.0:
            raise errors.ConfigError(
                f"ema.decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self._weights = [w for w in model.weights
                         if tf.as_dtype(w.dtype).is_floating]
        self.shadows = [
            tf.Variable(
                _value(w).read_value(), trainable=False,
                name=w.path.replace("/", "_") + "_ema",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            for w in self._weights]

    def update(self):
        """Moves every shadow towards its weight by `1 - decay`.

        Works in replica context (inside `strategy.run`, via `merge_call`,
        the way Keras optimizers update mirrored variables) and in
        cross-replica context.
        """
        decay = self.decay

        def apply(strategy):
            for shadow, weight in zip(self.shadows, self._weights):
                strategy.extended.update(
                    shadow, _move_towards, args=(_value(weight), decay),
                    group=False)

        context = tf.distribute.get_replica_context()
        if context is None:
            apply(tf.distribute.get_strategy())
        else:
            context.merge_call(apply)

    def reset(self):
        """Sets every shadow to its weight's current value.

        For weights assigned from outside training (an imported
        checkpoint), so that evaluating with the EMA uses them too.

        Example:

        ```python
        model.set_weights(pretrained)
        ema.reset()
        ```
        """
        for shadow, weight in zip(self.shadows, self._weights):
            shadow.assign(tf.cast(_value(weight).read_value(), shadow.dtype))

    def _swap(self):
        for shadow, weight in zip(self.shadows, self._weights):
            current = tf.identity(_value(weight).read_value())
            _value(weight).assign(shadow.read_value())
            shadow.assign(current)

    @contextlib.contextmanager
    def swapped_weights(self):
        """Context in which the model holds the EMA weights (eager only)."""
        self._swap()
        try:
            yield
        finally:
            self._swap()


# Not converted by AutoGraph (no control flow): `extended.update` would
# convert it once per variable while tracing.
@tf.autograph.experimental.do_not_convert
def _move_towards(shadow, weight, decay):
    weight = tf.cast(weight, shadow.dtype)
    return shadow.assign_sub((1.0 - decay) * (shadow - weight))
