"""The ActionFormer task reports Recall@kx beside mAP when asked."""

import json

import numpy as np

from tfaction import tasks
# The converted synthetic records and small recipe of the training tests.
from tests.tasks.test_actionformer_training import make_config
from tests.tasks.test_actionformer_training import records  # noqa: F401


def _task(records, **evaluation):
    config = make_config(records)
    for key, value in evaluation.items():
        setattr(config.task.evaluation, key, value)
    return tasks.build_task(config), config


def _detections(records, subset, names, drop_every=0):
    """The subset's GT as detections (every `drop_every`-th one left out)."""
    gt = json.loads((records / "ground_truth.json").read_text())["database"]
    out, n = {}, 0
    for vid, video in gt.items():
        if video["subset"] != subset:
            continue
        kept = []
        for ann in video["annotations"]:
            n += 1
            if not (drop_every and n % drop_every == 0):
                kept.append(ann)
        out[vid] = (np.array([a["segment"] for a in kept]).reshape(-1, 2),
                    np.linspace(0.9, 0.5, len(kept)),
                    np.array([names.index(a["label"]) for a in kept],
                             np.int64))
    return out


def test_recall_metrics_beside_map(records):
    th = tuple(np.linspace(0.1, 0.5, 5).tolist())
    task, config = _task(records, variant="actionformer",
                         recall_top_k=(1, 5), tiou_thresholds=th)
    dets = _detections(records, config.task.eval_subset, task.class_names)
    metrics = task.reduce_aggregated_logs(dets)
    assert metrics["average_mAP"] == 1.0
    assert {k for k in metrics if k.startswith("R@")} == {
        f"R@{k}x@{t:.2f}" for k in (1, 5) for t in th}
    assert all(metrics[f"R@1x@{t:.2f}"] == 1.0 for t in th)
    # Fewer detections: recall below 1, the same at every threshold (the
    # kept detections are exact).
    dets = _detections(records, config.task.eval_subset, task.class_names,
                       drop_every=3)
    metrics = task.reduce_aggregated_logs(dets)
    values = {metrics[f"R@1x@{t:.2f}"] for t in th}
    assert len(values) == 1 and 0.0 < values.pop() < 1.0
    # Off by default: mAP only.
    task, _ = _task(records)
    assert not [k for k in task.reduce_aggregated_logs(dets)
                if k.startswith("R@")]
