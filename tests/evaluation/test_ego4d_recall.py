"""Ego4D MQ Recall@kx: official outputs (tests/anchors/ego4d_recall) and
hand-computed cases."""

import json

import numpy as np
import pytest

from tests.conftest import bundle_dirs
from tfaction import errors
from tfaction.evaluation import ego4d_recall as ego


def test_matches_official_output(anchors_dir):
    """tfaction's official variant equals the output of EGO4D's
    `Moment_Retrieval.evaluate` on the same files (bit for bit), for every
    case of tests/anchors/ego4d_recall."""
    for case in bundle_dirs(anchors_dir, "ego4d_recall/", (
            "official.json", "ground_truth.json", "predictions.json")):
        want = json.loads((case / "official.json").read_text())
        gt, preds = case / "ground_truth.json", case / "predictions.json"
        if "error" in want:
            # The official code raises KeyError(<first GT clip without an
            # entry in the predictions>); tfaction names that clip.
            assert want["error"]["type"] == "KeyError", case.name
            with pytest.raises(errors.MalformedFileError) as e:
                ego.evaluate_recall(gt, preds, subset=want["subset"])
            assert e.value.video_id == want["error"]["args"][0], case.name
            continue
        r = ego.evaluate_recall(gt, preds, subset=want["subset"])
        np.testing.assert_array_equal(r.tiou_thresholds, want["tious"])
        assert list(r.top_k) == want["recalls"], case.name
        # [T, K] on both sides; NaN where the subset has no GT instance.
        np.testing.assert_array_equal(r.recall, np.array(want["eval_result"]),
                                      err_msg=case.name)


def _files(tmp_path):
    gt = {"vid1": {"subset": "val", "clip_id": "c1", "annotations": [
        {"label": "A", "start_time": 0, "end_time": 10},
        {"label": "A", "start_time": 20, "end_time": 30},
        {"label": "B", "start_time": 0, "end_time": 4}]},
        "vid2": {"subset": "train", "clip_id": "c9", "annotations": []}}
    preds = {"version": "1", "external_data": {}, "results": {"c1": [
        # File order matters (official): the low-score hit comes first.
        {"segment": [0, 6], "label": "A", "score": 0.1},    # IoU 0.6
        {"segment": [50, 60], "label": "A", "score": 0.9},
        {"segment": [20, 27], "label": "A", "score": 0.8},  # IoU 0.7
        {"segment": [0, 4], "label": "B", "score": 0.5},    # IoU 1.0
        {"segment": [0, 4], "label": "Z", "score": 0.5}]}}
    (tmp_path / "g.json").write_text(json.dumps(gt))
    (tmp_path / "p.json").write_text(json.dumps(preds))
    return tmp_path / "g.json", tmp_path / "p.json"


def test_official_hand_computed(tmp_path):
    g, p = _files(tmp_path)
    r = ego.evaluate_recall(g, p, subset="val")
    # k=1: A uses the first 2 preds in file order -> GT1 (0.6); B -> 1.0.
    # tIoU 0.3: 2/3; 0.5: 2/3; 0.7: B only (0.7 is not > 0.7) -> 1/3.
    np.testing.assert_allclose(r.recall[:, 0], [2 / 3, 2 / 3, 1 / 3])
    # k>=2: all three preds of A: 0.7 > 0.7 is False (strict).
    np.testing.assert_allclose(r.recall[:, 1], [1.0, 1.0, 1 / 3])
    assert r.counts["num_predictions_ignored"] == 1


def test_actionformer_variant(tmp_path):
    g, p = _files(tmp_path)
    r = ego.evaluate_recall(g, p, subset="val", variant="actionformer",
                            tiou_thresholds=[0.5, 0.7], top_k=(1,))
    # Sorted by score: A top-2 = [50,60] (0), [20,27] (0.7) -> GT2 only:
    # class A 1/2, class B 1 -> mean 0.75 at 0.5 and 0.7 (>=).
    np.testing.assert_allclose(r.recall[:, 0], [0.75, 0.75])


def test_missing_clip(tmp_path):
    g, _ = _files(tmp_path)
    (tmp_path / "e.json").write_text(json.dumps({"results": {}}))
    with pytest.raises(errors.MalformedFileError, match="c1"):
        ego.evaluate_recall(g, tmp_path / "e.json", subset="val")
    r = ego.evaluate_recall(g, tmp_path / "e.json", subset="val",
                            skip_missing_clips=True)
    assert r.recall.max() == 0 and r.counts["num_missing_clips"] == 1
    with pytest.raises(errors.UnknownSubsetError):
        ego.evaluate_recall(g, tmp_path / "e.json", subset="test")


def test_subset_rule_per_variant(tmp_path):
    g, p = _files(tmp_path)
    # Official: the clip's subset "val" occurs within "validation".
    r = ego.evaluate_recall(g, p, subset="validation")
    np.testing.assert_array_equal(
        r.recall, ego.evaluate_recall(g, p, subset="val").recall)
    # ActionFormer variant: equality only.
    with pytest.raises(errors.UnknownSubsetError, match="equal to"):
        ego.evaluate_recall(g, p, subset="validation", variant="actionformer")
    with pytest.raises(errors.ConfigError, match="subset_match"):
        ego.read_ego4d_ground_truth(g, "val", subset_match="prefix")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": {"subset": None, "clip_id": "x",
                                     "annotations": []}}))
    with pytest.raises(errors.MalformedFileError, match="string"):
        ego.evaluate_recall(bad, p, subset="val")


@pytest.mark.parametrize("grid", ["thumos", "anet", "epic_ego4d"])
def test_actionformer_variant_matches_actionformer_metric(anchors_dir,
                                                          tmp_path, grid):
    """The ActionFormer variant equals the Recall@1x,5x of ActionFormer's
    `libs/utils/metrics.py` (shared `eval/actionformer_metric` anchor),
    its GT and column predictions rewritten in the Ego4D clip layout."""
    folder = anchors_dir / "eval" / "actionformer_metric"
    gt = json.loads((folder / "af_metric_gt.json").read_text())["database"]
    cols = json.loads((folder / "af_metric_preds.json").read_text())
    want = json.loads((folder / "af_metric_result.json").read_text())[grid]
    clips = {vid: {"subset": v["subset"], "clip_id": vid, "annotations": [
        {"label": str(a["label_id"]), "start_time": a["segment"][0],
         "end_time": a["segment"][1]} for a in v["annotations"]]}
        for vid, v in gt.items()}
    results = {vid: [] for vid in gt}
    for vid, s, e, label, score in zip(cols["video-id"], cols["t-start"],
                                       cols["t-end"], cols["label"],
                                       cols["score"]):
        results[vid].append({"segment": [s, e], "label": str(label),
                             "score": score})
    g = tmp_path / "clips.json"
    g.write_text(json.dumps(clips))
    p = tmp_path / "preds.json"
    p.write_text(json.dumps({"results": results}))
    r = ego.evaluate_recall(g, p, subset="test", variant="actionformer",
                            tiou_thresholds=want["tiou"], top_k=(1, 5))
    np.testing.assert_allclose(r.recall, want["recall@1x,5x"], rtol=0,
                               atol=1e-12)
