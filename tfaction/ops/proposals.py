"""RPN outputs to region proposals: decode, clip, top-k, NMS (TF only).

`generate_proposals` turns the `RegionProposalHead` outputs of a batch into
at most `R` proposals per image, as the TF Object Detection API's Faster
R-CNN first-stage post-processing (`_postprocess_rpn` with
`batch_multiclass_non_max_suppression`) does:

1. decode the box deltas against the anchors (Faster R-CNN coder, scale
   factors `(10, 10, 5, 5)`);
2. clip the boxes to the image window and drop those left with zero area
   (`clip_to_window(..., filter_nonoverlapping=True)`); anchors outside
   `anchor_mask` are dropped too (the API prunes border-crossing anchors at
   training time);
3. optionally keep the `pre_nms_top_k` highest scores (the API has no such
   step: `None`, the default, keeps every anchor);
4. greedy NMS at IoU 0.7 (a box is suppressed when its IoU with a kept box
   is `> iou_threshold`) among boxes with score `> score_threshold` (0.0),
   up to `max_proposals` (R = 300 for the Video Action Transformer) boxes,
   in descending score order.

The score is the objectness probability `sigmoid(logit)` (the API's 2-way
softmax `[background, object]` with one logit). NMS runs batched with
`tf.image.non_max_suppression_padded` (its tiled algorithm selects what
greedy `tf.image.non_max_suppression` selects for each image). Outputs are
padded to `R` with zero boxes and a validity mask. Every output is wrapped
in `tf.stop_gradient`: no gradient flows through proposals (the API stops
it too).

TF ops only (`tf.image.non_max_suppression_padded`, `tf.math.top_k`,
batched `tf.gather`): run it eagerly, in `tf.function` or in a serving
signature, but outside `jit_compile` (NMS has no XLA kernel) — split a
compiled training step around it.

Example:

>>> import numpy as np
>>> anchors = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.05, 0.5, 0.55],
...                     [0.5, 0.5, 1.0, 1.0]], "float32")
>>> out = generate_proposals(np.array([[2.0, 1.0, 0.0]], "float32"),
...                          np.zeros((1, 3, 4), "float32"), anchors,
...                          max_proposals=4)
>>> np.asarray(out["mask"]).tolist()
[[True, True, False, False]]
>>> np.asarray(out["boxes"][0, :2]).tolist()
[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]
"""

import tensorflow as tf

from tfaction.ops import box_coder

FIRST_STAGE_MAX_PROPOSALS = 300
FIRST_STAGE_NMS_IOU_THRESHOLD = 0.7
FIRST_STAGE_NMS_SCORE_THRESHOLD = 0.0


def _check(max_proposals, iou_threshold, pre_nms_top_k):
    if int(max_proposals) < 1:
        raise ValueError(f"max_proposals must be >= 1, got {max_proposals}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got "
                         f"{iou_threshold}")
    if pre_nms_top_k is not None and int(pre_nms_top_k) < 1:
        raise ValueError(f"pre_nms_top_k must be >= 1 or None, got "
                         f"{pre_nms_top_k}")


