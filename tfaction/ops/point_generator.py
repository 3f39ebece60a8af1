"""Anchor-free point grid of a temporal feature pyramid (ActionFormer).

Every time step of every pyramid level is a "point". Level `l` with stride
`s_l` has points `t = 0, s_l, 2 s_l, ...` in level-0 grid units (no half-stride
offset unless `use_offset`), each stored as the row `[t, lo_l, hi_l, s_l]`,
where `[lo_l, hi_l]` is the level's regression range. The rows are what the
reference `PointGenerator` (`libs/modeling/loc_generators.py`) returns; the
function has no weights, so it is a plain op rather than a layer.

Built with `keras.ops`, so it works eagerly, inside `tf.function` and in
`tf.data` (the sequence length may be a scalar tensor).

Example:

>>> pts = generate_points(8, [1, 2], [[0, 4], [4, 10000]])
>>> [tuple(p.shape) for p in pts]
[(8, 4), (4, 4)]
"""

import math

from keras import ops


def generate_points(seq_len, fpn_strides, regression_range, use_offset=False,
                    dtype="float32"):
    """Per-level point rows `[t, lo, hi, stride]` for a sequence length.

    Level `l` holds `ceil(seq_len / s_l)` points, the length that stride-2
    blocks with kernel 3 and padding 1 produce (equal to the reference buffer
    `arange(0, max_seq_len, s_l)` sliced to the level's feature length).

    Args:
        seq_len: level-0 length (Python int or scalar int tensor).
        fpn_strides: list of per-level strides (Python ints), e.g.
            `[1, 2, 4, 8, 16, 32]`.
        regression_range: list of `(lo, hi)` per level, in level-0 grid units,
            e.g. `[(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)]`.
        use_offset: add `0.5 * s_l` to `t` (reference option, off in every
            released config).
        dtype: float dtype of the rows.

    Returns:
        List (one entry per level) of `[T_l, 4]` tensors `[t, lo, hi, s]`.
        Concatenate them along axis 0 for `assign_point_labels`.

    Example:

    >>> pts = generate_points(256, [1, 2, 4, 8, 16, 32],
    ...                       [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64],
    ...                        [64, 10000]])
    >>> sum(int(p.shape[0]) for p in pts)
    504

    Reference:
        Zhang et al., ActionFormer, ECCV 2022; `PointGenerator` in
        `libs/modeling/loc_generators.py` of happyharrycn/actionformer_release.
    """
    if len(fpn_strides) != len(regression_range):
        raise ValueError(
            f"fpn_strides ({len(fpn_strides)}) and regression_range "
            f"({len(regression_range)}) must have one entry per level")
    static_len = seq_len if isinstance(seq_len, int) else None
    points = []
    for stride, (lo, hi) in zip(fpn_strides, regression_range):
        stride = int(stride)
        if static_len is not None:
            n = math.ceil(static_len / stride)
        else:
            n = (ops.cast(seq_len, "int32") + (stride - 1)) // stride
        t = ops.cast(ops.arange(0, n, dtype="int32") * stride, dtype)
        if use_offset:
            t = t + 0.5 * stride
        ones = ops.ones_like(t)
        points.append(ops.stack(
            [t, ones * float(lo), ones * float(hi), ones * float(stride)],
            axis=-1))
    return points
