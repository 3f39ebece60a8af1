import numpy as np
import pytest
import tensorflow as tf

from tfaction.ops.label_assignment import assign_point_labels
from tfaction.ops.point_generator import generate_points

RANGES = [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]]
STRIDES = [1, 2, 4, 8, 16, 32]


def _points(n=64):
    return np.concatenate([np.asarray(p)
                           for p in generate_points(n, STRIDES, RANGES)])


def test_multi_hot_for_equal_shortest_segments():
    pts = _points()
    segs = np.array([[10.0, 13.0], [10.0, 13.0], [8.0, 40.0]], np.float32)
    cls, reg = assign_point_labels(pts, segs, np.array([1, 2, 0]), 3)
    cls, reg = np.asarray(cls), np.asarray(reg)
    row = 11  # level 0, t = 11: inside both short segments
    np.testing.assert_array_equal(cls[row], [0, 1, 1])
    np.testing.assert_allclose(reg[row], [1.0, 2.0])


def test_centre_sampling_is_strict_and_range_inclusive():
    pts = np.array([[t, 0, 2, 1] for t in range(8)], np.float32)
    # centre 4, radius 1.5 -> (2.5, 5.5); max(left, right) <= 2 needed.
    cls, _ = assign_point_labels(pts, np.array([[2.0, 6.0]], np.float32),
                                 np.array([0]), 1)
    np.testing.assert_array_equal(np.asarray(cls)[:, 0],
                                  [0, 0, 0, 0, 1, 0, 0, 0])
    cls, _ = assign_point_labels(pts, np.array([[2.0, 6.0]], np.float32),
                                 np.array([0]), 1, center_sample=None)
    np.testing.assert_array_equal(np.asarray(cls)[:, 0],
                                  [0, 0, 0, 0, 1, 0, 0, 0])
    cls, _ = assign_point_labels(pts, np.array([[2.0, 5.0]], np.float32),
                                 np.array([0]), 1, center_sample=None)
    np.testing.assert_array_equal(np.asarray(cls)[:, 0],
                                  [0, 0, 0, 1, 1, 0, 0, 0])


def test_padding_and_empty_videos():
    pts = _points()
    segs = np.array([[[3.0, 9.0], [20.0, 30.0], [0.0, 0.0]],
                     [[1e4, -5.0], [7.0, 7.5], [0.0, 0.0]]], np.float32)
    labels = np.array([[0, 1, 0], [1, 0, 1]])
    valid = np.array([[True, True, False], [False, False, False]])
    cls, reg = assign_point_labels(pts, segs, labels, 2, gt_valid=valid)
    cls, reg = np.asarray(cls), np.asarray(reg)
    c0, r0 = assign_point_labels(pts, segs[0, :2], labels[0, :2], 2)
    np.testing.assert_array_equal(cls[0], np.asarray(c0))
    np.testing.assert_array_equal(reg[0], np.asarray(r0))
    assert not cls[1].any() and not reg[1].any()


def test_runs_in_tf_data():
    pts = _points()
    ds = tf.data.Dataset.from_tensor_slices(
        (np.array([[[3.0, 9.0], [0.0, 0.0]]], np.float32),
         np.array([[1, 0]]), np.array([[True, False]])))
    ds = ds.map(lambda s, lb, v: assign_point_labels(pts, s, lb, 2,
                                                     gt_valid=v))
    cls, reg = next(iter(ds))
    want_c, want_r = assign_point_labels(pts, np.array([[3.0, 9.0]]),
                                         np.array([1]), 2)
    np.testing.assert_array_equal(cls.numpy(), np.asarray(want_c))
    np.testing.assert_array_equal(reg.numpy(), np.asarray(want_r))


def test_bad_center_sample():
    with pytest.raises(ValueError):
        assign_point_labels(_points(), np.zeros((1, 2)), np.zeros(1), 1,
                            center_sample="box")
