"""EPIC-Kitchens 100 detection variant and ActionFormer's variant on names."""

import json

import numpy as np
import pytest

from experiments import evaluate
from tfaction import errors
from tfaction.evaluation import activitynet_detection as det
from tfaction.evaluation import epic_io

HEADER = ("narration_id,participant_id,video_id,narration_timestamp,"
          "start_timestamp,stop_timestamp,start_frame,stop_frame,narration,"
          "verb,verb_class,noun,noun_class,all_nouns,all_noun_classes\n")


def _row(i, video, start, stop, verb, noun):
    return (f"{video}_{i},P01,{video},{start},{start},{stop},0,0,x,v,{verb},"
            f"n,{noun},\"['n']\",[{noun}]\n")


@pytest.fixture
def epic(tmp_path):
    """GT: P01_01 verb 1/noun 5 [0, 10] and verb 2/noun 5 [20, 30];
    P01_02 verb 1/noun 6 [00:01:00, 00:01:10]."""
    csv_path = tmp_path / "EPIC_100_validation.csv"
    csv_path.write_text(
        HEADER + _row(0, "P01_01", "00:00:00.00", "00:00:10.00", 1, 5)
        + _row(1, "P01_01", "00:00:20.00", "00:00:30.00", 2, 5)
        + _row(2, "P01_02", "00:01:00.00", "00:01:10.00", 1, 6))

    def entry(seg, verb, noun, score):
        return {"segment": seg, "verb": verb, "noun": noun,
                "action": f"{verb},{noun}", "score": score}

    submission = {"version": "0.2", "challenge": "action_detection",
                  "results": {
                      "P01_01": [entry([0, 10], 1, 5, .9),
                                 entry([20, 30], 1, 5, .8),
                                 entry([21, 30], 2, 5, .7)],
                      "P01_02": [entry([60, 70], 1, 6, .6)]}}
    pred_path = tmp_path / "submission.json"
    pred_path.write_text(json.dumps(submission))
    return csv_path, pred_path


def test_csv_ground_truth_per_task(epic):
    csv_path, _ = epic
    gt = epic_io.read_epic_ground_truth(csv_path, task="action")
    assert gt.video_ids == ["P01_01", "P01_02"]
    assert gt.labels == [305, 605, 306]
    np.testing.assert_array_equal(gt.segments,
                                  [[0, 10], [20, 30], [60, 70]])
    assert epic_io.read_epic_ground_truth(csv_path, task="noun").labels == [
        5, 5, 6]
    assert epic_io.timestamp_seconds("01:02:03.25") == 3723.25


def test_epic_tasks(epic):
    csv_path, pred_path = epic
    th = np.linspace(0.1, 0.5, 5)
    # verb: class 1 (2 GT): .9 TP, .8 FP (verb 1 on the verb-2 GT), .6 TP ->
    # AP = (1 + 2/3) / 2; class 2: .7 TP -> 1.
    r = det.evaluate_detection(csv_path, pred_path, variant="epic",
                               epic_task="verb", tiou_thresholds=th)
    assert r.classes == [1, 2]
    np.testing.assert_allclose(r.ap[:, 0], (1 + 2 / 3) / 2)
    np.testing.assert_allclose(r.ap[:, 1], 1.0)
    # noun: class 5 (2 GT): .9 TP, .8 TP, .7 FP -> 1; class 6: 1.
    r = det.evaluate_detection(csv_path, pred_path, variant="epic",
                               epic_task="noun", tiou_thresholds=th)
    assert r.classes == [5, 6] and r.average_mAP == 1.0
    # action: 305 (1 GT): .9 TP, .8 FP -> 1; 605: .7 TP -> 1; 306: .6 TP.
    r = det.evaluate_detection(csv_path, pred_path, variant="epic",
                               tiou_thresholds=th)
    assert r.classes == [305, 306, 605] and r.average_mAP == 1.0
    np.testing.assert_array_equal(r.tiou_thresholds, th)


