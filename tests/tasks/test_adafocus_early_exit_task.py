"""AdaFocus V2+ early exit in the V2 task's evaluation.

Two training steps of the shrunk synthetic recipe (the fixtures of
`test_adafocus_task.py`) with `early_exit_budgets` set; the evaluation
then also runs the training videos. Checked against computations that do
not go through the evaluation's inputs:

* the thresholds in `early_exit.json` are those of
  `early_exit.calibrate_thresholds` on the per-step logits of the
  training videos as the TRAINING pipeline gives them (the authors'
  calibration loader: its sampling and crops; inference mode);
* each budget's mAP, top-1, exit fractions and expected GFLOPs are those
  of `early_exit.apply_thresholds` on the evaluation videos' per-step
  logits, the GFLOPs from `flops.adafocus_v2_gflops`;
* two replicas evaluate the same checkpoint to the same file;
* the accuracy-vs-GFLOPs figure is a two-panel PNG;
* the config rules of the early-exit keys.
"""

import json

import cv2
import numpy as np
import pytest

from tests.tasks.test_adafocus_task import T
from tests.tasks.test_adafocus_task import dataset  # noqa: F401 (fixture)
from tests.tasks.test_adafocus_task import make_config
from tests.training import harness
from tfaction import errors
from tfaction import tasks
from tfaction import training
from tfaction.evaluation import adafocus_map
from tfaction.models.adafocus import early_exit
from tfaction.models.adafocus import flops
from tfaction.tasks import adafocus_config

BUDGETS = (0.5, 1.0, 3.9)


def _config(dataset):  # noqa: F811
    config = make_config(dataset)
    config.task.early_exit_budgets = BUDGETS
    config.task.frames.train_crop = "random"  # calibration crops differ
    config.task.frames.crop_size = (33, 33)
    config.task.frames.test_crop = "center"
    config.task.frames.flip = True
    return config


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("adafocus_early_exit")
    trainer, result = harness.train_and_evaluate(
        _config(dataset), workdir, training.get_strategy("one_device"))
    report = json.loads((workdir / "early_exit.json").read_text())
    return dict(trainer=trainer, result=result["eval"], workdir=workdir,
                report=report)


def _step_logits(model, batches, subset=None):
    """video id -> per-step logits `[T, C]` of every example (of the
    `subset` tag only, when given)."""
    out = {}
    for features, labels in batches:
        logits = model({"frames": features["frames"]},
                       training=False)["logits"].numpy()
        tags = (labels["subset"].numpy() if subset is not None
                else [None] * len(logits))
        for vid, tag, row in zip(labels["video_id"].numpy(), tags, logits):
            if vid and tag == subset:
                out[vid.decode()] = row
    return out


def test_thresholds_come_from_the_training_pipeline(run):
    trainer, report = run["trainer"], run["report"]
    task = trainer.task
    train = _step_logits(trainer.model, task.build_inputs(
        True, global_batch_size=1, epoch=0, seed=trainer.seed))
    assert report["num_calibration_videos"] == len(train) == (
        task.data.num_records("train"))
    logits = np.stack([train[v] for v in sorted(train)])
    for point in report["budgets"]:
        want = early_exit.calibrate_thresholds(logits, point["budget"])
        got = early_exit.thresholds_from_json(point["thresholds"])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # Training crops and flips: other logits than the evaluation view.
    centre = _step_logits(trainer.model, task._tagged_examples(
        "train", 1, training_views=False, seed=trainer.seed).batch(4).map(
            lambda b: (b, b)))
    assert max(np.abs(centre[v] - train[v]).max() for v in train) > 1e-4


