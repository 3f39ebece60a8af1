"""Tests of `FusedBatchNormalization`: Keras' batch norm, fused in training.

The fused training path must be Keras' `BatchNormalization` in every
observable: outputs, gradients (input, gamma, beta) and the moving
statistics after a step (biased variance, momentum), for rank-4 and rank-5
inputs, with and without scale / offset, under float32 and bfloat16; every
other case goes through Keras' own `call`.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers import fused_batch_normalization as module
from tfaction.layers.fused_batch_normalization import FusedBatchNormalization
from tfaction.testing import run_layer_test
from tfaction.testing.docstring_checks import check_docstring_examples

RNG = np.random.default_rng(0)
X4 = RNG.normal(1.5, 2.0, (3, 5, 4, 6)).astype("float32")
X5 = RNG.normal(-1.0, 3.0, (2, 3, 4, 5, 6)).astype("float32")


def test_layer_contract():
    run_layer_test(FusedBatchNormalization,
                   {"momentum": 0.9, "epsilon": 1e-5}, X4,
                   expected_output_shape=X4.shape,
                   expected_num_trainable_weights=2,
                   expected_num_non_trainable_weights=2)


def _pair(kwargs, x):
    keras.utils.set_random_seed(3)
    ours = FusedBatchNormalization(**kwargs)
    theirs = keras.layers.BatchNormalization(**kwargs)
    for layer in (ours, theirs):
        layer.build(x.shape)
    rng = np.random.default_rng(1)
    channels = ours.moving_mean.shape[0]
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        value = rng.uniform(0.5, 2.0, channels).astype("float32")
        for layer in (ours, theirs):
            if getattr(layer, name, None) is not None:
                getattr(layer, name).assign(value)
    return ours, theirs


def _step(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 3)
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return y, grads


@pytest.mark.parametrize("x", [X4, X5], ids=["rank4", "rank5"])
@pytest.mark.parametrize("center,scale", [(True, True), (False, False)])
def test_training_equals_keras(x, center, scale):
    kwargs = dict(momentum=0.9, epsilon=1e-5, center=center, scale=scale)
    ours, theirs = _pair(kwargs, x)
    initial = ours.moving_mean.numpy()
    y, grads = _step(ours, x)
    want_y, want_grads = _step(theirs, x)
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(ours, name).numpy(),
                                   getattr(theirs, name).numpy(),
                                   rtol=1e-6, atol=1e-6)
    assert not np.allclose(ours.moving_mean.numpy(), initial)  # updated


def test_bfloat16_policy_matches_keras_to_bfloat16_precision():
    kwargs = dict(momentum=0.9, epsilon=1e-5, dtype="mixed_bfloat16")
    ours, theirs = _pair(kwargs, X4)
    y, _ = _step(ours, X4)
    want, _ = _step(theirs, X4)
    assert y.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y, tf.float32), tf.cast(want,
                                                               tf.float32),
                               rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(ours.moving_variance.numpy(),
                               theirs.moving_variance.numpy(), rtol=1e-2)


def test_synchronized_is_fused_on_one_replica_only(two_cpu_strategy):
    ours, theirs = _pair({"synchronized": True}, X4)
    assert ours._fused(tf.constant(X4), True, None)
    np.testing.assert_allclose(ours(X4, training=True),
                               theirs(X4, training=True), rtol=1e-5,
                               atol=1e-5)
    with two_cpu_strategy.scope():
        ours, theirs = _pair({"synchronized": True}, X4)

    def replica_fn(x):
        fused = ours._fused(x, True, None)
        return tf.constant(fused), ours(x, training=True), theirs(
            x, training=True)

    fused, got, want = two_cpu_strategy.run(replica_fn, (tf.constant(X4),))
    assert not any(two_cpu_strategy.experimental_local_results(fused))
    for a, b in zip(two_cpu_strategy.experimental_local_results(got),
                    two_cpu_strategy.experimental_local_results(want)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_other_cases_take_keras_path():
    # inference, frozen, rank 2, another axis: Keras' call
    for kwargs, x, training in (
            ({}, X4, False), ({"trainable": False}, X4, True),
            ({}, X4[:, 0, 0], True), ({"axis": 1}, X4, True)):
        ours, theirs = _pair(kwargs, x)
        np.testing.assert_allclose(ours(x, training=training),
                                   theirs(x, training=training),
                                   rtol=1e-6, atol=1e-6)
        assert not ours._fused(tf.constant(x), training, None)


def test_serialises_as_itself():
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    config = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is FusedBatchNormalization
    assert (again.momentum, again.epsilon) == (0.9, 1e-5)


def test_docstring_examples():
    check_docstring_examples(module)
