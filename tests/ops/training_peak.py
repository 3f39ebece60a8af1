"""Peak allocator memory of a traced training step (tests' helper)."""

import numpy as np
import pytest
import tensorflow as tf

ACTIVATION_MIB = 16  # one [64, 256, 256] float32 activation


def residual_stack_peak_mib(block, depth=8):
    """Peak MiB of forward + backward through `h = h + block(h, w_i)`.

    `depth` residual layers on `[64, 256, 256]` float32 activations, each
    with a `(256, 256)` weight `w_i`; the loss is `sum(h * h)`. The step
    is traced, run once, and run again after resetting the CPU
    allocator's statistics. Skips where the CPU allocator keeps no
    statistics (TensorFlow without oneDNN, the default on CPUs without
    AVX-512 VNNI / BF16).
    """
    try:
        tf.config.experimental.get_memory_info("CPU:0")
    except ValueError as error:
        pytest.skip(f"no CPU allocator statistics: {error}")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(64, 256, 256)).astype("float32"))
    weights = [tf.Variable(rng.normal(size=(256, 256)).astype("float32")
                           * 0.05) for _ in range(depth)]

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            h = x
            for i, w in enumerate(weights):
                h = block(i, h, w) + h
            loss = tf.reduce_sum(h * h)
        return tape.gradient(loss, weights)

    step(x)
    tf.config.experimental.reset_memory_stats("CPU:0")
    step(x)
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20
