"""Tests of the evaluation benchmark (`benchmarks/evaluation.py`) and of its
official-code harness (`benchmarks/evaluation_official.py`), on a tiny
ground truth: the files it writes, the CLI run it times, the rows."""

import json

import numpy as np
import pytest

from benchmarks import evaluation as bench
from benchmarks import evaluation_official as official
from tfaction.evaluation import ground_truth as gt_lib

ROW_KEYS = {"family", "measure", "ours", "reference", "unit", "ratio",
            "reference_name", "target", "met"}


@pytest.fixture()
def tiny(tmp_path):
    database = {f"v{i}": {"subset": "validation" if i % 4 else "training",
                          "annotations": [{"segment": [i, i + 5.0],
                                           "label": "AB"[i % 2]}]}
                for i in range(12)}
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"database": database, "version": "1",
                                   "taxonomy": []}))
    gt = gt_lib.load_ground_truth(gt_path, "validation")
    return gt_path, gt, bench.make_predictions(gt, per_video=6)


def test_predictions_file_and_subset(tmp_path, tiny):
    _, gt, preds = tiny
    path = tmp_path / "p.json"
    assert bench.write_predictions(preds, path) == preds.num_predictions
    data = json.loads(path.read_text())
    assert {"results", "version", "external_data"} <= set(data)
    assert list(data["results"]) == preds.video_ids
    first = data["results"][preds.video_ids[0]][0]
    assert first["segment"] == preds.segments[0].tolist()
    assert first["score"] == preds.scores[0]
    n = bench.write_predictions(preds, path, every=4)
    data = json.loads(path.read_text())
    assert n == sum(len(e) for e in data["results"].values()) == 2 * len(
        gt.video_ids)  # entries 0 and 4 of each video's 6


def test_cli_run_and_rows(tmp_path, tiny):
    gt_path, gt, preds = tiny
    path = tmp_path / "p.json"
    bench.write_predictions(preds, path)
    cpu = []
    seconds, result = bench.run_cli(gt_path, path, tmp_path / "r.json", cpu)
    assert seconds > 0 and 0 <= result["average_mAP"] <= 1
    assert len(cpu) == 1 and 0 < cpu[0]
    assert bench.map_difference(result, result) == 0.0
    other = dict(result, ap_per_class={"Z": [0.0]})
    assert bench.map_difference(result, other) == float("inf")

    class Args:
        reference_every = 10
        reference_repo = str(tmp_path)  # not a git work tree

    out = {"videos": 4728, "predictions": 472800, "cli_s": 2.5,
           "ours_s": 0.5, "side_by_side_predictions": 47280,
           "side_by_side_cli_s": 0.9, "official_s": 90.0,
           "official_max_abs_diff": 0.0}
    ref = {"python": "2.7.18", "pandas": "0.24.2", "joblib": "0.14.1",
           "workers": 2}
    rows = bench.table_rows(out, Args, ref)
    assert all(set(r) == ROW_KEYS and r["family"] == "Evaluation"
               for r in rows)
    assert [r["met"] for r in rows] == [True, True, True, True]
    assert rows[1]["ratio"] == 0.01 and "every 10th" in rows[1]["measure"]
    assert "unknown commit" in rows[1]["reference_name"]
    rows = bench.table_rows(dict(out, cli_s=3.5), Args, None)
    assert len(rows) == 2 and rows[0]["met"] is False
    assert rows[0]["reference"] is None


def test_harness_helpers():
    calls = []

    def parallel(n_jobs, *args, **kwargs):
        calls.append(n_jobs)

    capped = official._capped_parallel(parallel, 2)
    capped(n_jobs=200)
    capped(n_jobs=1)
    assert calls == [2, 1]
    assert type(official._file_order(list(zip("abcde", range(5))))) \
        is not dict  # ordered mapping for the video maps
    assert official._file_order([("a", 1)]) == {"a": 1}


def test_in_process_figures(tiny):
    _, gt, preds = tiny
    figures = bench.in_process_figures(gt, preds, loop_classes=2)
    assert figures["classes"] == 2 and figures["ours_s"] >= 0
    assert figures["loop_generic_tie_order_vs_ours_max_abs_diff"] < 1e-12
    assert np.isfinite(figures["average_mAP"])
