"""Faster R-CNN target assignment and minibatch sampling (TF, batched).

The TF Object Detection API's Faster R-CNN training targets, for padded
batches: ground truth comes as `gt_boxes [B, G, 4]` (normalised
`[y1, x1, y2, x2]`), a validity mask `gt_mask [B, G]` and multi-hot classes
`gt_classes [B, G, C]`; padded rows never match and never force a match,
which is exactly the API's behaviour on its unpadded per-image lists.

* `match_by_iou`: the API's `ArgMaxMatcher` on an IoU matrix `[B, N, G]`
  (candidate boxes x ground truth; the API's similarity is the transpose).
  Each candidate takes its best ground truth (lowest index on ties); best
  IoU `>= matched_threshold` gives that index, `< unmatched_threshold` gives
  -1 (negative), in between -2 (ignored). With `force_match`, every valid
  ground-truth box also claims its own best candidate (the first one on
  ties), whatever the IoU, overriding the thresholds; when several claim the
  same candidate the lowest ground-truth index wins. Candidates outside
  `anchor_mask` are -2 and are never claimed (the API prunes them).
* `sample_balanced`: the API's `BalancedPositiveNegativeSampler` (dynamic
  version): a uniformly random subset of at most `int(sample_size *
  positive_fraction)` positives, then random negatives up to `sample_size`
  in total; fewer when not enough candidates exist.
* `rpn_targets`: RPN (first stage) targets: IoU >= 0.7 positive, < 0.3
  negative, force-match on, 256 sampled anchors with at most half positives
  (API `create_target_assigner('FasterRCNN', 'proposal')` and
  `faster_rcnn.proto` defaults).
* `sample_proposals`: the second-stage minibatch, 64 proposals per image
  with at most 25 % positives (`faster_rcnn.proto`:
  `second_stage_batch_size = 64`, `second_stage_balance_fraction = 0.25`),
  matched at IoU 0.5 with no ignore band and no force-match
  (`create_target_assigner('FasterRCNN', 'detection')`). The sampled
  proposals keep their order and are packed to the front of `[B, 64, 4]`.
* `box_classifier_targets`: second-stage targets for given proposals:
  multi-hot class targets with a background column `[B, R, C + 1]`
  (matched: `[0, classes]`; unmatched: `[1, 0, ..., 0]`) and class-agnostic
  box codes.

Box codes use the Faster R-CNN coder with scale factors `(10, 10, 5, 5)`
(`tfaction.ops.box_coder`). Everything is TF ops on static or dynamic
shapes, so it runs inside `tf.function` and MirroredStrategy replica
functions, and it compiles with `jit_compile=True` (XLA draws different
numbers for the same stateless seed, so the sampled minibatch differs from
the non-compiled one). It is training-graph code, not a layer. Targets are
returned with `tf.stop_gradient`.

Randomness: with `seed=None` the sampler draws from TF's global random
state (`tf.random.uniform`); with `seed` (a pair of ints or an int tensor
`[2]`) it is `tf.random.stateless_uniform`, deterministic for a given seed
(pass e.g. `[base_seed, step]` to vary it across steps); with one seed per
image (int `[B, 2]`, e.g. a hash of the example and the step) each image's
draw is its own, so a batch split across replicas samples as one device.

Example:

>>> import numpy as np
>>> anchors = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]],
...                    "float32")
>>> gt = np.array([[[0.0, 0.0, 0.45, 0.5]]], "float32")
>>> t = rpn_targets(anchors, gt, np.array([[True]]), seed=(1, 2))
>>> np.asarray(t["match"]).tolist(), np.asarray(t["objectness"]).tolist()
([[0, -1]], [[1.0, 0.0]])
"""

import tensorflow as tf

from tfaction.ops import box_coder

RPN_MATCHED_THRESHOLD = 0.7
RPN_UNMATCHED_THRESHOLD = 0.3
RPN_MINIBATCH_SIZE = 256
RPN_POSITIVE_FRACTION = 0.5
SECOND_STAGE_MATCHED_THRESHOLD = 0.5
SECOND_STAGE_BATCH_SIZE = 64
SECOND_STAGE_POSITIVE_FRACTION = 0.25


def _check_thresholds(matched_threshold, unmatched_threshold):
    matched = float(matched_threshold)
    unmatched = float(unmatched_threshold)
    if not 0.0 <= unmatched <= matched:
        raise ValueError(f"need 0 <= unmatched_threshold <= "
                         f"matched_threshold, got {unmatched} and {matched}")
    return matched, unmatched


