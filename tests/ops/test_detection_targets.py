"""tfaction.ops.detection_targets: ArgMax matcher, sampler, targets."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

from tfaction.ops import anchors as anchor_ops
from tfaction.ops import box_coder
from tfaction.ops import boxes as np_boxes
from tfaction.ops import detection_targets as dt


def _np_matcher(sim, gt_valid, anchor_valid, matched, unmatched, force):
    """The TF OD API ArgMaxMatcher on the unpadded / unpruned sub-matrix."""
    n_anchors = sim.shape[0]
    # Thresholds compare in float32, as in the API's graph.
    matched, unmatched = np.float32(matched), np.float32(unmatched)
    rows = [g for g in range(sim.shape[1]) if gt_valid[g]]
    cols = [n for n in range(n_anchors) if anchor_valid[n]]
    match = np.full(n_anchors, -2)
    for n in cols:
        if not rows:
            match[n] = -1
            continue
        vals = [sim[n, g] for g in rows]
        best = max(vals)
        g = rows[vals.index(best)]               # first maximum
        match[n] = g if best >= matched else (-2 if best >= unmatched
                                              else -1)
    if force and cols:
        claimed = {}
        for g in rows:                           # lowest row wins
            vals = [sim[n, g] for n in cols]
            claimed.setdefault(cols[vals.index(max(vals))], g)
        for n, g in claimed.items():
            match[n] = g
    return match


def test_docstrings():
    result = doctest.testmod(dt)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("force", [True, False])
def test_matcher_matches_reference_with_ties_and_masks(force):
    rng = np.random.default_rng(0)
    b, n, g = 4, 40, 6
    sim = (rng.integers(0, 11, (b, n, g)) / 10.0).astype(np.float32)  # ties
    gt_valid = rng.random((b, g)) < 0.7
    gt_valid[0] = False                          # an all-padding image
    anchor_valid = rng.random((b, n)) < 0.8
    got = np.asarray(dt.match_by_iou(sim, gt_valid, anchor_valid,
                                     matched_threshold=0.7,
                                     unmatched_threshold=0.3,
                                     force_match=force))
    for i in range(b):
        ref = _np_matcher(sim[i], gt_valid[i], anchor_valid[i], 0.7, 0.3,
                          force)
        np.testing.assert_array_equal(got[i], ref, err_msg=f"image {i}")
    assert np.all(got[0][anchor_valid[0]] == -1)


def test_matcher_edge_cases():
    # No ground truth at all (G = 0).
    m = dt.match_by_iou(np.zeros((2, 5, 0), np.float32),
                        np.zeros((2, 0), bool))
    assert np.asarray(m).tolist() == [[-1] * 5] * 2
    # Force-match beats the thresholds; ties go to the first anchor; two
    # boxes claiming one anchor: the lower index wins.
    sim = np.array([[[0.1, 0.1], [0.1, 0.05], [0.0, 0.0]]], np.float32)
    m = dt.match_by_iou(sim, np.array([[True, True]]))
    assert np.asarray(m).tolist() == [[0, -1, -1]]
    # The claimed anchor must be a valid one.
    m = dt.match_by_iou(sim, np.array([[True, True]]),
                        np.array([False, True, True]))
    assert np.asarray(m).tolist() == [[-2, 0, -1]]
    with pytest.raises(ValueError, match="unmatched_threshold"):
        dt.match_by_iou(sim, np.array([[True, True]]),
                        matched_threshold=0.3, unmatched_threshold=0.5)


def test_sampler_fractions_and_determinism():
    candidates = np.ones((3, 2000), bool)
    candidates[:, :100] = False
    positives = np.zeros((3, 2000), bool)
    positives[0, :1000] = True           # plenty of positives
    positives[1, 100:105] = True         # 5 positives
    # image 2: none
    s = np.asarray(dt.sample_balanced(candidates, positives, 256, 0.5,
                                      seed=(3, 4)))
    pos = (s & positives).sum(1)
    neg = (s & ~positives).sum(1)
    assert pos.tolist() == [128, 5, 0] and neg.tolist() == [128, 251, 256]
    assert not np.any(s & ~candidates)
    again = dt.sample_balanced(candidates, positives, 256, 0.5, seed=(3, 4))
    np.testing.assert_array_equal(s, again)
    other = dt.sample_balanced(candidates, positives, 256, 0.5, seed=(3, 5))
    assert np.any(np.asarray(other) != s)
    # Fewer candidates than the minibatch: all of them.
    few = np.ones((1, 50), bool)
    few_pos = np.arange(50)[None] < 7
    s = np.asarray(dt.sample_balanced(few, few_pos, 64, 0.25, seed=(0, 0)))
    assert s.all()
    # More positives than int(64 * 0.25) = 16, few negatives.
    s = np.asarray(dt.sample_balanced(few, ~few_pos, 64, 0.25, seed=(0, 0)))
    assert (s & ~few_pos).sum() == 16 and (s & few_pos).sum() == 7
    # Roughly uniform over the eligible entries.
    counts = np.zeros(2000)
    for k in range(20):
        counts += np.asarray(dt.sample_balanced(
            np.ones((1, 2000), bool), np.zeros((1, 2000), bool), 500, 0.5,
            seed=(k, 7)))[0]
    assert abs(counts[:1000].sum() - counts[1000:].sum()) < 600


def test_rpn_targets_values():
    anchors = np.asarray(anchor_ops.grid_anchors(6, 6, 96, 96,
                                                 scales=(0.25, 0.5),
                                                 aspect_ratios=(1.0,),
                                                 base_anchor_size=(128, 128)))
    gt = np.array([[[0.1, 0.1, 0.45, 0.4], [0.5, 0.55, 0.9, 0.85],
                    [0, 0, 0, 0]],
                   [[0, 0, 0, 0]] * 3], np.float32)
    gt_mask = np.array([[True, True, False], [False] * 3])
    inside = box_coder.boxes_inside_window(anchors)
    t = dt.rpn_targets(anchors, gt, gt_mask, inside, minibatch_size=20,
                       seed=(1, 1))
    match = np.asarray(t["match"])
    iou = np_boxes.box_iou(anchors, gt[0, :2])
    ref = _np_matcher(iou, [True, True], np.asarray(inside), 0.7, 0.3, True)
    np.testing.assert_array_equal(match[0], ref)
    assert np.all(match[1] == np.where(inside, -1, -2))
    pos = match >= 0
    np.testing.assert_array_equal(t["objectness"], pos.astype(np.float32))
    w = np.asarray(t["objectness_weights"])
    assert w.sum(1).tolist() == [20.0, 20.0]
    assert np.all(w[match == -2] == 0)
    np.testing.assert_array_equal(t["box_weights"], w * pos)
    codes = np.asarray(box_coder.encode_boxes(gt[0][match[0, pos[0]]],
                                              anchors[pos[0]]))
    np.testing.assert_allclose(np.asarray(t["box_targets"])[0, pos[0]],
                               codes, atol=1e-6)
    assert np.all(np.asarray(t["box_targets"])[~pos] == 0)


def test_second_stage_targets_and_sampling():
    proposals = np.array([[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.5],
                           [0.6, 0.6, 0.9, 0.9], [0.0, 0.0, 0.3, 0.3],
                           [0, 0, 0, 0]]], np.float32)
    mask = np.array([[True, True, True, True, False]])
    gt = np.array([[[0.1, 0.1, 0.5, 0.45], [0.6, 0.6, 0.9, 0.95]]],
                  np.float32)
    gt_mask = np.array([[True, True]])
    classes = np.array([[[1, 0, 1], [0, 0, 0]]], np.float32)
    t = dt.box_classifier_targets(proposals, mask, gt, gt_mask, classes)
    assert np.asarray(t["match"]).tolist() == [[0, 0, 1, -1, -2]]
    np.testing.assert_array_equal(
        t["class_targets"][0],
        [[0, 1, 0, 1], [0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0],
         [1, 0, 0, 0]])
    np.testing.assert_array_equal(t["class_weights"], [[1, 1, 1, 1, 0]])
    np.testing.assert_array_equal(t["box_weights"], [[1, 1, 1, 0, 0]])
    # Sampling: proposal 2 matches an unlabelled box, so it is negative;
    # at most int(8 * 0.25) = 2 positives, order kept, padded to 8.
    s = dt.sample_proposals(proposals, mask, gt, gt_mask, classes,
                            batch_size=8, seed=(0, 0))
    idx = np.asarray(s["indices"])[0]
    assert idx.tolist() == [0, 1, 2, 3, -1, -1, -1, -1]
    np.testing.assert_array_equal(s["boxes"][0, :4], proposals[0, :4])
    assert np.all(np.asarray(s["boxes"])[0, 4:] == 0)
    s = dt.sample_proposals(proposals, mask, gt, gt_mask, classes,
                            batch_size=2, positive_fraction=0.5,
                            seed=(0, 0))
    idx = np.asarray(s["indices"])[0]
    assert np.asarray(s["mask"]).tolist() == [[True, True]]
    assert sorted(idx.tolist()) == idx.tolist()
    assert len(set(idx.tolist()) & {0, 1}) == 1          # one positive
    assert len(set(idx.tolist()) & {2, 3}) == 1          # one negative


def test_second_stage_sampling_fractions():
    rng = np.random.default_rng(5)
    gt = np.array([[[0.2, 0.2, 0.6, 0.6]]] * 2, np.float32)
    jitter = rng.uniform(-0.03, 0.03, (2, 300, 4)).astype(np.float32)
    proposals = np.where(np.arange(300)[None, :, None] < 100,
                         gt + jitter,
                         np.asarray(box_coder.clip_boxes(
                             rng.uniform(0.65, 1.0, (2, 300, 4)))))
    proposals = np.sort(proposals.reshape(2, 300, 2, 2), axis=2).reshape(
        2, 300, 4).astype(np.float32)
    mask = np.ones((2, 300), bool)
    s = dt.sample_proposals(proposals, mask, gt, np.ones((2, 1), bool),
                            seed=(2, 2))
    idx = np.asarray(s["indices"])
    assert idx.shape == (2, 64) and np.all(idx >= 0)
    assert ((idx < 100).sum(1) == 16).all()
    assert np.all(np.diff(idx, axis=1) > 0)


def test_tf_function_dynamic_shapes_and_mirrored(two_cpu_strategy):
    spec = [tf.TensorSpec([None, 4], tf.float32),
            tf.TensorSpec([None, None, 4], tf.float32),
            tf.TensorSpec([None, None], tf.bool)]

    @tf.function(input_signature=spec)
    def targets(anchors, gt, gt_mask):
        return dt.rpn_targets(anchors, gt, gt_mask, minibatch_size=16,
                              seed=(4, 2))

    anchors = anchor_ops.grid_anchors(4, 4, 64, 64,
                                      base_anchor_size=(32, 32))
    gt = np.array([[[0.1, 0.1, 0.5, 0.5]], [[0.3, 0.2, 0.9, 0.7]]],
                  np.float32)
    gt_mask = np.array([[True], [True]])
    eager = dt.rpn_targets(anchors, gt, gt_mask, minibatch_size=16,
                           seed=(4, 2))
    traced = targets(anchors, gt, gt_mask)
    for key in eager:
        np.testing.assert_array_equal(eager[key], traced[key], err_msg=key)

    dataset = tf.data.Dataset.from_tensor_slices((gt, gt_mask)).batch(2)
    dist = two_cpu_strategy.experimental_distribute_dataset(dataset)

    @tf.function
    def step(batch):
        def replica_fn(g, m):
            t = dt.rpn_targets(anchors, g, m, minibatch_size=16)
            s = dt.sample_proposals(g, m, g, m, batch_size=4)
            return tf.reduce_sum(t["objectness_weights"]), s["mask"]
        return two_cpu_strategy.run(replica_fn, args=batch)

    for batch in dist:
        counts, masks = step(batch)
        values = two_cpu_strategy.experimental_local_results(counts)
        assert [float(v) for v in values] == [16.0, 16.0]
        for m in two_cpu_strategy.experimental_local_results(masks):
            assert np.asarray(m).tolist() == [[True, False, False, False]]


def test_compiles_with_xla():
    anchors = anchor_ops.grid_anchors(5, 5, 80, 80)
    gt = np.array([[[0.1, 0.1, 0.5, 0.5], [0.3, 0.3, 0.9, 0.8]]] * 2,
                  np.float32)
    gt_mask = np.array([[True, True], [True, False]])
    classes = np.ones((2, 2, 3), np.float32)

    def fn(gt, gt_mask):
        t = dt.rpn_targets(anchors, gt, gt_mask, minibatch_size=32,
                           seed=(1, 2))
        s = dt.sample_proposals(gt, gt_mask, gt, gt_mask, classes,
                                batch_size=4, seed=(1, 2))
        c = dt.box_classifier_targets(s["boxes"], s["mask"], gt, gt_mask,
                                      classes)
        return t, s, c

    compiled = tf.function(fn, jit_compile=True)(gt, gt_mask)
    eager = fn(gt, gt_mask)
    for key in ("objectness", "box_targets", "match"):
        np.testing.assert_allclose(compiled[0][key], eager[0][key],
                                   atol=1e-5, err_msg=key)
    np.testing.assert_array_equal(
        np.sum(compiled[0]["objectness_weights"], 1),
        np.sum(eager[0]["objectness_weights"], 1))
    np.testing.assert_array_equal(compiled[1]["mask"], eager[1]["mask"])
    np.testing.assert_allclose(compiled[2]["class_targets"],
                               eager[2]["class_targets"])


def test_per_row_seeds_make_each_row_independent_of_its_batch():
    """One seed per image: an image samples the same minibatch whatever
    else is in its batch (as when a batch is split across replicas)."""
    rng = np.random.default_rng(5)
    candidates = np.ones((3, 40), bool)
    positives = rng.uniform(size=(3, 40)) < 0.3
    seeds = np.array([[11, 1], [12, 1], [13, 1]], "int64")
    whole = np.asarray(dt.sample_balanced(
        candidates, positives, 10, 0.5, seed=seeds))
    for i in range(3):
        alone = np.asarray(dt.sample_balanced(
            candidates[i:i + 1], positives[i:i + 1], 10, 0.5,
            seed=seeds[i:i + 1]))
        np.testing.assert_array_equal(alone[0], whole[i])
    other = np.asarray(dt.sample_balanced(
        candidates, positives, 10, 0.5, seed=seeds + [0, 1]))
    assert not np.array_equal(other, whole)
