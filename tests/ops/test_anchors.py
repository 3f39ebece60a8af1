"""tfaction.ops.anchors: TF Object Detection API grid anchors."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

from tfaction.ops import anchors


def _reference(h, w, img_h, img_w, scales, ratios, base, stride, offset):
    """Loop over cells and the anchor set, as `tile_anchors` orders them."""
    out = []
    for i in range(h):
        for j in range(w):
            for ratio in ratios:          # ratio-major ...
                for scale in scales:      # ... scale fastest
                    ah = scale / np.sqrt(ratio) * base[0]
                    aw = scale * np.sqrt(ratio) * base[1]
                    cy = i * stride[0] + offset[0]
                    cx = j * stride[1] + offset[1]
                    out.append([(cy - ah / 2) / img_h, (cx - aw / 2) / img_w,
                                (cy + ah / 2) / img_h, (cx + aw / 2) / img_w])
    return np.asarray(out)


def test_docstrings():
    result = doctest.testmod(anchors)
    assert result.failed == 0 and result.attempted > 0


def test_defaults_match_independent_reference():
    got = np.asarray(anchors.grid_anchors(25, 25, 400, 400))
    ref = _reference(25, 25, 400, 400, (0.25, 0.5, 1.0, 2.0),
                     (0.5, 1.0, 2.0), (256, 256), (16, 16), (0, 0))
    assert got.shape == (25 * 25 * 12, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    assert anchors.num_anchors_per_location() == 12


def test_hand_computed_values_and_order():
    # 2 x 3 grid, 2 anchors per cell, pixels.
    got = np.asarray(anchors.grid_anchors(
        2, 3, 64, 64, scales=(1.0,), aspect_ratios=(1.0, 4.0),
        base_anchor_size=(8, 8), anchor_stride=(10, 20),
        anchor_offset=(1, 2), normalize=False))
    # ratio 1: 8 x 8; ratio 4: h = 8 / 2 = 4, w = 8 * 2 = 16.
    np.testing.assert_allclose(got[0], [-3, -2, 5, 6])
    np.testing.assert_allclose(got[1], [-1, -6, 3, 10])
    # cell (i=1, j=2) is row (1 * 3 + 2) * 2 = 10: centre (11, 42).
    np.testing.assert_allclose(got[10], [7, 38, 15, 46])
    np.testing.assert_allclose(got[11], [9, 34, 13, 50])
    centers = (got[:, :2] + got[:, 2:]) / 2
    cell = np.arange(12) // 2
    np.testing.assert_allclose(centers[:, 0], (cell // 3) * 10 + 1)
    np.testing.assert_allclose(centers[:, 1], (cell % 3) * 20 + 2)


def test_normalisation_is_per_axis():
    pix = np.asarray(anchors.grid_anchors(3, 4, 48, 64, normalize=False))
    norm = np.asarray(anchors.grid_anchors(3, 4, 48, 64))
    np.testing.assert_allclose(norm, pix / [48, 64, 48, 64], rtol=1e-6)


def test_dynamic_sizes_in_tf_function():
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)] * 4)
    def fn(h, w, img_h, img_w):
        return anchors.grid_anchors(h, w, img_h, img_w)

    for h, w in ((2, 3), (5, 4)):
        np.testing.assert_allclose(
            fn(h, w, h * 16, w * 16),
            anchors.grid_anchors(h, w, h * 16, w * 16), rtol=1e-6)


def test_sizes_and_errors():
    h, w = anchors.anchor_sizes((0.5, 1.0), (2.0,), (100, 200))
    np.testing.assert_allclose(h * w, [0.25 * 100 * 200, 100 * 200],
                               rtol=1e-6)
    np.testing.assert_allclose(w / h, [4.0, 4.0], rtol=1e-6)  # w/h=r*2
    with pytest.raises(ValueError, match="aspect_ratios"):
        anchors.anchor_sizes((1.0,), (0.0,))
    with pytest.raises(ValueError, match="anchor_stride"):
        anchors.grid_anchors(2, 2, 32, 32, anchor_stride=(16,))
