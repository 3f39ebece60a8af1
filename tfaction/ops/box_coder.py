"""Faster R-CNN box coding, clipping and pairwise IoU in `keras.ops`.

Boxes are `[y1, x1, y2, x2]` (the TF Object Detection API's layout), usually
normalised to the image (`[0, 1]`), in any leading batch shape. Everything is
computed in float32 (box arithmetic is not safe in float16) and is
differentiable where it makes sense, so it runs inside layers, losses and
XLA-compiled training steps. The host-side numpy IoU of evaluation code is
`tfaction.ops.boxes`; this module is its in-graph counterpart with the TF
Object Detection API's conventions:

* `encode_boxes` / `decode_boxes`: the Faster R-CNN coder,
  `ty = (y - ya) / ha`, `tx = (x - xa) / wa`, `th = log(h / ha)`,
  `tw = log(w / wa)` (centres and sizes; `1e-8` added to every size before
  encoding), each multiplied by its scale factor (default `(10, 10, 5, 5)`).
  Decoding divides by the factors and caps `th`, `tw` at 80 before `exp`
  (only prevents `inf`). The code is invariant to per-axis scaling, so
  normalised and pixel coordinates give the same codes.
* `clip_boxes`: every coordinate clamped into the window (a box fully
  outside collapses to zero area).
* `pairwise_iou`: intersection over union with the API's "zero intersection
  gives 0" rule (two empty boxes give 0, not NaN), and optional validity
  masks that zero padded pairs.

Example:

>>> import numpy as np
>>> anchors = np.array([[0.0, 0.0, 0.5, 0.5]], "float32")
>>> boxes = np.array([[0.1, 0.0, 0.6, 1.0]], "float32")
>>> codes = encode_boxes(boxes, anchors)
>>> np.round(np.asarray(codes), 4)
array([[2.    , 5.    , 0.    , 3.4657]], dtype=float32)
>>> np.round(np.asarray(decode_boxes(codes, anchors)), 4)
array([[0.1, 0. , 0.6, 1. ]], dtype=float32)
"""

from keras import ops

DEFAULT_SCALE_FACTORS = (10.0, 10.0, 5.0, 5.0)
# Added to heights and widths before encoding (TF Object Detection API's
# `FasterRcnnBoxCoder`: "avoid NaN in division and log").
_EPSILON = 1e-8
# Upper bound of `th`, `tw` before `exp` (exp(89) overflows float32).
_MAX_LOG_SCALE = 80.0


def _check_scale_factors(scale_factors):
    if scale_factors is None:
        return None
    factors = tuple(float(s) for s in scale_factors)
    if len(factors) != 4 or any(s <= 0 for s in factors):
        raise ValueError(f"scale_factors must be 4 positive numbers, got "
                         f"{scale_factors!r}")
    return factors


def _center_size(boxes):
    y1, x1, y2, x2 = ops.unstack(boxes, 4, axis=-1)
    height = y2 - y1
    width = x2 - x1
    return y1 + 0.5 * height, x1 + 0.5 * width, height, width


def box_area(boxes):
    """Area `(y2 - y1) * (x2 - x1)` of `[..., 4]` boxes (may be <= 0).

    Args:
        boxes: `[..., 4]` boxes `[y1, x1, y2, x2]`.

    Returns:
        float32 `[...]`.

    Example:

    >>> float(box_area([[0.0, 0.0, 0.5, 0.25]])[0])
    0.125
    """
    y1, x1, y2, x2 = ops.unstack(ops.cast(boxes, "float32"), 4, axis=-1)
    return (y2 - y1) * (x2 - x1)