def _check_sampling(sample_size, positive_fraction):
    size = int(sample_size)
    fraction = float(positive_fraction)
    if size < 1:
        raise ValueError(f"sample size must be >= 1, got {sample_size}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"positive_fraction must be in [0, 1], got "
                         f"{positive_fraction}")
    return size, fraction


def _first_argmax(values, axis):
    """Index of the first maximum along `axis` (deterministic ties)."""
    size = tf.shape(values, out_type=tf.int32)[axis]
    shape = [1] * values.shape.rank
    shape[axis] = -1
    index = tf.reshape(tf.range(size), shape)
    best = tf.reduce_max(values, axis=axis, keepdims=True)
    return tf.reduce_min(tf.where(tf.equal(values, best), index, size),
                         axis=axis)


def _batched(boxes, batch_size):
    """`[N, 4]` -> `[B, N, 4]`; `[B, N, 4]` unchanged."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    if boxes.shape.rank == 2:
        boxes = tf.tile(boxes[None], [batch_size, 1, 1])
    return boxes


def _candidate_mask(mask, like):
    """Optional `[N]` / `[B, N]` mask as bool `[B, N]` shaped like `like`."""
    if mask is None:
        return tf.ones_like(like, tf.bool)
    mask = tf.cast(mask, tf.bool)
    return tf.logical_and(mask, tf.ones_like(like, tf.bool))


def match_by_iou(iou, gt_mask, anchor_mask=None, *,
                 matched_threshold=RPN_MATCHED_THRESHOLD,
                 unmatched_threshold=RPN_UNMATCHED_THRESHOLD,
                 force_match=True):
    """Argmax matching of candidates (anchors / proposals) to ground truth.

    Args:
        iou: float `[B, N, G]`, IoU of candidate `n` with ground truth `g`.
        gt_mask: bool `[B, G]`, valid ground-truth rows.
        anchor_mask: optional bool `[N]` or `[B, N]`, candidates that may
            match (others are -2 and cannot be claimed by force-match).
        matched_threshold: best IoU `>=` this is a match.
        unmatched_threshold: best IoU `<` this is negative (-1); in between
            ignored (-2).
        force_match: each valid ground truth claims its best candidate.

    Returns:
        int32 `[B, N]`: matched ground-truth index, -1 (negative) or -2
        (ignored).

    Example:

    >>> import numpy as np
    >>> iou = np.array([[[0.8, 0.0], [0.5, 0.1], [0.0, 0.2]]], "float32")
    >>> m = match_by_iou(iou, np.array([[True, True]]))
    >>> np.asarray(m).tolist()
    [[0, -2, 1]]

    Reference:
        TF Object Detection API `matchers/argmax_matcher.py`,
        `core/target_assigner.py` (`create_target_assigner`).
    """
    matched, unmatched = _check_thresholds(matched_threshold,
                                           unmatched_threshold)
    iou = tf.convert_to_tensor(iou, tf.float32)
    gt_mask = tf.cast(gt_mask, tf.bool)
    batch = tf.shape(iou)[0]
    num = tf.shape(iou)[1]
    # One always-invalid column: argmax never sees an empty axis, and its
    # index is only ever chosen when no valid ground truth exists (then the
    # best value -1 makes the candidate negative).
    iou = tf.concat([iou, tf.zeros([batch, num, 1], tf.float32)], axis=2)
    gt_mask = tf.concat([gt_mask, tf.zeros([batch, 1], tf.bool)], axis=1)
    valid_anchor = _candidate_mask(anchor_mask, iou[:, :, 0])
    sim = tf.where(gt_mask[:, None, :], iou, -1.0)
    best_value = tf.reduce_max(sim, axis=2)
    match = _first_argmax(sim, axis=2)
    match = tf.where(best_value < unmatched, -1, match)
    match = tf.where(tf.logical_and(best_value >= unmatched,
                                    best_value < matched), -2, match)
    if force_match:
        sim_valid = tf.where(valid_anchor[:, :, None], sim, -2.0)
        best_anchor = _first_argmax(sim_valid, axis=1)           # [B, G+1]
        claims = tf.logical_and(
            tf.equal(tf.range(num)[None, :, None], best_anchor[:, None, :]),
            gt_mask[:, None, :])                                  # [B,N,G+1]
        claimed = tf.reduce_any(claims, axis=2)
        claimant = _first_argmax(tf.cast(claims, tf.int32), axis=2)
        match = tf.where(claimed, claimant, match)
    return tf.where(valid_anchor, match, -2)


def _random_subset(eligible, count, keys):
    """`eligible` entries whose random key ranks below `count` (per row)."""
    masked = tf.where(eligible, keys, 2.0)
    order = tf.argsort(masked, axis=-1, stable=True)
    ranks = tf.argsort(order, axis=-1, stable=True)
    return tf.logical_and(eligible, ranks < count)


def _uniform(shape, seed):
    if seed is None:
        return tf.random.uniform(shape, dtype=tf.float32)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 2:
        # One seed per row: a row's draw does not depend on the others in
        # its batch (1 and N replicas sample the same minibatches).
        return tf.map_fn(
            lambda s: tf.random.stateless_uniform(shape[1:], seed=s,
                                                  dtype=tf.float32),
            seed, fn_output_signature=tf.float32)
    return tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32)


def sample_balanced(candidates, positives, sample_size, positive_fraction,
                    seed=None):
    """Balanced random minibatch of candidates, per row.

    At most `int(sample_size * positive_fraction)` positives are drawn
    uniformly among `candidates & positives`, then
    `sample_size - num_positives` negatives among `candidates & ~positives`
    (fewer if not enough exist).

    Args:
        candidates: bool `[B, N]`, entries that may be sampled.
        positives: bool `[B, N]`, the positive label of each entry.
        sample_size: minibatch size per row.
        positive_fraction: largest fraction of positives.
        seed: None (global random state), a stateless seed (2 ints), or
            one per row (int `[B, 2]`).

    Returns:
        bool `[B, N]`: the sampled entries.

    Example:

    >>> import numpy as np
    >>> c = np.ones((1, 10), bool)
    >>> p = np.arange(10)[None] < 8
    >>> s = np.asarray(sample_balanced(c, p, 6, 0.5, seed=(0, 1)))
    >>> int((s & p).sum()), int((s & ~p).sum())
    (3, 2)

    Reference:
        TF Object Detection API
        `core/balanced_positive_negative_sampler.py` (`is_static=False`).
    """
    size, fraction = _check_sampling(sample_size, positive_fraction)
    candidates = tf.cast(candidates, tf.bool)
    positives = tf.logical_and(tf.cast(positives, tf.bool), candidates)
    negatives = tf.logical_and(candidates, tf.logical_not(positives))
    keys = _uniform(tf.shape(candidates), seed)
    sampled_pos = _random_subset(positives, int(size * fraction), keys)
    num_pos = tf.reduce_sum(tf.cast(sampled_pos, tf.int32), axis=-1,
                            keepdims=True)
    sampled_neg = _random_subset(negatives, size - num_pos, keys)
    return tf.logical_or(sampled_pos, sampled_neg)


def _encode_matched(match, gt_boxes, boxes, scale_factors):
    """Codes of each candidate's matched ground truth; 0 where unmatched."""
    positive = match >= 0
    matched_gt = tf.gather(gt_boxes, tf.maximum(match, 0), batch_dims=1)
    codes = box_coder.encode_boxes(matched_gt, boxes, scale_factors)
    return tf.where(positive[..., None], codes, 0.0)


