"""End-to-end parity of the assembled `ActionFormer` with the authors' code.

Anchors: every `actionformer_*` bundle in `$TFACTION_ANCHORS` and
`tests/anchors` (the authors' code at commit 61ea7eb; see each bundle's
README). The model is built from
the bundle's `config.json` (`ActionFormer.from_reference_config`), loaded
with the full `weights.npz` state dict (`load_reference_weights`) and fed
the stored inputs (channels-first there, channels-last here):

* `io.npz` (batch of 2, one padded video): pyramid features after the
  backbone and neck, logits, offsets, masks and points;
* `inference.npz` (batch 1, eval mode): logits and offsets, then
  `decode_candidates` -> `soft_nms` / `soft_nms_tf` (the recorded
  `batched_nms` arguments) -> `grid_to_seconds` give the stored detections;
* (the `.keras` round trip is part of the model contract,
  `tests/models/test_actionformer_model.py`).
"""

import json

import numpy as np
import pytest

from tfaction.errors import ConfigError
from tfaction.models.actionformer import decoding
from tfaction.models.actionformer.model import ActionFormer
from tfaction.models.actionformer.reference import load_reference_weights
from tfaction.models.actionformer.reference import (
    model_kwargs_from_reference_config)
from tfaction.ops.soft_nms import soft_nms
from tfaction.ops.soft_nms import soft_nms_tf
from tests.models import parity

TOL = parity.TOL
SCORE_TOL = 1e-5


def _load(root):
    with open(root / "config.json") as f:
        config = json.load(f)
    return {"name": root.name, "config": config,
            "weights": dict(np.load(root / "weights.npz")),
            "io": dict(np.load(root / "io.npz")),
            "inference": dict(np.load(root / "inference.npz"))}


@pytest.fixture(scope="module")
def cases(actionformer_bundles):
    """[(bundle, loaded model)] for every actionformer bundle."""
    out = []
    for root in actionformer_bundles:
        bundle = _load(root)
        cfg = bundle["config"]["config"]
        model = ActionFormer.from_reference_config(
            cfg["model"], train_cfg=cfg["train_cfg"])
        keys = load_reference_weights(model, bundle["weights"])
        assert keys == sorted(bundle["weights"])
        out.append((bundle, model))
    return out


def _inputs(data):
    return {"features": parity.channels_last(data["input"]).astype("float32"),
            "mask": data["mask"][:, 0, :]}


def test_config_derivations(cases):
    for bundle, model in cases:
        derived = bundle["config"]["derived"]
        assert model.fpn_strides == derived["fpn_strides"]
        assert model.windows == derived["mha_win_size"]
        assert model.max_div_factor == derived["max_div_factor"]
        assert model.regression_range == [
            [float(a), float(b)] for a, b in derived["regression_range"]]
        assert model.count_params() == bundle["config"]["n_params"]
        max_len = bundle["config"]["config"]["model"]["max_seq_len"]
        assert model.padded_length(100) == max_len
        assert model.padded_length(max_len + 1) == (
            max_len + model.max_div_factor)


def test_io_parity(cases):
    for bundle, model in cases:
        io = bundle["io"]
        num_levels = model.num_levels
        out = model.forward_levels(_inputs(io), training=False)
        rels = []
        for l in range(num_levels):
            np.testing.assert_array_equal(out["masks"][l],
                                          io[f"fpn_mask_{l}"][:, 0])
            rels.append(parity.assert_parity(out["backbone_features"][l],
                             parity.channels_last(io[f"backbone_feat_{l}"]),
                             f"{bundle['name']} backbone_feat_{l}"))
            rels.append(parity.assert_parity(out["fpn_features"][l], parity.channels_last(io[f"fpn_feat_{l}"]),
                             f"{bundle['name']} fpn_feat_{l}"))
            rels.append(parity.assert_parity(out["cls_logits"][l],
                             parity.channels_last(io[f"cls_logits_{l}"]),
                             f"{bundle['name']} cls_logits_{l}"))
            rels.append(parity.assert_parity(out["offsets"][l], parity.channels_last(io[f"offsets_{l}"]),
                             f"{bundle['name']} offsets_{l}"))
            np.testing.assert_array_equal(out["points"][l], io[f"points_{l}"])
        print(f"{bundle['name']} io: max relative error {max(rels):.2e}")

        # The level-concatenated call output is the same data.
        flat = model(_inputs(io), training=False)
        for key, ref in (("cls_logits", "cls_logits"),
                         ("offsets", "offsets")):
            got = model.split_levels(flat[key])
            for l in range(num_levels):
                np.testing.assert_array_equal(got[l], out[ref][l])
        np.testing.assert_array_equal(
            flat["mask"], np.concatenate([io[f"fpn_mask_{l}"][:, 0]
                                          for l in range(num_levels)], 1))
        points = np.concatenate([io[f"points_{l}"]
                                 for l in range(num_levels)])
        for row in np.asarray(flat["points"]):
            np.testing.assert_array_equal(row, points)


def _nms_kwargs(config):
    call = dict(config["inference_nms_call"])
    assert call.pop("use_soft_nms") is True
    return dict(iou_threshold=call["iou_threshold"],
                min_score=call["min_score"], max_seg_num=call["max_seg_num"],
                method="gaussian", multiclass=call["multiclass"],
                sigma=call["sigma"], voting_thresh=call["voting_thresh"])


