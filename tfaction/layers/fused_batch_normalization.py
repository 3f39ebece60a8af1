"""`FusedBatchNormalization`: Keras batch norm, one fused kernel in training."""

import keras
from keras import ops


def _one_replica():
    """True in a replica context of one replica (synchronising is a no-op)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return context is not None and context.num_replicas_in_sync == 1


@keras.saving.register_keras_serializable(package="tfaction")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training step is one fused op.

    The same layer, weights, arguments and results as Keras' batch norm
    (the moving statistics are updated with the biased batch variance, as
    Keras does), but in training mode on the TensorFlow backend, for a
    rank-4 or rank-5 channels-last input, the batch statistics and the
    normalisation are TensorFlow's fused batch-norm kernel
    (`FusedBatchNormV3`) and its gradient one fused kernel too, instead of
    a chain of element-wise ops and reductions (moments, subtract, square,
    scale, shift) and their gradients. A training step of a ResNet-50 or
    a MobileNet-V2 on a CPU spends about a fifth of its time in those.
    Results equal Keras' to float32 rounding (the kernel sums in another
    order).

    Everything else goes through Keras' own `call`: inference, a frozen
    (`trainable=False`) layer, a mask, `synchronized=True` under a
    strategy of more than one replica (statistics all-reduced over them;
    with one replica there is nothing to all-reduce and the fused path
    runs), a feature axis other than the last, other ranks and other
    backends.

    Args:
        **kwargs: `keras.layers.BatchNormalization`'s arguments (`axis`,
            `momentum`, `epsilon`, `center`, `scale`, initializers,
            regularizers, constraints, `synchronized`).

    Call arguments:
        inputs: a tensor; the fused path needs rank 4 (`[B, H, W, C]`) or 5
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

    def _fused(self, inputs, training, mask):
        return (training and self.trainable and mask is None
                and keras.backend.backend() == "tensorflow"
                and len(inputs.shape) in (4, 5)
                and self.axis in (-1, len(inputs.shape) - 1)
                and inputs.shape[-1] is not None
                and (not self.synchronized or _one_replica()))

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        x = tf.convert_to_tensor(inputs)
        if x.dtype not in (tf.float16, tf.bfloat16, tf.float32):
            x = tf.cast(x, tf.float32)
        shape = tf.shape(x)
        if len(inputs.shape) == 5:  # per-channel statistics: fold T into H
            x = tf.reshape(x, [shape[0], shape[1] * shape[2], shape[3],
                               channels])
        scale = (tf.cast(self.gamma, tf.float32) if self.scale
                 else tf.ones([channels], tf.float32))
        offset = (tf.cast(self.beta, tf.float32) if self.center
                  else tf.zeros([channels], tf.float32))
        empty = tf.constant([], tf.float32)
        y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=scale, offset=offset, mean=empty, variance=empty,
            epsilon=float(self.epsilon), exponential_avg_factor=1.0,
            data_format="NHWC", is_training=True)
        # The kernel returns the unbiased (n - 1) variance; Keras averages
        # the biased one into the moving statistic.
        count = tf.cast(tf.size(x) // channels, tf.float32)
        variance = variance * ((count - 1.0) / tf.maximum(count, 1.0))
        momentum = self.momentum
        self.moving_mean.assign(
            ops.cast(self.moving_mean, "float32") * momentum
            + mean * (1.0 - momentum))
        self.moving_variance.assign(
            ops.cast(self.moving_variance, "float32") * momentum
            + variance * (1.0 - momentum))
        if len(inputs.shape) == 5:
            y = tf.reshape(y, shape)
        return ops.cast(y, self.compute_dtype)
