"""`crop_and_resize`: bilinear box crops with gathers, XLA-compilable.

`tf.image.crop_and_resize` has no XLA kernel, so a detection head that uses
it cannot run under `jit_compile=True`. This module reproduces its bilinear
sampling (extrapolation value 0) with `keras.ops` gathers and bilinear
weights, with the same float32 arithmetic as TensorFlow's CPU kernel, so
the values agree to float32 rounding and the gradient with respect to the
images is the same scatter of bilinear weights.

Example:

>>> import numpy as np
>>> from tfaction.ops.crop_and_resize import crop_and_resize
>>> images = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
>>> boxes = np.array([[[0.0, 0.0, 1.0, 1.0]]], "float32")
>>> crops = crop_and_resize(images, boxes, 2)  # the four corners
>>> np.asarray(crops)[0, 0, :, :, 0]
array([[ 0.,  3.],
       [12., 15.]], dtype=float32)
"""

from keras import ops


def _crop_size(crop_size):
    if isinstance(crop_size, int):
        size = (crop_size, crop_size)
    else:
        size = tuple(crop_size)
    if len(size) != 2 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1
            for s in size):
        raise ValueError(f"crop_and_resize: crop_size must be a positive int "
                         f"or a pair of positive ints, got {crop_size!r}")
    return size


def _f32(x):
    return ops.cast(x, "float32")


def _f64(x):
    return ops.cast(x, "float64")


def _sample_positions(start, end, length, crop):
    """Sample positions along one axis, as TensorFlow's kernel computes them.

    TensorFlow computes, in float32 with one rounding per operation,
    `scale = (end - start) * (L - 1) / (crop - 1)` and `pos_i = start *
    (L - 1) + i * scale`. Whether a sample near the border lies inside the
    image depends on those roundings (a box ending at 1.0 may put its last
    sample an ulp past `L - 1`, where TF returns 0), so they are
    reproduced exactly, also under XLA, which otherwise (a) replaces the
    division by the constant `crop - 1` with a multiplication by its
    rounded reciprocal and (b) fuses a multiplication with the following
    addition into one FMA. Hence: the divisor is a value XLA cannot fold
    (`crop - 1`, or 1 for NaN boxes); the products are formed exactly in
    float64 and rounded to float32 once (a float32 times an integer below
    2^29 is exact in float64), so no float32 product feeds an addition;
    and no float32 value rounded from float64 is widened again (XLA may
    drop such conversion pairs).

    Args:
        start, end: float32 `[B, R]` normalised box edges.
        length: image length along the axis (int or scalar tensor).
        crop: number of samples (static int).

    Returns:
        `(lower, upper, lerp, valid)`: int32 `[B, R, crop]` floor / ceil
        pixel indices (0 for samples outside the image), float32
        interpolation weights of `upper`, and whether the sample lies
        inside `[0, length - 1]` (outside, the crop is 0).
    """
    extent = length - 1
    if crop > 1:
        span = _f32(_f64(end - start) * _f64(extent))
        divisor = ops.where(ops.isnan(start), 1.0, float(crop - 1))
        scale = span / divisor
        offset = _f32(_f64(start) * _f64(extent))
        steps = _f32(ops.arange(crop, dtype="float64")
                     * _f64(scale)[..., None])
        pos = offset[..., None] + steps
    else:
        # One sample: the box centre, `0.5 * (start + end) * (L - 1)`.
        pos = (0.5 * (start + end) * _f32(extent))[..., None]
    extent = _f32(extent)
    valid = ops.logical_and(pos >= 0.0, pos <= extent)
    # Samples outside the image (or NaN) read pixel 0 and are replaced by
    # 0 afterwards; this keeps every gather index in range.
    pos = ops.where(valid, pos, ops.zeros_like(pos))
    lower = ops.floor(pos)
    lerp = pos - lower
    return (ops.cast(lower, "int32"), ops.cast(ops.ceil(pos), "int32"),
            lerp, valid)


