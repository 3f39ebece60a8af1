"""Tests of `tfaction.layers.channel_layer_norm.ChannelLayerNorm`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.channel_layer_norm import ChannelLayerNorm


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    ours = ChannelLayerNorm(epsilon=1e-5)
    keras_ln = keras.layers.LayerNormalization(epsilon=1e-5)
    for layer in (ours, keras_ln):
        layer.build(shape)
    gamma = rng.normal(size=shape[-1:]).astype("float32")
    beta = rng.normal(size=shape[-1:]).astype("float32")
    for layer in (ours, keras_ln):
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    return ours, keras_ln


def test_forward_bit_identical_and_gradients_match_keras():
    shape = (2, 9, 16)
    ours, keras_ln = _pair(shape)
    rng = np.random.default_rng(1)
    x = tf.constant((rng.normal(size=shape) * 3 + 1).astype("float32"))
    w = tf.constant(rng.normal(size=shape).astype("float32"))
    results = []
    for layer in (ours, keras_ln):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * w)
        results.append([y] + tape.gradient(loss, [x, layer.gamma,
                                                  layer.beta]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1:], results[1][1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_mixed_precision_output_dtype():
    layer = ChannelLayerNorm(dtype="mixed_float16")
    y = layer(np.ones((1, 3, 4), "float16"))
    assert y.dtype == "float16"


def test_config_round_trip_and_unsupported_settings():
    layer = ChannelLayerNorm(epsilon=1e-5, name="n")
    again = ChannelLayerNorm.from_config(layer.get_config())
    assert again.epsilon == 1e-5
    with pytest.raises(ValueError, match="last axis"):
        ChannelLayerNorm(axis=1).build((2, 3, 4))
    with pytest.raises(ValueError, match="last axis"):
        ChannelLayerNorm(center=False).build((2, 3, 4))