def test_epic_unknown_class_and_bad_entries(epic, tmp_path):
    csv_path, pred_path = epic
    data = json.loads(pred_path.read_text())
    data["results"]["P01_02"].append({"segment": [0, 1], "verb": 9,
                                      "noun": 9, "action": "9,9",
                                      "score": .1})
    path = tmp_path / "unknown.json"
    path.write_text(json.dumps(data))
    with pytest.raises(errors.UnknownLabelError, match="2709"):
        det.evaluate_detection(csv_path, path, variant="epic")
    r = det.evaluate_detection(csv_path, path, variant="epic",
                               skip_unknown_labels=True)
    assert r.counts["num_skipped_unknown_labels"] == 1
    data["results"]["P01_02"][-1]["action"] = "9"
    path.write_text(json.dumps(data))
    with pytest.raises(errors.MalformedFileError, match="'verb,noun'"):
        det.evaluate_detection(csv_path, path, variant="epic")
    with pytest.raises(errors.ConfigError, match="epic_task"):
        det.evaluate_detection(csv_path, pred_path, variant="epic",
                               epic_task="object")


def test_epic_on_actionformer_json_and_cli(epic, tmp_path, capsys):
    """ActionFormer's per-task JSON (label_id = class) scores as the CSV."""
    csv_path, pred_path = epic
    gt = epic_io.read_epic_ground_truth(csv_path, task="noun")
    db = {}
    for v, seg, label in zip(gt.video, gt.segments, gt.labels):
        db.setdefault(gt.video_ids[v], {"subset": "validation",
                                        "annotations": []})[
            "annotations"].append({"segment": seg.tolist(),
                                   "label": f"noun_{label}",
                                   "label_id": label})
    json_gt = tmp_path / "epic_kitchens_100_noun.json"
    json_gt.write_text(json.dumps({"database": db}))
    a = det.evaluate_detection(json_gt, pred_path, variant="epic",
                               epic_task="noun")
    b = det.evaluate_detection(csv_path, pred_path, variant="epic",
                               epic_task="noun")
    np.testing.assert_array_equal(a.ap, b.ap)
    out = tmp_path / "r.json"
    assert evaluate.main(["--metric=activitynet_detection", "--variant=epic",
                          "--epic_task=verb", f"--ground_truth={csv_path}",
                          f"--predictions={pred_path}",
                          f"--output_json={out}", "--noprogress"]) == 0
    r = json.loads(out.read_text())
    assert r["epic_task"] == "verb"
    assert r["tiou_thresholds"] == np.linspace(0.1, 0.5, 5).tolist()
    assert r["average_mAP"] == pytest.approx((1 + 2 / 3) / 4 + 0.5)


def test_actionformer_variant_on_label_names(anchors_dir, tmp_path):
    """Without label_id the names are the classes: same mAP and recall."""
    folder = anchors_dir / "eval" / "actionformer_metric"
    gt = json.loads((folder / "af_metric_gt.json").read_text())
    preds = json.loads((folder / "af_metric_preds.json").read_text())
    names = {}
    for video in gt["database"].values():
        for ann in video.get("annotations", []):
            names[ann.pop("label_id")] = ann["label"]
    path = tmp_path / "gt_names.json"
    path.write_text(json.dumps(gt))
    named = dict(preds, label=[names.get(x, f"unknown_{x}")
                               for x in preds["label"]])
    th = np.linspace(0.1, 0.5, 5)
    a = det.evaluate_detection(folder / "af_metric_gt.json", preds,
                               subset="test", tiou_thresholds=th,
                               variant="actionformer",
                               skip_unknown_labels=True)
    b = det.evaluate_detection(path, named, subset="test",
                               tiou_thresholds=th, variant="actionformer",
                               skip_unknown_labels=True)
    assert b.classes == sorted(b.classes) and isinstance(b.classes[0], str)
    np.testing.assert_allclose(b.mAP_per_tiou, a.mAP_per_tiou, atol=1e-12)
    np.testing.assert_allclose(b.recall, a.recall, atol=1e-12)
