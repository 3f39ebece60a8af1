"""ActionFormer parity of points, targets, losses and NMS, on every
actionformer_* bundle.

Reference: the official PyTorch code, recorded in `io.npz`, `inference.npz`
and `config.json` (see each bundle's README). Every setting and expected
value comes from the bundle.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfaction.losses.ctr_diou_loss_1d import ctr_diou_loss_1d
from tfaction.losses.sigmoid_focal_loss import sigmoid_focal_loss
from tfaction.ops.label_assignment import assign_point_labels
from tfaction.ops.point_generator import generate_points
from tfaction.ops.soft_nms import soft_nms
from tfaction.ops.soft_nms import soft_nms_tf
from tests.models import parity

# Segment voting is a float32 matrix product in the reference; its BLAS
# summation order is not ours, so voted coordinates may differ in the last
# bits. Bound, in float32 ulps of the coordinate.
VOTING_ULPS = 4


def _load(root):
    return (np.load(root / "io.npz"), np.load(root / "inference.npz"),
            json.loads((root / "config.json").read_text()), root.name)


@pytest.fixture(scope="module")
def bundles(actionformer_bundles):
    return [_load(root) for root in actionformer_bundles]


def _targets(io, cfg):
    derived, model = cfg["derived"], cfg["config"]["model"]
    train = cfg["config"]["train_cfg"]
    points = np.concatenate([np.asarray(p) for p in generate_points(
        io["input"].shape[-1], derived["fpn_strides"],
        derived["regression_range"])])
    videos = parity.batch_size(io)
    n_max = max(len(io[f"gt_labels_{i}"]) for i in range(videos)) + 3
    segs = np.zeros((videos, n_max, 2), np.float32)
    labels = np.zeros((videos, n_max), np.int64)
    valid = np.zeros((videos, n_max), bool)
    for i in range(videos):
        n = len(io[f"gt_labels_{i}"])
        segs[i, :n] = io[f"gt_segments_{i}"]
        labels[i, :n] = io[f"gt_labels_{i}"]
        valid[i, :n] = True
    cls, reg = assign_point_labels(
        points, segs, labels, model["num_classes"], gt_valid=valid,
        center_sample=train["center_sample"],
        center_sample_radius=train["center_sample_radius"])
    return points, np.asarray(cls), np.asarray(reg)


def test_points_and_targets(bundles):
    for io, _, cfg, name in bundles:
        points, cls, reg = _targets(io, cfg)
        levels = parity.num_levels(cfg)
        np.testing.assert_array_equal(
            points, np.concatenate([io[f"points_{l}"]
                                    for l in range(levels)]))
        for i in range(parity.batch_size(io)):
            what = f"{name} video {i}"
            np.testing.assert_array_equal(cls[i], io[f"gt_cls_targets_{i}"],
                                          err_msg=what)
            pos = io["pos_mask"][i]
            np.testing.assert_allclose(reg[i][pos],
                                       io[f"gt_reg_targets_{i}"][pos],
                                       rtol=0, atol=1e-6, err_msg=what)
            # Non-positive rows follow the reference's GT-0 fallback too.
            np.testing.assert_allclose(reg[i], io[f"gt_reg_targets_{i}"],
                                       rtol=0, atol=1e-6, err_msg=what)


def test_losses_normaliser_and_final_loss(bundles):
    for io, _, cfg, name in bundles:
        _check_losses(io, cfg, name)


def _check_losses(io, cfg, name):
    train = cfg["config"]["train_cfg"]
    levels = parity.num_levels(cfg)
    _, cls, reg = _targets(io, cfg)
    # Heads return channels-first [B, C, T_l]; the port is channels-last.
    logits = np.concatenate([io[f"cls_logits_{l}"].transpose(0, 2, 1)
                             for l in range(levels)], axis=1)
    offsets = np.concatenate([io[f"offsets_{l}"].transpose(0, 2, 1)
                              for l in range(levels)], axis=1)
    valid = np.concatenate([io[f"fpn_mask_{l}"][:, 0]
                            for l in range(levels)], axis=1)
    pos = np.logical_and(cls.sum(-1) > 0, valid)
    np.testing.assert_array_equal(pos, io["pos_mask"], err_msg=name)
    num_pos = int(pos.sum())
    assert num_pos == int(io["num_pos"]) == cfg["num_pos"], name
    norm = float(train["init_loss_norm"])
    assert norm == float(io["loss_normalizer_before"])
    norm = 0.9 * norm + 0.1 * max(num_pos, 1)  # EMA, updated before use
    np.testing.assert_allclose(norm, io["loss_normalizer_used"], rtol=1e-12)

    cls_loss = float(sigmoid_focal_loss(
        cls, logits, mask=valid,
        label_smoothing=train["label_smoothing"])) / norm
    reg_loss = float(ctr_diou_loss_1d(reg, offsets, mask=pos)) / norm
    final = cls_loss + train["loss_weight"] * reg_loss
    for got, key in [(cls_loss, "loss_cls_loss"), (reg_loss, "loss_reg_loss"),
                     (final, "loss_final_loss")]:
        np.testing.assert_allclose(got, io[key], rtol=1e-5,
                                   err_msg=f"{name} {key}")
        np.testing.assert_allclose(got, cfg["losses"][key[5:]], rtol=1e-5,
                                   err_msg=f"{name} {key}")


def _nms_kwargs(cfg):
    kw = cfg["inference_nms_call"]
    return dict(iou_threshold=kw["iou_threshold"], min_score=kw["min_score"],
                max_seg_num=kw["max_seg_num"],
                method="gaussian" if kw["use_soft_nms"] else "hard",
                multiclass=kw["multiclass"], sigma=kw["sigma"],
                voting_thresh=kw["voting_thresh"])


def _check_nms(got, inf, name, voting, exact_order):
    """NMS of the stored candidates equals the stored NMS output.

    * Scores to the last bit, except where the reference's C library `expf`
      is not correctly rounded (ours is): there a decay factor, and so a
      score, may differ by 1 float32 ulp (rarely).
    * Labels and segments in the same order (`exact_order`: the host NMS,
      which reproduces the tie order of the reference's final
      `torch.sort`); the graph NMS sorts stably, so among detections whose
      scores tie exactly it is compared as a set.
    * Segments to the last bit, except after segment voting: the
      reference's weighted mean is a float32 matrix product rounded along
      its BLAS kernel's summation order, so voted coordinates may differ in
      the last bits (at most `VOTING_ULPS`).
    """
    segs, scores, labels = (np.asarray(x) for x in got)
    want_sc = inf["nms_scores"]
    assert scores.shape == want_sc.shape, name
    score_ulps = np.abs(scores - want_sc) / np.spacing(np.abs(want_sc))
    assert score_ulps.max(initial=0.0) <= 1, (name, score_ulps.max())
    assert (score_ulps > 0).mean() < 0.01, (name, (score_ulps > 0).sum())
    ulp = 2.0 ** -23  # float32 relative spacing
    seg_rtol = (VOTING_ULPS * ulp) if voting else 0.0
    if exact_order:
        np.testing.assert_array_equal(labels, inf["nms_labels"],
                                      err_msg=name)
        np.testing.assert_allclose(segs, inf["nms_segs_grid"], rtol=seg_rtol,
                                   atol=0, err_msg=name)
        return
    parity.assert_same_ranking(
        (segs, scores, labels),
        (inf["nms_segs_grid"], want_sc, inf["nms_labels"]), name,
        score_rtol=ulp, score_atol=0.0, seg_rtol=seg_rtol, seg_atol=0.0)


def _voting(kw):
    return not kw["multiclass"] and kw["voting_thresh"] > 0


def test_inference_nms_numpy(bundles):
    for _, inf, cfg, name in bundles:
        kw = _nms_kwargs(cfg)
        got = soft_nms(inf["cand_segs_grid"], inf["cand_scores"],
                       inf["cand_labels"], **kw)
        _check_nms(got, inf, name, _voting(kw), exact_order=True)


def test_inference_nms_in_saved_model(bundles, tmp_path):
    for _, inf, cfg, name in bundles:
        _check_nms_saved_model(inf, cfg, name, tmp_path / name)


def _check_nms_saved_model(inf, cfg, name, path):
    kw = _nms_kwargs(cfg)
    num_classes = cfg["config"]["model"]["num_classes"]

    class Post(tf.Module):
        @tf.function(input_signature=[
            tf.TensorSpec([None, 2], tf.float32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([None], tf.bool)])
        def serve(self, segs, scores, labels, valid):
            s, sc, lb, k = soft_nms_tf(segs, scores, labels, valid=valid,
                                       num_classes=num_classes, **kw)
            return {"segments": s, "scores": sc, "labels": lb, "num": k}

    tf.saved_model.save(Post(), str(path),
                        signatures={"serving_default": Post().serve})
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    n = len(inf["cand_scores"])
    buffer = n + 253  # fixed-size candidate buffer, padded and masked
    pad = buffer - n
    segs = np.pad(inf["cand_segs_grid"], ((0, pad), (0, 0)))
    out = fn(segs=tf.constant(segs),
             scores=tf.constant(np.pad(inf["cand_scores"], (0, pad))),
             labels=tf.constant(np.pad(inf["cand_labels"], (0, pad))),
             valid=tf.constant(np.arange(buffer) < n))
    k = int(out["num"])
    assert k == len(inf["nms_scores"]), name
    _check_nms((out["segments"].numpy()[:k], out["scores"].numpy()[:k],
                out["labels"].numpy()[:k]), inf, name, _voting(kw),
               exact_order=False)