def rpn_targets(anchors, gt_boxes, gt_mask, anchor_mask=None, *,
                minibatch_size=RPN_MINIBATCH_SIZE,
                positive_fraction=RPN_POSITIVE_FRACTION,
                matched_threshold=RPN_MATCHED_THRESHOLD,
                unmatched_threshold=RPN_UNMATCHED_THRESHOLD,
                scale_factors=box_coder.DEFAULT_SCALE_FACTORS, seed=None):
    """RPN objectness / box targets and the sampled anchor minibatch.

    Args:
        anchors: `[N, 4]` or `[B, N, 4]` normalised anchors (the order of
            `tfaction.ops.anchors.grid_anchors` and `RegionProposalHead`).
        gt_boxes: `[B, G, 4]` normalised ground-truth boxes.
        gt_mask: bool `[B, G]`, valid ground-truth rows.
        anchor_mask: optional bool `[N]` / `[B, N]`: anchors that take part
            (the API prunes anchors crossing the image at training time:
            `box_coder.boxes_inside_window(anchors)`); others are ignored.
        minibatch_size: sampled anchors per image (256).
        positive_fraction: largest positive fraction (0.5).
        matched_threshold, unmatched_threshold: IoU thresholds (0.7, 0.3).
        scale_factors: box coder scale factors.
        seed: sampler seed (see the module docstring).

    Returns:
        dict of float32 tensors: `objectness` `[B, N]` (1 for matched
        anchors), `objectness_weights` `[B, N]` (1 for sampled anchors),
        `box_targets` `[B, N, 4]` (codes of the matched box; 0 elsewhere),
        `box_weights` `[B, N]` (sampled and matched), and int32 `match`
        `[B, N]` (before sampling).

    Example:

    >>> import numpy as np
    >>> from tfaction.ops.anchors import grid_anchors
    >>> anchors = grid_anchors(25, 25, 400, 400)
    >>> gt = np.array([[[0.2, 0.3, 0.6, 0.5], [0, 0, 0, 0]]], "float32")
    >>> t = rpn_targets(anchors, gt, np.array([[True, False]]), seed=(0, 0))
    >>> float(np.sum(t["objectness_weights"]))
    256.0

    Reference:
        Ren et al., "Faster R-CNN", NeurIPS 2015; TF Object Detection API
        `meta_architectures/faster_rcnn_meta_arch.py` (`_loss_rpn`),
        `core/target_assigner.py`, `protos/faster_rcnn.proto`.
    """
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    boxes = _batched(anchors, tf.shape(gt_boxes)[0])
    iou = box_coder.pairwise_iou(boxes, gt_boxes, mask2=gt_mask)
    match = match_by_iou(iou, gt_mask, anchor_mask,
                         matched_threshold=matched_threshold,
                         unmatched_threshold=unmatched_threshold,
                         force_match=True)
    positive = match >= 0
    sampled = sample_balanced(match >= -1, positive, minibatch_size,
                              positive_fraction, seed)
    targets = {
        "objectness": tf.cast(positive, tf.float32),
        "objectness_weights": tf.cast(sampled, tf.float32),
        "box_targets": _encode_matched(match, gt_boxes, boxes,
                                       scale_factors),
        "box_weights": tf.cast(tf.logical_and(sampled, positive),
                               tf.float32),
        "match": match,
    }
    return {k: tf.stop_gradient(v) for k, v in targets.items()}


