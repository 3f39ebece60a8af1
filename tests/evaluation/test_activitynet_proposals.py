import json

import numpy as np
import pytest

from tfaction.evaluation import activitynet_proposals as prop


def test_anchor(anchors_dir):
    anet = anchors_dir / "eval" / "activitynet"
    exp = json.loads((anet / "anet_results.json").read_text())["proposal"]
    r = prop.evaluate_proposals(
        anet / "anet_synth_gt.json", anet / "anet_synth_proposals.json",
        max_avg_nr_proposals=exp["max_avg_nr_proposals"])
    np.testing.assert_allclose(r.avg_recall, exp["avg_recall"], atol=1e-9)
    np.testing.assert_allclose(r.proposals_per_video,
                               exp["proposals_per_video"], atol=1e-9)
    assert abs(r.auc - exp["AUC_percent"]) < 1e-9
    assert abs(r.ar_at(1) - exp["AR@1"]) < 1e-9
    assert abs(r.ar_at(100) - exp["AR@100"]) < 1e-9
    d = r.to_dict()
    assert set(d["AR@AN"]) == {str(i) for i in range(1, 101)}


def test_perfect_proposals(tmp_path):
    gt = {"database": {"v": {"subset": "validation", "annotations": [
        {"segment": [0, 10], "label": "A"}, {"segment": [20, 30],
                                             "label": "B"}]}}}
    (tmp_path / "g.json").write_text(json.dumps(gt))
    (tmp_path / "p.json").write_text(json.dumps({"results": {"v": [
        {"segment": [0, 10], "score": .9}, {"segment": [20, 30],
                                            "score": .8}]}}))
    r = prop.evaluate_proposals(tmp_path / "g.json", tmp_path / "p.json")
    assert r.avg_recall[-1] == pytest.approx(1.0)
