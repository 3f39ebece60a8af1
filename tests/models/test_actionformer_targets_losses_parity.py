"""ActionFormer parity (actionformer_small): points, targets, losses, NMS.

Reference: the official PyTorch code, recorded in `io.npz`, `inference.npz`
and `config.json` (see the bundle's README).
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

LEVELS = 6


@pytest.fixture(scope="module")
def bundle(anchors_dir):
    folder = anchors_dir / "actionformer_small"
    return (np.load(folder / "io.npz"), np.load(folder / "inference.npz"),
            json.loads((folder / "config.json").read_text()))


def _targets(io, cfg):
    derived, model = cfg["derived"], cfg["config"]["model"]
    train = cfg["config"]["train_cfg"]
    points = np.concatenate([np.asarray(p) for p in generate_points(
        model["max_seq_len"], derived["fpn_strides"],
        derived["regression_range"])])
    n_max = max(len(io[f"gt_labels_{i}"]) for i in range(2)) + 3
    segs = np.zeros((2, n_max, 2), np.float32)
    labels = np.zeros((2, n_max), np.int64)
    valid = np.zeros((2, n_max), bool)
    for i in range(2):
        n = len(io[f"gt_labels_{i}"])
        segs[i, :n] = io[f"gt_segments_{i}"]
        labels[i, :n] = io[f"gt_labels_{i}"]
        valid[i, :n] = True
    cls, reg = assign_point_labels(
        points, segs, labels, model["num_classes"], gt_valid=valid,
        center_sample=train["center_sample"],
        center_sample_radius=train["center_sample_radius"])
    return points, np.asarray(cls), np.asarray(reg)


def test_points_and_targets(bundle):
    io, _, cfg = bundle
    points, cls, reg = _targets(io, cfg)
    np.testing.assert_array_equal(
        points, np.concatenate([io[f"points_{l}"] for l in range(LEVELS)]))
    for i in range(2):
        np.testing.assert_array_equal(cls[i], io[f"gt_cls_targets_{i}"])
        pos = io["pos_mask"][i]
        np.testing.assert_allclose(reg[i][pos], io[f"gt_reg_targets_{i}"][pos],
                                   rtol=0, atol=1e-6)
        # Non-positive rows follow the reference's GT-0 fallback as well.
        np.testing.assert_allclose(reg[i], io[f"gt_reg_targets_{i}"],
                                   rtol=0, atol=1e-6)
    assert (cls[0].sum(-1) > 1).sum() == 3  # multi-hot rows (README)


def test_losses_normaliser_and_final_loss(bundle):
    io, _, cfg = bundle
    train = cfg["config"]["train_cfg"]
    _, cls, reg = _targets(io, cfg)
    # Heads return channels-first [B, C, T_l]; the port is channels-last.
    logits = np.concatenate([io[f"cls_logits_{l}"].transpose(0, 2, 1)
                             for l in range(LEVELS)], axis=1)
    offsets = np.concatenate([io[f"offsets_{l}"].transpose(0, 2, 1)
                              for l in range(LEVELS)], axis=1)
    valid = np.concatenate([io[f"fpn_mask_{l}"][:, 0]
                            for l in range(LEVELS)], axis=1)
    pos = np.logical_and(cls.sum(-1) > 0, valid)
    np.testing.assert_array_equal(pos, io["pos_mask"])
    num_pos = int(pos.sum())
    assert num_pos == int(io["num_pos"]) == cfg["num_pos"]
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
        np.testing.assert_allclose(got, io[key], rtol=1e-5)
        np.testing.assert_allclose(got, cfg["losses"][key[5:]], rtol=1e-5)


def _nms_kwargs(cfg):
    kw = cfg["inference_nms_call"]
    return dict(iou_threshold=kw["iou_threshold"], min_score=kw["min_score"],
                max_seg_num=kw["max_seg_num"],
                method="gaussian" if kw["use_soft_nms"] else "hard",
                multiclass=kw["multiclass"], sigma=kw["sigma"],
                voting_thresh=kw["voting_thresh"])


def test_inference_nms_numpy(bundle):
    _, inf, cfg = bundle
    s, sc, lb = soft_nms(inf["cand_segs_grid"], inf["cand_scores"],
                         inf["cand_labels"], **_nms_kwargs(cfg))
    np.testing.assert_array_equal(s, inf["nms_segs_grid"])
    np.testing.assert_allclose(sc, inf["nms_scores"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(lb, inf["nms_labels"])


def test_inference_nms_in_saved_model(bundle, tmp_path):
    _, inf, cfg = bundle
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

    tf.saved_model.save(Post(), str(tmp_path / "post"),
                        signatures={"serving_default": Post().serve})
    fn = tf.saved_model.load(str(tmp_path / "post")).signatures[
        "serving_default"]
    n = len(inf["cand_scores"])
    buffer = 2048  # fixed-size candidate buffer, padded and masked
    pad = buffer - n
    segs = np.pad(inf["cand_segs_grid"], ((0, pad), (0, 0)))
    out = fn(segs=tf.constant(segs),
             scores=tf.constant(np.pad(inf["cand_scores"], (0, pad))),
             labels=tf.constant(np.pad(inf["cand_labels"], (0, pad))),
             valid=tf.constant(np.arange(buffer) < n))
    k = int(out["num"])
    assert k == len(inf["nms_scores"])
    np.testing.assert_array_equal(out["segments"].numpy()[:k],
                                  inf["nms_segs_grid"])
    np.testing.assert_allclose(out["scores"].numpy()[:k], inf["nms_scores"],
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(out["labels"].numpy()[:k],
                                  inf["nms_labels"])