def encode_boxes(boxes, anchors, scale_factors=DEFAULT_SCALE_FACTORS):
    """Encodes boxes relative to anchors (Faster R-CNN coder).

    `(ty, tx, th, tw) = (sy (yc - yca) / ha, sx (xc - xca) / wa,
    sh log(h / ha), sw log(w / wa))` with `1e-8` added to `h, w, ha, wa`,
    as the TF Object Detection API's `FasterRcnnBoxCoder.encode`.

    Args:
        boxes: `[..., 4]` boxes `[y1, x1, y2, x2]`.
        anchors: `[..., 4]` anchors, broadcastable against `boxes`.
        scale_factors: `(sy, sx, sh, sw)`, or None for no scaling.

    Returns:
        float32 `[..., 4]` codes `[ty, tx, th, tw]`.

    Example:

    >>> import numpy as np
    >>> np.asarray(encode_boxes([[0.0, 0.0, 1.0, 1.0]],
    ...                         [[0.0, 0.0, 1.0, 1.0]])).tolist()
    [[0.0, 0.0, 0.0, 0.0]]

    Reference:
        Ren et al., "Faster R-CNN", NeurIPS 2015; TF Object Detection API
        `box_coders/faster_rcnn_box_coder.py`.
    """
    factors = _check_scale_factors(scale_factors)
    yc, xc, h, w = _center_size(ops.cast(boxes, "float32"))
    yca, xca, ha, wa = _center_size(ops.cast(anchors, "float32"))
    ha = ha + _EPSILON
    wa = wa + _EPSILON
    h = h + _EPSILON
    w = w + _EPSILON
    ty = (yc - yca) / ha
    tx = (xc - xca) / wa
    th = ops.log(h / ha)
    tw = ops.log(w / wa)
    if factors is not None:
        ty, tx, th, tw = (ty * factors[0], tx * factors[1],
                          th * factors[2], tw * factors[3])
    return ops.stack([ty, tx, th, tw], axis=-1)


def decode_boxes(codes, anchors, scale_factors=DEFAULT_SCALE_FACTORS):
    """Decodes `[ty, tx, th, tw]` codes relative to anchors into boxes.

    The inverse of `encode_boxes` (up to its `1e-8`): `h = exp(th / sh) ha`,
    `yc = ty / sy * ha + yca`, likewise for x; `th`, `tw` are capped at 80
    before `exp`.

    Args:
        codes: `[..., 4]` codes.
        anchors: `[..., 4]` anchors, broadcastable against `codes`.
        scale_factors: as in `encode_boxes`.

    Returns:
        float32 `[..., 4]` boxes `[y1, x1, y2, x2]`.

    Example:

    >>> import numpy as np
    >>> np.asarray(decode_boxes([[0.0, 10.0, 0.0, 0.0]],
    ...                         [[0.0, 0.0, 1.0, 2.0]])).tolist()
    [[0.0, 2.0, 1.0, 4.0]]

    Reference:
        TF Object Detection API `box_coders/faster_rcnn_box_coder.py`.
    """
    factors = _check_scale_factors(scale_factors)
    ty, tx, th, tw = ops.unstack(ops.cast(codes, "float32"), 4, axis=-1)
    if factors is not None:
        ty, tx, th, tw = (ty / factors[0], tx / factors[1],
                          th / factors[2], tw / factors[3])
    yca, xca, ha, wa = _center_size(ops.cast(anchors, "float32"))
    h = ops.exp(ops.minimum(th, _MAX_LOG_SCALE)) * ha
    w = ops.exp(ops.minimum(tw, _MAX_LOG_SCALE)) * wa
    yc = ty * ha + yca
    xc = tx * wa + xca
    return ops.stack([yc - 0.5 * h, xc - 0.5 * w, yc + 0.5 * h,
                      xc + 0.5 * w], axis=-1)


def clip_boxes(boxes, window=(0.0, 0.0, 1.0, 1.0)):
    """Clamps every box coordinate into a window.

    `y1, y2` are clamped to `[wy1, wy2]` and `x1, x2` to `[wx1, wx2]`
    (TF Object Detection API `clip_to_window`); a box entirely outside
    the window becomes a zero-area box on its border.

    Args:
        boxes: `[..., 4]` boxes.
        window: `[wy1, wx1, wy2, wx2]`: a sequence, or a tensor `[4]` or
            `[..., 4]` broadcastable against `boxes` (e.g. `[B, 1, 4]` for
            one window per image).

    Returns:
        float32 `[..., 4]` clipped boxes.

    Example:

    >>> import numpy as np
    >>> np.asarray(clip_boxes([[-0.5, 0.25, 0.5, 1.5]])).tolist()
    [[0.0, 0.25, 0.5, 1.0]]
    """
    boxes = ops.cast(boxes, "float32")
    window = ops.cast(ops.convert_to_tensor(window), "float32")
    wy1, wx1, wy2, wx2 = ops.unstack(window, 4, axis=-1)
    y1, x1, y2, x2 = ops.unstack(boxes, 4, axis=-1)
    y1 = ops.maximum(ops.minimum(y1, wy2), wy1)
    y2 = ops.maximum(ops.minimum(y2, wy2), wy1)
    x1 = ops.maximum(ops.minimum(x1, wx2), wx1)
    x2 = ops.maximum(ops.minimum(x2, wx2), wx1)
    return ops.stack([y1, x1, y2, x2], axis=-1)


