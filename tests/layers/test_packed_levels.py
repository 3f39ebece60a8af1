"""Tests of `tfaction.layers.packed_levels.PackedLevels`."""

import numpy as np

from tfaction.layers.masked_conv1d import MaskedConv1D
from tfaction.layers.packed_levels import PackedLevels


def test_packed_convolution_equals_per_level():
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(2, t, 4)).astype("float32") for t in (8, 4, 2)]
    masks = [np.arange(t)[None] < np.array([[t], [t - 1]]) for t in (8, 4, 2)]
    conv = MaskedConv1D(3, 5)
    per_level = [conv(x, m)[0].numpy() for x, m in zip(feats, masks)]
    packed = PackedLevels(feats, masks, pad=2)
    assert tuple(packed.x.shape) == (2, 8 + 4 + 2 + 3 * 4, 4)
    y, _ = conv(packed.x, packed.mask)
    for got, want in zip(packed.unpack(y), per_level):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_separators_to_zero_keeps_level_steps():
    feats = [np.ones((1, 3, 2), "float32"), np.ones((1, 2, 2), "float32")]
    packed = PackedLevels(feats, [None, None], pad=1)
    x = packed.separators_to_zero(np.full((1, 9, 2), 7.0, "float32"))
    np.testing.assert_array_equal(
        x.numpy()[0, :, 0], [0, 7, 7, 7, 0, 0, 7, 7, 0])
    assert packed.mask.numpy().tolist() == [
        [False, True, True, True, False, False, True, True, False]]
