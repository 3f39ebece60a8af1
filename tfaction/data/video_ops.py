"""Frame ops for the pipelines: decode chosen JPEGs, resize, crop, flip, scale.

All functions are TF ops usable inside `tf.data`. Frames are [..., H, W, C]
(any leading dims: views, time). Crops are described by an int32 box
`[y, x, h, w]` computed once per view and applied to all its frames, so every
frame of a clip gets the same crop (as in the reference code bases). Random
boxes take a stateless seed ([2] tensor, see `samplers.make_seed`).

Example:

```python
frames = decode_jpegs(parsed["image/encoded"], indices)   # uint8 [T,h,w,3]
frames = resize_frames(tf.cast(frames, tf.float32), (256, 340))
box = multiscale_crop_box(tf.shape(frames)[-3:-1], (224, 224),
                          (1, .875, .75, .66), seed)
frames = resize_frames(crop_frames(frames, box), (224, 224))
```
"""

import tensorflow as tf

from tfaction.data import input_reader
from tfaction.data import samplers


def decode_jpegs(encoded, indices, *, channels=3,
                 dct_method="INTEGER_ACCURATE", video_id=None, crop_fn=None,
                 crop_in_decode=False):
    """Decodes only the frames at `indices`, each distinct frame once.

    Args:
        encoded: string [N], one JPEG per frame.
        indices: int [...] frame indices; values >= N are clamped to N - 1.
        channels: 3 (RGB) or 1 (flow x / y).
        dct_method: `tf.io.decode_jpeg`'s; "INTEGER_ACCURATE" matches
            libjpeg's default (PIL / OpenCV).
        video_id: optional string tensor named in the error of a frame that
            is not a JPEG.
        crop_fn: optional `(frame [height, width]) -> box [y, x, h, w]`
            (frame size read from the first chosen JPEG's header); each
            frame is cropped right after decoding, so only crops are kept.
        crop_in_decode: decode straight into the crop
            (`tf.image.decode_and_crop_jpeg`): less work, but chroma
            upsampling at the crop border differs from decode + crop by a
            few grey levels.

    Returns:
        uint8 [..., H, W, channels] (all frames of a video share a size).

    Example:
        `decode_jpegs(enc, [[0, 5, 5]])` decodes frames 0 and 5 once each.
    """
    indices = tf.convert_to_tensor(indices, tf.int32)
    vid = "?" if video_id is None else video_id
    num = tf.shape(encoded)[0]
    encoded = input_reader.require(num > 0, ["video", vid, "has no frames"],
                                   encoded)
    flat = tf.minimum(tf.reshape(indices, [-1]), num - 1)
    unique, position = tf.unique(flat)
    chosen = tf.gather(encoded, unique)
    # decode_jpeg's own error names neither the video nor the frame.
    # Vectorised `tf.io.is_jpeg` (the JPEG SOI marker + first marker byte).
    is_jpeg = tf.strings.substr(chosen, 0, 3) == b"\xff\xd8\xff"
    chosen = input_reader.require(
        tf.reduce_all(is_jpeg),
        ["frame is not a JPEG; video:", vid, "frame indices:",
         tf.boolean_mask(unique, tf.logical_not(is_jpeg))], chosen)

    def decode(b):
        return tf.io.decode_jpeg(b, channels=channels, dct_method=dct_method)
    if crop_fn is not None:
        hw = tf.image.extract_jpeg_shape(chosen[0])[:2]
        box = _checked_box(crop_fn(hw), hw)
        y, x, h, w = tf.unstack(box)
        if crop_in_decode:
            def decode(b):  # noqa: F811
                return tf.image.decode_and_crop_jpeg(
                    b, box, channels=channels, dct_method=dct_method)
        else:
            full = decode

            def decode(b):  # noqa: F811
                return full(b)[y:y + h, x:x + w]
    # One frame at a time: tf.data already decodes several videos in
    # parallel, and concurrent iterations only contend for the same cores
    # (measured ~10% slower on 2 cores with the default of 10).
    images = tf.map_fn(
        decode, chosen, parallel_iterations=1,
        fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8))
    # Copy only when some frame repeats (tf.unique keeps first-seen order).
    images = tf.cond(tf.size(unique) < tf.size(flat),
                     lambda: tf.gather(images, position), lambda: images)
    shape = tf.concat([tf.shape(indices), tf.shape(images)[1:]], 0)
    return tf.reshape(images, shape)


def _flatten(frames):
    """[..., H, W, C] → ([M, H, W, C], restore fn)."""
    shape = tf.shape(frames)
    lead = shape[:-3]
    flat = tf.reshape(frames, tf.concat([[-1], shape[-3:]], 0))

    def restore(x):
        return tf.reshape(x, tf.concat([lead, tf.shape(x)[1:]], 0))
    return flat, restore