def test_inference_parity(cases):
    for bundle, model in cases:
        inf, config = bundle["inference"], bundle["config"]
        test_cfg = config["config"]["test_cfg"]
        name = bundle["name"]
        out = model.forward_levels(_inputs(inf), training=False)
        rels = []
        for l in range(model.num_levels):
            np.testing.assert_array_equal(out["masks"][l],
                                          inf[f"fpn_mask_{l}"][:, 0])
            rels.append(parity.assert_parity(out["cls_logits"][l],
                             parity.channels_last(inf[f"cls_logits_{l}"]),
                             f"{name} eval cls_logits_{l}"))
            rels.append(parity.assert_parity(out["offsets"][l], parity.channels_last(inf[f"offsets_{l}"]),
                             f"{name} eval offsets_{l}"))
        segs, scores, labels = decoding.decode_candidates(
            [x[0] for x in out["cls_logits"]], [x[0] for x in out["offsets"]],
            model.fpn_strides, [m[0] for m in out["masks"]],
            pre_nms_thresh=test_cfg["pre_nms_thresh"],
            pre_nms_topk=test_cfg["pre_nms_topk"],
            duration_thresh=test_cfg["duration_thresh"])
        # Our logits differ from theirs by float noise (above), so
        # near-tied candidates may swap ranks; nothing else may differ.
        parity.assert_same_ranking(
            (segs, scores, labels),
            (inf["cand_segs_grid"], inf["cand_scores"], inf["cand_labels"]),
            f"{name} candidates", score_rtol=SCORE_TOL, seg_atol=1e-3)

        kwargs = _nms_kwargs(config)
        seconds = dict(fps=float(inf["fps"]),
                       feat_stride=float(inf["feat_stride"]),
                       num_frames=float(inf["feat_num_frames"]),
                       duration=float(inf["duration"]))
        nms_np = soft_nms(np.asarray(segs), np.asarray(scores),
                          np.asarray(labels), **kwargs)
        s_tf, sc_tf, lb_tf, num = soft_nms_tf(
            segs, scores, labels, num_classes=model.num_classes, **kwargs)
        num = int(num)
        nms_tf = (np.asarray(s_tf)[:num], np.asarray(sc_tf)[:num],
                  np.asarray(lb_tf)[:num])
        for what, (n_segs, n_scores, n_labels) in (("numpy", nms_np),
                                                   ("tf", nms_tf)):
            final = np.asarray(decoding.grid_to_seconds(n_segs, **seconds))
            parity.assert_same_ranking(
                (final, n_scores, n_labels),
                (inf["segments_sec"], inf["scores"], inf["labels"]),
                f"{name} {what} detections", score_rtol=SCORE_TOL)
        print(f"{name} inference: logits/offsets max relative error "
              f"{max(rels):.2e}; {len(nms_np[1])} detections; max |score "
              f"diff| {np.abs(nms_np[1] - inf['scores']).max():.2e}")


def _reference_cfg(bundle, **changes):
    cfg = bundle["config"]["config"]
    model_cfg = dict(cfg["model"], train_cfg=dict(cfg["train_cfg"]))
    model_cfg.update(changes)
    return model_cfg


@pytest.mark.parametrize("key, value", [
    ("use_abs_pe", "yes"), ("use_rel_pe", True), ("fpn_type", "fpn"),
    ("backbone_type", "conv"), ("scale_factor", 3), ("fpn_start_level", 1),
    ("fpn_dim", 64), ("input_dim", [16, 16]), ("n_mha_win_size", [9, 9]),
    ("regression_range", [[0, 4]]), ("fpn_strides", [1, 2, 4]),
    ("bogus_key", 1)])
def test_reference_config_rejects_unsupported(cases, key, value):
    bundle, _ = cases[0]
    with pytest.raises(ConfigError, match=key):
        model_kwargs_from_reference_config(
            _reference_cfg(bundle, **{key: value}))


def test_reference_config_needs_train_cfg(cases):
    for bundle, _ in cases:
        # As stored in config.json the model section holds a placeholder.
        with pytest.raises(ConfigError, match="train_cfg"):
            model_kwargs_from_reference_config(
                bundle["config"]["config"]["model"])
        model_cfg = _reference_cfg(bundle)
        del model_cfg["train_cfg"]["droppath"]
        with pytest.raises(ConfigError, match="droppath"):
            model_kwargs_from_reference_config(model_cfg)
        cfg = bundle["config"]["config"]
        kwargs = model_kwargs_from_reference_config(_reference_cfg(bundle))
        assert kwargs["drop_path_rate"] == cfg["train_cfg"]["droppath"]
        assert kwargs["dropout"] == cfg["train_cfg"]["dropout"]
        windows = kwargs["window_size"]
        if isinstance(windows, int):
            windows = [windows] * len(bundle["config"]["derived"][
                "mha_win_size"])
        assert windows == bundle["config"]["derived"]["mha_win_size"]


def test_load_reference_weights_is_all_or_nothing(cases):
    bundle, model = cases[0]
    fresh = ActionFormer.from_reference_config(
        _reference_cfg(bundle), name="fresh")
    before = [np.array(v) for v in fresh.weights]
    weights = bundle["weights"]
    last_scale = f"reg_head.scale.{model.num_levels - 1}.scale"
    shape = weights["cls_head.cls_head.conv.weight"].shape
    for broken in (
            {k: v for k, v in weights.items() if k != last_scale},
            dict(weights, **{"extra.weight": np.zeros(1)}),
            dict(weights, **{"cls_head.cls_head.conv.weight": np.zeros(
                (shape[0] + 1,) + shape[1:])})):
        with pytest.raises(ValueError, match="does not match"):
            load_reference_weights(fresh, broken)
        for v, b in zip(fresh.weights, before):
            np.testing.assert_array_equal(np.array(v), b)


def test_length_must_be_multiple_of_max_div_factor(cases):
    _, model = cases[0]
    t = model.max_div_factor // 2
    x = {"features": np.zeros((1, t, model.input_dim), "float32"),
         "mask": np.ones((1, t), bool)}
    with pytest.raises(ValueError, match="max_div_factor"):
        model(x)
