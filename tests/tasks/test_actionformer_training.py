"""The ActionFormer recipe trained by the Trainer on converted synthetic data.

* MirroredStrategy over two logical CPUs ends with the weights, EMA and loss
  normaliser of one device (the positive count is all-reduced, the loss
  divided by the global normaliser);
* the loss normaliser is checkpointed and restored;
* evaluation writes `predictions.json`, which `experiments.evaluate` scores
  to the same mAP as the trainer reports;
* the warm-up counted in epochs starts from 0 and reaches the peak rate.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from experiments import evaluate as evaluate_cli
from experiments.configs import actionformer_synthetic
from tfaction import tasks
from tfaction import training
from tfaction.data.formats.activitynet_features import (
    convert_activitynet_features)
from tfaction.data.synthetic.temporal_localization import (
    generate_temporal_localization)
from tfaction.tasks import actionformer as af_task
from tests.training import harness


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("af_synthetic")
    generate_temporal_localization(root / "raw", num_videos=10, seed=3,
                                   feature_dim=16, min_steps=64,
                                   max_steps=200)
    convert_activitynet_features(root / "raw" / "annotations.json",
                                 root / "raw" / "features", root / "records",
                                 feature_stride=4, feature_window=16)
    return root / "records"


def make_config(records):
    config = actionformer_synthetic.get_config()
    config.task.data_dir = str(records)
    model = config.task.model
    model.embed_dim = model.head_dim = 16
    # Three levels: a third of the ops to trace (tracing dominates here).
    model.arch = (2, 1, 2)
    model.window_size = (9,) * 3
    model.regression_range = ((0, 8), (8, 32), (32, 10000))
    # Stochastic depth draws per replica: off, so that both strategies
    # compute the same function.
    model.drop_path_rate = 0.0
    config.trainer.epochs = 2
    config.trainer.global_batch_size = 2
    config.optimizer.warmup_epochs = 1
    config.runtime.deterministic = False
    return config


@pytest.fixture(scope="module")
def one_device(records, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("af_one_device")
    trainer, result = harness.train_and_evaluate(
        make_config(records), workdir, training.get_strategy("one_device"))
    return trainer, result, workdir


def test_mirrored_matches_one_device(one_device, records, tmp_path,
                                     two_cpu_strategy):
    reference, ref_result, _ = one_device
    trainer, result = harness.train_and_evaluate(
        make_config(records), tmp_path, two_cpu_strategy)
    assert result["step"] == ref_result["step"] == 8
    for got, want in zip(trainer.model.weights, reference.model.weights):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want),
                                   atol=1e-5, err_msg=got.path)
    for got, want in zip(trainer.ema.shadows, reference.ema.shadows):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
    normalizer = trainer.task.loss_normalizer.read_value().numpy()
    ref_normalizer = reference.task.loss_normalizer.numpy()
    np.testing.assert_allclose(normalizer, ref_normalizer, rtol=1e-6)
    # N moved from its initial 100 towards the per-step positive counts.
    assert ref_normalizer < 100.0
    np.testing.assert_allclose(result["train"]["loss"],
                               ref_result["train"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(result["eval"]["average_mAP"],
                               ref_result["eval"]["average_mAP"], atol=1e-4)


def test_loss_normalizer_is_checkpointed(one_device, records):
    reference, _, workdir = one_device
    config = make_config(records)
    trainer = training.Trainer(tasks.build_task(config), config, workdir,
                               training.get_strategy("one_device"),
                               evaluation_only=True)
    trainer.restore()
    assert float(trainer.task.loss_normalizer) == \
        float(reference.task.loss_normalizer)


def test_predictions_file_scores_the_same(one_device, records, tmp_path):
    _, result, workdir = one_device
    predictions = json.loads((workdir / af_task.PREDICTIONS_FILE).read_text())
    assert predictions["step"] == result["step"]
    assert predictions["results"]  # every evaluated video has detections
    out = tmp_path / "metric.json"
    status = evaluate_cli.main([
        "--metric=activitynet_detection",
        f"--ground_truth={records / 'ground_truth.json'}",
        f"--predictions={workdir / af_task.PREDICTIONS_FILE}",
        "--subset=validation", "--tiou_thresholds=0.3,0.4,0.5,0.6,0.7",
        "--skip_unknown_labels",
        f"--output_json={out}"])
    assert status == 0
    scored = json.loads(out.read_text())
    np.testing.assert_allclose(scored["average_mAP"],
                               result["eval"]["average_mAP"], rtol=1e-9)


def test_warmup_in_epochs(one_device):
    trainer, _, _ = one_device
    schedule = trainer.optimizer.learning_rate_schedule \
        if hasattr(trainer.optimizer, "learning_rate_schedule") else \
        trainer.optimizer._learning_rate
    steps = trainer.steps_per_epoch
    lr = float(trainer.config.optimizer.lr)
    assert float(schedule(0)) == 0.0
    np.testing.assert_allclose(float(schedule(steps)), lr, rtol=1e-6)
    assert float(schedule(steps // 2)) < lr


def test_export_serves_the_evaluated_detections(one_device, records,
                                                tmp_path):
    """Task export -> SavedModel -> `export.actionformer_request` client:
    the detections of the task's own evaluation (EMA weights)."""
    from export import actionformer_request
    from tfaction.serving import build_export_module
    from tfaction.serving import export_saved_model

    trainer, _, _ = one_device
    task = trainer.task
    with trainer.ema.swapped_weights():
        version = export_saved_model(build_export_module(task, trainer.model),
                                     str(tmp_path / "models"))
        video = actionformer_request.read_video(str(records), "validation")
        inputs = actionformer_request.request_inputs(video)
        mask = np.zeros([1, trainer.model.padded_length(
            inputs["lengths"][0])], bool)
        mask[0, :inputs["lengths"][0]] = True
        feats = np.zeros(mask.shape + (inputs["features"].shape[-1],),
                         np.float32)
        feats[0, :mask.sum()] = inputs["features"][0]
        out = trainer.model({"features": feats, "mask": mask},
                            training=False)
        # The synthetic videos last exactly the span their features cover,
        # the duration the serving signature clamps to.
        expected = task.postprocess_video(
            np.asarray(out["cls_logits"][0]), np.asarray(out["offsets"][0]),
            np.asarray(out["mask"][0]), fps=video["fps"],
            duration=((mask.sum() - 1) * 4 + 16) / video["fps"],
            feature_stride=4, feature_window=16)
    served = actionformer_request.predict(str(version), inputs)
    n = int(served["num_detections"][0])
    assert n == len(expected[1]) > 0
    np.testing.assert_array_equal(served["labels"][0, :n], expected[2])
    np.testing.assert_allclose(served["scores"][0, :n], expected[1],
                               atol=1e-5)
    np.testing.assert_allclose(served["segments"][0, :n], expected[0],
                               atol=1e-4)
    text = actionformer_request.format_detections(video, served, top=3)
    assert video["video_id"] in text and "score" in text
    body = actionformer_request.rest_body(inputs)
    assert body["signature_name"] == "serving_default"
    assert set(body["inputs"]) == {"features", "lengths", "fps"}