def test_each_budget_is_scored_on_the_evaluation_videos(run):
    trainer, report, result = run["trainer"], run["report"], run["result"]
    task = trainer.task
    val = _step_logits(trainer.model, task.build_inputs(
        False, global_batch_size=2, seed=trainer.seed), subset=0)
    ids = sorted(val)
    assert report["num_videos"] == len(ids) == result["num_videos"]
    with np.load(run["workdir"] / "predictions.npz") as z:
        assert z["video_ids"].tolist() == ids  # calibration videos left out
        labels = z["labels"]
    logits = np.stack([val[v] for v in ids])
    per_frame = flops.adafocus_v2_gflops(trainer.model)["per_frame"]
    assert report["per_frame_gflops"] == pytest.approx(per_frame)
    assert report["all_frames"]["gflops"] == pytest.approx(per_frame * T)
    assert [p["budget"] for p in report["budgets"]] == list(BUDGETS)
    for point in report["budgets"]:
        thresholds = early_exit.thresholds_from_json(point["thresholds"])
        steps, chosen = early_exit.apply_thresholds(logits, thresholds)
        assert point["expected_gflops"] == pytest.approx(
            per_frame * steps.mean())
        np.testing.assert_allclose(point["exit_fractions"], np.bincount(
            steps - 1, minlength=T) / len(ids))
        mean_ap = adafocus_map.adafocus_map(chosen, labels[:, :1]).map
        top1 = adafocus_map.topk_accuracy(chosen, labels, (1,))[0]
        assert point["mAP"] == pytest.approx(mean_ap, abs=1e-4)
        assert point["top1"] == pytest.approx(top1, abs=1e-4)
        name = f"early_exit_q{point['budget']:g}"
        assert result[f"{name}_gflops"] == point["expected_gflops"]
        assert result[f"{name}_mAP"] == point["mAP"]
        assert result[f"{name}_top1"] == point["top1"]
    assert result["early_exit_calibration_videos"] == (
        report["num_calibration_videos"])
    # The last step's scores stay the model's full-video figures.
    assert report["all_frames"]["mAP"] == result["mAP"]


def test_two_replicas_evaluate_alike(run, dataset, two_cpu_strategy,  # noqa
                                     tmp_path):
    config = _config(dataset)
    workdir = run["workdir"]
    trainer = training.Trainer(tasks.build_task(config), config,
                               str(workdir), two_cpu_strategy,
                               evaluation_only=True)
    trainer.workdir = str(tmp_path)  # write the files elsewhere
    result = trainer.evaluate()
    trainer.close()
    again = json.loads((tmp_path / "early_exit.json").read_text())
    want = run["report"]
    assert again["num_calibration_videos"] == want["num_calibration_videos"]
    for got, ref in zip(again["budgets"], want["budgets"]):
        for key in ("expected_gflops", "mAP", "top1"):
            assert got[key] == pytest.approx(ref[key], abs=1e-4), key
        np.testing.assert_allclose(
            early_exit.thresholds_from_json(got["thresholds"]),
            early_exit.thresholds_from_json(ref["thresholds"]), atol=1e-4)
    assert result["num_videos"] == run["result"]["num_videos"]


def test_calibration_subset_limit(dataset):  # noqa: F811
    config = _config(dataset)
    config.task.early_exit_calibration_videos = 4
    task = tasks.build_task(config)
    task.build_model()
    batches = list(task.build_inputs(False, global_batch_size=2, seed=0))
    tags = np.concatenate([b[1]["subset"].numpy() for b in batches])
    ids = np.concatenate([b[1]["video_id"].numpy() for b in batches])
    num_val = task.data.num_records("val")
    assert (tags == 1).sum() == 4
    assert (tags[:num_val] == 0).all() and (ids != b"").sum() == num_val + 4


def test_figure_has_two_panels(run):
    png = (run["workdir"] / "early_exit.png").read_bytes()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 1280, 3)
    line = np.all(image == early_exit._LINE, axis=-1)
    assert line[:, :640].any() and line[:, 640:].any()


def test_early_exit_config_rules(dataset):  # noqa: F811
    def check(change, match):
        config = _config(dataset)
        change(config.task)
        with pytest.raises(errors.ConfigError, match=match):
            adafocus_config.validate(config.task)

    check(lambda t: setattr(t, "early_exit_budgets", (1.0, 0.0)),
          r"early_exit_budgets=.*q > 0")
    check(lambda t: setattr(t, "early_exit_calibration_videos", -1),
          "early_exit_calibration_videos=-1")
    check(lambda t: setattr(t, "export_early_exit_file", "ee.json"),
          "go together")
    check(lambda t: setattr(t, "export_early_exit_budget", 1.5),
          "go together")
    assert adafocus_config.experiment_config(
        "minik").task.early_exit_calibration_videos == 20000
    assert adafocus_config.task_config().early_exit_budgets == ()
