"""tfaction.ops.crop_and_resize: parity with `tf.image.crop_and_resize`.

Reference: TensorFlow's CPU op (bilinear, extrapolation 0) on the same
images and boxes, boxes flattened with `box_indices = repeat(arange(B), R)`.
Measured on CPU: eager outputs equal the op's bit for bit, XLA outputs to
float32 rounding (FMA fusion), image gradients to 5e-7.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfaction.ops.crop_and_resize import crop_and_resize


def _tf_crops(images, boxes, crop_size):
    """`tf.image.crop_and_resize` in the [B, R, 4] -> [B, R, h, w, C] layout."""
    b, r = boxes.shape[:2]
    crops = tf.image.crop_and_resize(
        images, tf.reshape(boxes, (-1, 4)),
        np.repeat(np.arange(b), r).astype("int32"), crop_size,
        method="bilinear", extrapolation_value=0.0)
    return tf.reshape(crops, (b, r) + tuple(crops.shape[1:]))


def _data(seed=0, b=2, h=7, w=9, c=3, r=6):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(b, h, w, c)).astype("float32")
    # Inside, crossing the border, fully outside, flipped (y1 > y2).
    boxes = rng.uniform(-0.4, 1.4, size=(b, r, 4)).astype("float32")
    boxes[0, 0] = [0.0, 0.0, 1.0, 1.0]        # the whole image
    boxes[0, 1] = [0.3, 0.4, 0.3, 0.4]        # a point
    boxes[0, 2] = [0.8, 0.1, 0.2, 0.9]        # flipped rows
    boxes[1, 0] = [0.2, 0.7, 0.6, 0.7]        # zero width
    boxes[1, 1] = [1.2, 1.1, 1.5, 1.6]        # entirely outside
    boxes[1, 2] = [-0.5, -0.2, 1.5, 1.2]      # larger than the image
    return images, boxes


@pytest.mark.parametrize("crop_size", [(5, 4), (14, 14), (1, 3), (3, 1),
                                       (1, 1)])
def test_matches_tf_op(crop_size):
    images, boxes = _data()
    want = _tf_crops(images, boxes, crop_size).numpy()
    got = np.asarray(crop_and_resize(images, boxes, crop_size))
    assert got.shape == (2, 6) + crop_size + (3,)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(got == 0, want == 0)


def test_square_int_crop_size():
    images, boxes = _data()
    np.testing.assert_array_equal(
        np.asarray(crop_and_resize(images, boxes, 4)),
        np.asarray(crop_and_resize(images, boxes, (4, 4))))


def _edge_boxes(n=160, seed=1):
    """Boxes ending at the border (1.0): TF's float32 rounding puts the
    last sample of some of them an ulp past the border (crop row = 0)."""
    rng = np.random.default_rng(seed)
    boxes = np.empty((1, n, 4), "float32")
    boxes[0, :, 0] = rng.uniform(0, 1, n)
    boxes[0, :, 1] = rng.uniform(0, 1, n)
    boxes[0, :, 2:] = 1.0
    return boxes


def test_border_rounding_like_tf_eager_and_xla():
    images = np.random.default_rng(2).uniform(
        1, 2, size=(1, 25, 25, 1)).astype("float32")
    boxes = _edge_boxes()
    want = _tf_crops(images, boxes, (14, 14)).numpy()
    # The case exists: TF zeroes the last row / column of some boxes.
    assert (want[0, :, -1, :, 0] == 0).all(axis=-1).any()
    assert (want[0, :, :, -1, 0] == 0).all(axis=-1).any()
    jitted = tf.function(lambda i, b: crop_and_resize(i, b, 14),
                         jit_compile=True)
    for got in (crop_and_resize(images, boxes, 14), jitted(images, boxes)):
        got = np.asarray(got)
        np.testing.assert_array_equal(got == 0, want == 0)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_xla_matches_eager_and_tf():
    images, boxes = _data(seed=3)
    jitted = tf.function(lambda i, b: crop_and_resize(i, b, (6, 5)),
                         jit_compile=True)
    got = np.asarray(jitted(images, boxes))
    np.testing.assert_allclose(got, _tf_crops(images, boxes, (6, 5)),
                               atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        got, np.asarray(crop_and_resize(images, boxes, (6, 5))), atol=1e-5,
        rtol=0)


def test_dynamic_shapes_in_a_graph():
    images, boxes = _data(seed=4)
    fn = tf.function(lambda i, b: crop_and_resize(i, b, (3, 4)),
                     input_signature=[
                         tf.TensorSpec((None, None, None, 3), tf.float32),
                         tf.TensorSpec((None, None, 4), tf.float32)])
    np.testing.assert_allclose(fn(images, boxes),
                               _tf_crops(images, boxes, (3, 4)), atol=1e-5,
                               rtol=0)


def _image_gradient(fn, images, boxes, upstream):
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.cast(fn(x, boxes), tf.float32) * upstream)
    return tf.convert_to_tensor(tape.gradient(loss, x)).numpy()


def test_image_gradient_matches_tf():
    images, boxes = _data(seed=5)
    upstream = np.random.default_rng(6).normal(
        size=(2, 6, 5, 4, 3)).astype("float32")
    want = _image_gradient(lambda x, b: _tf_crops(x, b, (5, 4)), images,
                           boxes, upstream)
    got = _image_gradient(lambda x, b: crop_and_resize(x, b, (5, 4)),
                          images, boxes, upstream)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)

    @tf.function(jit_compile=True)
    def xla_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(crop_and_resize(x, boxes, (5, 4)) * upstream)
        return tape.gradient(loss, x)

    np.testing.assert_allclose(xla_gradient(tf.constant(images)), want,
                               atol=1e-5, rtol=0)


def test_boxes_get_no_gradient():
    images, boxes = _data(seed=7)
    b = tf.constant(boxes)
    with tf.GradientTape() as tape:
        tape.watch(b)
        loss = tf.reduce_sum(crop_and_resize(images, b, 3))
    assert tape.gradient(loss, b) is None


def test_float16_and_uint8_images():
    images, boxes = _data(seed=8)
    for dtype, scale in (("float16", 1.0), ("uint8", 40.0)):
        x = np.clip(images * scale + (100 if dtype == "uint8" else 0), 0,
                    255 if dtype == "uint8" else None).astype(dtype)
        got = np.asarray(crop_and_resize(x, boxes, (5, 4)))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, _tf_crops(x, boxes, (5, 4)),
                                   atol=1e-5 * scale, rtol=0, err_msg=dtype)


def test_float16_image_gradient_close_to_tf():
    # TF accumulates float16 gradients per contribution in float16; both
    # agree to float16 rounding.
    images, boxes = _data(seed=9)
    upstream = np.random.default_rng(10).normal(
        size=(2, 6, 4, 4, 3)).astype("float32")
    x = images.astype("float16")
    want = _image_gradient(lambda i, b: _tf_crops(i, b, (4, 4)), x, boxes,
                           upstream)
    got = _image_gradient(lambda i, b: crop_and_resize(i, b, (4, 4)), x,
                          boxes, upstream)
    np.testing.assert_allclose(got.astype("float32"),
                               want.astype("float32"), atol=1e-2, rtol=1e-2)


def test_bad_arguments():
    images, boxes = _data()
    with pytest.raises(ValueError, match="crop_size"):
        crop_and_resize(images, boxes, 0)
    with pytest.raises(ValueError, match="crop_size"):
        crop_and_resize(images, boxes, (3, 4, 5))
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        crop_and_resize(images[0], boxes, 3)
    with pytest.raises(ValueError, match=r"\[B, R, 4\]"):
        crop_and_resize(images, boxes[..., :3], 3)
