"""Tests of `tfaction.layers.conv_transformer_block.ConvTransformerBlock`."""

import math

import numpy as np
import pytest

from tfaction.layers.conv_transformer_block import ConvTransformerBlock
from tfaction.testing import run_layer_test
from tests.layers import padding

T = 16
LENGTHS = np.array([[16], [9]])
ATTN_WEIGHTS = 3 * 5 + 2
# ln1, ln2 (2 each), attention, fc1/fc2 (2 each), layer scales (1 each)
NUM_WEIGHTS = 4 + ATTN_WEIGHTS + 4


def _mask(t=T):
    return padding.length_mask(LENGTHS, t)


def _inputs(seed=0, c=8):
    return padding.normal_inputs(_mask(), c, seed)


@pytest.mark.parametrize("stride,rate", [(1, 0.1), (2, 0.1), (2, 0.0)])
def test_contract(stride, rate):
    mask = _mask()
    window = 5
    reach = stride * (window // 2) + 1
    run_layer_test(
        ConvTransformerBlock,
        {"num_heads": 2, "window_size": window, "strides": stride,
         "drop_path_rate": rate, "layer_scale_init": 0.5},
        _inputs(), mask=mask,
        valid_output_mask=padding.interior_steps(mask, stride, reach),
        expected_output_shape=((2, T // stride, 8), (2, T // stride)),
        expected_num_trainable_weights=NUM_WEIGHTS + (2 if rate else 0),
        run_training_check=stride == 1)


def _numpy_layer_norm(x, gamma, beta):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * gamma + beta


def test_block_formula_with_reference_maxpool():
    """Recomputes the block from its sublayers with NumPy glue, using a
    PyTorch-style MaxPool1d(3, 2, 1) padded with -inf."""
    x = _inputs(5)
    x[1, 9:] = 0.0
    x[0] -= 3.0  # negative values: zero padding would change the max-pool
    mask = _mask()
    block = ConvTransformerBlock(2, 5, strides=2, drop_path_rate=0.1,
                                 layer_scale_init=0.7)
    y, m = block(x, mask=mask)
    rng = np.random.default_rng(0)
    for ln in (block.ln1, block.ln2):
        ln.gamma.assign(rng.uniform(0.5, 1.5, 8))
        ln.beta.assign(rng.normal(0, 0.1, 8))
    y, m = block(x, mask=mask)

    ln1 = _numpy_layer_norm(x, block.ln1.gamma.numpy(), block.ln1.beta.numpy())
    attn, attn_mask = block.attn(ln1.astype("float32"), mask=mask)
    attn = attn.numpy() * block.scale_attn.scale.numpy()
    xp = np.pad(x, [(0, 0), (1, 1), (0, 0)], constant_values=-np.inf)
    pooled = np.stack([xp[:, 2 * t:2 * t + 3].max(1) for t in range(T // 2)],
                      1)
    mf = mask[:, ::2, None].astype("float32")
    out = pooled * mf + attn
    h = _numpy_layer_norm(out, block.ln2.gamma.numpy(),
                          block.ln2.beta.numpy())
    h = h @ block.fc1.kernel.numpy() + block.fc1.bias.numpy()
    h = 0.5 * h * (1.0 + np.vectorize(math.erf)(h / np.sqrt(2.0)))
    h = h @ block.fc2.kernel.numpy() + block.fc2.bias.numpy()
    out = out + h * mf * block.scale_mlp.scale.numpy()
    np.testing.assert_allclose(y.numpy(), out, atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(m.numpy(), mask[:, ::2])
    np.testing.assert_array_equal(attn_mask.numpy(), mask[:, ::2])


def test_layer_scale_init_and_drop_path_training():
    x = _inputs(6)
    block = ConvTransformerBlock(2, 5, drop_path_rate=0.1)
    block(x, mask=_mask())
    np.testing.assert_allclose(block.scale_attn.scale.numpy(), 1e-4)
    np.testing.assert_allclose(block.scale_mlp.scale.numpy(), 1e-4)
    plain = ConvTransformerBlock(2, 5)
    plain(x, mask=_mask())
    assert plain.scale_attn is None and plain.scale_mlp is None
    # inference is deterministic; training draws drop-path noise
    y1, _ = block(x, mask=_mask(), training=False)
    y2, _ = block(x, mask=_mask(), training=False)
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
