"""tfaction.ops.box_coder: Faster R-CNN coder, clipping, IoU."""

import doctest

import numpy as np
import tensorflow as tf

from tfaction.ops import box_coder
from tfaction.ops import boxes as np_boxes


def _random_boxes(rng, shape, min_size=0.02):
    lo = rng.uniform(-0.2, 0.9, shape + (2,))
    size = rng.uniform(min_size, 0.6, shape + (2,))
    return np.concatenate([lo, lo + size], -1).astype(np.float32)


def _np_encode(b, a, s=(10.0, 10.0, 5.0, 5.0)):
    b, a = b.astype(np.float64), a.astype(np.float64)
    h, w = b[..., 2] - b[..., 0] + 1e-8, b[..., 3] - b[..., 1] + 1e-8
    ha, wa = a[..., 2] - a[..., 0] + 1e-8, a[..., 3] - a[..., 1] + 1e-8
    yc, xc = (b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2
    yca, xca = (a[..., 0] + a[..., 2]) / 2, (a[..., 1] + a[..., 3]) / 2
    return np.stack([(yc - yca) / ha * s[0], (xc - xca) / wa * s[1],
                     np.log(h / ha) * s[2], np.log(w / wa) * s[3]], -1)


def test_docstrings():
    result = doctest.testmod(box_coder)
    assert result.failed == 0 and result.attempted > 0


def test_hand_computed_codes():
    anchor = [[0.2, 0.4, 0.6, 0.6]]          # centre (0.4, 0.5), 0.4 x 0.2
    box = [[0.3, 0.4, 0.7, 0.8]]             # centre (0.5, 0.6), 0.4 x 0.4
    codes = np.asarray(box_coder.encode_boxes(box, anchor))
    np.testing.assert_allclose(
        codes, [[10 * 0.1 / 0.4, 10 * 0.1 / 0.2, 0.0, 5 * np.log(2.0)]],
        rtol=1e-5, atol=1e-6)
    plain = np.asarray(box_coder.encode_boxes(box, anchor, None))
    np.testing.assert_allclose(plain, codes / [10, 10, 5, 5], rtol=1e-5,
                               atol=1e-7)


def test_matches_numpy_and_round_trips():
    rng = np.random.default_rng(0)
    b = _random_boxes(rng, (3, 50))
    a = _random_boxes(rng, (50,))
    codes = np.asarray(box_coder.encode_boxes(b, a))        # a broadcasts
    np.testing.assert_allclose(codes, _np_encode(b, a[None]), rtol=1e-4,
                               atol=1e-4)
    back = np.asarray(box_coder.decode_boxes(codes, a))
    np.testing.assert_allclose(back, b, atol=2e-6)
    # Decoding arbitrary codes and re-encoding gives the codes back.
    c = rng.normal(size=(3, 50, 4)).astype(np.float32)
    again = np.asarray(box_coder.encode_boxes(
        box_coder.decode_boxes(c, a), a))
    np.testing.assert_allclose(again, c, atol=2e-4)


def test_scale_invariance_pixels_vs_normalised():
    rng = np.random.default_rng(1)
    b, a = _random_boxes(rng, (20,)), _random_boxes(rng, (20,))
    scale = np.array([400.0, 300.0, 400.0, 300.0], np.float32)
    np.testing.assert_allclose(
        box_coder.encode_boxes(b * scale, a * scale),
        box_coder.encode_boxes(b, a), rtol=1e-4, atol=1e-4)


def test_decode_caps_huge_log_sizes():
    out = np.asarray(box_coder.decode_boxes([[0.0, 0.0, 1e4, 1e4]],
                                            [[0.0, 0.0, 1.0, 1.0]]))
    assert np.all(np.isfinite(out))


def test_clip_and_inside_window():
    b = np.array([[-0.1, 0.2, 0.5, 1.3], [1.2, 1.2, 1.5, 1.5],
                  [0.0, 0.0, 1.0, 1.0]], np.float32)
    np.testing.assert_allclose(
        box_coder.clip_boxes(b),
        [[0.0, 0.2, 0.5, 1.0], [1.0, 1.0, 1.0, 1.0], [0, 0, 1, 1]])
    assert np.asarray(box_coder.boxes_inside_window(b)).tolist() == [
        False, False, True]
    # One window per image, [B, 1, 4].
    windows = np.array([[[0, 0, 1, 1]], [[0, 0, 0.5, 0.5]]], np.float32)
    clipped = np.asarray(box_coder.clip_boxes(np.stack([b, b]), windows))
    np.testing.assert_allclose(clipped[1, 2], [0, 0, 0.5, 0.5])


def test_pairwise_iou_matches_numpy_boxes():
    rng = np.random.default_rng(2)
    a, b = _random_boxes(rng, (2, 30)), _random_boxes(rng, (2, 20))
    got = np.asarray(box_coder.pairwise_iou(a, b))
    for i in range(2):
        np.testing.assert_allclose(got[i], np_boxes.box_iou(a[i], b[i]),
                                   rtol=1e-5, atol=1e-6)
    # Shared anchors [N, 4] broadcast against a batch [B, M, 4].
    shared = np.asarray(box_coder.pairwise_iou(a[0], b))
    np.testing.assert_allclose(shared[1], np_boxes.box_iou(a[0], b[1]),
                               rtol=1e-5, atol=1e-6)


def test_pairwise_iou_empty_boxes_and_masks():
    a = np.array([[0, 0, 0, 0], [0.1, 0.1, 0.3, 0.3]], np.float32)
    b = np.array([[0, 0, 0, 0], [0.1, 0.1, 0.3, 0.3]], np.float32)
    got = np.asarray(box_coder.pairwise_iou(a, b))
    np.testing.assert_array_equal(got, [[0, 0], [0, 1]])   # 0/0 -> 0
    masked = np.asarray(box_coder.pairwise_iou(a, b, mask1=[True, True],
                                               mask2=[True, False]))
    np.testing.assert_array_equal(masked, [[0, 0], [0, 0]])


def test_compiles_with_xla():
    rng = np.random.default_rng(3)
    b, a = _random_boxes(rng, (2, 10)), _random_boxes(rng, (10,))

    @tf.function(jit_compile=True)
    def fn(b, a):
        codes = box_coder.encode_boxes(b, a)
        return (box_coder.decode_boxes(codes, a),
                box_coder.pairwise_iou(a, b), box_coder.clip_boxes(b))

    for x, y in zip(fn(b, a), (box_coder.decode_boxes(
            box_coder.encode_boxes(b, a), a), box_coder.pairwise_iou(a, b),
            box_coder.clip_boxes(b))):
        np.testing.assert_allclose(x, y, atol=1e-6)
