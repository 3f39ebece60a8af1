"""Batch normalisation as TensorFlow's fused kernel (`FusedBatchNormV3`).

One pass over a channels-last activation instead of a chain of element-wise
ops: in training mode the batch statistics and the normalisation, in
inference mode (stored statistics) the normalisation alone. Grappler folds
an inference-mode kernel that follows a convolution (and an activation
after it) into one fused convolution where no gradient needs the
convolution's own output.
"""

import keras


def fusable(inputs, axis):
    """Whether `normalize` takes `inputs` with feature axis `axis`.

    Args:
        inputs: the layer's input tensor.
        axis: its feature axis (an int; negative counts from the end).

    Returns:
        True on the TensorFlow backend for a rank-4 (`[B, H, W, C]`) or
        rank-5 (`[B, T, H, W, C]`) input normalised over its last, known
        axis.

    Example:

    >>> import numpy as np
    >>> fusable(np.zeros((2, 4, 4, 3), "float32"), -1)
    True
    >>> fusable(np.zeros((2, 3), "float32"), -1)
    False
    """
    rank = len(inputs.shape)
    return (keras.backend.backend() == "tensorflow" and rank in (4, 5)
            and axis in (-1, rank - 1) and inputs.shape[-1] is not None)


def normalize(inputs, scale, offset, epsilon, mean=None, variance=None):
    """Normalises by the batch's statistics or by given ones, in one kernel.

    Args:
        inputs: a `fusable` tensor, float16, bfloat16 or float32 (other
            dtypes are cast to float32).
        scale, offset: per-channel `gamma` and `beta`, or None (1 and 0).
        epsilon: added to the variance.
        mean, variance: the stored statistics (inference mode), or both None
            for the batch's (training mode).

    Returns:
        `(y, batch_mean, batch_variance)`: `y` in the input's (floating)
        dtype and shape; in training mode the batch's mean and its
        unbiased (n - 1) variance, float32 `[C]`; in inference mode the
        given statistics.

    Example:

    >>> import numpy as np
    >>> x = np.full((1, 1, 1, 2), 3.0, "float32")
    >>> y, _, _ = normalize(x, None, None, 0.0, mean=np.ones(2, "float32"),
    ...                     variance=np.full(2, 4.0, "float32"))
    >>> np.asarray(y).ravel().tolist()  # (3 - 1) / sqrt(4)
    [1.0, 1.0]
    """
    import tensorflow as tf

    channels = inputs.shape[-1]
    x = tf.convert_to_tensor(inputs)
    if x.dtype not in (tf.float16, tf.bfloat16, tf.float32):
        x = tf.cast(x, tf.float32)
    shape = tf.shape(x)
    if len(inputs.shape) == 5:  # per-channel statistics: fold T into H
        x = tf.reshape(x, [shape[0], shape[1] * shape[2], shape[3],
                           channels])

    def vector(value, fill):
        if value is None:
            return tf.fill([channels], fill)
        return tf.cast(value, tf.float32)

    training = mean is None
    empty = tf.constant([], tf.float32)
    y, batch_mean, batch_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=vector(scale, 1.0), offset=vector(offset, 0.0),
        mean=empty if training else vector(mean, 0.0),
        variance=empty if training else vector(variance, 1.0),
        epsilon=float(epsilon), exponential_avg_factor=1.0,
        data_format="NHWC", is_training=training)
    if len(inputs.shape) == 5:
        y = tf.reshape(y, shape)
    return y, batch_mean, batch_variance
