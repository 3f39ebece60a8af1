"""Tests of `tfaction.layers.unit3d.Unit3D` (I3D's conv + frozen BN + ReLU).

Numerics against an independent TF computation of DeepMind's unit
(`tf.nn.conv3d` with SAME padding, `tf.nn.batch_normalization` with the
moving statistics and no scale, ReLU), on odd sizes where SAME pads
asymmetrically.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.frozen_batch_normalization import (
    FrozenBatchNormalization)
from tfaction.layers.unit3d import Unit3D
from tfaction.layers.unit3d import sonnet_conv_initializer
from tfaction.testing import run_layer_test

RNG = np.random.default_rng(0)
X = RNG.normal(0, 1, (2, 5, 7, 6, 3)).astype("float32")


def _load_random(unit, seed=1):
    rng = np.random.default_rng(seed)
    values = {}
    for variable in unit.weights:
        shape = tuple(variable.shape)
        value = (rng.uniform(0.5, 2.0, shape) if "variance" in variable.name
                 else rng.normal(0, 0.5, shape))
        variable.assign(value.astype("float32"))
        values[variable.name] = variable.numpy()
    return values


def _reference(x, values, strides, relu=True):
    y = tf.nn.conv3d(x, values["kernel"], (1, *strides, 1), "SAME")
    if "bias" in values:
        y = y + values["bias"]
    if "beta" in values:
        y = tf.nn.batch_normalization(y, values["moving_mean"],
                                      values["moving_variance"],
                                      values["beta"], None, 1e-3)
    return (tf.nn.relu(y) if relu else y).numpy()


def test_layer_contract():
    run_layer_test(Unit3D, {"filters": 4, "kernel_size": (3, 3, 3),
                            "strides": (2, 2, 2)}, X,
                   expected_output_shape=(2, 3, 4, 3, 4),
                   expected_num_trainable_weights=2,
                   expected_num_non_trainable_weights=2)


def test_layer_contract_logits_variant():
    run_layer_test(Unit3D, {"filters": 5, "activation": None,
                            "use_batch_norm": False, "use_bias": True}, X,
                   expected_output_shape=(2, 5, 7, 6, 5),
                   expected_num_trainable_weights=2,
                   expected_num_non_trainable_weights=0)


@pytest.mark.parametrize("kernel,strides", [((7, 7, 7), (2, 2, 2)),
                                            ((3, 3, 3), (1, 1, 1)),
                                            ((1, 1, 1), (1, 1, 1))])
def test_matches_deepmind_unit(kernel, strides):
    unit = Unit3D(8, kernel_size=kernel, strides=strides)
    unit.build(X.shape)
    values = _load_random(unit)
    for training in (False, True):  # frozen statistics either way
        np.testing.assert_allclose(unit(X, training=training),
                                   _reference(X, values, strides),
                                   rtol=1e-5, atol=1e-5)


def test_logits_variant_matches_conv_with_bias():
    unit = Unit3D(5, activation=None, use_batch_norm=False, use_bias=True)
    unit.build(X.shape)
    values = _load_random(unit)
    assert unit.batch_norm is None
    np.testing.assert_allclose(unit(X),
                               _reference(X, values, (1, 1, 1), relu=False),
                               rtol=1e-5, atol=1e-5)


def test_structure_and_weight_paths():
    unit = Unit3D(64, kernel_size=7, strides=2, name="Conv3d_1a_7x7")
    unit.build((None, None, None, None, 3))
    assert [w.path for w in unit.weights] == [
        "Conv3d_1a_7x7/conv_3d/kernel", "Conv3d_1a_7x7/batch_norm/beta",
        "Conv3d_1a_7x7/batch_norm/moving_mean",
        "Conv3d_1a_7x7/batch_norm/moving_variance"]
    assert tuple(unit.conv.kernel.shape) == (7, 7, 7, 3, 64)
    conv = unit.conv.get_config()
    assert conv["padding"] == "same" and conv["use_bias"] is False
    assert isinstance(unit.batch_norm, FrozenBatchNormalization)
    assert unit.batch_norm.scale is False and unit.batch_norm.center
    assert unit.batch_norm.epsilon == 1e-3
    assert unit.compute_output_shape((1, 9, 33, 32, 3)) == (1, 5, 17, 16, 64)


def test_sonnet_initializer_statistics():
    # Sonnet: truncated normal (2 sigma) with stddev parameter 1/sqrt(fan_in)
    # -> empirical std 0.8796 / sqrt(fan_in), bounded by 2 / sqrt(fan_in).
    fan_in = 3 * 3 * 3 * 64
    w = keras.ops.convert_to_numpy(
        sonnet_conv_initializer()((3, 3, 3, 64, 128)))
    np.testing.assert_allclose(w.std() * np.sqrt(fan_in), 0.8796, rtol=0.02)
    assert np.abs(w).max() <= 2.0 / np.sqrt(fan_in) + 1e-6
    unit = Unit3D(128, kernel_size=3)
    unit.build((None, 4, 4, 4, 64))
    np.testing.assert_allclose(unit.conv.kernel.numpy().std()
                               * np.sqrt(fan_in), 0.8796, rtol=0.02)


def test_mixed_precision_keeps_batch_norm_in_float32():
    unit = Unit3D(8, kernel_size=3, dtype="mixed_float16")
    reference = Unit3D(8, kernel_size=3)
    unit.build(X.shape)
    reference.build(X.shape)
    _load_random(reference)
    unit.set_weights(reference.get_weights())
    out = unit(X)
    assert out.dtype == "float16"
    assert unit.conv.compute_dtype == "float16"
    assert unit.batch_norm.dtype_policy.name == "mixed_float16"
    assert all(w.dtype == "float32" for w in unit.weights)
    np.testing.assert_allclose(out.numpy().astype("float32"), reference(X),
                               rtol=2e-2, atol=2e-2)


def test_config_round_trip_and_errors():
    unit = Unit3D(16, kernel_size=(3, 1, 1), strides=(1, 2, 2),
                  kernel_regularizer="l2", name="u")
    config = unit.get_config()
    assert config["kernel_size"] == [3, 1, 1]
    assert config["strides"] == [1, 2, 2]
    assert config["activation"] == "relu"
    assert Unit3D.from_config(config).get_config() == config
    assert Unit3D(4, activation=None).get_config()["activation"] is None
    with pytest.raises(ValueError, match="filters"):
        Unit3D(0)
    with pytest.raises(ValueError, match="kernel_size"):
        Unit3D(4, kernel_size=(3, 3))
    with pytest.raises(ValueError, match=r"\[B, T, H, W, C\]"):
        Unit3D(4).build((None, 8, 8, 3))


def test_batch_statistics_variant():
    run_layer_test(Unit3D, {"filters": 4, "batch_norm": "batch"}, X,
                   expected_output_shape=(2, 5, 7, 6, 4),
                   expected_num_trainable_weights=2,
                   expected_num_non_trainable_weights=2)
    unit = Unit3D(4, batch_norm="batch", name="u")
    out = unit(X, training=True).numpy()
    # Training normalises by the batch: each channel's pre-ReLU values
    # have mean 0 (beta = 0), so about half are positive.
    assert isinstance(unit.batch_norm, keras.layers.BatchNormalization)
    assert 0.3 < float(np.mean(out > 0)) < 0.7
    assert not np.allclose(unit.batch_norm.moving_mean.numpy(), 0.0)
    assert [w.path for w in unit.weights] == [
        "u/conv_3d/kernel", "u/batch_norm/beta", "u/batch_norm/moving_mean",
        "u/batch_norm/moving_variance"]
    assert Unit3D.from_config(unit.get_config()).batch_norm_type == "batch"
    with pytest.raises(ValueError, match="batch_norm"):
        Unit3D(4, batch_norm="sync")
