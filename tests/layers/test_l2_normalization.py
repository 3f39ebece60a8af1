"""Tests of `tfaction.layers.l2_normalization`."""

import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.l2_normalization import L2Normalization
from tfaction.testing import run_layer_test


def test_layer_contract():
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    out = run_layer_test(L2Normalization, {"epsilon": 1e-12}, x,
                         expected_output_shape=(2, 5, 8),
                         expected_num_trainable_weights=0,
                         expected_num_non_trainable_weights=0,
                         mixed_precision_tolerance=1e-2)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-6)


def test_matches_torch_normalize_convention():
    x = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")
    x[1] = 0.0                     # zero stays zero
    x[2] = 1e-14                   # shorter than epsilon: divided by it
    norm = np.linalg.norm(x.astype(np.float64), axis=-1, keepdims=True)
    expected = x / np.maximum(norm, 1e-12)
    np.testing.assert_allclose(np.asarray(L2Normalization()(x)), expected,
                               rtol=1e-6)


def test_float16_inputs_do_not_overflow():
    # sum of squares 6e6 > float16's max 65504; computed in float32.
    x = np.full((1, 6), 1000.0, np.float16)
    out = L2Normalization(dtype="mixed_float16")(x)
    assert out.dtype == "float16"
    np.testing.assert_allclose(np.asarray(out, np.float32),
                               1 / np.sqrt(6.0), rtol=1e-3)
    out = L2Normalization(dtype="float32")(x)
    assert out.dtype == "float32"


def test_gradient_is_finite_at_zero():
    x = tf.zeros((2, 3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(L2Normalization()(x))
    assert np.isfinite(tape.gradient(y, x).numpy()).all()


def test_rejects_bad_epsilon():
    with pytest.raises(ValueError, match="epsilon"):
        L2Normalization(epsilon=0.0)
