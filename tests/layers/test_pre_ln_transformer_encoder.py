"""Tests of `tfaction.layers.pre_ln_transformer_encoder`."""

import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.pre_ln_transformer_encoder import PreLNTransformerEncoder
from tfaction.testing import run_layer_test
from tests.layers import padding

LENGTHS = np.array([[6], [3]])


def _inputs(steps=6, channels=8, seed=0):
    mask = padding.length_mask(LENGTHS, steps)
    x = np.random.default_rng(seed).normal(
        size=(2, steps, channels)).astype("float32")
    return x, mask


def test_layer_contract():
    x, mask = _inputs()
    run_layer_test(PreLNTransformerEncoder,
                   {"num_layers": 2, "num_heads": 2, "ffn_units": 16,
                    "dropout": 0.1, "identical_initialization": True,
                    "seed": 4},
                   x, mask=mask, expected_output_shape=(2, 6, 8),
                   expected_output_mask=mask,
                   expected_num_trainable_weights=32,
                   expected_num_non_trainable_weights=0)


@pytest.mark.parametrize("seed", [None, 11])
def test_identical_initialization(seed):
    x, _ = _inputs()
    encoder = PreLNTransformerEncoder(3, num_heads=2, ffn_units=16,
                                      seed=seed)
    encoder(x)
    first = encoder.encoder_layers[0].get_weights()
    for layer in encoder.encoder_layers[1:]:
        for u, v in zip(first, layer.get_weights()):
            np.testing.assert_array_equal(u, v)
    # Still separate variables: training one leaves the others alone.
    encoder.encoder_layers[0].query.kernel.assign_add(
        np.ones((8, 8), "float32"))
    assert not np.array_equal(encoder.encoder_layers[0].query.kernel,
                              encoder.encoder_layers[1].query.kernel)


def test_independent_initialization():
    x, _ = _inputs()
    encoder = PreLNTransformerEncoder(2, num_heads=2, ffn_units=16,
                                      identical_initialization=False, seed=3)
    encoder(x)
    a, b = encoder.encoder_layers
    assert not np.array_equal(a.query.kernel, b.query.kernel)
    assert not np.array_equal(a.ffn_inner.bias, b.ffn_inner.bias)


def test_is_the_composition_of_its_layers_without_final_norm():
    x, mask = _inputs()
    encoder = PreLNTransformerEncoder(2, num_heads=2, ffn_units=16,
                                      identical_initialization=False)
    out = np.asarray(encoder(x, mask=mask))
    a, b = encoder.encoder_layers
    np.testing.assert_allclose(out, np.asarray(b(a(x, mask=mask),
                                                 mask=mask)),
                               rtol=1e-6, atol=1e-6)
    # Not layer-normalised at the end: per-step means are not ~0.
    assert np.abs(out.mean(-1)).max() > 1e-2


def test_zero_layers_is_identity():
    x, mask = _inputs()
    encoder = PreLNTransformerEncoder(0)
    np.testing.assert_array_equal(np.asarray(encoder(x, mask=mask)), x)
    assert not encoder.weights


def test_checkpoint_restores_every_layer(tmp_path):
    x, mask = _inputs()
    encoder = PreLNTransformerEncoder(2, num_heads=2, ffn_units=16,
                                      identical_initialization=False)
    expected = np.asarray(encoder(x, mask=mask))
    path = tf.train.Checkpoint(encoder=encoder).write(str(tmp_path / "ck"))
    restored = PreLNTransformerEncoder(2, num_heads=2, ffn_units=16,
                                       identical_initialization=False)
    restored(x, mask=mask)
    tf.train.Checkpoint(encoder=restored).read(path).assert_consumed()
    np.testing.assert_allclose(np.asarray(restored(x, mask=mask)), expected,
                               rtol=1e-6, atol=1e-6)


def test_rejects_negative_depth():
    with pytest.raises(ValueError, match="num_layers"):
        PreLNTransformerEncoder(-1)
