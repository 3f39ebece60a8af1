"""tfaction.ops.proposals: decode -> clip -> top-k -> NMS -> R proposals."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.region_proposal_head import RegionProposalHead
from tfaction.losses.rpn_loss import rpn_loss
from tfaction.ops import anchors as anchor_ops
from tfaction.ops import box_coder
from tfaction.ops import detection_targets
from tfaction.ops import proposals


def _inputs(seed, batch=2, h=10, w=10):
    rng = np.random.default_rng(seed)
    anchors = np.asarray(anchor_ops.grid_anchors(h, w, h * 16, w * 16))
    n = anchors.shape[0]
    # Distinct scores (NMS order is then unambiguous).
    logits = np.stack([rng.permutation(n) for _ in range(batch)])
    logits = (logits / n * 8.0 - 4.0).astype(np.float32)
    deltas = rng.normal(scale=0.5, size=(batch, n, 4)).astype(np.float32)
    return anchors, logits, deltas


def _reference(logits, deltas, anchors, keep_mask, r, iou, score, top_k):
    """Per image: decode, clip, drop empty, top-k, tf.image NMS."""
    boxes = np.asarray(box_coder.clip_boxes(
        box_coder.decode_boxes(deltas, anchors)))
    scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    out = []
    for i in range(logits.shape[0]):
        ids = np.nonzero((area[i] > 0) & keep_mask)[0]
        ids = ids[np.argsort(-scores[i, ids], kind="stable")]
        if top_k is not None:
            ids = ids[:top_k]
        sel = tf.image.non_max_suppression(
            boxes[i, ids], scores[i, ids].astype(np.float32), r,
            iou_threshold=iou, score_threshold=score)
        out.append(boxes[i, ids[np.asarray(sel)]])
    return out


def test_docstrings():
    result = doctest.testmod(proposals)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("top_k,score,use_mask",
                         [(None, 0.0, False), (200, 0.0, True),
                          (None, 0.6, True)])
def test_matches_per_image_tf_nms(top_k, score, use_mask):
    anchors, logits, deltas = _inputs(0)
    keep = (np.asarray(box_coder.boxes_inside_window(anchors)) if use_mask
            else np.ones(len(anchors), bool))
    out = proposals.generate_proposals(
        logits, deltas, anchors, anchor_mask=keep if use_mask else None,
        max_proposals=50, pre_nms_top_k=top_k, score_threshold=score)
    ref = _reference(logits, deltas, anchors, keep, 50, 0.7, score, top_k)
    for i, boxes in enumerate(ref):
        n = len(boxes)
        assert int(out["num_proposals"][i]) == n
        np.testing.assert_array_equal(out["mask"][i], np.arange(50) < n)
        np.testing.assert_array_equal(out["boxes"][i, :n], boxes)
        assert np.all(np.asarray(out["boxes"])[i, n:] == 0)
        s = np.asarray(out["scores"])[i]
        assert np.all(np.diff(s[:n]) <= 0) and np.all(s[n:] == 0)
        assert np.all(s[:n] > score)


def test_clip_window_per_image_and_padding():
    anchors, logits, deltas = _inputs(1, h=4, w=4)
    windows = np.array([[0, 0, 1, 1], [0, 0, 0.5, 0.5]], np.float32)
    out = proposals.generate_proposals(logits, deltas, anchors,
                                       clip_window=windows,
                                       max_proposals=500)
    b = np.asarray(out["boxes"])
    assert b.shape == (2, 500, 4)
    assert b[1].max() <= 0.5 and b[0].max() <= 1.0
    n = np.asarray(out["num_proposals"])
    assert np.all(n < 500) and np.all(n > 0)


def test_defaults_in_tf_function():
    anchors, logits, deltas = _inputs(2, batch=1, h=25, w=25)
    fn = tf.function(lambda l, d: proposals.generate_proposals(l, d, anchors))
    out = fn(logits, deltas)
    assert tuple(out["boxes"].shape) == (1, 300, 4)
    eager = proposals.generate_proposals(logits, deltas, anchors)
    np.testing.assert_allclose(out["boxes"], eager["boxes"], atol=1e-6)
    np.testing.assert_array_equal(out["mask"], eager["mask"])


def test_gradient_reaches_head_but_not_through_proposals():
    keras.utils.set_random_seed(0)
    head = RegionProposalHead(num_anchors_per_location=12, filters=8)
    features = np.random.default_rng(3).normal(
        size=(2, 6, 6, 4)).astype(np.float32)
    anchors = anchor_ops.grid_anchors(6, 6, 96, 96)
    gt = np.array([[[0.1, 0.1, 0.6, 0.5]], [[0.3, 0.4, 0.9, 0.9]]],
                  np.float32)
    targets = detection_targets.rpn_targets(
        anchors, gt, np.ones((2, 1), bool), seed=(0, 0))
    with tf.GradientTape(persistent=True) as tape:
        logits, deltas = head(features)
        out = proposals.generate_proposals(logits, deltas, anchors,
                                           max_proposals=20)
        through = tf.reduce_sum(out["boxes"]) + tf.reduce_sum(out["scores"])
        losses = rpn_loss(logits, deltas, targets)
        total = losses["localization_loss"] + losses["objectness_loss"]
    grads = tape.gradient(total, head.trainable_variables)
    assert all(g is not None and np.any(np.asarray(g) != 0) for g in grads)
    blocked = tape.gradient(through, head.trainable_variables)
    assert all(g is None for g in blocked)
    del tape


def test_bad_arguments():
    anchors, logits, deltas = _inputs(0, batch=1, h=2, w=2)
    with pytest.raises(ValueError, match="max_proposals"):
        proposals.generate_proposals(logits, deltas, anchors,
                                     max_proposals=0)
    with pytest.raises(ValueError, match="iou_threshold"):
        proposals.generate_proposals(logits, deltas, anchors,
                                     iou_threshold=1.5)
