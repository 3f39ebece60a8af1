import json

import numpy as np
import pytest

from tfaction import errors
from tfaction.evaluation import activitynet_detection as det
from tfaction.evaluation import common


@pytest.fixture()
def anet(anchors_dir):
    return anchors_dir / "eval" / "activitynet"


@pytest.mark.parametrize("grid", ["anet_0.5:0.05:0.95", "thumos_0.3:0.1:0.7"])
def test_anchor_grids(anet, grid):
    exp = json.loads((anet / "anet_results.json").read_text())[grid]
    r = det.evaluate_detection(anet / "anet_synth_gt.json",
                               anet / "anet_synth_pred.json",
                               tiou_thresholds=exp["tiou_thresholds"])
    assert r.classes == sorted(exp["activity_index"],
                               key=exp["activity_index"].get)
    for label, aps in exp["ap_per_class[label][tiou]"].items():
        np.testing.assert_allclose(r.ap_per_class()[label], aps, atol=1e-9)
    np.testing.assert_allclose(r.mAP_per_tiou, exp["mAP_per_tiou"], atol=1e-9)
    assert abs(r.average_mAP - exp["average_mAP"]) < 1e-9
    assert r.counts["num_predictions_outside_ground_truth"] == 1


def test_anchor_direct_ap(anet):
    d = json.loads((anet / "direct_ap_example_inputs.json").read_text())
    g, p = d["ground_truth"], d["prediction"]
    ap = det.average_precision_detection(
        g["video-id"], np.c_[g["t-start"], g["t-end"]], p["video-id"],
        np.c_[p["t-start"], p["t-end"]], p["score"], d["tiou_thresholds"])
    np.testing.assert_allclose(ap, d["expected_ap"], atol=1e-9)


def test_unknown_label(anet):
    with pytest.raises(errors.UnknownLabelError, match="Z_not_in_gt"):
        det.evaluate_detection(anet / "anet_synth_gt.json",
                               anet / "anet_synth_pred_unknown_class.json")
    r = det.evaluate_detection(anet / "anet_synth_gt.json",
                               anet / "anet_synth_pred_unknown_class.json",
                               skip_unknown_labels=True)
    assert r.counts["num_skipped_unknown_labels"] == 1
    assert abs(r.average_mAP - 0.44861111111111107) < 1e-9


@pytest.mark.parametrize("grid", ["thumos", "anet", "epic_ego4d"])
def test_actionformer_anchor(anchors_dir, grid):
    folder = anchors_dir / "eval" / "actionformer_metric"
    exp = json.loads((folder / "af_metric_result.json").read_text())[grid]
    preds = json.loads((folder / "af_metric_preds.json").read_text())
    r = det.evaluate_detection(folder / "af_metric_gt.json", preds,
                               subset="test", tiou_thresholds=exp["tiou"],
                               variant="actionformer", top_k=(1, 5))
    np.testing.assert_allclose(r.mAP_per_tiou, exp["mAP"], atol=1e-9)
    assert abs(r.average_mAP - exp["avg_mAP"]) < 1e-9
    np.testing.assert_allclose(r.recall, exp["recall@1x,5x"], atol=1e-9)
    # The same through a file.
    r2 = det.evaluate_detection(folder / "af_metric_gt.json",
                                folder / "af_metric_preds.json",
                                subset="test", tiou_thresholds=exp["tiou"],
                                variant="actionformer")
    assert r2.average_mAP == r.average_mAP


def _write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def _gt(tmp_path, anns):
    db = {v: {"subset": "validation", "annotations": [
        {"segment": s, "label": l} for s, l in a]} for v, a in anns.items()}
    return _write(tmp_path, "gt.json", {"database": db})


def _pred(tmp_path, res, name="p.json"):
    return _write(tmp_path, name, {"results": {
        v: [{"segment": s, "label": l, "score": sc} for s, l, sc in r]
        for v, r in res.items()}})


def test_ties_reverse_input_order(tmp_path):
    gt = _gt(tmp_path, {"v": [([0, 10], "A")]})
    # Tied scores: the later (FP) one is visited first -> AP 0.5.
    p = _pred(tmp_path, {"v": [([0, 10], "A", .5), ([50, 60], "A", .5)]})
    r = det.evaluate_detection(gt, p, tiou_thresholds=[0.5])
    assert r.average_mAP == pytest.approx(0.5)
    p = _pred(tmp_path, {"v": [([50, 60], "A", .5), ([0, 10], "A", .5)]})
    r = det.evaluate_detection(gt, p, tiou_thresholds=[0.5])
    assert r.average_mAP == pytest.approx(1.0)


