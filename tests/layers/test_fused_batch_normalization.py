"""Tests of `FusedBatchNormalization`: Keras' batch norm, one fused kernel.

The fused training path must be Keras' `BatchNormalization` in every
observable: outputs, gradients (input, gamma, beta) and the moving
statistics after a step (biased variance, momentum), for rank-4 and rank-5
inputs, with and without scale / offset, under float32 and bfloat16; the
fused inference path (and a frozen layer) its outputs and gradients; every
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


def _fused_kernels(fn, *args):
    """The `is_training` attribute of each fused batch-norm kernel that
    `tf.function(fn)` traces."""
    graph = tf.function(fn).get_concrete_function(*args).graph
    ops = list(graph.get_operations())
    for op in list(ops):
        for name in op.node_def.attr:  # strategy.run: nested functions
            if op.node_def.attr[name].HasField("func"):
                ops += graph._get_function(
                    op.node_def.attr[name].func.name).graph.get_operations()
    return [op.get_attr("is_training") for op in ops
            if op.type == "FusedBatchNormV3"]


def test_synchronized_is_fused_on_one_replica_only(two_cpu_strategy):
    ours, theirs = _pair({"synchronized": True}, X4)
    assert _fused_kernels(lambda x: ours(x, training=True),
                          tf.constant(X4)) == [True]
    np.testing.assert_allclose(ours(X4, training=True),
                               theirs(X4, training=True), rtol=1e-5,
                               atol=1e-5)
    with two_cpu_strategy.scope():
        ours, theirs = _pair({"synchronized": True}, X4)

    def replica_fn(x):
        return ours(x, training=True), theirs(x, training=True)

    got, want = two_cpu_strategy.run(replica_fn, (tf.constant(X4),))
    for a, b in zip(two_cpu_strategy.experimental_local_results(got),
                    two_cpu_strategy.experimental_local_results(want)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert _fused_kernels(
        lambda x: two_cpu_strategy.run(lambda y: ours(y, training=True),
                                       (x,)), tf.constant(X4)) == []


@pytest.mark.parametrize("x", [X4, X5], ids=["rank4", "rank5"])
@pytest.mark.parametrize("kwargs,training", [
    ({}, False), ({"trainable": False}, True),
    ({"center": False, "scale": False}, False),
    ({"synchronized": True}, False)],
    ids=["inference", "frozen", "no_affine", "synchronized"])
def test_moving_statistics_fused_and_equal_to_keras(x, kwargs, training):
    ours, theirs = _pair(kwargs, x)

    def call(layer):
        x_ = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x_)
            y = layer(x_, training=training)
            loss = tf.reduce_sum(y ** 3)
        return [y] + tape.gradient(loss, [x_] + layer.trainable_weights)

    for got, want in zip(call(ours), call(theirs)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert _fused_kernels(lambda t: ours(t, training=training),
                          tf.constant(x)) == [False]


def test_other_cases_take_keras_path():
    # rank 2, another axis, a mask: Keras' call
    mask = np.ones(X4.shape[:-1], bool)
    for kwargs, x, training, m in (
            ({}, X4[:, 0, 0], True, None), ({"axis": 1}, X4, True, None),
            ({"axis": 1}, X4, False, None), ({}, X4, True, mask)):
        ours, theirs = _pair(kwargs, x)
        np.testing.assert_allclose(ours(x, training=training, mask=m),
                                   theirs(x, training=training, mask=m),
                                   rtol=1e-6, atol=1e-6)
        assert _fused_kernels(lambda t: ours(t, training=training, mask=m),
                              tf.constant(x)) == []


def test_serialises_as_itself():
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    config = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is FusedBatchNormalization
    assert (again.momentum, again.epsilon) == (0.9, 1e-5)


def test_docstring_examples():
    check_docstring_examples(module)
