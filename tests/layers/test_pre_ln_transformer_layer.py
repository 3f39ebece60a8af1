"""Tests of `tfaction.layers.pre_ln_transformer_layer`."""

import math

import numpy as np
import pytest

from tfaction.layers.pre_ln_transformer_layer import PreLNTransformerLayer
from tfaction.testing import run_layer_test
from tests.layers import padding

LENGTHS = np.array([[7], [4]])


def _inputs(steps=7, channels=8, seed=0):
    mask = padding.length_mask(LENGTHS, steps)
    x = np.random.default_rng(seed).normal(
        size=(2, steps, channels)).astype("float32")
    return x, mask


def _layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _reference(layer, x, mask, heads):
    """The pre-LN layer in float64 numpy from the layer's weights:
    x + O(attn(LN1 x)), then + W2 relu(W1 LN2 x); keys masked by -inf."""
    w = {v.path.split("/", 1)[1]: np.asarray(v, np.float64)
         for v in layer.weights}
    x = x.astype(np.float64)
    batch, steps, channels = x.shape
    depth = channels // heads

    def dense(name, h):
        return h @ w[f"{name}/kernel"] + w[f"{name}/bias"]

    h = _layer_norm(x, w["attention_norm/gamma"], w["attention_norm/beta"])
    q, k, v = (dense(n, h).reshape(batch, steps, heads, depth)
               for n in ("query", "key", "value"))
    out = np.zeros((batch, steps, heads, depth))
    for b in range(batch):
        for head in range(heads):
            logits = q[b, :, head] @ k[b, :, head].T / math.sqrt(depth)
            logits = np.where(mask[b][None, :], logits, -np.inf)
            e = np.exp(logits - logits.max(-1, keepdims=True))
            out[b, :, head] = (e / e.sum(-1, keepdims=True)) @ v[b, :, head]
    x = x + dense("attention_output", out.reshape(batch, steps, channels))
    h = _layer_norm(x, w["ffn_norm/gamma"], w["ffn_norm/beta"])
    return x + dense("ffn_output", np.maximum(dense("ffn_inner", h), 0.0))


def test_layer_contract():
    x, mask = _inputs()
    run_layer_test(PreLNTransformerLayer,
                   {"num_heads": 2, "ffn_units": 16, "dropout": 0.1,
                    "seed": 3},
                   x, mask=mask, expected_output_shape=(2, 7, 8),
                   expected_output_mask=mask,
                   expected_num_trainable_weights=16,
                   expected_num_non_trainable_weights=0)


def test_matches_pre_ln_formula():
    x, mask = _inputs(channels=12)
    layer = PreLNTransformerLayer(num_heads=3, ffn_units=20, seed=1)
    out = np.asarray(layer(x, mask=mask, training=False))
    expected = _reference(layer, x, mask, heads=3)
    # Padded query steps are computed too (from the valid keys).
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # No mask: every key is valid.
    out = np.asarray(layer(x))
    np.testing.assert_allclose(out, _reference(layer, x,
                                               np.ones_like(mask), 3),
                               rtol=1e-5, atol=1e-5)


def test_no_valid_key_gives_finite_output():
    x, _ = _inputs()
    layer = PreLNTransformerLayer(num_heads=2, ffn_units=16, seed=1)
    out = np.asarray(layer(x, mask=np.zeros((2, 7), bool)))
    assert np.isfinite(out).all()


def test_initialisation_follows_seed_and_reference_bounds():
    x, _ = _inputs(channels=16)
    a = PreLNTransformerLayer(num_heads=2, ffn_units=64, seed=5)
    b = PreLNTransformerLayer(num_heads=2, ffn_units=64, seed=5)
    c = PreLNTransformerLayer(num_heads=2, ffn_units=64, seed=6)
    for layer in (a, b, c):
        layer(x)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.query.kernel, c.query.kernel)
    # Different weights of one layer are different draws.
    assert not np.array_equal(a.query.kernel, a.key.kernel)
    # Xavier-uniform kernels, PyTorch-default biases, LayerNorm 1 / 0.
    for dense, fan_in, fan_out in ((a.query, 16, 16), (a.ffn_inner, 16, 64),
                                   (a.ffn_output, 64, 16)):
        kernel, bias = np.asarray(dense.kernel), np.asarray(dense.bias)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(kernel).max() <= limit
        assert np.abs(kernel).max() > 0.8 * limit
        assert np.abs(bias).max() <= 1.0 / math.sqrt(fan_in)
        assert np.abs(bias).max() > 0.5 / math.sqrt(fan_in)
    np.testing.assert_array_equal(a.attention_norm.gamma, 1.0)
    np.testing.assert_array_equal(a.ffn_norm.beta, 0.0)


def test_dropout_only_in_training():
    x, mask = _inputs()
    layer = PreLNTransformerLayer(num_heads=2, ffn_units=16, dropout=0.5,
                                  seed=1)
    inference = np.asarray(layer(x, mask=mask, training=False))
    np.testing.assert_array_equal(inference,
                                  np.asarray(layer(x, mask=mask)))
    assert not np.allclose(np.asarray(layer(x, mask=mask, training=True)),
                           inference)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        PreLNTransformerLayer(num_heads=3)(np.zeros((1, 2, 8), "float32"))
    with pytest.raises(ValueError, match="dropout"):
        PreLNTransformerLayer(dropout=1.0)
