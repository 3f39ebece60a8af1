"""Tests of `FrozenBatchNormalization` (frozen statistics, trainable beta).

Frozen statistics, trainable offset: the moving mean / variance normalise
in training as in inference and a training step never changes them, while
beta (and gamma with `scale=True`) learn. Keras' `BatchNormalization` with
`trainable=False` freezes beta too; with `trainable=True` it uses batch
statistics: both differ, and the tests show it.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.frozen_batch_normalization import (
    FrozenBatchNormalization)
from tfaction.testing import run_layer_test

RNG = np.random.default_rng(0)
X = RNG.normal(1.0, 2.0, (2, 3, 4, 5, 6)).astype("float32")


def _loaded(layer, channels=6, seed=1):
    """Sets non-trivial statistics (and offsets) on a built layer."""
    rng = np.random.default_rng(seed)
    stats = {"moving_mean": rng.normal(0, 1, channels),
             "moving_variance": rng.uniform(0.5, 3.0, channels),
             "beta": rng.normal(0, 1, channels),
             "gamma": rng.uniform(0.5, 2.0, channels)}
    for name, value in stats.items():
        variable = getattr(layer, name, None)
        if variable is not None:
            variable.assign(value.astype("float32"))
    return stats


def _reference(x, stats, scale, epsilon=1e-3):
    return tf.nn.batch_normalization(
        x, stats["moving_mean"], stats["moving_variance"], stats["beta"],
        stats["gamma"] if scale else None, epsilon).numpy()


def test_layer_contract():
    run_layer_test(FrozenBatchNormalization, {"epsilon": 1e-3}, X,
                   expected_output_shape=X.shape,
                   expected_num_trainable_weights=1,
                   expected_num_non_trainable_weights=2)


def test_layer_contract_with_scale_and_other_axis():
    run_layer_test(FrozenBatchNormalization,
                   {"axis": 1, "scale": True, "epsilon": 1e-5},
                   X[:, :, :2, :2, :2], expected_output_shape=(2, 3, 2, 2, 2),
                   expected_num_trainable_weights=2,
                   expected_num_non_trainable_weights=2)


@pytest.mark.parametrize("scale", [False, True])
def test_normalises_with_moving_statistics_in_training_too(scale):
    layer = FrozenBatchNormalization(scale=scale)
    layer.build(X.shape)
    stats = _loaded(layer)
    want = _reference(X, stats, scale)
    for training in (None, False, True):
        np.testing.assert_allclose(layer(X, training=training), want,
                                   rtol=1e-5, atol=1e-5)


def test_training_step_moves_beta_not_statistics():
    layer = FrozenBatchNormalization()
    model = keras.Sequential([keras.Input(X.shape[1:]), layer])
    stats = _loaded(layer)
    assert [w.name for w in layer.trainable_weights] == ["beta"]
    assert sorted(w.name for w in layer.non_trainable_weights) == [
        "moving_mean", "moving_variance"]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    target = np.zeros_like(X)
    model.fit(X, target, batch_size=2, epochs=2, verbose=0)
    assert not np.allclose(layer.beta.numpy(), stats["beta"])
    np.testing.assert_array_equal(layer.moving_mean.numpy(),
                                  stats["moving_mean"].astype("float32"))
    np.testing.assert_array_equal(layer.moving_variance.numpy(),
                                  stats["moving_variance"].astype("float32"))


def test_gamma_trains_with_scale():
    layer = FrozenBatchNormalization(scale=True)
    layer.build(X.shape)
    stats = _loaded(layer)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(layer(X, training=True)))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert [w.name for w in layer.trainable_weights] == ["gamma", "beta"]
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    np.testing.assert_array_equal(layer.moving_mean.numpy(),
                                  stats["moving_mean"].astype("float32"))


@pytest.mark.parametrize("x", [X, X[:, 0]], ids=["rank5", "rank4"])
def test_fused_kernel_gradients_equal_the_affine_map(x):
    """The fused inference kernel's gradients (input, gamma, beta) are those
    of `x * inv + (beta - mean * inv)`; rank 2 keeps the affine map."""
    layer = FrozenBatchNormalization(scale=True)
    layer.build(x.shape)
    stats = _loaded(layer)

    def grads(fn):
        x_ = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x_)
            loss = tf.reduce_sum(fn(x_) ** 3)
        return tape.gradient(loss, [x_, layer.gamma, layer.beta])

    def affine(x_):
        inv = tf.math.rsqrt(stats["moving_variance"].astype("float32")
                            + 1e-3) * layer.gamma
        return x_ * inv + (layer.beta - stats["moving_mean"] * inv)

    for got, want in zip(grads(layer), grads(affine)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    graph = tf.function(layer).get_concrete_function(
        tf.TensorSpec(x.shape)).graph
    assert [op.type for op in graph.get_operations()].count(
        "FusedBatchNormV3") == 1
    graph = tf.function(layer).get_concrete_function(
        tf.TensorSpec((4, 6))).graph
    assert "FusedBatchNormV3" not in [op.type for op in graph.get_operations()]


def test_differs_from_keras_batch_normalization_choices():
    ours = FrozenBatchNormalization()
    ours.build(X.shape)
    stats = _loaded(ours)
    keras_bn = keras.layers.BatchNormalization(scale=False, epsilon=1e-3)
    keras_bn.build(X.shape)
    keras_bn.set_weights([stats["beta"], stats["moving_mean"],
                          stats["moving_variance"]])
    # In inference the arithmetic is the same ...
    np.testing.assert_allclose(ours(X), keras_bn(X, training=False),
                               rtol=1e-5, atol=1e-5)
    # ... in training Keras uses (and updates) the batch statistics ...
    assert not np.allclose(ours(X, training=True),
                           keras_bn(X, training=True), atol=1e-3)
    assert not np.allclose(keras_bn.moving_mean.numpy(),
                           stats["moving_mean"])
    # ... and trainable=False, which keeps the statistics, freezes beta.
    keras_bn.trainable = False
    assert keras_bn.trainable_weights == []
    assert len(ours.trainable_weights) == 1


def test_mixed_precision_normalises_in_float32():
    layer = FrozenBatchNormalization(dtype="mixed_float16")
    layer.build(X.shape)
    _loaded(layer)
    # Large activations around their mean, a dead channel's zero variance:
    # x * inv (~ 3000 / sqrt(1e-3) ~ 9.5e4) overflows float16 (max 65504),
    # so a float16 normalisation gives inf - inf = nan; float32 does not.
    layer.moving_mean.assign(np.full(6, 3000.0, "float32"))
    layer.moving_variance.assign(np.zeros(6, "float32"))
    x16 = (3000.0 + 4.0 * np.round(X)).astype("float16")
    out = layer(x16)
    assert out.dtype == "float16"
    assert layer.beta.dtype == "float32"
    assert layer.moving_mean.dtype == "float32"
    stats = {name: getattr(layer, name).numpy()
             for name in ("moving_mean", "moving_variance", "beta")}
    want = _reference(x16.astype("float32"), stats, False).astype("float16")
    assert np.isfinite(want).all() and np.isfinite(out.numpy()).all()
    # float32 arithmetic in another order (the fused kernel): within one
    # float16 rounding of the outputs (0.0625 at 127) and float32 rounding
    # of x * inv (~9.5e4 here: ulp 0.0078).
    np.testing.assert_allclose(out.numpy().astype("float32"),
                               want.astype("float32"), rtol=2.0 ** -10,
                               atol=0.0625)


def test_config_and_bad_arguments():
    layer = FrozenBatchNormalization(scale=True, epsilon=1e-5,
                                     beta_regularizer="l2")
    config = layer.get_config()
    assert config["scale"] is True and config["epsilon"] == 1e-5
    again = FrozenBatchNormalization.from_config(config)
    assert again.get_config() == config
    with pytest.raises(ValueError, match="axis"):
        FrozenBatchNormalization(axis=(1, 2))
    with pytest.raises(ValueError, match="epsilon"):
        FrozenBatchNormalization(epsilon=0.0)
    with pytest.raises(ValueError, match="must be known"):
        FrozenBatchNormalization().build((None, None))
    with pytest.raises(ValueError, match="out of range"):
        FrozenBatchNormalization(axis=4).build((None, 3))