def resize_frames(frames, size):
    """Bilinear resize (half-pixel centres, no antialias), float32 out.

    Args:
        frames: [..., H, W, C] uint8 or float.
        size: (height, width), or an int: the shorter side becomes `size`
            and the longer `int(size * long / short)` (torchvision Resize).

    Returns:
        float32 [..., h, w, C].
    """
    frames = tf.cast(frames, tf.float32)
    if isinstance(size, int):
        hw = tf.shape(frames)[-3:-1]
        short = tf.reduce_min(hw)
        scaled = tf.cast(tf.cast(hw, tf.float64) * size
                         / tf.cast(short, tf.float64), tf.int32)
        target = tf.where(hw == short, size, scaled)
    else:
        target = tf.constant(size, tf.int32)
    flat, restore = _flatten(frames)
    out = tf.image.resize(flat, target, method="bilinear", antialias=False)
    return restore(out)


def crop_frames(frames, box):
    """Crops [..., H, W, C] to box `[y, x, h, w]` (same for every frame)."""
    box = _checked_box(box, tf.shape(frames)[-3:-1])
    y, x, h, w = tf.unstack(box)
    return frames[..., y:y + h, x:x + w, :]


def _checked_box(box, hw):
    """`box` [y, x, h, w] as int32, failing clearly if it leaves `hw`."""
    box = tf.cast(box, tf.int32)
    hw = tf.cast(hw, tf.int32)
    y, x, h, w = tf.unstack(box)
    fits = (y >= 0) & (x >= 0) & (y + h <= hw[0]) & (x + w <= hw[1])
    return input_reader.require(fits, [
        "crop box [y, x, h, w] =", box, "does not fit frames of size", hw],
        box)


def fixed_crop_boxes(hw, crop_size, mode="center"):
    """Deterministic test crops.

    Args:
        hw: int [2] frame (height, width).
        crop_size: (h, w).
        mode: "center"; "three" (left/top, centre, right/bottom along the
            longer side); "five" (4 corners then centre, ActionVLAD order).

    Returns:
        int32 [V, 4] boxes `[y, x, h, w]`.
    """
    hw = tf.cast(hw, tf.int32)
    ch, cw = int(crop_size[0]), int(crop_size[1])
    dy, dx = hw[0] - ch, hw[1] - cw
    cy, cx = dy // 2, dx // 2
    if mode == "center":
        offsets = [(cy, cx)]
    elif mode == "five":
        offsets = [(0, 0), (0, dx), (dy, 0), (dy, dx), (cy, cx)]
    elif mode == "three":
        wide = hw[1] >= hw[0]
        offsets = [(tf.where(wide, cy, 0), tf.where(wide, 0, cx)), (cy, cx),
                   (tf.where(wide, cy, dy), tf.where(wide, dx, cx))]
    else:
        raise ValueError(f"test crop mode must be 'center', 'three' or "
                         f"'five', got {mode!r}")
    return tf.stack([tf.stack([tf.cast(y, tf.int32), tf.cast(x, tf.int32),
                               tf.constant(ch), tf.constant(cw)])
                     for y, x in offsets])


def _offset(seed, room):
    return samplers._rand_int([], seed, 0, tf.maximum(room, 0) + 1)


def random_crop_box(hw, crop_size, seed):
    """A `crop_size` box at a uniformly random position."""
    hw = tf.cast(hw, tf.int32)
    ch, cw = int(crop_size[0]), int(crop_size[1])
    return tf.stack([_offset(samplers.make_seed(seed, 0), hw[0] - ch),
                     _offset(samplers.make_seed(seed, 1), hw[1] - cw),
                     tf.constant(ch), tf.constant(cw)])


def multiscale_crop_box(hw, crop_size, scales, seed):
    """ActionVLAD's crop: h and w drawn independently from crop·scales.

    Height `int(crop_h * s_h)` and width `int(crop_w * s_w)`, s_h and s_w
    uniform over `scales`, at a uniformly random location (resize to
    `crop_size` afterwards).
    """
    hw = tf.cast(hw, tf.int32)
    sizes = tf.constant(scales, tf.float64)
    pick_h = samplers._rand_int([], samplers.make_seed(seed, 0), 0,
                                len(scales))
    pick_w = samplers._rand_int([], samplers.make_seed(seed, 1), 0,
                                len(scales))
    ch = tf.minimum(tf.cast(crop_size[0] * tf.gather(sizes, pick_h),
                            tf.int32), hw[0])
    cw = tf.minimum(tf.cast(crop_size[1] * tf.gather(sizes, pick_w),
                            tf.int32), hw[1])
    return tf.stack([_offset(samplers.make_seed(seed, 2), hw[0] - ch),
                     _offset(samplers.make_seed(seed, 3), hw[1] - cw),
                     ch, cw])