def generate_proposals(objectness_logits, box_deltas, anchors, *,
                       anchor_mask=None,
                       max_proposals=FIRST_STAGE_MAX_PROPOSALS,
                       iou_threshold=FIRST_STAGE_NMS_IOU_THRESHOLD,
                       score_threshold=FIRST_STAGE_NMS_SCORE_THRESHOLD,
                       pre_nms_top_k=None,
                       scale_factors=box_coder.DEFAULT_SCALE_FACTORS,
                       clip_window=(0.0, 0.0, 1.0, 1.0)):
    """Decodes, clips and non-max-suppresses RPN outputs into proposals.

    Args:
        objectness_logits: `[B, N]` objectness logits.
        box_deltas: `[B, N, 4]` box codes relative to the anchors.
        anchors: `[N, 4]` or `[B, N, 4]` normalised anchors.
        anchor_mask: optional bool `[N]` / `[B, N]`, anchors allowed to
            propose (e.g. `box_coder.boxes_inside_window(anchors)` at
            training time, as the API).
        max_proposals: `R`, proposals kept per image (300).
        iou_threshold: NMS IoU threshold (0.7).
        score_threshold: only scores `>` this are kept (0.0).
        pre_nms_top_k: keep only the k best-scored boxes before NMS; None
            (default, as the API) keeps all.
        scale_factors: box coder scale factors.
        clip_window: `[y1, x1, y2, x2]` window, a sequence or a `[B, 4]`
            tensor (one window per image); `y2, x2` must be > 0 (the padded
            NMS treats boxes without a positive coordinate as padding).

    Returns:
        dict: `boxes` float32 `[B, R, 4]` (clipped, normalised, zero for
        padding), `scores` float32 `[B, R]` (descending; 0 for padding),
        `mask` bool `[B, R]`, `num_proposals` int32 `[B]`.

    Example:

    >>> import numpy as np
    >>> from tfaction.ops.anchors import grid_anchors
    >>> anchors = grid_anchors(25, 25, 400, 400)
    >>> rng = np.random.default_rng(0)
    >>> out = generate_proposals(
    ...     rng.normal(size=(2, 7500)).astype("float32"),
    ...     rng.normal(size=(2, 7500, 4)).astype("float32"), anchors)
    >>> tuple(out["boxes"].shape), tuple(out["mask"].shape)
    ((2, 300, 4), (2, 300))

    Reference:
        Ren et al., "Faster R-CNN", NeurIPS 2015; TF Object Detection API
        `meta_architectures/faster_rcnn_meta_arch.py` (`_postprocess_rpn`),
        `core/post_processing.py`, `protos/faster_rcnn.proto`
        (`first_stage_nms_iou_threshold: 0.7`, `first_stage_max_proposals:
        300`, `first_stage_nms_score_threshold: 0.0`).
    """
    _check(max_proposals, iou_threshold, pre_nms_top_k)
    max_proposals = int(max_proposals)
    logits = tf.stop_gradient(tf.cast(objectness_logits, tf.float32))
    deltas = tf.stop_gradient(tf.cast(box_deltas, tf.float32))
    anchors = tf.stop_gradient(tf.cast(anchors, tf.float32))
    window = tf.convert_to_tensor(clip_window, tf.float32)
    if window.shape.rank == 2:
        window = window[:, None, :]
    boxes = box_coder.decode_boxes(deltas, anchors, scale_factors)
    boxes = box_coder.clip_boxes(boxes, window)
    scores = tf.sigmoid(logits)
    keep = box_coder.box_area(boxes) > 0.0
    if anchor_mask is not None:
        keep = tf.logical_and(keep, tf.cast(anchor_mask, tf.bool))
    # Dropped boxes become zero boxes with score 0: below any threshold
    # >= 0, and never a valid selection of the padded NMS, which treats
    # all-zero boxes as padding.
    scores = tf.where(keep, scores, 0.0)
    boxes = tf.where(keep[..., None], boxes, 0.0)
    if pre_nms_top_k is not None:
        k = tf.minimum(int(pre_nms_top_k), tf.shape(scores)[1])
        scores, top = tf.math.top_k(scores, k=k, sorted=True)
        boxes = tf.gather(boxes, top, batch_dims=1)
    indices, num_valid = tf.image.non_max_suppression_padded(
        boxes, scores, max_proposals, iou_threshold=float(iou_threshold),
        score_threshold=float(score_threshold), pad_to_max_output_size=True,
        canonicalized_coordinates=True)
    mask = tf.range(max_proposals)[None, :] < num_valid[:, None]
    out_boxes = tf.where(mask[..., None],
                         tf.gather(boxes, indices, batch_dims=1), 0.0)
    out_scores = tf.where(mask, tf.gather(scores, indices, batch_dims=1),
                          0.0)
    return {"boxes": tf.stop_gradient(out_boxes),
            "scores": tf.stop_gradient(out_scores), "mask": mask,
            "num_proposals": tf.cast(num_valid, tf.int32)}
