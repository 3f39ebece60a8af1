"""The AdaFocus V2 recipe on converted synthetic AdaFocus-layout data.

* batches: T frames in the coarse-to-fine order, labels padded to 3, and
  random patch locations drawn in the input pipeline;
* one training step on MirroredStrategy over two replicas updates the
  weights as one device does (both passes, per-group learning rates,
  coupled decay, synchronised batch norms) and evaluates every video once;
* the evaluation's `predictions.npz` is scored by `experiments.evaluate
  --metric=adafocus_map` to the trainer's number;
* the config rules and the refusals (non-SGD optimizer with multipliers).
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from experiments import evaluate as evaluate_cli
from experiments.configs import adafocus_v2_synthetic
from tests.training import harness
from tfaction import errors
from tfaction import tasks
from tfaction import training
from tfaction.data.formats.adafocus_lists import convert_adafocus_lists
from tfaction.data.synthetic.adafocus import generate_adafocus
from tfaction.tasks import adafocus as adafocus_task
from tfaction.tasks import adafocus_config
from tfaction.training.global_batch_optimizer import GlobalBatchOptimizer

T = 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("adafocus_synthetic")
    generate_adafocus(root / "raw", num_videos=12, seed=2, num_classes=3,
                      height=37, width=37, num_distractors=1, min_frames=4,
                      max_frames=6)
    raw = root / "raw"
    # One training video gets a second label (the lists allow up to 3).
    train = raw / "actnet_train_split.txt"
    lines = train.read_text().splitlines()
    video, frames, label = lines[0].split(",")
    lines[0] = f"{video},{frames},{label},{(int(label) + 1) % 3}"
    train.write_text("\n".join(lines) + "\n")
    convert_adafocus_lists(
        [train, raw / "actnet_val_split.txt"], raw / "frames",
        root / "records", dataset="actnet", class_list=raw / "classInd.txt")
    return root


def make_config(dataset):
    config = adafocus_v2_synthetic.get_config()
    task = config.task
    task.data_dir = str(dataset / "records")
    task.frames.num_steps = T
    task.frames.crop_size = (37, 37)
    model = task.model
    model.patch_size = 13
    model.glance_size = (10, 10)
    model.small_filters = (4, 8)
    model.policy_hidden_units = 8
    model.policy_conv_filters = 4
    model.classifier_hidden_units = 8
    model.dropout = 0.0           # replicas draw their own dropout masks
    model.head_dropout = 0.0
    task.lr_multipliers.policy = 0.1  # the paper's four multipliers
    config.trainer.epochs = 1
    config.trainer.steps_per_epoch = 2
    config.trainer.global_batch_size = 4
    config.trainer.eval_batch_size = 2
    config.optimizer.lr = 0.05
    config.runtime.deterministic = False
    return config


def test_batches(dataset):
    config = make_config(dataset)
    task = tasks.build_task(config)
    assert task.frame_order == [1, 0, 2]
    features, labels = next(iter(task.build_inputs(True,
                                                   global_batch_size=4)))
    assert features["frames"].shape == (4, T, 37, 37, 3)
    locations = features["random_locations"].numpy()
    assert locations.shape == (4, T, 2)
    assert ((locations >= 0) & (locations < 1)).all()
    assert labels["labels"].shape == (4, 3)
    assert (labels["label"].numpy() == labels["labels"].numpy()[:, 0]).all()
    # Evaluation: the same locations for a video in every pass.
    first = [b for b in task.build_inputs(False, global_batch_size=2)]
    again = [b for b in task.build_inputs(False, global_batch_size=2)]
    for (f1, l1), (f2, l2) in zip(first, again):
        np.testing.assert_array_equal(f1["random_locations"],
                                      f2["random_locations"])
        np.testing.assert_array_equal(l1["video_id"], l2["video_id"])
    ids = [v for _, l in first for v in l["video_id"].numpy()]
    assert len(ids) == 4 and sorted(ids)[0] == b""  # padded to 2 batches


def test_random_label_choice_over_epochs(dataset):
    config = make_config(dataset)
    config.task.frames.shuffle_buffer_size = 1
    task = tasks.build_task(config)
    seen = set()
    for epoch in range(4):
        for _, labels in task.build_inputs(True, global_batch_size=1,
                                           epoch=epoch):
            row = labels["labels"].numpy()[0]
            if (row >= 0).sum() == 2:
                seen.add(tuple(row[:2]))
    assert len(seen) == 2  # both orders of the two-label video
    config.task.label_choice = "first"
    task = tasks.build_task(config)
    firsts = {tuple(labels["labels"].numpy()[0][:2])
              for epoch in range(2)
              for _, labels in task.build_inputs(True, global_batch_size=1,
                                                 epoch=epoch)
              if (labels["labels"].numpy()[0] >= 0).sum() == 2}
    assert len(firsts) == 1


def test_parameter_groups_and_the_sgd_rule(dataset):
    config = make_config(dataset)
    task = tasks.build_task(config)
    model = task.build_model()
    groups = task.parameter_groups(model)
    sizes = {name: len(v) for name, v in groups.items()}
    assert sum(sizes.values()) == len(model.trainable_variables)
    assert all(sizes.values())
    *_, scales = task._model_parts(model)
    assert sorted(set(scales)) == [0.1, 0.5, 1.0, 5.0]
    # Gradient scales are learning-rate multipliers only for SGD.
    adam = keras.optimizers.Adam()
    adam.build(model.trainable_variables)
    batch = next(iter(task.build_inputs(True, global_batch_size=2)))
    with pytest.raises(errors.ConfigError, match="only for SGD"):
        task.train_step(batch, model, GlobalBatchOptimizer(adam, 2), [])


@pytest.fixture(scope="module")
def one_device(dataset, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("af_one_device")
    trainer, result = harness.train_and_evaluate(
        make_config(dataset), workdir, training.get_strategy("one_device"))
    return trainer, result, workdir


def test_mirrored_matches_one_device(one_device, dataset, tmp_path,
                                     two_cpu_strategy):
    reference, ref_result, _ = one_device
    trainer, result = harness.train_and_evaluate(
        make_config(dataset), tmp_path, two_cpu_strategy)
    assert result["step"] == ref_result["step"] == 2
    changed = 0
    for got, want in zip(trainer.model.weights, reference.model.weights):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want),
                                   atol=2e-5, err_msg=got.path)
    for start, end in zip(tasks.build_task(make_config(dataset))
                          .build_model().weights, reference.model.weights):
        changed += not np.allclose(np.asarray(start), np.asarray(end))
    assert changed > len(reference.model.trainable_variables) // 2
    for key in ("mAP", "top1", "glance_top1", "random_patch_top1",
                "num_videos", "gflops_per_video"):
        assert result["eval"][key] == pytest.approx(ref_result["eval"][key],
                                                    abs=1e-4), key
    assert result["eval"]["num_videos"] == 3.0
    with np.load(tmp_path / "predictions.npz") as z:
        assert len(set(z["video_ids"].tolist())) == 3
        assert z["labels"].shape == (3, 3)


def test_predictions_are_scored_by_the_evaluate_cli(one_device, dataset,
                                                    tmp_path):
    _, result, workdir = one_device
    split = dataset / "raw" / "actnet_val_split.txt"
    status = evaluate_cli.main([
        "--metric=adafocus_map", f"--ground_truth={split}",
        f"--predictions={workdir / 'predictions.npz'}", "--top_k=1",
        f"--output_json={tmp_path / 'scored.json'}"])
    assert status == 0
    scored = json.loads((tmp_path / "scored.json").read_text())
    assert scored["mAP"] == pytest.approx(result["eval"]["mAP"])
    assert scored["top1"] == pytest.approx(result["eval"]["top1"])
    assert scored["num_videos"] == 3


def test_config_rules(dataset):
    def check(change, match):
        config = make_config(dataset)
        change(config.task)
        with pytest.raises(errors.ConfigError, match=match):
            adafocus_config.validate(config.task)

    check(lambda t: setattr(t.model, "patch_size", 40),
          r"patch_size=40 exceeds task.frames.crop_size=\(37, 37\)")
    check(lambda t: setattr(t, "frame_order", "reverse"),
          "task.frame_order='reverse' must be one of")
    check(lambda t: setattr(t.frames, "test_crop", "five"),
          "one view per video")
    check(lambda t: setattr(t, "glance_weights", "x.pth"),
          "task.glance_weights is set but task.model.glance_arch='small'")
    check(lambda t: t.lr_multipliers.update({"policy": -1.0}),
          r"lr_multipliers.policy=-1.0")
    paper = adafocus_config.experiment_config("fcvid", "res50", 96)
    assert paper.task.map_labels == "all"
    assert paper.task.model.glance_arch == "resnet50"
    with pytest.raises(errors.ConfigError,
                       match="task.glance_weights and task.focus_weights "
                             "are empty"):
        adafocus_config.validate(paper.task, require_trunk_weights=True)
    adafocus_config.validate(paper.task)  # weights: on the command line
    with pytest.raises(errors.ConfigError, match="unknown AdaFocus V2"):
        adafocus_config.experiment_config("kinetics")
    with pytest.raises(errors.ConfigError, match="'<glance>_p<patch size>'"):
        adafocus_config.parse_variant("mbv2_128")


def test_coarse_to_fine_order():
    assert adafocus_task.coarse_to_fine_order(16) == [
        7, 0, 15, 3, 11, 1, 5, 9, 13, 2, 4, 6, 8, 10, 12, 14]
    for t in (1, 2, 3, 5, 8, 13):
        assert sorted(adafocus_task.coarse_to_fine_order(t)) == list(
            range(t))


def test_gradient_scales_are_learning_rate_multipliers():
    variables = [tf.Variable([1.0, 2.0]), tf.Variable([3.0])]
    sgd = keras.optimizers.SGD(learning_rate=0.1)
    sgd.build(variables)
    updater = GlobalBatchOptimizer(sgd, global_batch_size=1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(variables[0]) + 2.0 * tf.reduce_sum(
            variables[1])
    updater.minimize(loss, variables, tape, gradient_scales=[5.0, 0.5])
    np.testing.assert_allclose(variables[0].numpy(), [0.5, 1.5])
    np.testing.assert_allclose(variables[1].numpy(), [2.9])
    with pytest.raises(errors.ConfigError, match="1 gradient scales for 2"):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(variables[0])
        updater.minimize(loss, variables, tape, gradient_scales=[1.0])
