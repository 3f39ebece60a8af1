"""Holding a hand-written gradient's recomputation until it is needed."""

import keras


def after_upstream(upstream, *tensors):
    """`tensors`, readable only once the upstream gradient `upstream` exists.

    TensorFlow's graph executor runs an op as soon as its inputs exist. A
    hand-written gradient that recomputes something from forward-pass
    tensors alone (LayerNorm's normalised input, a convolution's columns,
    GELU's derivative) would therefore run during the forward pass and keep
    its result alive until the upstream gradient arrives, which raises the
    training step's peak memory by one activation-sized tensor per layer.
    Routing those forward tensors through this function inside the
    gradient function makes the recomputation wait for `upstream`, so each
    recomputed tensor lives only while its layer's backward pass runs.

    On other backends, and when TensorFlow runs eagerly, the tensors are
    returned unchanged: eager execution runs in program order, and JAX's
    XLA schedules its own graph.

    Args:
        upstream: the gradient the recomputation must wait for.
        *tensors: forward-pass tensors the gradient reads.

    Returns:
        A tuple of tensors with the values of `tensors`.

    Example:

    >>> @keras.ops.custom_gradient
    ... def sin(x):
    ...     def grad(*args, upstream=None):
    ...         dy = args[0] if upstream is None else upstream
    ...         (x_later,) = after_upstream(dy, x)
    ...         return dy * keras.ops.cos(x_later)
    ...     return keras.ops.sin(x), grad
    """
    if keras.backend.backend() != "tensorflow":
        return tensors
    import tensorflow as tf

    if tf.executing_eagerly():
        return tensors
    with tf.control_dependencies([upstream]):
        return tuple(tf.identity(t) for t in tensors)
