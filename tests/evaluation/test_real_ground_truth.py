import json

import numpy as np
import pytest

from tfaction.evaluation import activitynet_detection as det
from tfaction.evaluation import ground_truth as gt_lib


def test_thumos_jittered(real_data_dir, tmp_path):
    gt = gt_lib.load_ground_truth(real_data_dir / "thumos_gt.json", "test")
    assert gt.num_instances == 3311 and len(gt.classes()) == 20
    rng = np.random.default_rng(0)
    results = {}
    for v, (s, e), lab in zip(gt.video, gt.segments, gt.labels):
        results.setdefault(gt.video_ids[v], []).append(
            {"segment": [s, e], "label": lab, "score": 1.0})
    perfect = tmp_path / "perfect.json"
    perfect.write_text(json.dumps({"results": results}))
    th = [0.3, 0.4, 0.5, 0.6, 0.7]
    r = det.evaluate_detection(gt, perfect, tiou_thresholds=th)
    np.testing.assert_allclose(r.mAP_per_tiou, 1.0)
    noisy = {}
    for vid, items in results.items():
        for it in items:
            s, e = it["segment"]
            j = 0.1 * (e - s)
            noisy.setdefault(vid, []).append(
                {"segment": [s + rng.normal(0, j), e + rng.normal(0, j)],
                 "label": it["label"], "score": float(rng.random())})
            noisy[vid].append({"segment": [s + 100, e + 100],
                               "label": it["label"],
                               "score": float(rng.random()) * 0.5})
    path = tmp_path / "noisy.json"
    path.write_text(json.dumps({"results": noisy}))
    r = det.evaluate_detection(gt, path, tiou_thresholds=th)
    assert 0.5 < r.average_mAP < 0.98
    assert np.all(np.diff(r.mAP_per_tiou) <= 0)


def test_anet_sample_submission_bsn(real_data_dir):
    gt = gt_lib.load_ground_truth(real_data_dir / "anet_anno_action.json",
                                  "validation")
    assert len(gt.video_ids) == 4728 and gt.num_instances == 7293
    r = det.evaluate_detection(
        gt, real_data_dir / "sample_detection_prediction.json",
        tiou_thresholds=np.linspace(0.5, 0.95, 10))
    # The official evaluation code gives 0.974157 at every tIoU on these
    # files (the team's reference run). Every score in this file is equal,
    # so the value depends only on the tie order of the official per-class
    # `argsort()[::-1]` (NumPy's generic introsort, reproduced by
    # `numpy_sort` whatever the CPU; reverse input order gives 0.971976).
    np.testing.assert_allclose(r.mAP_per_tiou, 0.974157, rtol=0, atol=1e-6)
    assert r.average_mAP == pytest.approx(0.974157, abs=1e-6)
    assert r.counts["num_videos_outside_ground_truth"] > 0
