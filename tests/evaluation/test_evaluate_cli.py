import json

import pytest

from experiments import evaluate


def _anchor(anchors_dir, name):
    return json.loads((anchors_dir / "eval" / name).read_text())


def test_detection_cli_json(anchors_dir, tmp_path, capsys):
    anet = anchors_dir / "eval" / "activitynet"
    expected = _anchor(anchors_dir, "activitynet/anet_results.json")[
        "thumos_0.3:0.1:0.7"]
    thresholds = ",".join(repr(t) for t in expected["tiou_thresholds"])
    out = tmp_path / "r.json"
    rc = evaluate.main(["--metric=activitynet_detection",
                        f"--ground_truth={anet / 'anet_synth_gt.json'}",
                        f"--predictions={anet / 'anet_synth_pred.json'}",
                        f"--tiou_thresholds={thresholds}",
                        f"--output_json={out}"])
    table = capsys.readouterr().out
    assert rc == 0
    assert f"average mAP: {expected['average_mAP']:.4f}" in table
    r = json.loads(out.read_text())
    assert r["average_mAP"] == pytest.approx(expected["average_mAP"],
                                             abs=1e-9)
    assert set(r["ap_per_class"]) == set(expected["activity_index"])


def test_proposal_cli_and_errors(anchors_dir, tmp_path, capsys):
    anet = anchors_dir / "eval" / "activitynet"
    out = tmp_path / "p.json"
    assert evaluate.main(["--metric=activitynet_proposals",
                          f"--ground_truth={anet / 'anet_synth_gt.json'}",
                          f"--predictions={anet / 'anet_synth_proposals.json'}",
                          f"--output_json={out}"]) == 0
    r = json.loads(out.read_text())
    expected = _anchor(anchors_dir, "activitynet/anet_results.json")[
        "proposal"]
    assert r["AUC"] == pytest.approx(expected["AUC_percent"], abs=1e-9)
    assert len(r["AR@AN"]) == expected["max_avg_nr_proposals"]
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
        "ava_frame_ap", "video_accuracy", "charades_map", "framewise",
        "adafocus_map"}
    assert evaluate.build_parser().parse_args(
        ["--metric=framewise", "--ground_truth=a", "--predictions=b",
         "--top_k=5"]).top_k == 5


def test_ava_cli_json(anchors_dir, tmp_path):
    ava = anchors_dir / "eval" / "ava"
    expected = _anchor(anchors_dir, "ava/ava_results.json")["official"]
    out = tmp_path / "ava.json"
    assert evaluate.main(["--metric=ava_frame_ap",
                          f"--ground_truth={ava / 'ava_synth_gt.csv'}",
                          f"--predictions={ava / 'ava_synth_det.csv'}",
                          f"--label_map={ava / 'ava_labelmap_60.json'}",
                          f"--output_json={out}"]) == 0
    r = json.loads(out.read_text())
    assert r["metric"] == "ava_frame_ap"
    assert r["mAP"] == pytest.approx(expected["mAP@0.5IOU"], abs=1e-9)


def test_framewise_cli_ignores_other_metrics_flags(anchors_dir, tmp_path):
    # The CLI hands every metric all flags; framewise must use only its own.
    synth = anchors_dir / "eval" / "tcc" / "tcc_synth.json"
    expected = _anchor(anchors_dir, "tcc/carl_results.json")
    out = tmp_path / "fw.json"
    assert evaluate.main(["--metric=framewise", f"--ground_truth={synth}",
                          f"--predictions={synth}", "--variant=carl",
                          f"--output_json={out}"]) == 0
    r = json.loads(out.read_text())
    for dataset in r["datasets"]:
        for key in ("kendalls_tau_val_stride5", "kendalls_tau_val_stride2"):
            assert r["datasets"][dataset][key] == pytest.approx(
                expected[dataset][key], abs=1e-9)
