"""Tests of `tfaction.layers.SpatioTemporalRoIPool`.

Reference: per frame, `tf.image.crop_and_resize` to the crop size then
`tf.nn.max_pool2d` ("VALID"), the same box in every frame.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.roi_pool import RoIPool
from tfaction.layers.spatio_temporal_roi_pool import SpatioTemporalRoIPool
from tfaction.testing import run_layer_test


def _data(seed=0, b=2, t=3, h=9, w=8, c=4, r=3):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(b, t, h, w, c)).astype("float32")
    boxes = rng.uniform(-0.2, 1.2, size=(b, r, 4)).astype("float32")
    boxes[0, 0] = [0.0, 0.0, 1.0, 1.0]
    return features, boxes


def _tf_tube_pool(features, boxes, crop_size, pool_size):
    b, t = features.shape[:2]
    r = boxes.shape[1]
    frames = []
    for k in range(t):
        crops = tf.image.crop_and_resize(
            features[:, k], boxes.reshape(-1, 4),
            np.repeat(np.arange(b), r).astype("int32"),
            (crop_size, crop_size))
        if pool_size > 1:
            crops = tf.nn.max_pool2d(crops, pool_size, pool_size, "VALID")
        frames.append(tf.reshape(crops, (b, r) + tuple(crops.shape[1:])))
    return tf.stack(frames, axis=2).numpy()


@pytest.mark.parametrize("crop_size,pool_size", [(14, 2), (5, 1)])
def test_matches_tf_ops_per_frame(crop_size, pool_size):
    features, boxes = _data()
    got = np.asarray(SpatioTemporalRoIPool(crop_size, pool_size)(
        [features, boxes]))
    side = crop_size // pool_size
    assert got.shape == (2, 3, 3, side, side, 4)
    np.testing.assert_allclose(
        got, _tf_tube_pool(features, boxes, crop_size, pool_size),
        atol=1e-5, rtol=0)


def test_equals_roi_pool_frame_by_frame():
    features, boxes = _data(seed=1, t=2)
    tube = np.asarray(SpatioTemporalRoIPool()([features, boxes]))
    for k in range(2):
        np.testing.assert_array_equal(
            tube[:, :, k], np.asarray(RoIPool()([features[:, k], boxes])))


def test_contract():
    features, boxes = _data(seed=2, t=2, r=2)
    run_layer_test(SpatioTemporalRoIPool, {"crop_size": 4, "pool_size": 2},
                   [features, boxes],
                   expected_output_shape=(2, 2, 2, 2, 2, 4),
                   expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"\[B, T, H, W, C\]"):
        SpatioTemporalRoIPool().build([(None, 9, 9, 3), (None, 5, 4)])
    with pytest.raises(ValueError, match=r"\[B, R, 4\]"):
        SpatioTemporalRoIPool().build([(None, 2, 9, 9, 3), (None, 5)])