def _second_stage_match(proposals, proposal_mask, gt_boxes, gt_mask,
                        matched_threshold):
    iou = box_coder.pairwise_iou(proposals, gt_boxes, mask2=gt_mask)
    return match_by_iou(iou, gt_mask, proposal_mask,
                        matched_threshold=matched_threshold,
                        unmatched_threshold=matched_threshold,
                        force_match=False)


def box_classifier_targets(proposals, proposal_mask, gt_boxes, gt_mask,
                           gt_classes, *,
                           matched_threshold=SECOND_STAGE_MATCHED_THRESHOLD,
                           scale_factors=box_coder.DEFAULT_SCALE_FACTORS):
    """Second-stage (box classifier) targets for a batch of proposals.

    Proposals with IoU `>= matched_threshold` with some valid ground truth
    take its classes and box; all others are background. There is no
    ignore band and no force-match. A match to a ground-truth box without
    any class gives an all-zero class row (neither background nor an
    action), as in the API.

    Args:
        proposals: `[B, R, 4]` normalised proposals (e.g. the output of
            `sample_proposals`).
        proposal_mask: bool `[B, R]`, valid (non-padding) proposals.
        gt_boxes: `[B, G, 4]` ground-truth boxes.
        gt_mask: bool `[B, G]`.
        gt_classes: `[B, G, C]` multi-hot classes.
        matched_threshold: IoU threshold (0.5).
        scale_factors: box coder scale factors.

    Returns:
        dict: float32 `class_targets` `[B, R, C + 1]` (column 0 =
        background), `class_weights` `[B, R]` (1 for valid proposals),
        `box_targets` `[B, R, 4]`, `box_weights` `[B, R]` (matched valid
        proposals), int32 `match` `[B, R]` (-2 for padding).

    Example:

    >>> import numpy as np
    >>> p = np.array([[[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]]],
    ...              "float32")
    >>> gt = np.array([[[0.1, 0.1, 0.5, 0.45]]], "float32")
    >>> t = box_classifier_targets(p, np.array([[True, True]]), gt,
    ...                            np.array([[True]]),
    ...                            np.array([[[0, 1, 1]]], "float32"))
    >>> np.asarray(t["class_targets"]).tolist()
    [[[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]]]

    Reference:
        TF Object Detection API `meta_architectures/faster_rcnn_meta_arch.py`
        (`_loss_box_classifier`), `core/target_assigner.py`.
    """
    proposals = tf.convert_to_tensor(proposals, tf.float32)
    proposal_mask = tf.cast(proposal_mask, tf.bool)
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    gt_classes = tf.cast(gt_classes, tf.float32)
    match = _second_stage_match(proposals, proposal_mask, gt_boxes, gt_mask,
                                matched_threshold)
    positive = match >= 0
    matched_classes = tf.gather(gt_classes, tf.maximum(match, 0),
                                batch_dims=1)
    matched_classes = tf.where(positive[..., None], matched_classes, 0.0)
    background = 1.0 - tf.cast(positive, tf.float32)
    targets = {
        "class_targets": tf.concat([background[..., None], matched_classes],
                                   axis=-1),
        "class_weights": tf.cast(proposal_mask, tf.float32),
        "box_targets": _encode_matched(match, gt_boxes, proposals,
                                       scale_factors),
        "box_weights": tf.cast(positive, tf.float32),
        "match": match,
    }
    return {k: tf.stop_gradient(v) for k, v in targets.items()}


