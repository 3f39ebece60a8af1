"""Temporal (1-D) segment IoU, vectorised numpy float64.

Two definitions are used by the official benchmark codes:

* ``"union"`` (ActivityNet, ActionFormer, EPIC): ``inter / (len_a + len_b -
  inter)`` with ``inter = max(0, min(e) - max(s))`` (no ``+1``). Two
  zero-length segments give ``0 / 0 = NaN``; the ActivityNet matcher accepts
  NaN as a match (``NaN < thr`` is False), which callers reproduce on purpose.
* ``"hull"`` (Ego4D MQ Recall@kx): ``inter / (max(e) - min(s))``, the union
  being the convex hull of the two segments.

Example:

>>> import numpy as np
>>> pairwise_segment_iou(np.array([[0., 10.]]), np.array([[5., 15.], [0., 10.]]))
array([[0.33333333, 1.        ]])
"""

import numpy as np

UNIONS = ("union", "hull")


def _as_segments(x, name):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and x.shape[0] == 2:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{name}: expected segments of shape [N, 2], got "
                         f"{x.shape}")
    return x


def pairwise_segment_iou(a, b, union="union"):
    """tIoU between every segment of `a` and every segment of `b`.

    Args:
        a: [N, 2] (start, end) segments (a single [2] segment is accepted).
        b: [M, 2] segments.
        union: "union" (len_a + len_b - inter) or "hull" (max end - min
            start).

    Returns:
        float64 array [N, M]; 0/0 gives NaN (no warning).

    Example:

    >>> pairwise_segment_iou([[0, 10]], [[5, 15]], union="hull")
    array([[0.33333333]])
    """
    if union not in UNIONS:
        raise ValueError(f"union must be one of {UNIONS}, got {union!r}")
    a = _as_segments(a, "a")
    b = _as_segments(b, "b")
    return _iou(a[:, None, 0], a[:, None, 1], b[None, :, 0], b[None, :, 1],
                union)


def segment_iou(target, candidates, union="union"):
    """tIoU between one segment and each of `candidates` (official layout).

    Args:
        target: [2] (start, end).
        candidates: [M, 2] segments.
        union: see `pairwise_segment_iou`.

    Returns:
        float64 array [M].

    Example:

    >>> segment_iou([0, 10], [[0, 10], [20, 30]])
    array([1., 0.])
    """
    return pairwise_segment_iou(np.asarray(target, np.float64).reshape(1, 2),
                                candidates, union=union)[0]


def aligned_segment_iou(a, b, union="union"):
    """Element-wise tIoU of two equally shaped [..., 2] segment arrays.

    Args:
        a: [..., 2] segments.
        b: [..., 2] segments (broadcastable with `a`).
        union: see `pairwise_segment_iou`.

    Returns:
        float64 array [...].

    Example:

    >>> aligned_segment_iou([[0, 10], [0, 0]], [[5, 15], [3, 3]])
    array([0.33333333,        nan])
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return _iou(a[..., 0], a[..., 1], b[..., 0], b[..., 1], union)


def _iou(s1, e1, s2, e2, union):
    inter = np.clip(np.minimum(e1, e2) - np.maximum(s1, s2), 0, None)
    if union == "union":
        denom = (e2 - s2) + (e1 - s1) - inter
    else:
        denom = np.clip(np.maximum(e1, e2) - np.minimum(s1, s2), 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / denom