def crop_and_resize(images, boxes, crop_size):
    """Bilinear crops of `R` boxes per image, resized to `crop_size`.

    Reproduces `tf.image.crop_and_resize(method="bilinear",
    extrapolation_value=0)` in a batched layout (box `r` of image `b` is
    cropped from image `b`; no `box_indices`). For output row `i` of a crop
    of height `h` the sample row is `y = y1 * (H - 1) + i * (y2 - y1) *
    (H - 1) / (h - 1)` (the box edges are sampled), or the box centre
    `0.5 * (y1 + y2) * (H - 1)` when `h == 1`; columns likewise. Each sample
    interpolates bilinearly between the pixels `floor` and `ceil` of its
    position; samples outside `[0, H - 1] x [0, W - 1]` are 0. Boxes may
    cross the image border and may be flipped (`y1 > y2` gives an
    upside-down crop), as in TensorFlow.

    The sample positions, inside/outside decisions and interpolation
    weights are TensorFlow's CPU kernel's, bit for bit, eagerly and under
    XLA (its float32 roundings are reproduced, see `_sample_positions`);
    the interpolation runs in float32 on pixel values cast to float32 after
    the gather, as in the kernel, so the crops equal the TF op's (XLA may
    fuse the interpolation into FMAs: last-bit differences), also for
    float16 / bfloat16 images. Like the TF op, the crops are float32
    whatever the image dtype. Differentiable with respect to `images` (the
    gradient scatters the bilinear weights, as TF's
    `CropAndResizeGradImage`); the boxes get no gradient (they are wrapped
    in `stop_gradient`, as proposals are constants for a second-stage head
    in the TF Object Detection API). Uses `keras.ops` only and compiles
    with XLA. Boxes must be finite (the TF op rejects others; here a NaN or
    infinite box edge gives zero crops).

    Args:
        images: `[B, H, W, C]` images or feature maps (any real dtype).
        boxes: `[B, R, 4]` normalised `[y1, x1, y2, x2]` boxes; computed in
            float32 (pass float32 boxes: float16 boxes are already rounded).
        crop_size: int `h` (square crops) or a pair `(h, w)`, each >= 1.

    Returns:
        float32 `[B, R, h, w, C]` crops.

    Raises:
        ValueError: wrong ranks, a last box axis other than 4, or a bad
            `crop_size`.

    Example:

    >>> import numpy as np
    >>> images = np.random.rand(2, 25, 25, 8).astype("float32")
    >>> boxes = np.random.rand(2, 3, 4).astype("float32")
    >>> tuple(crop_and_resize(images, boxes, 14).shape)
    (2, 3, 14, 14, 8)

    Reference:
        TensorFlow, `tf.image.crop_and_resize` (CPU kernel `CropAndResize`
        and its image gradient); Huang et al., "Speed/accuracy trade-offs
        for modern convolutional object detectors", CVPR 2017 (the TF Object
        Detection API's crop-and-resize RoI pooling).
    """
    crop_h, crop_w = _crop_size(crop_size)
    images = ops.convert_to_tensor(images)
    boxes = ops.convert_to_tensor(boxes)
    if len(images.shape) != 4:
        raise ValueError(f"crop_and_resize: images must be [B, H, W, C], got "
                         f"shape {images.shape}")
    if len(boxes.shape) != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"crop_and_resize: boxes must be [B, R, 4], got "
                         f"shape {boxes.shape}")
    boxes = ops.cast(ops.stop_gradient(boxes), "float32")
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]

    top, bottom, y_lerp, y_valid = _sample_positions(
        boxes[..., 0], boxes[..., 2], height, crop_h)
    left, right, x_lerp, x_valid = _sample_positions(
        boxes[..., 1], boxes[..., 3], width, crop_w)

    # Row-major indices into the images flattened to [B * H * W, C].
    flat = ops.reshape(images, (-1, channels))
    image_base = ops.arange(batch, dtype="int32") * (height * width)
    image_base = ops.reshape(image_base, (-1, 1, 1, 1))
    top = image_base + (top * width)[..., None]
    bottom = image_base + (bottom * width)[..., None]
    left = left[:, :, None, :]
    right = right[:, :, None, :]

    def gather(rows, cols):  # -> float32 [B, R, h, w, C]
        return ops.cast(ops.take(flat, rows + cols, axis=0), "float32")

    x_lerp = x_lerp[:, :, None, :, None]
    y_lerp = y_lerp[:, :, :, None, None]
    top_left = gather(top, left)
    upper = top_left + (gather(top, right) - top_left) * x_lerp
    bottom_left = gather(bottom, left)
    lower = bottom_left + (gather(bottom, right) - bottom_left) * x_lerp
    crops = upper + (lower - upper) * y_lerp
    valid = ops.logical_and(y_valid[:, :, :, None], x_valid[:, :, None, :])
    return ops.where(valid[..., None], crops, ops.zeros_like(crops))
