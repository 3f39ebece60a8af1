"""ActionFormer inference decoding: network outputs -> pre-NMS candidates.

Two steps of the reference `PtTransformer.inference_single_video` /
`postprocessing` (happyharrycn/actionformer_release,
`libs/modeling/meta_archs.py`), written with TensorFlow ops so that they
run eagerly or inside a `tf.function` / serving graph:

* `decode_candidates`: per level, sigmoid scores (times the mask),
  flattened in (time, class) order; keep scores > `pre_nms_thresh`, sort
  descending, keep the first `pre_nms_topk`; decode
  `[t - o_left * s, t + o_right * s]` in level-0 grid units; drop segments
  of length <= `duration_thresh`; concatenate the levels. The result is the
  input of Soft-NMS.
* `grid_to_seconds`: after NMS, `(g * feat_stride + 0.5 * num_frames) / fps`,
  values <= 0 set to 0 and values >= duration set to duration.

Both work on one video (the reference runs inference with batch 1). The
candidate count is data dependent, so `decode_candidates` does not compile
with XLA (`tf.where` with one argument); keep it outside `jit_compile`.

Example:

```python
segs, scores, labels = decode_candidates(
    [l[0] for l in cls_logits], [o[0] for o in offsets],
    [m[0] for m in masks], strides=[1, 2, 4, 8, 16, 32])
# ... Soft-NMS in grid units ...
segs_sec = grid_to_seconds(nms_segs, fps=30.0, feat_stride=4,
                           num_frames=16, duration=24.13)
```
"""

import numpy as np
import tensorflow as tf
from keras import ops


def _decode_level(logits, offsets, mask, stride, pre_nms_thresh,
                  pre_nms_topk, duration_thresh):
    logits = tf.cast(logits, tf.float32)
    offsets = tf.cast(offsets, tf.float32)
    num_classes = tf.shape(logits, out_type=tf.int64)[-1]
    prob = tf.sigmoid(logits)
    if mask is not None:
        prob = prob * tf.cast(mask, tf.float32)[:, None]
    flat = tf.reshape(prob, [-1])  # flat index = t * num_classes + c
    keep = tf.where(flat > pre_nms_thresh)[:, 0]  # ascending flat index
    kept = tf.gather(flat, keep)
    num_topk = tf.minimum(tf.size(kept), pre_nms_topk)
    # top_k puts the lower index first among equal values (a stable
    # descending sort). The reference's `sort(descending=True)` is not
    # stable beyond 16 elements (`tfaction.ops.torch_sort`): candidates
    # whose scores tie exactly may be ranked in another order.
    scores, order = tf.math.top_k(kept, k=num_topk, sorted=True)
    flat_idx = tf.gather(keep, order)
    point_idx = flat_idx // num_classes
    labels = flat_idx % num_classes
    points = tf.cast(point_idx, tf.float32) * float(stride)
    level_offsets = tf.gather(offsets, point_idx)
    left = points - level_offsets[:, 0] * float(stride)
    right = points + level_offsets[:, 1] * float(stride)
    keep_long = (right - left) > duration_thresh
    segments = tf.boolean_mask(tf.stack([left, right], axis=-1), keep_long)
    return (segments, tf.boolean_mask(scores, keep_long),
            tf.boolean_mask(labels, keep_long))


def decode_candidates(cls_logits, offsets, strides, masks=None, *,
                      pre_nms_thresh=0.001, pre_nms_topk=2000,
                      duration_thresh=0.05):
    """Pre-NMS candidates of one video, in level-0 grid units.

    Level l has points `t = i * strides[l]`, i = 0..T_l-1 (no half-stride
    offset). Per level, in order: `p = sigmoid(logits) * mask` flattened
    over (T_l, num_classes) (point-major); keep `p > pre_nms_thresh`; sort
    descending (ties: lower flat index first) and keep at most
    `pre_nms_topk`; decode `[t - o_left * s, t + o_right * s]`; drop
    segments with `right - left <= duration_thresh`. Levels are
    concatenated in order. Computed in float32.

    Args:
        cls_logits: list of `[T_l, num_classes]` logits, one per level.
        offsets: list of `[T_l, 2]` (left, right) offsets in units of the
            level stride (`RegressionHead` output).
        strides: list of int level strides (`fpn_strides`).
        masks: optional list of boolean `[T_l]` (True = valid step).
        pre_nms_thresh: score threshold (strict `>`).
        pre_nms_topk: maximum number of candidates per level.
        duration_thresh: minimum segment length (strict `>`), grid units.

    Returns:
        `(segments [N, 2] float32, scores [N] float32, labels [N] int64)`.

    Reference:
        `PtTransformer.inference_single_video` in
        `libs/modeling/meta_archs.py` of happyharrycn/actionformer_release.
    """
    num_levels = len(cls_logits)
    if len(offsets) != num_levels or len(strides) != num_levels:
        raise ValueError(
            f"{num_levels} logit levels, {len(offsets)} offset levels and "
            f"{len(strides)} strides")
    if masks is None:
        masks = [None] * num_levels
    if len(masks) != num_levels:
        raise ValueError(f"{num_levels} levels but {len(masks)} masks")
    outs = [_decode_level(l, o, m, s, pre_nms_thresh, int(pre_nms_topk),
                          duration_thresh)
            for l, o, m, s in zip(cls_logits, offsets, masks, strides)]
    return tuple(tf.concat(parts, axis=0) for parts in zip(*outs))


def grid_to_seconds(segments, fps, feat_stride, num_frames, duration):
    """Level-0 grid coordinates -> seconds, clamped to `[0, duration]`.

    `t_sec = (g * feat_stride + 0.5 * num_frames) / fps`; then values
    `<= 0` become 0 and values `>= duration` become `duration`. Computed in
    float32 like the reference (a float32 tensor with Python scalars). The
    inverse of the dataset's `g = t_sec * fps / feat_stride - 0.5 *
    num_frames / feat_stride`.

    Args:
        segments: `[..., 2]` segments in grid units (any float dtype).
        fps: frames per second of the features' video.
        feat_stride: frames between consecutive feature steps (after any
            downsampling).
        num_frames: frames per feature clip.
        duration: video duration in seconds.
        (The four scalars may also be tensors broadcastable to `segments`.)

    Returns:
        float32 values of the shape of `segments`, in seconds: a NumPy
        array when no argument is a tensor (no eager ops on the host), else
        a tensor.

    Reference:
        `PtTransformer.postprocessing` in `libs/modeling/meta_archs.py` of
        happyharrycn/actionformer_release.
    """
    values = (segments, fps, feat_stride, num_frames, duration)
    if any(tf.is_tensor(v) for v in values):
        cast, where = (lambda v: ops.cast(v, "float32")), ops.where
    else:  # all on the host: the same float32 operations in NumPy
        cast, where = (lambda v: np.asarray(v, np.float32)), np.where
    segs, fps, feat_stride, num_frames, duration = (cast(v) for v in values)
    seconds = (segs * feat_stride + 0.5 * num_frames) / fps
    seconds = where(seconds <= 0.0, cast(0.0), seconds)
    return where(seconds >= duration, duration, seconds)
