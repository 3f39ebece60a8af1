"""Tests of `tfaction.layers.masked_conv1d.MaskedConv1D`."""

import numpy as np
import pytest

from tfaction.layers.masked_conv1d import MaskedConv1D
from tfaction.testing import run_layer_test
from tests.layers import padding

LENGTHS = np.array([[12], [7]])


def _mask(t=12):
    return padding.length_mask(LENGTHS, t)


def _torch_reference(x, mask, kernel, bias, stride, groups):
    """Direct NumPy evaluation of PyTorch's Conv1d(padding=k//2) * mask."""
    k = kernel.shape[0]
    pad = k // 2
    xp = np.pad(x, [(0, 0), (pad, pad), (0, 0)])
    t_out = x.shape[1] // stride
    out = np.zeros((x.shape[0], t_out, kernel.shape[2]), np.float64)
    for t in range(t_out):
        window = xp[:, stride * t:stride * t + k]  # [B, k, C]
        if groups == 1:
            out[:, t] = np.einsum("bkc,kco->bo", window, kernel)
        else:
            out[:, t] = np.einsum("bkc,kc->bc", window, kernel[:, 0, :])
    if bias is not None:
        out += bias
    m = mask[:, ::stride]
    return out * m[..., None], m


@pytest.mark.parametrize("stride,groups", [(1, 1), (2, 1), (2, 6)])
def test_contract(stride, groups):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 12, 6)).astype("float32")
    mask = _mask()
    filters = 6 if groups > 1 else 5
    run_layer_test(
        MaskedConv1D,
        {"filters": filters, "kernel_size": 3, "strides": stride,
         "groups": groups, "use_bias": groups == 1},
        x, mask=mask,
        valid_output_mask=padding.interior_steps(mask, stride, 1),
        expected_output_shape=((2, 12 // stride, filters),
                               (2, 12 // stride)),
        expected_num_trainable_weights=2 if groups == 1 else 1,
        run_training_check=stride == 1)


@pytest.mark.parametrize("stride,groups,k,filters", [
    (1, 1, 3, 6), (1, 1, 3, 4), (1, 1, 5, 8), (1, 1, 5, 3), (2, 1, 3, 6),
    (2, 6, 3, 6), (1, 6, 5, 6)])
def test_matches_pytorch_semantics(stride, groups, k, filters):
    """Both stride-1 paths (columns for filters >= C_in = 6, shifted tap
    sums for fewer filters), the strided and the depthwise convolution."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 12, 6)).astype("float32")
    mask = _mask()
    layer = MaskedConv1D(filters, k, strides=stride, groups=groups)
    y, m = layer(x, mask=mask)
    bias = rng.normal(size=(filters,)).astype("float32")
    layer.bias.assign(bias)
    y, m = layer(x, mask=mask)
    ref, ref_mask = _torch_reference(x, mask, layer.kernel.numpy(), bias,
                                     stride, groups)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(m.numpy(), ref_mask)
    assert m.dtype == "bool"


def test_init_is_pytorch_default():
    x = np.zeros((1, 8, 64), "float32")
    layer = MaskedConv1D(256, 3)
    layer(x, mask=np.ones((1, 8), bool))
    w = layer.kernel.numpy()
    bound = 1.0 / np.sqrt(3 * 64)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound
    np.testing.assert_array_equal(layer.bias.numpy(), 0.0)
    dw = MaskedConv1D(64, 3, groups=64, use_bias=False)
    dw(x, mask=np.ones((1, 8), bool))
    assert np.abs(dw.kernel.numpy()).max() <= 1.0 / np.sqrt(3)
    assert dw.bias is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        MaskedConv1D(4, 2)
    with pytest.raises(ValueError, match="depthwise"):
        MaskedConv1D(4, 3, groups=2)(np.zeros((1, 4, 4), "float32"),
                                     mask=np.ones((1, 4), bool))
    with pytest.raises(ValueError, match="divisible"):
        MaskedConv1D(4, 3, strides=2)(np.zeros((1, 5, 4), "float32"),
                                      mask=np.ones((1, 5), bool))


@pytest.mark.parametrize("k,filters", [(1, 5), (3, 5), (5, 5), (3, 8),
                                       (5, 8)])
def test_gradients_match_conv1d(k, filters):
    """Both matrix-product paths (shifted tap sums for filters < C_in = 6;
    columns with the hand-written gradient otherwise) have the input and
    kernel gradients of a plain zero-padded convolution."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 12, 6)).astype("float32"))
    weights = tf.constant(rng.normal(size=(2, 12, filters)).astype(
        "float32"))
    mask = _mask()
    conv = MaskedConv1D(filters, k)
    conv.build(x.shape)
    m = tf.cast(mask, tf.float32)[..., None]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y, _ = conv(x, mask)
        ours = tf.reduce_sum(y * weights)
        xp = tf.pad(x, [[0, 0], [k // 2, k // 2], [0, 0]])
        ref = tf.nn.conv1d(xp, conv.kernel, 1, "VALID") + conv.bias
        theirs = tf.reduce_sum(ref * m * weights)
    for a, b in zip(tape.gradient(ours, [x, conv.kernel, conv.bias]),
                    tape.gradient(theirs, [x, conv.kernel, conv.bias])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5,
                                   atol=1e-5)
