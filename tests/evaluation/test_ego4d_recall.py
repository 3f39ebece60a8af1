import json

import numpy as np
import pytest

from tfaction import errors
from tfaction.evaluation import ego4d_recall as ego


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
