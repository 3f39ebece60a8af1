"""`GlobalBatchOptimizer`: one replica's part of a global-batch update.

Inside `strategy.run` every replica sees only its slice of the global batch.
To get the gradients of the global-batch mean on 1 or N replicas alike:

1. `compute_loss`: sum the replica's per-example losses and divide by the
   GLOBAL batch size (not the replica's), so the replica losses add up to the
   global mean and Keras' cross-replica gradient SUM is the right gradient;
   model regularisation losses are divided by the number of replicas.
2. `minimize`: seed the backward pass with the optimizer's loss scale
   (`LossScaleOptimizer` under `mixed_float16`), clip by the global norm of
   the SUMMED gradient and/or each variable's summed gradient to its own
   norm (TF-slim's `clip_gradient_norms`, ActionVLAD) — Keras 3 would clip
   each replica's partial gradient, which differs between 1 and N
   replicas —, make every replica agree on skipping a non-finite step, and
   apply.
"""

import keras
import tensorflow as tf

from tfaction import errors


class GlobalBatchOptimizer:
    """Wraps a Keras optimizer for use inside `strategy.run`.

    Args:
        optimizer: a built `keras.optimizers.Optimizer` (possibly a
            `LossScaleOptimizer`) created in the strategy's scope.
        global_batch_size: examples per step over all replicas.
        clip_norm: clip the summed gradient to this global norm (0 = off).
        clip_norm_per_variable: clip each variable's summed gradient to
            this norm (0 = off); applied before `clip_norm`.
        num_replicas: replicas in sync (default: the current strategy's).

    Example:

    ```python
    def replica_step(features, labels):
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            per_example = loss_fn(labels, outputs)
            loss = gbo.compute_loss(per_example, model.losses)
        gbo.minimize(loss, model.trainable_variables, tape)
        return loss

    gbo = GlobalBatchOptimizer(optimizer, global_batch_size=64, clip_norm=1.0)
    strategy.run(replica_step, args=(features, labels))
    ```
    """

    def __init__(self, optimizer, global_batch_size, clip_norm=0.0,
                 num_replicas=None, clip_norm_per_variable=0.0):
        if global_batch_size <= 0:
            raise errors.ConfigError(
                f"global_batch_size must be > 0, got {global_batch_size}")
        self.optimizer = optimizer
        self.global_batch_size = int(global_batch_size)
        self.clip_norm = float(clip_norm or 0.0)
        self.clip_norm_per_variable = float(clip_norm_per_variable or 0.0)
        if self.clip_norm < 0 or self.clip_norm_per_variable < 0:
            raise errors.ConfigError(
                f"clip norms must be >= 0, got clip_norm={clip_norm}, "
                f"clip_norm_per_variable={clip_norm_per_variable}")
        self.num_replicas = (num_replicas or
                             tf.distribute.get_strategy().num_replicas_in_sync)

    @property
    def learning_rate(self):
        """The optimizer's current learning rate (follows the schedule)."""
        return self.optimizer.learning_rate

    def compute_loss(self, per_example_loss, regularization_losses=(),
                     global_normalizer=None):
        """Returns this replica's share of the global-batch loss.

        Args:
            per_example_loss: losses [b] or [b, ...] of this replica's batch;
                everything is summed.
            regularization_losses: scalar losses (e.g. `model.losses`), each
                counted once per step in total.
            global_normalizer: optional scalar to divide the summed loss by
                instead of the global batch size (e.g. a positive count that
                the task summed over replicas with `all_reduce_sum`).

        Returns:
            Scalar float32 loss; summed over replicas it is the global loss.
        """
        loss = tf.reduce_sum(tf.cast(per_example_loss, tf.float32))
        normalizer = (self.global_batch_size if global_normalizer is None
                      else tf.cast(global_normalizer, tf.float32))
        loss = loss / normalizer
        regularization_losses = list(regularization_losses)
        if regularization_losses:
            loss += tf.add_n([tf.cast(r, tf.float32)
                              for r in regularization_losses]) / float(
                                  self.num_replicas)
        return loss

    def minimize(self, loss, variables, tape, gradient_scales=None):
        """Backpropagates `loss` and applies one update.

        Args:
            loss: the scalar from `compute_loss`, recorded by `tape`.
            variables: the trainable variables to update.
            tape: the `tf.GradientTape` that recorded `loss`.
            gradient_scales: optional floats parallel to `variables`,
                multiplying each variable's (clipped) gradient before the
                update. With SGD they are per-variable learning-rate
                multipliers (PyTorch parameter groups with their own `lr`);
                adaptive optimizers (Adam) normalise them away.

        Returns:
            The global norm of the summed, unscaled gradient (before
            clipping) when clipping is on, else None.
        """
        variables = list(variables)
        # d(scale * loss) = scale * d(loss): seed the backward pass with the
        # loss scale instead of scaling the loss inside the tape.
        scale = tf.cast(self.optimizer.scale_loss(tf.ones_like(loss)),
                        loss.dtype)
        if gradient_scales is None:
            gradient_scales = [1.0] * len(variables)
        gradient_scales = [float(f) for f in gradient_scales]
        if len(gradient_scales) != len(variables):
            raise errors.ConfigError(
                f"{len(gradient_scales)} gradient scales for "
                f"{len(variables)} variables")
        grads = tape.gradient(loss, variables, output_gradients=scale)
        grads, norm = self._agree(grads, scale, gradient_scales)
        self.optimizer.apply(grads, variables)
        return norm

    def _agree(self, grads, scale, gradient_scales):
        """Clips by all-replica norms; NaN-poisons non-finite steps; scales
        by `gradient_scales` (one multiply per gradient with the clip)."""
        context = tf.distribute.get_replica_context()
        present = [g for g in grads if g is not None]
        if not present:
            return grads, None
        norm = None
        if self.clip_norm > 0 or self.clip_norm_per_variable > 0:
            total = context.all_reduce(tf.distribute.ReduceOp.SUM, present)
            norms = [_norm(g) / scale for g in total]
            norm = tf.sqrt(tf.add_n([tf.square(n) for n in norms]))
            # Clipping is a per-variable scale applied to every replica's
            # partial gradient: the scaled sum is the clipped sum.
            factors = [tf.constant(1.0)] * len(present)
            if self.clip_norm_per_variable > 0:
                c = self.clip_norm_per_variable
                factors = [c / tf.maximum(n, c) for n in norms]
            if self.clip_norm > 0:
                clipped = tf.sqrt(tf.add_n([tf.square(n * f) for n, f in
                                            zip(norms, factors)]))
                overall = self.clip_norm / tf.maximum(clipped, self.clip_norm)
                factors = [f * overall for f in factors]
            finite = tf.math.is_finite(norm)
        elif self._loss_scaled():
            bad = tf.add_n([tf.reduce_sum(tf.cast(
                ~tf.math.is_finite(_values(g)), tf.float32))
                for g in present])
            finite = context.all_reduce(tf.distribute.ReduceOp.SUM, bad) == 0
            factors = [tf.constant(1.0)] * len(present)
        else:
            return [g if g is None or f == 1.0 else _scale(g, f)
                    for g, f in zip(grads, gradient_scales)], None
        # LossScaleOptimizer checks only its own replica's gradients: make
        # every replica see the overflow so they all skip the step together.
        nan = tf.constant(float("nan"))
        factors = iter([tf.where(finite, f, nan) for f in factors])
        return [None if g is None else _scale(g, _times(next(factors), f))
                for g, f in zip(grads, gradient_scales)], norm

    def _loss_scaled(self):
        return isinstance(self.optimizer,
                          keras.optimizers.LossScaleOptimizer)


def _values(grad):
    return grad.values if isinstance(grad, tf.IndexedSlices) else grad


def _norm(grad):
    return tf.norm(tf.cast(_values(grad), tf.float32))


def _times(factor, f):
    return factor if f == 1.0 else factor * f


def _scale(grad, factor):
    factor = tf.cast(factor, grad.dtype)
    if isinstance(grad, tf.IndexedSlices):  # sparse gradients (embeddings)
        return tf.IndexedSlices(grad.values * factor, grad.indices,
                                grad.dense_shape)
    return grad * factor