def test_duplicates_fall_through_and_missing_class(tmp_path):
    gt = _gt(tmp_path, {"v": [([0, 10], "A"), ([1, 11], "A")],
                        "w": [([0, 5], "B")], "e": []})
    p = _pred(tmp_path, {"v": [([0, 10], "A", .9), ([0, 10], "A", .8),
                               ([0, 10], "A", .7)]})
    r = det.evaluate_detection(gt, p, tiou_thresholds=[0.5, 0.85])
    # A: TP, TP (fall-through at 0.818), FP -> AP 1 at 0.5; at 0.85 TP, FP,
    # FP -> AP 0.5. B has no prediction -> 0, still averaged.
    np.testing.assert_allclose(r.ap_per_class()["A"], [1.0, 0.5])
    np.testing.assert_allclose(r.ap_per_class()["B"], [0.0, 0.0])
    np.testing.assert_allclose(r.mAP_per_tiou, [0.5, 0.25])


def test_zero_length_nan_matches(tmp_path):
    gt = _gt(tmp_path, {"v": [([5, 5], "A")]})
    p = _pred(tmp_path, {"v": [([7, 7], "A", .9)]})
    r = det.evaluate_detection(gt, p, tiou_thresholds=[0.5, 0.95])
    np.testing.assert_allclose(r.mAP_per_tiou, [1.0, 1.0])  # 0/0 accepted


def test_bad_inputs(tmp_path):
    gt = _gt(tmp_path, {"v": [([0, 10], "A")]})
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": {"v": [')
    with pytest.raises(errors.MalformedFileError, match=r"bad.json:1: invalid JSON"):
        det.evaluate_detection(gt, bad)
    p = _write(tmp_path, "nan.json", {"results": {"v": [
        {"segment": [0, 1], "label": "A", "score": float("nan")}]}})
    with pytest.raises(errors.MalformedFileError, match="'v'.*score"):
        det.evaluate_detection(gt, p)
    p = _write(tmp_path, "nokey.json", {"results": {"v": [
        {"segment": [0, 1], "label": "A"}]}})
    with pytest.raises(errors.MalformedFileError, match="score"):
        det.evaluate_detection(gt, p)
    with pytest.raises(errors.MalformedFileError, match="results"):
        det.evaluate_detection(gt, _write(tmp_path, "x.json", {"a": 1}))
    with pytest.raises(errors.UnknownSubsetError, match="testing"):
        det.evaluate_detection(gt, _pred(tmp_path, {}), subset="testing")
    p = _pred(tmp_path, {"v": [([10, 2], "A", .9)]})
    r = det.evaluate_detection(gt, p, tiou_thresholds=[0.5])
    assert r.counts["num_reversed_segments"] == 1 and r.average_mAP == 0.0


def test_official_order_and_ap_helpers():
    np.testing.assert_array_equal(
        common.official_score_order(np.array([.5, .8, .8, .1])), [2, 1, 0, 3])
    assert common.interpolated_ap(np.array([1., .5, 2 / 3]),
                                  np.array([.5, .5, 1.])) == pytest.approx(
                                      5 / 6)


def test_random_against_loop_port():
    import importlib.util
    import pathlib
    spec = importlib.util.spec_from_file_location(
        "bench", pathlib.Path(__file__).parents[2] / "benchmarks"
        / "evaluation.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rng = np.random.default_rng(1)
    for _ in range(5):
        m, n = 30, 300
        g_vid = rng.integers(0, 6, m)
        s = rng.integers(0, 50, m).astype(float)
        g_seg = np.c_[s, s + rng.integers(0, 20, m)]
        p_vid = rng.integers(0, 8, n)
        s = rng.integers(0, 50, n).astype(float)
        p_seg = np.c_[s, s + rng.integers(0, 20, n)]
        score = rng.integers(0, 10, n) / 10.0  # many ties
        th = np.linspace(0.1, 0.9, 9)
        # The loop's matching and interpolation are its own; the ranking
        # is NumPy's generic tie order (tested in test_numpy_sort.py), not
        # this CPU's SIMD argsort.
        exp = bench.loop_ap(g_vid, g_seg, p_vid, p_seg, score, th,
                            order=common.official_score_order(score))
        got = det.average_precision_detection(g_vid, g_seg, p_vid, p_seg,
                                              score, th)
        np.testing.assert_allclose(got, exp, atol=1e-12)