def tsn_multiscale_crop_box(hw, crop_size, scales, seed, max_distort=1,
                            more_fix_crop=True):
    """TSN's `GroupMultiScaleCrop` box (AdaFocus training).

    Side lengths `int(min(H, W) * s)` (snapped to the crop size within 3 px),
    (height, width) scale indices differing by at most `max_distort`, offset
    chosen from TSN's fixed grid (5 positions, 13 with `more_fix_crop`).
    """
    hw = tf.cast(hw, tf.int32)
    base = tf.cast(tf.reduce_min(hw), tf.float64)
    sizes = tf.cast(base * tf.constant(scales, tf.float64), tf.int32)

    def snap(target):
        return tf.where(tf.abs(sizes - target) < 3, target, sizes)
    size_h, size_w = snap(int(crop_size[0])), snap(int(crop_size[1]))
    pairs = [(i, j) for i in range(len(scales)) for j in range(len(scales))
             if abs(i - j) <= max_distort]
    pick = samplers._rand_int([], samplers.make_seed(seed, 0), 0, len(pairs))
    pair = tf.gather(tf.constant(pairs, tf.int32), pick)
    # TSN enumerates (height index, width index) pairs.
    ch, cw = tf.gather(size_h, pair[0]), tf.gather(size_w, pair[1])
    ws, hs = (hw[1] - cw) // 4, (hw[0] - ch) // 4
    grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]
    if more_fix_crop:
        grid += [(0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3),
                 (3, 3)]
    k = samplers._rand_int([], samplers.make_seed(seed, 1), 0, len(grid))
    gx, gy = tf.unstack(tf.gather(tf.constant(grid, tf.int32), k))
    return tf.stack([gy * hs, gx * ws, ch, cw])


def random_resized_crop_box(hw, seed, scale=(0.08, 1.0),
                            ratio=(3 / 4, 4 / 3), attempts=10):
    """torchvision `RandomResizedCrop` box (CARL: scale (0.8, 1)).

    Up to `attempts` draws of (area fraction, log-uniform aspect ratio); the
    first that fits wins; otherwise a centre crop clamped to `ratio`.
    """
    hw = tf.cast(hw, tf.int32)
    h, w = tf.cast(hw[0], tf.float64), tf.cast(hw[1], tf.float64)
    area = h * w
    s = tf.random.stateless_uniform([attempts], samplers.make_seed(seed, 0),
                                    scale[0], scale[1], tf.float64)
    log_r = tf.random.stateless_uniform(
        [attempts], samplers.make_seed(seed, 1),
        tf.math.log(tf.constant(ratio[0], tf.float64)),
        tf.math.log(tf.constant(ratio[1], tf.float64)), tf.float64)
    r = tf.exp(log_r)
    cw = tf.cast(tf.round(tf.sqrt(area * s * r)), tf.int32)
    ch = tf.cast(tf.round(tf.sqrt(area * s / r)), tf.int32)
    ok = (cw > 0) & (ch > 0) & (cw <= hw[1]) & (ch <= hw[0])
    first = tf.argmax(tf.cast(ok, tf.int32), output_type=tf.int32)
    aspect = w / h
    fb_w = tf.where(aspect < ratio[0], w, tf.where(
        aspect > ratio[1], tf.round(h * ratio[1]), w))
    fb_h = tf.where(aspect < ratio[0], tf.round(w / ratio[0]), h)
    ch = tf.where(tf.reduce_any(ok), ch[first], tf.cast(fb_h, tf.int32))
    cw = tf.where(tf.reduce_any(ok), cw[first], tf.cast(fb_w, tf.int32))
    # torchvision draws the offset inclusive of H - h.
    y = _offset(samplers.make_seed(seed, 2), hw[0] - ch)
    x = _offset(samplers.make_seed(seed, 3), hw[1] - cw)
    centre = ~tf.reduce_any(ok)
    y = tf.where(centre, (hw[0] - ch) // 2, y)
    x = tf.where(centre, (hw[1] - cw) // 2, x)
    return tf.stack([y, x, ch, cw])


def flip_left_right(frames):
    """Mirrors [..., H, W, C] horizontally."""
    return tf.reverse(frames, axis=[-2])


def normalize(frames, mean=0.0, std=1.0, bgr=False):
    """`(x - mean) / std` per channel, optionally after RGB → BGR.

    Args:
        frames: float [..., C] in [0, 255].
        mean: scalar or [C] in the output channel order.
        std: scalar or [C].
        bgr: reverse the channel order first (VGG/caffe weights).

    Returns:
        float32 frames.
    """
    frames = tf.cast(frames, tf.float32)
    if bgr:
        frames = tf.reverse(frames, axis=[-1])
    mean = tf.constant(mean, tf.float32)
    scale = 1.0 / tf.constant(std, tf.float32)
    if mean.shape.rank == 0 and scale.shape.rank == 0:
        return (frames - mean) * scale
    # TF's CPU kernel broadcasts a [W*C] row over [N*H, W*C] rows much
    # faster than a [C] vector over [..., C]; the numbers are the same.
    shape = tf.shape(frames)
    width, channels = shape[-2], shape[-1]
    rows = tf.reshape(frames, tf.stack([-1, width * channels]))
    mean = tf.tile(tf.broadcast_to(mean, [channels]), [width])
    scale = tf.tile(tf.broadcast_to(scale, [channels]), [width])
    return tf.reshape((rows - mean) * scale, shape)
