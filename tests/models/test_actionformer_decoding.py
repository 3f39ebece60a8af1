"""ActionFormer decoding: candidates before NMS and grid -> seconds.

Checked against every actionformer_* bundle's `inference.npz` (official
code): the stored network outputs decode to the stored pre-NMS candidates
(same set and order, up to swaps of candidates whose scores tie within
float32 noise: our sigmoid and theirs may differ in the last bit), and the
stored NMS output converts to the stored final seconds; plus synthetic
checks of the selection rules (ties, top-k, thresholds) and of the
serving-graph path.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfaction.models.actionformer.decoding import decode_candidates
from tfaction.models.actionformer.decoding import grid_to_seconds
from tests.models import parity


def _load(root):
    with open(root / "config.json") as f:
        config = json.load(f)
    return config, dict(np.load(root / "inference.npz")), dict(
        np.load(root / "io.npz"))


@pytest.fixture(scope="module")
def bundles(actionformer_bundles):
    return [(root.name,) + _load(root) for root in actionformer_bundles]


def _outputs(inf, num_levels):
    logits = [inf[f"cls_logits_{l}"][0].T for l in range(num_levels)]
    offsets = [inf[f"offsets_{l}"][0].T for l in range(num_levels)]
    masks = [inf[f"fpn_mask_{l}"][0, 0] for l in range(num_levels)]
    return logits, offsets, masks


def _test_cfg(config):
    cfg = config["config"]["test_cfg"]
    return dict(pre_nms_thresh=cfg["pre_nms_thresh"],
                pre_nms_topk=cfg["pre_nms_topk"],
                duration_thresh=cfg["duration_thresh"])


def _check_candidates(segs, scores, labels, inf, name):
    assert segs.shape == inf["cand_segs_grid"].shape, name
    parity.assert_same_ranking(
        (segs, scores, labels),
        (inf["cand_segs_grid"], inf["cand_scores"], inf["cand_labels"]),
        f"{name} candidates", score_rtol=1e-6, score_atol=1e-7,
        seg_rtol=1e-6, seg_atol=1e-5)


def test_candidates_match_reference(bundles):
    for name, config, inf, _ in bundles:
        strides = config["derived"]["fpn_strides"]
        logits, offsets, masks = _outputs(inf, len(strides))
        segs, scores, labels = decode_candidates(
            logits, offsets, strides, masks, **_test_cfg(config))
        assert labels.dtype == tf.int64 and segs.dtype == tf.float32
        assert len(labels) == config["n_inference_candidates"], name
        _check_candidates(segs.numpy(), scores.numpy(), labels.numpy(), inf,
                          name)


def test_candidates_in_serving_graph(bundles):
    for name, config, inf, _ in bundles:
        _check_serving_graph(name, config, inf)


def _check_serving_graph(name, config, inf):
    strides = config["derived"]["fpn_strides"]
    num_levels = len(strides)
    logits, offsets, masks = _outputs(inf, num_levels)
    num_classes = config["config"]["dataset"]["num_classes"]
    signature = (
        [tf.TensorSpec([None, num_classes], tf.float32)] * num_levels,
        [tf.TensorSpec([None, 2], tf.float32)] * num_levels,
        [tf.TensorSpec([None], tf.bool)] * num_levels)

    @tf.function(input_signature=signature)
    def serve(lg, of, mk):
        return decode_candidates(lg, of, strides, mk, **_test_cfg(config))

    segs, scores, labels = serve(logits, offsets, masks)
    _check_candidates(segs.numpy(), scores.numpy(), labels.numpy(), inf,
                      name)


def test_points_are_stride_multiples(bundles):
    """The decoder's points `t = i * s` are the reference PointGenerator's."""
    for _, config, _, io in bundles:
        for l, stride in enumerate(config["derived"]["fpn_strides"]):
            pts = io[f"points_{l}"]
            np.testing.assert_array_equal(pts[:, 0],
                                          np.arange(len(pts)) * stride)
            np.testing.assert_array_equal(pts[:, 3], stride)


def test_seconds_match_reference(bundles):
    clamped = {"start": 0, "end": 0}
    for name, _, inf, _ in bundles:
        sec = grid_to_seconds(inf["nms_segs_grid"], inf["fps"],
                              inf["feat_stride"], inf["feat_num_frames"],
                              inf["duration"])
        assert sec.dtype == tf.float32
        np.testing.assert_allclose(sec, inf["segments_sec"], rtol=1e-6,
                                   atol=1e-6, err_msg=name)
        clamped["start"] += int((inf["segments_sec"] == 0).sum())
        clamped["end"] += int(np.isclose(inf["segments_sec"],
                                         inf["duration"]).sum())
    # the bundles' outputs exercise both clamps
    assert clamped["start"] and clamped["end"], clamped


def test_seconds_formula_clamp_and_graph():
    segs = np.array([[-5.0, 2.0], [10.0, 500.0]], "float32")
    fn = tf.function(grid_to_seconds)
    sec = fn(tf.constant(segs), tf.constant(30.0), 4, 16, 24.0).numpy()
    # (g * 4 + 8) / 30, clamped to [0, 24]
    np.testing.assert_allclose(sec, [[0.0, 16 / 30], [48 / 30, 24.0]],
                               rtol=1e-6)
    # inverse of the dataset's seconds -> grid conversion
    t_sec = np.array([[1.5, 4.0]], "float32")
    grid = t_sec * 30.0 / 4 - 0.5 * 16 / 4
    np.testing.assert_allclose(grid_to_seconds(grid, 30.0, 4, 16, 100.0),
                               t_sec, rtol=1e-6)


def test_selection_ties_topk_and_thresholds():
    # one level, stride 2, 3 points x 2 classes; flat index = t * 2 + c
    p = np.array([[0.5, 0.9], [0.9, 0.0005], [0.5, 0.7]], "float32")
    logits = np.log(p / (1 - p))
    offsets = np.array([[1.0, 1.0], [0.01, 0.01], [0.5, 0.0]], "float32")
    segs, scores, labels = decode_candidates(
        [logits], [offsets], [2], pre_nms_thresh=0.001, pre_nms_topk=10,
        duration_thresh=0.05)
    # 0.0005 dropped (threshold); ties keep the lower flat index first;
    # point 1 (length 0.04) dropped by duration_thresh
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.5, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(labels, [1, 1, 0, 0])
    np.testing.assert_allclose(
        segs, [[-2.0, 2.0], [3.0, 4.0], [-2.0, 2.0], [3.0, 4.0]])
    # top-k is taken before the duration filter, per level
    segs, scores, labels = decode_candidates(
        [logits], [offsets], [2], pre_nms_thresh=0.001, pre_nms_topk=3,
        duration_thresh=0.05)
    np.testing.assert_allclose(scores, [0.9, 0.7], rtol=1e-6)
    # the mask zeroes padded points; levels are concatenated in order
    mask = np.array([True, True, False])
    segs, scores, labels = decode_candidates(
        [logits, logits[:1]], [offsets, offsets[:1]], [2, 4],
        [mask, np.array([True])], pre_nms_topk=10)
    np.testing.assert_allclose(scores, [0.9, 0.5, 0.9, 0.5], rtol=1e-6)
    np.testing.assert_allclose(segs[2:], [[-4.0, 4.0]] * 2)
    # nothing above the threshold: empty, well-typed outputs
    segs, scores, labels = decode_candidates(
        [np.full((3, 2), -20.0, "float32")], [offsets], [1])
    assert segs.shape == (0, 2) and scores.shape == (0,)
    assert labels.dtype == tf.int64


def test_rejects_inconsistent_levels():
    with pytest.raises(ValueError, match="strides"):
        decode_candidates([np.zeros((2, 2), "float32")],
                          [np.zeros((2, 2), "float32")], [1, 2])
