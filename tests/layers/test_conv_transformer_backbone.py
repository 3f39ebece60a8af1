"""Tests of `ConvTransformerBackbone` (tfaction.layers)."""

import numpy as np
import pytest

from tfaction.layers.conv_transformer_backbone import ConvTransformerBackbone
from tfaction.testing import run_layer_test
from tests.layers import padding

T = 16
LENGTHS = np.array([[16], [9]])
KWARGS = {"embed_dim": 8, "num_heads": 2, "embed_kernel_size": 3,
          "arch": [2, 1, 1], "window_size": [5, -1],
          "embed_with_ln": True, "dropout": 0.0, "drop_path_rate": 0.1}


def _mask(t=T):
    return padding.length_mask(LENGTHS, t)


def _inputs(seed=0, c=6):
    return padding.normal_inputs(_mask(), c, seed, zero_padding=False)


def test_contract():
    # embedding: 2 kernels + 2 x LN(2); blocks: 4 LN + 17 attention + 4 MLP
    # + 2 layer scales = 27 each
    run_layer_test(
        ConvTransformerBackbone, KWARGS, _inputs(), mask=_mask(),
        expected_output_shape=([(2, 16, 8), (2, 8, 8)], [(2, 16), (2, 8)]),
        expected_num_trainable_weights=2 + 4 + 2 * 27)


def test_levels_strides_and_masks():
    backbone = ConvTransformerBackbone(embed_dim=16, num_heads=4,
                                       window_size=9)
    x = np.random.default_rng(1).normal(size=(2, 64, 5)).astype("float32")
    mask = np.arange(64)[None] < np.array([[64], [37]])
    feats, masks = backbone(x, mask=mask)
    assert len(feats) == len(masks) == 6
    for level, (f, m) in enumerate(zip(feats, masks)):
        assert f.shape == (2, 64 // 2 ** level, 16)
        np.testing.assert_array_equal(m.numpy(), mask[:, ::2 ** level])
        assert np.all(f.numpy()[~m.numpy()] == 0.0)
    # no drop path: no layer scales (as the reference)
    assert all(b.scale_attn is None for b in backbone.stem + backbone.branch)


def test_without_layer_norm_uses_conv_bias():
    backbone = ConvTransformerBackbone(embed_dim=8, num_heads=2,
                                       arch=[1, 0, 1], window_size=3,
                                       embed_with_ln=False)
    backbone(_inputs(), mask=_mask())
    assert backbone.embed_convs[0].bias is not None
    assert backbone.embed_norms == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="1 \\+ arch"):
        ConvTransformerBackbone(8, 2, arch=[2, 2, 5], window_size=[9, 9])
    with pytest.raises(ValueError, match="arch"):
        ConvTransformerBackbone(8, 2, arch=[2, 2])
    with pytest.raises(ValueError, match="divisible"):
        ConvTransformerBackbone(8, 2, arch=[1, 1, 3], window_size=3)(
            np.zeros((1, 12, 4), "float32"), mask=np.ones((1, 12), bool))
