import json

import pytest

from experiments import evaluate


def test_detection_cli_json(anchors_dir, tmp_path, capsys):
    anet = anchors_dir / "eval" / "activitynet"
    out = tmp_path / "r.json"
    rc = evaluate.main(["--metric=activitynet_detection",
                        f"--ground_truth={anet / 'anet_synth_gt.json'}",
                        f"--predictions={anet / 'anet_synth_pred.json'}",
                        "--tiou_thresholds=0.3,0.4,0.5,0.6,0.7",
                        f"--output_json={out}"])
    assert rc == 0 and "average mAP: 0.5778" in capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["average_mAP"] == pytest.approx(0.5777777777777777, abs=1e-9)
    assert set(r["ap_per_class"]) == {"A", "B", "C", "D"}


def test_proposal_cli_and_errors(anchors_dir, tmp_path, capsys):
    anet = anchors_dir / "eval" / "activitynet"
    out = tmp_path / "p.json"
    assert evaluate.main(["--metric=activitynet_proposals",
                          f"--ground_truth={anet / 'anet_synth_gt.json'}",
                          f"--predictions={anet / 'anet_synth_proposals.json'}",
                          f"--output_json={out}"]) == 0
    r = json.loads(out.read_text())
    assert r["AUC"] == pytest.approx(61.38333333333331, abs=1e-9)
    assert len(r["AR@AN"]) == 100
    rc = evaluate.main(["--metric=activitynet_detection",
                        f"--ground_truth={anet / 'anet_synth_gt.json'}",
                        "--predictions="
                        f"{anet / 'anet_synth_pred_unknown_class.json'}"])
    err = capsys.readouterr().err
    assert rc == 1 and "Z_not_in_gt" in err and len(err.splitlines()) == 1
    assert evaluate.main(["--metric=activitynet_detection",
                          f"--ground_truth={anet / 'anet_synth_gt.json'}",
                          "--predictions="
                          f"{anet / 'anet_synth_pred_unknown_class.json'}",
                          "--skip_unknown_labels"]) == 0


def test_dispatch_table():
    assert set(evaluate.METRICS) == {
        "activitynet_detection", "activitynet_proposals", "ego4d_recall",
        "ava_frame_ap", "video_accuracy", "charades_map", "framewise"}
    assert evaluate.build_parser().parse_args(
        ["--metric=framewise", "--ground_truth=a", "--predictions=b",
         "--top_k=5"]).top_k == 5
