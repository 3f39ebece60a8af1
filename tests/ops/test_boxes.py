"""tfaction.ops.boxes: IoU arithmetic, validity, shapes."""

import numpy as np
import pytest

from tfaction.ops import boxes


def _iou_loop(a, b):
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            ih = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            iw = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = ih * iw
            union = ((p[2] - p[0]) * (p[3] - p[1])
                     + (q[2] - q[0]) * (q[3] - q[1]) - inter)
            out[i, j] = inter / union
    return out


def test_known_values():
    a = [[0.1, 0.1, 0.5, 0.9]]
    b = [[0.25, 0.1, 0.65, 0.9], [0.5, 0.1, 0.9, 0.9], [0.1, 0.1, 0.5, 0.9]]
    np.testing.assert_allclose(boxes.box_iou(a, b),
                               [[0.25 / 0.55, 0.0, 1.0]], atol=1e-15)


def test_matches_loop_bitwise_and_paired():
    rng = np.random.default_rng(0)
    lo = rng.random((7, 2))
    a = np.concatenate([lo, lo + rng.random((7, 2))], 1)
    lo = rng.random((5, 2))
    b = np.concatenate([lo, lo + rng.random((5, 2))], 1)
    full = boxes.box_iou(a, b)
    np.testing.assert_array_equal(full, _iou_loop(a, b))
    ii, jj = np.meshgrid(np.arange(7), np.arange(5), indexing="ij")
    np.testing.assert_array_equal(
        boxes.paired_box_iou(a[ii.ravel()], b[jj.ravel()]), full.ravel())
    np.testing.assert_array_equal(full, boxes.box_iou(b, a).T)


def test_degenerate_boxes():
    zero = [[0.3, 0.3, 0.3, 0.5]]
    assert boxes.box_iou(zero, [[0, 0, 1, 1]])[0, 0] == 0.0
    assert np.isnan(boxes.box_iou(zero, zero)[0, 0])
    np.testing.assert_array_equal(
        boxes.valid_box_mask([[0, 0, 1, 1], [0.3, 0.3, 0.3, 0.5],
                              [0.5, 0, 0.4, 1], [np.nan, 0, 1, 1]]),
        [True, False, False, False])
    np.testing.assert_array_equal(boxes.box_area([[0, 0, 2, 3]]), [6.0])


def test_bad_shape_raises():
    with pytest.raises(ValueError, match="size 4"):
        boxes.box_iou([[0, 0, 1]], [[0, 0, 1, 1]])
