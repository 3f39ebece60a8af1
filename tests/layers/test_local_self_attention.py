"""Tests of `tfaction.layers.local_self_attention.LocalSelfAttention`."""

import numpy as np
import pytest

from tfaction.layers.local_self_attention import LocalSelfAttention
from tfaction.testing import run_layer_test
from tests.layers import padding

T = 16
LENGTHS = np.array([[16], [9]])
# 3 x (depthwise kernel, LN gamma/beta, Dense kernel/bias) + proj (2)
NUM_WEIGHTS = 3 * 5 + 2


def _mask(t=T):
    return padding.length_mask(LENGTHS, t)


def _inputs(seed=0, c=8):
    return padding.normal_inputs(_mask(), c, seed)


@pytest.mark.parametrize("stride", [1, 2])
def test_contract_local(stride):
    mask = _mask()
    window = 5
    # queries see keys within w//2 output steps; each key's depthwise conv
    # reads one input step further on each side
    reach = stride * (window // 2) + 1
    run_layer_test(
        LocalSelfAttention,
        {"num_heads": 2, "window_size": window, "strides": stride},
        _inputs(), mask=mask,
        valid_output_mask=padding.interior_steps(mask, stride, reach),
        expected_output_shape=((2, T // stride, 8), (2, T // stride)),
        expected_num_trainable_weights=NUM_WEIGHTS,
        run_training_check=stride == 1)


def test_contract_global():
    run_layer_test(
        LocalSelfAttention,
        {"num_heads": 4, "window_size": -1, "strides": 2, "dropout": 0.1},
        _inputs(), call_kwargs={"mask": _mask()},
        expected_output_shape=((2, T // 2, 8), (2, T // 2)),
        expected_num_trainable_weights=NUM_WEIGHTS,
        run_training_check=False)


@pytest.mark.parametrize("window,stride", [(5, 1), (5, 2), (-1, 1), (-1, 2)])
def test_padded_keys_do_not_leak(window, stride):
    """Garbage beyond the first padded step never reaches valid outputs.

    The step right after the valid end is read by the depthwise convs of
    the last valid key (zero in the reference's block inputs), so it keeps
    its value; everything further is replaced by large noise.
    """
    x = _inputs(1)
    mask = _mask()
    layer = LocalSelfAttention(2, window, strides=stride)
    ref, ref_mask = layer(x, mask=mask)
    noisy = x.copy()
    noisy[1, 10:] = np.random.default_rng(2).normal(
        50, 100, size=noisy[1, 10:].shape)
    out, out_mask = layer(noisy, mask=mask)
    np.testing.assert_array_equal(out_mask.numpy(), mask[:, ::stride])
    valid = mask[:, ::stride]
    np.testing.assert_allclose(out.numpy()[valid], ref.numpy()[valid],
                               atol=1e-5, rtol=1e-5)
    assert np.all(out.numpy()[~valid] == 0.0)


def test_wide_window_equals_global():
    x = _inputs(3)
    mask = _mask()
    local = LocalSelfAttention(2, 2 * T + 1)
    y_local, _ = local(x, mask=mask)
    glob = LocalSelfAttention(2, -1)
    glob(x, mask=mask)
    glob.set_weights(local.get_weights())
    y_glob, _ = glob(x, mask=mask)
    np.testing.assert_allclose(y_local.numpy(), y_glob.numpy(), atol=1e-6)


def test_band_limits_receptive_field():
    """With 1 stride and window w, output t ignores inputs beyond
    t ± (w//2 + 1) (one extra step from the depthwise conv)."""
    x = _inputs(4)
    mask = np.ones((2, T), bool)
    layer = LocalSelfAttention(2, 3)
    ref, _ = layer(x, mask=mask)
    changed = x.copy()
    changed[:, 12] += 10.0
    out, _ = layer(changed, mask=mask)
    diff = np.abs(out.numpy() - ref.numpy()).max(axis=(0, 2))
    assert np.all(diff[:10] == 0.0)  # 12 - (1 + 1) = 10
    assert np.all(diff[10:15] > 0.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="window_size"):
        LocalSelfAttention(2, window_size=4)
    with pytest.raises(ValueError, match="strides"):
        LocalSelfAttention(2, window_size=5, strides=3)
    with pytest.raises(ValueError, match="divisible"):
        LocalSelfAttention(3, 5)(_inputs(), mask=_mask())