def _pack_front(selected, tensors, size):
    """Moves selected rows to the front (stable), keeps `size` rows."""
    num = tf.shape(selected)[1]
    pad = tf.maximum(size - num, 0)
    selected = tf.pad(selected, [[0, 0], [0, pad]])
    order = tf.argsort(tf.cast(tf.logical_not(selected), tf.int32), axis=1,
                       stable=True)[:, :size]
    packed = []
    for t in tensors:
        paddings = [[0, 0], [0, pad]] + [[0, 0]] * (t.shape.rank - 2)
        packed.append(tf.gather(tf.pad(t, paddings), order, batch_dims=1))
    kept = tf.gather(selected, order, batch_dims=1)
    index = tf.where(kept, order, -1)
    return kept, index, packed


def sample_proposals(proposals, proposal_mask, gt_boxes, gt_mask,
                     gt_classes=None, *,
                     batch_size=SECOND_STAGE_BATCH_SIZE,
                     positive_fraction=SECOND_STAGE_POSITIVE_FRACTION,
                     matched_threshold=SECOND_STAGE_MATCHED_THRESHOLD,
                     seed=None):
    """Samples the second-stage minibatch of proposals per image.

    Valid proposals are matched to the ground truth at IoU
    `matched_threshold`; a proposal is positive when its match has at least
    one class (the API's `argmax(class targets) > 0`; without `gt_classes`,
    every match is positive). A balanced random subset of `batch_size`
    proposals with at most `int(batch_size * positive_fraction)` positives
    is kept, in the original (score) order, packed to the front and
    zero-padded.

    Args:
        proposals: `[B, R, 4]` proposals (e.g. from
            `tfaction.ops.proposals.generate_proposals`).
        proposal_mask: bool `[B, R]`.
        gt_boxes: `[B, G, 4]`; gt_mask: bool `[B, G]`.
        gt_classes: optional `[B, G, C]` multi-hot classes.
        batch_size: proposals kept per image (64).
        positive_fraction: largest positive fraction (0.25).
        matched_threshold: IoU threshold (0.5).
        seed: sampler seed (see the module docstring).

    Returns:
        dict: `boxes` float32 `[B, batch_size, 4]`, `mask` bool
        `[B, batch_size]`, `indices` int32 `[B, batch_size]` (row in
        `proposals`, -1 for padding).

    Example:

    >>> import numpy as np
    >>> p = np.array([[[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9],
    ...                [0.0, 0.0, 0.2, 0.2]]], "float32")
    >>> s = sample_proposals(p, np.array([[True, True, False]]),
    ...                      p[:, :1], np.array([[True]]), batch_size=4,
    ...                      seed=(0, 0))
    >>> np.asarray(s["indices"]).tolist(), np.asarray(s["mask"]).tolist()
    ([[0, 1, -1, -1]], [[True, True, False, False]])

    Reference:
        TF Object Detection API `meta_architectures/faster_rcnn_meta_arch.py`
        (`_sample_box_classifier_minibatch_single_image`),
        `protos/faster_rcnn.proto`.
    """
    proposals = tf.convert_to_tensor(proposals, tf.float32)
    proposal_mask = tf.cast(proposal_mask, tf.bool)
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    size, _ = _check_sampling(batch_size, positive_fraction)
    match = _second_stage_match(proposals, proposal_mask, gt_boxes, gt_mask,
                                matched_threshold)
    positive = match >= 0
    if gt_classes is not None:
        labelled = tf.reduce_any(tf.cast(gt_classes, tf.float32) > 0,
                                 axis=-1)
        positive = tf.logical_and(
            positive,
            tf.gather(labelled, tf.maximum(match, 0), batch_dims=1))
    sampled = sample_balanced(proposal_mask, positive, size,
                              positive_fraction, seed)
    kept, index, (boxes,) = _pack_front(sampled, [proposals], size)
    boxes = tf.where(kept[..., None], boxes, 0.0)
    return {"boxes": tf.stop_gradient(boxes), "mask": kept,
            "indices": index}
