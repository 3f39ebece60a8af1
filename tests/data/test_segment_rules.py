"""`tfaction.data.segment_rules` against direct ports of the authors' rules.

The parity of the whole data path with the authors' datasets is checked on
the reference bundles (`tests/tasks/test_actionformer_task_parity.py`);
here each rule is checked on its own, edge cases included.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfaction.data import segment_rules


def _reference_dedup(segments, labels, tol=1e-3):
    """ActivityNet's `remove_duplicate_annotations`, as a list loop."""
    kept = []
    for (s, e), label in zip(segments, labels):
        valid = (e - s) >= tol
        for ks, ke, kl in kept:
            if abs(s - ks) <= tol and abs(e - ke) <= tol and label == kl:
                valid = False
                break
        if valid:
            kept.append((s, e, label))
    return kept


def test_remove_duplicate_segments_matches_the_reference_loop():
    segments = [[1.0, 5.0], [1.0004, 5.0009],   # duplicate of 0
                [1.0, 5.0],                     # same times, other label
                [1.0011, 5.0], [1.0019, 5.0],   # 4 is a duplicate of 3 only
                [7.0, 7.0005],                  # too short
                [7.0003, 7.0015],               # long enough; 5 not kept
                [9.0, 9.5]]
    labels = [0, 0, 1, 0, 0, 2, 2, 0]
    ex = {"segments": tf.constant(segments, tf.float64),
          "segment_labels": tf.constant(labels, tf.int32)}
    out = segment_rules.remove_duplicate_segments(ex)
    want = _reference_dedup(segments, labels)
    removed = [i for i, seg in enumerate(segments)
               if tuple(seg) + (labels[i],) not in want]
    assert removed == [1, 4, 5]
    np.testing.assert_array_equal(out["segments"],
                                  [[s, e] for s, e, _ in want])
    np.testing.assert_array_equal(out["segment_labels"],
                                  [label for _, _, label in want])
    empty = segment_rules.remove_duplicate_segments(
        {"segments": tf.zeros([0, 2], tf.float64),
         "segment_labels": tf.zeros([0], tf.int32)})
    assert empty["segments"].shape == (0, 2)


def _torch_linear(feats, length):
    """PyTorch's CPU linear interpolation (align_corners=False), float64
    arithmetic on its float32 source positions."""
    t = feats.shape[0]
    scale = np.float32(t) / np.float32(length)
    src = (np.float64(scale) * (np.arange(length) + 0.5) - 0.5).astype(
        np.float32)
    src = np.maximum(src, np.float32(0))
    lo = np.minimum(np.floor(src).astype(int), t - 1)
    hi = np.minimum(lo + 1, t - 1)
    l1 = np.clip(src - lo, 0, 1).astype(np.float32)
    l0 = np.float32(1) - l1
    return (feats[lo].astype(np.float64) * l0[:, None]
            + (feats[hi] * l1[:, None]).astype(np.float64)).astype(
                np.float32)


@pytest.mark.parametrize("t, length", [(7, 12), (130, 192), (311, 192),
                                       (1, 5), (192, 192)])
def test_linear_resample_is_pytorch_linear_interpolation(t, length):
    feats = np.random.default_rng(t).normal(size=(t, 5)).astype(np.float32)
    want = _torch_linear(feats, length)
    got = segment_rules.linear_resample(feats, length)
    np.testing.assert_array_equal(got, want)
    graph = tf.function(lambda x: segment_rules.linear_resample(x, length))
    np.testing.assert_array_equal(graph(feats), want)
    if t == length:
        np.testing.assert_array_equal(got, feats)


def test_resample_features_sets_the_effective_stride():
    ex = {"features": tf.zeros([130, 3]), "feature_stride": tf.constant(16.0),
          "feature_window": tf.constant(16.0),
          "segments": tf.constant([[1.0, 2.0]], tf.float64)}
    out = segment_rules.resample_features(ex, length=192)
    stride = np.float32((129 * 16 + 16) / 192)
    assert out["features"].shape == (192, 3)
    assert float(out["feature_stride"]) == stride
    assert float(out["feature_window"]) == stride
    np.testing.assert_array_equal(out["segments"], ex["segments"])


def test_seconds_to_grid_operation_order():
    seconds = np.array([[[1.5, 4.0], [33.3, 47.9]]], np.float32)
    fps, stride, window = 15.0, 10.833333, 10.833333
    got = segment_rules.seconds_to_grid(seconds, [fps], [stride], [window])
    # seconds * fps / stride - offset, each step rounded to float32
    f32 = np.float32
    want = (seconds * f32(fps)) / f32(stride) - f32(0.5 * window / stride)
    np.testing.assert_array_equal(got, want)


def test_clip_to_feature_span_rule():
    # span = 192 + 0.5; grid segments of one video
    grid = np.array([[[10.0, 20.0],       # inside: unchanged
                      [180.0, 200.0],     # 12.5 of 20 inside: clamped
                      [185.0, 215.0],     # 7.5 of 30 inside: dropped
                      [192.5, 195.0],     # starts at the span: dropped
                      [191.0, 194.0],     # exactly half inside: clamped
                      [0.0, 0.0]]], np.float32)
    valid = np.array([[True] * 5 + [False]])
    out, keep = segment_rules.clip_to_feature_span(
        tf.constant(grid), tf.constant(valid), tf.constant([192]),
        tf.constant([0.5]), 0.5)
    np.testing.assert_array_equal(keep, [[True, True, False, False, True,
                                          False]])
    np.testing.assert_array_equal(np.asarray(out)[0, [0, 1, 4]],
                                  [[10.0, 20.0], [180.0, 192.5],
                                   [191.0, 192.5]])
