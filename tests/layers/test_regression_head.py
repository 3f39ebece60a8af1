"""Tests of `tfaction.layers.regression_head.RegressionHead`."""

import numpy as np
import pytest

from tfaction.layers.regression_head import RegressionHead
from tfaction.layers.scale import Scale
from tfaction.testing import run_layer_test
from tests.layers import padding

KWARGS = {"num_levels": 1, "head_dim": 8, "kernel_size": 3,
          "num_layers": 3, "with_ln": True, "epsilon": 1e-5}


def test_regression_head_contract():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 10, 6)).astype("float32")
    lengths = np.array([10, 6])
    reach = np.where(lengths == 10, 10, lengths - 3)  # see the cls head test
    out = run_layer_test(
        RegressionHead, KWARGS, x, mask=padding.length_mask(lengths, 10),
        valid_output_mask=padding.length_mask(reach, 10),
        expected_output_shape=(2, 10, 2),
        # 2 kernels, 2 x LN (gamma, beta), offset kernel + bias, 1 Scale
        expected_num_trainable_weights=2 + 4 + 2 + 1,
        expected_num_non_trainable_weights=0)
    assert (out >= 0).all()
    np.testing.assert_array_equal(out[1, 6:], 0.0)


def test_regression_head_per_level_scale():
    rng = np.random.default_rng(1)
    feats = [rng.normal(size=(2, t, 6)).astype("float32") for t in (8, 4, 2)]
    masks = [padding.length_mask([8, 5], 8), padding.length_mask([4, 3], 4), padding.length_mask([2, 2], 2)]
    head = RegressionHead(3, 8)
    outs = head(feats, mask=masks)
    assert len(head.scales) == 3
    assert all(isinstance(s, Scale) for s in head.scales)
    np.testing.assert_array_equal([float(s.scale) for s in head.scales], 1.0)
    np.testing.assert_array_equal(head.offset_conv.bias, 0.0)
    assert [tuple(o.shape) for o in outs] == [(2, 8, 2), (2, 4, 2), (2, 2, 2)]
    # offsets = ReLU(scale_l * conv): with negative scales the sign flips
    head.scales[1].scale.assign(-2.0)
    new = head(feats, mask=masks)
    np.testing.assert_allclose(new[0], outs[0])
    conv_1 = np.asarray(outs[1])  # = ReLU(conv) with scale 1
    assert (np.asarray(new[1])[conv_1 > 0] == 0).all()
    for o, m in zip(new, masks):
        assert (np.asarray(o) >= 0).all()
        np.testing.assert_array_equal(np.asarray(o)[~m], 0.0)


def test_regression_head_rejects_wrong_level_count():
    head = RegressionHead(2, 8)
    with pytest.raises(ValueError, match="2 levels"):
        head(np.ones((1, 4, 6), "float32"))
