"""Dataset-side rules of temporal-localisation recipes, as tf.data stages.

ActionFormer's dataset classes (happyharrycn/actionformer_release,
`libs/datasets/{thumos14,anet,epic_kitchens,ego4d}.py`) process features and
ground truth before the model sees them; a port that skips a rule trains on
other targets. These functions apply the same rules to the parsed examples
of `tfaction.data.features_pipeline` (`features [T, C]`, `segments [S, 2]`
seconds, `segment_labels [S]`, `fps`, `feature_stride`, `feature_window`)
or to batches of them:

* `remove_duplicate_segments`: ActivityNet's `remove_duplicate_annotations`
  (an annotation shorter than `tol` seconds, or within `tol` of an earlier
  kept annotation of the same label at both ends, is dropped);
* `resample_features`: ActivityNet's `force_upsampling` (features linearly
  resampled to a fixed length; stride and window become the resampled
  spacing);
* `seconds_to_grid`: seconds -> level-0 feature-grid units, with the
  datasets' float32 operation order;
* `clip_to_feature_span`: ActivityNet's training-time rule for annotations
  past the (resampled) features: drop those starting beyond the span or
  keeping less than `trunc_thresh` of their length inside it, clamp the
  others' ends to it.

Example:

```python
ds = ds.map(remove_duplicate_segments)
ds = ds.map(lambda ex: resample_features(ex, length=192))
```
"""

import tensorflow as tf

DUPLICATE_TOLERANCE = 1e-3  # seconds, ActivityNet's `tol`


def remove_duplicate_segments(ex, tol=DUPLICATE_TOLERANCE):
    """Drops short and duplicate annotations of one parsed example.

    In annotation order, annotation j is kept when `end - start >= tol` and
    no earlier *kept* annotation has the same label with
    `|start_i - start_j| <= tol` and `|end_i - end_j| <= tol`.

    Args:
        ex: parsed example with `segments [S, 2]` and `segment_labels [S]`.
        tol: tolerance in seconds.

    Returns:
        `ex` with the kept `segments` and `segment_labels`.
    """
    segs = tf.cast(ex["segments"], tf.float64)
    labels = ex["segment_labels"]
    n = tf.shape(segs)[0]
    long_enough = (segs[:, 1] - segs[:, 0]) >= tol
    close = ((tf.abs(segs[:, None, 0] - segs[None, :, 0]) <= tol)
             & (tf.abs(segs[:, None, 1] - segs[None, :, 1]) <= tol)
             & (labels[:, None] == labels[None, :]))       # [S, S]
    earlier = tf.range(n)[None, :] < tf.range(n)[:, None]  # i < j

    def body(j, keep):
        duplicate = tf.reduce_any(close[j] & earlier[j] & keep)
        keep = tf.tensor_scatter_nd_update(
            keep, [[j]], [long_enough[j] & ~duplicate])
        return j + 1, keep

    _, keep = tf.while_loop(lambda j, _: j < n, body,
                            (tf.constant(0), tf.zeros([n], tf.bool)))
    return dict(ex, segments=tf.boolean_mask(ex["segments"], keep),
                segment_labels=tf.boolean_mask(labels, keep))


def linear_resample(feats, length):
    """`[T, C]` -> `[length, C]` as PyTorch's CPU `interpolate(mode="linear",
    align_corners=False)`, to the last bit.

    Output row `i` reads source position `src = max(0, (T / length) *
    (i + 0.5) - 0.5)` and blends rows `floor(src)` and the next one (the
    last row repeats past the end) with `l1 = src - floor(src)`,
    `l0 = 1 - l1`. PyTorch's kernel evaluates the position and the blend
    with fused multiply-adds, `src = fma(scale, i + 0.5, -0.5)` and
    `out = fma(x0, l0, x1 * l1)`: each rounds once, which float64 products
    of float32 values (exact) reproduce; float64 steps also keep graph
    rewrites (a division by a constant becoming a multiplication by its
    reciprocal) from changing float32 results.

    Args:
        feats: float32 `[T, C]`.
        length: output rows (Python int).

    Returns:
        float32 `[length, C]`.
    """
    feats = tf.convert_to_tensor(feats, tf.float32)
    t = tf.shape(feats)[0]
    scale = tf.cast(tf.cast(t, tf.float64) / float(length), tf.float32)
    centre = tf.range(length, dtype=tf.float64) + 0.5
    src = tf.cast(tf.cast(scale, tf.float64) * centre - 0.5, tf.float32)
    src = tf.maximum(src, 0.0)
    lower = tf.minimum(tf.cast(tf.floor(src), tf.int32), t - 1)
    upper = tf.minimum(lower + 1, t - 1)
    l1 = tf.clip_by_value(src - tf.cast(lower, tf.float32), 0.0, 1.0)
    l0 = 1.0 - l1
    x0 = tf.gather(feats, lower)
    far = tf.gather(feats, upper) * l1[:, None]           # rounded once
    blend = (tf.cast(x0, tf.float64) * tf.cast(l0, tf.float64)[:, None]
             + tf.cast(far, tf.float64))
    return tf.cast(blend, tf.float32)


