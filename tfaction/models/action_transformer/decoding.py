"""Action Transformer outputs -> person detections with action scores.

`decode_detections` refines each proposal with its class-agnostic box
deltas, scores it as a person by `1 - sigmoid(background logit)` (the
background column of the sigmoid box classifier), suppresses duplicate
people by greedy NMS on those scores, and returns per-person action
probabilities (`sigmoid` of the action columns). `ava_rows` turns one
keyframe's detections into the official AVA CSV rows, keeping its top 50
(box, action) pairs as the official evaluator would (so the cap is ours,
not a side effect of the evaluator's heap).

Class-agnostic person NMS is our reading (the paper gives no second-stage
post-processing; AVA boxes are people, each with several actions); the
IoU threshold 0.6 is the TF Object Detection API's Faster R-CNN
second-stage default.

TensorFlow ops (`tf.image.non_max_suppression_padded`): use in graphs and
serving signatures, outside `jit_compile`.

Example:

>>> import numpy as np
>>> out = decode_detections(
...     proposals=np.array([[[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.5, 0.52],
...                          [0.5, 0.5, 0.9, 0.9]]], "float32"),
...     proposal_mask=np.array([[True, True, True]]),
...     class_logits=np.array([[[-3.0, 2.0], [-2.0, 1.0], [-4.0, -1.0]]],
...                           "float32"),
...     box_deltas=np.zeros((1, 3, 4), "float32"), max_detections=3)
>>> np.asarray(out["num_detections"]).tolist()
[2]
>>> [round(float(s), 3) for s in out["scores"][0, :2, 0]]
[0.269, 0.881]
"""

import numpy as np
import tensorflow as tf

from tfaction.ops import box_coder

NMS_IOU_THRESHOLD = 0.6
MAX_DETECTIONS = 100
# The official AVA evaluator scores at most 50 (box, action) rows per
# keyframe.
AVA_ROWS_PER_KEYFRAME = 50


def decode_detections(proposals, proposal_mask, class_logits, box_deltas, *,
                      nms_iou_threshold=NMS_IOU_THRESHOLD,
                      max_detections=MAX_DETECTIONS, score_threshold=0.0):
    """Refined, de-duplicated person boxes with per-action probabilities.

    Args:
        proposals: `[B, R, 4]` normalised `[y1, x1, y2, x2]` boxes the head
            ran on.
        proposal_mask: bool `[B, R]`, valid proposals.
        class_logits: `[B, R, C + 1]` logits, column 0 the background.
        box_deltas: `[B, R, 4]` Faster R-CNN codes relative to the
            proposals.
        nms_iou_threshold: person NMS IoU (a box is dropped when its IoU
            with a kept box exceeds it).
        max_detections: people kept per clip, `N`.
        score_threshold: minimum person score.

    Returns:
        dict: `boxes` float32 `[B, N, 4]` (clipped to the image, zeros where
        padded), `scores` float32 `[B, N, C]` action probabilities,
        `person_scores` `[B, N]`, `mask` bool `[B, N]`, `num_detections`
        int32 `[B]`.
    """
    proposals = tf.cast(proposals, tf.float32)
    probabilities = tf.sigmoid(tf.cast(class_logits, tf.float32))
    boxes = box_coder.clip_boxes(box_coder.decode_boxes(
        tf.cast(box_deltas, tf.float32), proposals))
    person = 1.0 - probabilities[..., 0]
    valid = tf.logical_and(tf.cast(proposal_mask, tf.bool),
                           box_coder.box_area(boxes) > 0.0)
    # Invalid boxes score below any threshold, so NMS never selects them.
    person_for_nms = tf.where(valid, person, -1.0)
    # The padded NMS reads boxes as [y1, x1, y2, x2] and ignores boxes
    # without a positive coordinate; ours are valid normalised boxes.
    indices, counts = tf.image.non_max_suppression_padded(
        boxes, person_for_nms, max_output_size=int(max_detections),
        iou_threshold=float(nms_iou_threshold),
        score_threshold=max(float(score_threshold), 0.0),
        pad_to_max_output_size=True, sorted_input=False,
        canonicalized_coordinates=True)
    mask = tf.range(int(max_detections))[None, :] < counts[:, None]
    keep = tf.where(mask, indices, 0)

    def gather(x):
        out = tf.gather(x, keep, batch_dims=1)
        pad = tf.reshape(mask, tf.concat(
            [tf.shape(mask), tf.ones([tf.rank(out) - 2], tf.int32)], 0))
        return tf.where(pad, out, tf.zeros_like(out))

    return {"boxes": gather(boxes), "scores": gather(probabilities[..., 1:]),
            "person_scores": gather(person), "mask": mask,
            "num_detections": tf.cast(counts, tf.int32)}


def ava_rows(video_id, timestamp, boxes, scores, action_ids, *,
             top_k=AVA_ROWS_PER_KEYFRAME):
    """One keyframe's detections as official AVA CSV rows (top `top_k`).

    Args:
        video_id: the video id.
        timestamp: the keyframe timestamp as written in the ground-truth
            CSV (text, e.g. "0902" or "902").
        boxes: `[N, 4]` valid detections, `[y1, x1, y2, x2]` normalised.
        scores: `[N, C]` action probabilities.
        action_ids: `[C]` the AVA action id of each score column.
        top_k: (box, action) rows kept, by descending score (ties: box
            order, then column order).

    Returns:
        List of `(video_id, timestamp, x1, y1, x2, y2, action_id, score)`
        tuples (the AVA CSV's column order, x before y).

    Example:

    >>> ava_rows("v", "0902", [[0.1, 0.2, 0.5, 0.6]], [[0.3, 0.9]], [1, 3],
    ...          top_k=1)
    [('v', '0902', 0.2, 0.1, 0.6, 0.5, 3, 0.9)]
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(len(boxes), -1)
    flat = scores.ravel()
    order = np.argsort(-flat, kind="stable")[:int(top_k)]
    rows = []
    for k in order:
        b, c = divmod(int(k), scores.shape[1])
        y1, x1, y2, x2 = (float(v) for v in boxes[b])
        rows.append((video_id, timestamp, x1, y1, x2, y2,
                     int(action_ids[c]), float(flat[k])))
    return rows
