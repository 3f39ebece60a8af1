"""tIoU thresholds: np.linspace floats as the official codes build them."""

import json

import numpy as np
import pytest

from experiments import evaluate
from tfaction import errors
from tfaction.evaluation import activitynet_detection as det
from tfaction.evaluation import common
from tfaction.evaluation import ground_truth as gt_lib

ANET_TYPED = "0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95"


def test_start_stop_num_is_linspace():
    for spec, args in (("0.5:0.95:10", (0.5, 0.95, 10)),
                       ("0.1:0.5:5", (0.1, 0.5, 5)),
                       (" 0.3 : 0.7 : 5 ", (0.3, 0.7, 5))):
        got = common.parse_thresholds(spec, None)
        assert got.tolist() == np.linspace(*args).tolist()
    for bad in ("0.5:0.95", "a:b:c", "0.5:0.95:0", "0.5:1.5:3"):
        with pytest.raises(errors.ConfigError, match="tiou_thresholds"):
            common.parse_thresholds(bad, None)


def test_typed_grids_snap_onto_linspace_with_a_note():
    notes = []
    got = common.parse_thresholds(ANET_TYPED, None, report=notes.append)
    assert got.tolist() == np.linspace(0.5, 0.95, 10).tolist()
    assert got[8] == 0.8999999999999999
    assert len(notes) == 1 and "0.9 -> 0.8999999999999999" in notes[0]
    assert "activitynet grid" in notes[0]
    # Whole grids decide values the grids disagree on (0.3, 0.4).
    assert common.parse_thresholds([0.1, 0.2, 0.3, 0.4, 0.5], None).tolist() \
        == np.linspace(0.1, 0.5, 5).tolist()
    assert common.parse_thresholds("0.3,0.4,0.5,0.6,0.7", None).tolist() \
        == np.linspace(0.3, 0.7, 5).tolist()
    # Single values: snapped where every grid agrees, else kept.
    assert common.parse_thresholds("0.9", None)[0] == 0.8999999999999999
    assert common.parse_thresholds("0.3", None)[0] == 0.3
    assert common.parse_thresholds([0.9 + 5e-10], None)[0] \
        == 0.8999999999999999
    assert common.parse_thresholds([0.9 + 2e-9], None)[0] == 0.9 + 2e-9
    # Exact values: nothing to say.
    notes = []
    common.parse_thresholds(np.linspace(0.5, 0.95, 10).tolist(), None,
                            report=notes.append)
    common.parse_thresholds("0.42,0.5", None, report=notes.append)
    assert notes == []


def test_cli_flag_snaps_and_prints_a_note(capsys):
    args = evaluate.build_parser().parse_args([
        "--metric=activitynet_detection", "--ground_truth=g",
        "--predictions=p", f"--tiou_thresholds={ANET_TYPED}"])
    assert args.tiou_thresholds == np.linspace(0.5, 0.95, 10).tolist()
    assert "note: tIoU thresholds snapped" in capsys.readouterr().err
    args = evaluate.build_parser().parse_args([
        "--metric=activitynet_detection", "--ground_truth=g",
        "--predictions=p", "--tiou_thresholds=0.1:0.5:5"])
    assert args.tiou_thresholds == np.linspace(0.1, 0.5, 5).tolist()
    assert capsys.readouterr().err == ""


def test_real_anet_typed_thresholds_score_as_linspace(real_data_dir,
                                                      tmp_path):
    """Predictions whose tIoU with their GT is 0.9 up to rounding: typed
    0.9 and linspace's 0.8999999999999999 disagree on many of them."""
    gt = gt_lib.load_ground_truth(real_data_dir / "anet_anno_action.json",
                                  "validation")
    rng = np.random.default_rng(0)
    results = {}
    for v, (s, e), label in zip(gt.video, gt.segments, gt.labels):
        results.setdefault(gt.video_ids[v], []).append(
            {"segment": [s, s + 0.9 * (e - s)], "label": label,
             "score": float(rng.random())})
    path = tmp_path / "preds.json"
    path.write_text(json.dumps({"results": results}))
    linspace = det.evaluate_detection(
        gt, path, tiou_thresholds=np.linspace(0.5, 0.95, 10))
    typed = det.evaluate_detection(
        gt, path, tiou_thresholds=common.parse_thresholds(ANET_TYPED, None))
    np.testing.assert_array_equal(typed.mAP_per_tiou, linspace.mAP_per_tiou)
    assert typed.average_mAP == linspace.average_mAP
    raw = det.evaluate_detection(
        gt, path, tiou_thresholds=[float(t) for t in ANET_TYPED.split(",")])
    assert raw.mAP_per_tiou[8] < linspace.mAP_per_tiou[8] - 0.1
    np.testing.assert_array_equal(raw.mAP_per_tiou[:8],
                                  linspace.mAP_per_tiou[:8])
    # The same through the CLI, typed by hand.
    out = tmp_path / "r.json"
    assert evaluate.main([
        "--metric=activitynet_detection",
        f"--ground_truth={real_data_dir / 'anet_anno_action.json'}",
        f"--predictions={path}", f"--tiou_thresholds={ANET_TYPED}",
        f"--output_json={out}", "--noprogress"]) == 0
    cli = json.loads(out.read_text())
    assert cli["mAP_per_tiou"] == linspace.mAP_per_tiou.tolist()
