"""`FusedBatchNormalization`: Keras batch norm, one fused kernel in training."""

import keras
from keras import ops

from tfaction.ops import fused_batch_norm


def _one_replica():
    """True in a replica context of one replica (synchronising is a no-op)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return context is not None and context.num_replicas_in_sync == 1


@keras.saving.register_keras_serializable(package="tfaction")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` as one fused op, in training and
    inference.

    The same layer, weights, arguments and results as Keras' batch norm
    (the moving statistics are updated with the biased batch variance, as
    Keras does), but on the TensorFlow backend, for a rank-4 or rank-5
    channels-last input, the normalisation is TensorFlow's fused
    batch-norm kernel (`FusedBatchNormV3`) and its gradient one fused
    kernel too:

    * in training mode, the batch statistics and the normalisation, instead
      of a chain of element-wise ops and reductions (moments, subtract,
      square, scale, shift) and their gradients. A training step of a
      ResNet-50 or a MobileNet-V2 on a CPU spends about a fifth of its time
      in those;
    * in inference mode and for a frozen (`trainable=False`) layer, the
      normalisation by the moving statistics: one pass over the activation
      instead of a multiply and an add, and a kernel that TensorFlow's graph
      optimiser folds into the convolution before it (with its ReLU).

    Results equal Keras' to float32 rounding (the kernel sums in another
    order). Everything else goes through Keras' own `call`: a mask,
    `synchronized=True` in training under a strategy of more than one
    replica (statistics all-reduced over them; with one replica there is
    nothing to all-reduce and the fused path runs), a feature axis other
    than the last, other ranks and other backends.

    Args:
        **kwargs: `keras.layers.BatchNormalization`'s arguments (`axis`,
            `momentum`, `epsilon`, `center`, `scale`, initializers,
            regularizers, constraints, `synchronized`).

    Call arguments:
        inputs: a tensor; the fused paths need rank 4 (`[B, H, W, C]`) or 5
            (`[B, T, H, W, C]`) with a known channel count.
        training: batch statistics (and moving-statistics update) when
            True and the layer is trainable.
        mask: as in Keras (then Keras' own path).

    Returns:
        A tensor of the input's shape, in the compute dtype.

    Example:

    >>> import numpy as np
    >>> layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, (4, 5, 5, 8))
    >>> y = layer(x.astype("float32"), training=True)
    >>> bool(abs(float(ops.mean(y))) < 1e-4)
    True
    """

    def call(self, inputs, training=None, mask=None):
        batch_statistics = bool(training and self.trainable)
        if (mask is not None
                or not fused_batch_norm.fusable(inputs, self.axis)
                or (batch_statistics and self.synchronized
                    and not _one_replica())):
            return super().call(inputs, training=training, mask=mask)
        gamma = self.gamma if self.scale else None
        beta = self.beta if self.center else None
        if not batch_statistics:
            y, _, _ = fused_batch_norm.normalize(
                inputs, gamma, beta, self.epsilon,
                mean=self.moving_mean, variance=self.moving_variance)
            return ops.cast(y, self.compute_dtype)
        import tensorflow as tf

        y, mean, variance = fused_batch_norm.normalize(
            inputs, gamma, beta, self.epsilon)
        # The kernel returns the unbiased (n - 1) variance; Keras averages
        # the biased one into the moving statistic.
        count = tf.cast(tf.size(inputs) // inputs.shape[-1], tf.float32)
        variance = variance * ((count - 1.0) / tf.maximum(count, 1.0))
        momentum = self.momentum
        self.moving_mean.assign(
            ops.cast(self.moving_mean, "float32") * momentum
            + mean * (1.0 - momentum))
        self.moving_variance.assign(
            ops.cast(self.moving_variance, "float32") * momentum
            + variance * (1.0 - momentum))
        return ops.cast(y, self.compute_dtype)