def boxes_inside_window(boxes, window=(0.0, 0.0, 1.0, 1.0)):
    """True where a box lies entirely inside a window (borders included).

    The complement of what the TF Object Detection API's
    `prune_outside_window` removes: its Faster R-CNN drops training anchors
    that cross the image border; pass this as `anchor_mask` to the target
    assignment and proposal functions to do the same with a fixed anchor
    grid.

    Args:
        boxes: `[..., 4]` boxes.
        window: `[wy1, wx1, wy2, wx2]`, as in `clip_boxes`.

    Returns:
        bool `[...]`.

    Example:

    >>> import numpy as np
    >>> np.asarray(boxes_inside_window([[0.0, 0.0, 1.0, 1.0],
    ...                                 [-0.1, 0.2, 0.5, 0.6]])).tolist()
    [True, False]
    """
    boxes = ops.cast(boxes, "float32")
    window = ops.cast(ops.convert_to_tensor(window), "float32")
    wy1, wx1, wy2, wx2 = ops.unstack(window, 4, axis=-1)
    y1, x1, y2, x2 = ops.unstack(boxes, 4, axis=-1)
    inside = ops.logical_and(ops.greater_equal(y1, wy1),
                             ops.greater_equal(x1, wx1))
    inside = ops.logical_and(inside, ops.less_equal(y2, wy2))
    return ops.logical_and(inside, ops.less_equal(x2, wx2))


def pairwise_iou(boxes1, boxes2, mask1=None, mask2=None):
    """Intersection over union of every pair of two box sets.

    `IoU = inter / (area1 + area2 - inter)`, and exactly 0 wherever the
    intersection is 0 (TF Object Detection API `box_list_ops.iou`), so
    empty or padded boxes never produce NaN. Leading batch dimensions are
    shared: `[..., N, 4]` with `[..., M, 4]` gives `[..., N, M]`.

    Args:
        boxes1: `[..., N, 4]` boxes.
        boxes2: `[..., M, 4]` boxes (same leading dimensions, or
            broadcastable, e.g. `[N, 4]` anchors with `[B, M, 4]` boxes).
        mask1: optional bool `[..., N]`; IoU is 0 for masked-out rows.
        mask2: optional bool `[..., M]`; IoU is 0 for masked-out columns.

    Returns:
        float32 `[..., N, M]`.

    Example:

    >>> import numpy as np
    >>> iou = pairwise_iou([[0.0, 0.0, 0.2, 0.2]],
    ...                    [[0.1, 0.0, 0.3, 0.2], [0.5, 0.5, 0.6, 0.6]])
    >>> np.round(np.asarray(iou, "float64"), 4).tolist()
    [[0.3333, 0.0]]
    """
    b1 = ops.expand_dims(ops.cast(boxes1, "float32"), -2)   # [..., N, 1, 4]
    b2 = ops.expand_dims(ops.cast(boxes2, "float32"), -3)   # [..., 1, M, 4]
    y1a, x1a, y2a, x2a = ops.unstack(b1, 4, axis=-1)
    y1b, x1b, y2b, x2b = ops.unstack(b2, 4, axis=-1)
    heights = ops.maximum(
        0.0, ops.minimum(y2a, y2b) - ops.maximum(y1a, y1b))
    widths = ops.maximum(
        0.0, ops.minimum(x2a, x2b) - ops.maximum(x1a, x1b))
    inter = heights * widths
    union = (y2a - y1a) * (x2a - x1a) + (y2b - y1b) * (x2b - x1b) - inter
    empty = ops.equal(inter, 0.0)
    iou = ops.where(empty, 0.0, inter / ops.where(empty, 1.0, union))
    if mask1 is not None:
        iou = ops.where(ops.expand_dims(ops.cast(mask1, "bool"), -1),
                        iou, 0.0)
    if mask2 is not None:
        iou = ops.where(ops.expand_dims(ops.cast(mask2, "bool"), -2),
                        iou, 0.0)
    return iou