def test_evaluation_split_is_padded_to_whole_steps(one_device):
    trainer, _, _ = one_device
    task = trainer.task
    context = tf.distribute.InputContext(num_input_pipelines=2,
                                         input_pipeline_id=1,
                                         num_replicas_in_sync=6)
    # 3 local replicas x 1 video: the 2 videos become one step of 3, and
    # every worker reads the whole split.
    batches = list(task.build_inputs(False, global_batch_size=6,
                                     input_context=context))
    ids = [b["video_id"].numpy()[0].decode() for b in batches]
    assert len(ids) == 3 and ids[-1] == "" and all(ids[:2])
    logs = [tf.nest.map_structure(np.asarray, task.validation_step(
        b, trainer.model, [])) for b in batches]
    assert sorted(task.aggregate_logs(None, logs)) == sorted(ids[:2])



def test_class_agnostic_without_scores_is_scored_as_one_class(records,
                                                             tmp_path):
    config = make_config(records)
    config.task.class_agnostic = True
    task = tasks.build_task(config)
    assert task.one_class_evaluation
    detections = {"v": (np.array([[1.0, 2.0]]), np.array([0.9]),
                        np.array([0]))}
    written = task.predictions(detections)
    assert written["results"]["v"][0]["label"] == "action"
    # Every GT class counts as "action": a perfect one-class detector of
    # the evaluation split scores 1 however its GT is labelled.
    gt = json.loads(open(records / "ground_truth.json").read())["database"]
    results = {vid: [{"segment": a["segment"], "score": 1.0,
                      "label": "action"} for a in v["annotations"]]
               for vid, v in gt.items()
               if v["subset"] == config.task.eval_subset}
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({"results": results}))
    out = tmp_path / "out.json"
    assert evaluate_cli.main([
        "--metric=activitynet_detection", f"--predictions={preds}",
        f"--ground_truth={records / 'ground_truth.json'}",
        f"--subset={config.task.eval_subset}", "--class_agnostic",
        "--tiou_thresholds=0.5", f"--output_json={out}",
        "--noprogress"]) == 0
    assert json.loads(out.read_text())["average_mAP"] == 1.0
    # Without --class_agnostic the same file matches no GT class.
    assert evaluate_cli.main([
        "--metric=activitynet_detection", f"--predictions={preds}",
        f"--ground_truth={records / 'ground_truth.json'}",
        f"--subset={config.task.eval_subset}", "--noprogress"]) == 1
