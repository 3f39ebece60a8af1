"""FCOS-style point label assignment of ActionFormer (batched, padded GT).

For every point `[t, lo, hi, s]` (see `generate_points`) and every valid
ground-truth segment `[a, b]`:

* `left = t - a`, `right = b - t`;
* centre sampling (radius `r`): with `c = (a + b) / 2`, the point qualifies
  iff `min(t - max(c - r s, a), min(c + r s, b) - t) > 0` (strict); with
  `center_sample=None` it qualifies iff `min(left, right) > 0`;
* regression range: `lo <= max(left, right) <= hi` (inclusive);
* among qualifying GTs the shortest wins; **every** qualifying GT whose length
  is `<= min_len + 1e-3` adds its label (multi-hot), clamped to `[0, 1]`;
* regression target = `(left, right) / s` of the first shortest GT. Points with
  no qualifying GT get the offsets of GT 0 (the reference's argmin of an
  all-inf row), which are meaningless; videos without any GT get zeros.

This mirrors `PtTransformer.label_points_single_video` of the reference
operation for operation (float32). GT is padded to a fixed `N` with a
validity mask, so the op runs in `tf.data` or in the train step; it is
written with `keras.ops` only.

Example:

>>> import numpy as np
>>> pts = np.array([[0, 0, 4, 1], [1, 0, 4, 1], [2, 0, 4, 1]], "float32")
>>> cls, reg = assign_point_labels(pts, np.array([[0.5, 2.5]], "float32"),
...                                np.array([1]), num_classes=2)
>>> np.asarray(cls)[:, 1].tolist()
[0.0, 1.0, 1.0]
"""

from keras import ops


def assign_point_labels(points, gt_segments, gt_labels, num_classes,
                        gt_valid=None, center_sample="radius",
                        center_sample_radius=1.5):
    """Classification and regression targets for every point.

    Args:
        points: `[P, 4]` concatenated point rows `[t, lo, hi, stride]`.
        gt_segments: `[B, N, 2]` (or `[N, 2]` for one video) GT `[start, end]`
            in level-0 grid units, padded to `N`.
        gt_labels: `[B, N]` (or `[N]`) integer class ids.
        num_classes: number of classes `C` (Python int).
        gt_valid: optional `[B, N]` (or `[N]`) bool, True for real GT rows;
            default all True.
        center_sample: `"radius"` (reference default) or `None` (point must
            lie strictly inside the GT).
        center_sample_radius: `r`, in units of the level stride (1.5).

    Returns:
        `(cls_targets, reg_targets)`: float32 `[B, P, C]` multi-hot targets
        and `[B, P, 2]` stride-normalised `(left, right)` offsets (rank 2 if
        the GT was given without a batch axis). Regression targets are only
        meaningful where `cls_targets` has a non-zero row.

    Example:

    >>> import numpy as np
    >>> pts = np.array([[0, 0, 4, 1], [1, 0, 4, 1]], "float32")
    >>> _, reg = assign_point_labels(pts, np.array([[[0.0, 2.0]]], "float32"),
    ...                              np.array([[0]]), num_classes=1)
    >>> np.asarray(reg)[0, 1].tolist()
    [1.0, 1.0]

    Reference:
        Zhang et al., ActionFormer, ECCV 2022; Tian et al., FCOS, ICCV 2019;
        `label_points_single_video` in `libs/modeling/meta_archs.py` of
        happyharrycn/actionformer_release.
    """
    if center_sample not in ("radius", None):
        raise ValueError(f"center_sample must be 'radius' or None, got "
                         f"{center_sample!r}")
    points = ops.cast(points, "float32")
    gt_segments = ops.cast(gt_segments, "float32")
    unbatched = len(gt_segments.shape) == 2
    if unbatched:
        gt_segments = gt_segments[None]
        gt_labels = ops.convert_to_tensor(gt_labels)[None]
        if gt_valid is not None:
            gt_valid = ops.convert_to_tensor(gt_valid)[None]
    gt_labels = ops.cast(gt_labels, "int32")
    if gt_valid is None:
        gt_valid = ops.ones_like(gt_labels, dtype="bool")
    gt_valid = ops.cast(gt_valid, "bool")

    t = points[None, :, 0, None]           # [1, P, 1]
    lo = points[None, :, 1, None]
    hi = points[None, :, 2, None]
    stride = points[None, :, 3, None]
    start = gt_segments[:, None, :, 0]     # [B, 1, N]
    end = gt_segments[:, None, :, 1]

    left = t - start                       # [B, P, N]
    right = end - t
    if center_sample == "radius":
        center = 0.5 * (start + end)
        t_min = center - stride * center_sample_radius
        t_max = center + stride * center_sample_radius
        cb_left = t - ops.maximum(t_min, start)
        cb_right = ops.minimum(t_max, end) - t
        inside = ops.minimum(cb_left, cb_right) > 0
    else:
        inside = ops.minimum(left, right) > 0
    max_dist = ops.maximum(left, right)
    in_range = ops.logical_and(max_dist >= lo, max_dist <= hi)

    lens = (end - start) + ops.zeros_like(left)          # [B, P, N]
    ok = ops.logical_and(ops.logical_and(inside, in_range),
                         gt_valid[:, None, :])
    inf = ops.cast(float("inf"), "float32")
    lens = ops.where(ok, lens, inf)
    min_len = ops.min(lens, axis=-1, keepdims=True)      # [B, P, 1]
    min_idx = ops.argmin(lens, axis=-1)                  # [B, P]; 0 if all inf
    min_len_mask = ops.logical_and(lens <= min_len + 1e-3, lens < inf)

    one_hot = ops.one_hot(gt_labels, num_classes, dtype="float32")  # [B,N,C]
    cls_targets = ops.einsum("bpn,bnc->bpc",
                             ops.cast(min_len_mask, "float32"), one_hot)
    cls_targets = ops.clip(cls_targets, 0.0, 1.0)

    idx = ops.cast(min_idx, "int32")[..., None]          # [B, P, 1]
    reg_targets = ops.concatenate(
        [ops.take_along_axis(left, idx, axis=-1),
         ops.take_along_axis(right, idx, axis=-1)], axis=-1)  # [B, P, 2]
    reg_targets = reg_targets / points[None, :, 3, None]
    has_gt = ops.any(gt_valid, axis=-1)[:, None, None]
    reg_targets = ops.where(has_gt, reg_targets, 0.0)

    if unbatched:
        return cls_targets[0], reg_targets[0]
    return cls_targets, reg_targets
