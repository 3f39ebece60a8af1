"""2-D axis-aligned box geometry in numpy float64 (host-side, vectorised).

Boxes are arrays whose last axis holds `(min_a, min_b, max_a, max_b)`: both
`[x1, y1, x2, y2]` and `[y1, x1, y2, x2]` work, because area and IoU are
symmetric in the two axes. The arithmetic follows the TF Object Detection API
numpy code (`np_box_ops`) operation for operation, so results are bit-identical
to it: `inter = max(0, dh) * max(0, dw)`, `union = area1 + area2 - inter`, no
"+1" pixel convention.

Example:

>>> import numpy as np
>>> a = np.array([[0.1, 0.1, 0.5, 0.9]])
>>> b = np.array([[0.11, 0.1, 0.5, 0.9], [0.5, 0.1, 0.9, 0.9]])
>>> np.round(box_iou(a, b), 4)
array([[0.975, 0.   ]])
"""

import numpy as np


def _as_boxes(boxes, name):
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != 4:
        raise ValueError(f"{name} must have a last axis of size 4, got shape "
                         f"{arr.shape}")
    return arr


def box_area(boxes):
    """Area of each box, `(max_a - min_a) * (max_b - min_b)` (may be <= 0).

    Args:
        boxes: array [..., 4].

    Returns:
        float64 array [...].

    Example:

    >>> box_area([[0.0, 0.0, 2.0, 3.0]])
    array([6.])
    """
    b = _as_boxes(boxes, "boxes")
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def valid_box_mask(boxes):
    """True where a box has strictly positive extent on both axes.

    Args:
        boxes: array [..., 4].

    Returns:
        bool array [...]: `min_a < max_a and min_b < max_b`. Zero-width,
        inverted and NaN boxes are False.

    Example:

    >>> valid_box_mask([[0.3, 0.3, 0.3, 0.5], [0.1, 0.1, 0.2, 0.2]])
    array([False,  True])
    """
    b = _as_boxes(boxes, "boxes")
    return (b[..., 0] < b[..., 2]) & (b[..., 1] < b[..., 3])


def _intersection(b1, b2):
    heights = np.maximum(0.0, np.minimum(b1[..., 2], b2[..., 2])
                         - np.maximum(b1[..., 0], b2[..., 0]))
    widths = np.maximum(0.0, np.minimum(b1[..., 3], b2[..., 3])
                        - np.maximum(b1[..., 1], b2[..., 1]))
    return heights * widths


def box_iou(boxes1, boxes2):
    """Pairwise intersection over union.

    Args:
        boxes1: array [N, 4].
        boxes2: array [M, 4].

    Returns:
        float64 array [N, M]. Two zero-area boxes give 0/0 = NaN (as the
        reference code); callers that need otherwise filter them first.

    Example:

    >>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [0, 0, 2, 2]])
    array([[0.33333333, 1.        ]])
    """
    b1 = _as_boxes(boxes1, "boxes1").reshape(-1, 4)
    b2 = _as_boxes(boxes2, "boxes2").reshape(-1, 4)
    inter = _intersection(b1[:, None, :], b2[None, :, :])
    union = box_area(b1)[:, None] + box_area(b2)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union


def paired_box_iou(boxes1, boxes2):
    """Element-wise IoU of aligned boxes (`boxes1[i]` with `boxes2[i]`).

    Same arithmetic as `box_iou`, for long lists of candidate pairs (e.g. every
    detection against every ground-truth box of its own image and class).

    Args:
        boxes1: array [..., 4].
        boxes2: array [..., 4], broadcastable against `boxes1`.

    Returns:
        float64 array [...].

    Example:

    >>> paired_box_iou([[0, 0, 2, 2], [0, 0, 1, 1]],
    ...                [[1, 0, 3, 2], [2, 2, 3, 3]])
    array([0.33333333, 0.        ])
    """
    b1 = _as_boxes(boxes1, "boxes1")
    b2 = _as_boxes(boxes2, "boxes2")
    inter = _intersection(b1, b2)
    union = box_area(b1) + box_area(b2) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union
