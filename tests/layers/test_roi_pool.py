"""Tests of `tfaction.layers.RoIPool`.

Reference: the TF Object Detection API's second-stage input,
`tf.image.crop_and_resize` to 14x14 then `tf.nn.max_pool2d` 2x2 / 2
("VALID"), on the same features and boxes.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.roi_pool import RoIPool
from tfaction.testing import run_layer_test


def _data(seed=0, b=2, h=9, w=8, c=4, r=3):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(b, h, w, c)).astype("float32")
    boxes = rng.uniform(-0.2, 1.2, size=(b, r, 4)).astype("float32")
    boxes[0, 0] = [0.0, 0.0, 1.0, 1.0]
    boxes[1, 0] = [0.7, 0.2, 0.1, 0.9]  # flipped
    return features, boxes


def _tf_roi_pool(features, boxes, crop_size=14, pool_size=2):
    b, r = boxes.shape[:2]
    crops = tf.image.crop_and_resize(
        tf.cast(features, tf.float32), tf.reshape(boxes, (-1, 4)),
        np.repeat(np.arange(b), r).astype("int32"), (crop_size, crop_size))
    if pool_size > 1:
        crops = tf.nn.max_pool2d(crops, pool_size, pool_size, "VALID")
    return tf.reshape(crops, (b, r) + tuple(crops.shape[1:]))


@pytest.mark.parametrize("crop_size,pool_size", [(14, 2), (7, 1), (8, 3)])
def test_matches_tf_ops(crop_size, pool_size):
    features, boxes = _data()
    got = np.asarray(RoIPool(crop_size, pool_size)([features, boxes]))
    want = _tf_roi_pool(features, boxes, crop_size, pool_size).numpy()
    side = crop_size // pool_size
    assert got.shape == (2, 3, side, side, 4)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_gradient_matches_tf_ops():
    features, boxes = _data(seed=1)
    upstream = np.random.default_rng(2).normal(
        size=(2, 3, 7, 7, 4)).astype("float32")

    def gradient(fn):
        x = tf.constant(features)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * upstream)
        return tf.convert_to_tensor(tape.gradient(loss, x)).numpy()

    np.testing.assert_allclose(
        gradient(lambda x: RoIPool()([x, boxes])),
        gradient(lambda x: _tf_roi_pool(x, boxes)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_boxes_float32(policy):
    # Features are rounded to the compute dtype, boxes are not: the output
    # is the float32 reference on rounded features, rounded (max-pooling
    # commutes with monotone rounding).
    features, boxes = _data(seed=3)
    layer = RoIPool(dtype=policy)
    got = layer([features, boxes])
    compute = layer.compute_dtype
    assert keras.backend.standardize_dtype(got.dtype) == compute
    rounded = tf.cast(tf.cast(features, compute), tf.float32)
    want = tf.cast(_tf_roi_pool(rounded, boxes), compute)
    np.testing.assert_array_equal(np.asarray(tf.cast(got, tf.float32)),
                                  np.asarray(tf.cast(want, tf.float32)))


def test_contract():
    features, boxes = _data(seed=4, r=2)
    run_layer_test(RoIPool, {"crop_size": 6, "pool_size": 2},
                   [features, boxes],
                   expected_output_shape=(2, 2, 3, 3, 4),
                   expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="crop_size"):
        RoIPool(crop_size=0)
    with pytest.raises(ValueError, match="pool_size"):
        RoIPool(pool_size=2.0)
    with pytest.raises(ValueError, match="exceed"):
        RoIPool(crop_size=2, pool_size=3)
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        RoIPool().build([(None, 4, 9, 9, 3), (None, 5, 4)])
    with pytest.raises(ValueError, match=r"\[B, R, 4\]"):
        RoIPool().build([(None, 9, 9, 3), (None, 5, 5)])
    with pytest.raises(ValueError, match=r"\(features, boxes\)"):
        RoIPool()(np.zeros((1, 4, 4, 2), "float32"))