def resample_features(ex, *, length):
    """ActivityNet's `force_upsampling`: features -> exactly `length` steps.

    `linear_resample` (PyTorch's linear interpolation, half-pixel
    centres); the effective stride becomes `((T - 1) * stride + window) /
    length` frames (computed in float64, as the reference's Python floats)
    and the window equals it (so the grid offset is half a step).

    Args:
        ex: parsed example.
        length: output steps.

    Returns:
        `ex` with resampled `features`, `feature_stride` and
        `feature_window`; segments are unchanged (seconds).
    """
    feats = ex["features"]
    t = tf.cast(tf.shape(feats)[0], tf.float64)
    stride = tf.cast(ex["feature_stride"], tf.float64)
    window = tf.cast(ex["feature_window"], tf.float64)
    new_stride = tf.cast(((t - 1.0) * stride + window) / float(length),
                         ex["feature_stride"].dtype)
    return dict(ex, features=linear_resample(feats, length),
                feature_stride=new_stride, feature_window=new_stride)


def grid_offset(feature_stride, feature_window):
    """`0.5 * window / stride` (float64, then float32 as the datasets)."""
    stride = tf.cast(feature_stride, tf.float64)
    window = tf.cast(feature_window, tf.float64)
    return tf.cast(0.5 * window / stride, tf.float32)


def seconds_to_grid(segments, fps, feature_stride, feature_window):
    """Seconds -> level-0 feature-grid units, as the datasets compute it.

    `g = t * fps / stride - 0.5 * window / stride`, each step rounded to
    float32 in that order (the datasets multiply a float32 array by Python
    scalars), per video of a batch (`segments [B, S, 2]`, the others
    `[B]`).
    """
    fps = tf.cast(fps, tf.float32)[:, None, None]
    stride = tf.cast(feature_stride, tf.float32)[:, None, None]
    offset = grid_offset(feature_stride, feature_window)[:, None, None]
    return tf.cast(segments, tf.float32) * fps / stride - offset


def clip_to_feature_span(grid, valid, length, offset, trunc_thresh):
    """ActivityNet's training-time handling of annotations past the features.

    With `span = length + offset` (the reference's `feats.shape[1] +
    feat_offset`), an annotation `[s, e]` (grid units) is dropped when
    `s >= span` or when `(min(e, span) - s) / (e - s) < trunc_thresh`
    (computed in float64, as the reference's Python floats); the others
    end at `min(e, span)`.

    Args:
        grid: `[B, S, 2]` float32 segments in grid units.
        valid: `[B, S]` bool, real (not padding) segments.
        length: `[B]` feature steps of each video.
        offset: `[B]` grid offset (`grid_offset`).
        trunc_thresh: fraction of an annotation that must lie inside.

    Returns:
        `(grid, valid)` after the rule.
    """
    span = (tf.cast(length, tf.float32) + offset)[:, None]
    start, end = grid[..., 0], grid[..., 1]
    start64, end64 = tf.cast(start, tf.float64), tf.cast(end, tf.float64)
    span64 = tf.cast(span, tf.float64)
    inside = (tf.minimum(end64, span64) - start64) / (end64 - start64)
    keep = valid & (start < span) & (inside >= trunc_thresh)
    return tf.stack([start, tf.minimum(end, span)], axis=-1), keep
