"""The Video Action Transformer recipe on converted synthetic AVA data.

* batches: the keyframe's clip scaled to I3D's [-1, 1], padded person boxes
  with multi-hot labels;
* a training step trains the RPN and the sampled-proposal box head (every
  trained part moves, the frozen batch-norm statistics do not);
* MirroredStrategy over two replicas trains like one device: the minibatch
  samplers draw per clip (hash of the keyframe and the step), so a clip
  samples the same anchors and proposals whatever else is in its batch;
* evaluation writes the official AVA CSV (at most 50 rows per keyframe),
  which `experiments.evaluate --metric=ava_frame_ap` scores to the
  trainer's number, with detected or ground-truth boxes;
* trained batch-norm statistics (`trunk_batch_norm="batch"`, training
  from scratch) are synchronised over the replicas (global-batch
  statistics, as the frozen ones are the same on every replica);
* `add_groundtruth_proposals` puts the ground-truth boxes among the
  second stage's sampled boxes;
* the recipe refuses to start without I3D weights unless told to.
"""

import json

import keras
import numpy as np
import pytest

from experiments import evaluate as evaluate_cli
from experiments.configs import action_transformer_synthetic
from tests.training import harness
from tfaction import errors
from tfaction import tasks
from tfaction import training
from tfaction.data.formats.ava import convert_ava
from tfaction.data.synthetic.ava import generate_ava
from tfaction.evaluation import ava_io


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ava_synthetic")
    raw = root / "raw"
    generate_ava(raw, num_videos=3, seed=1, height=64, width=64, duration=4,
                 val_every=3)
    convert_ava([raw / "ava_train_v2.1.csv", raw / "ava_val_v2.1.csv"],
                raw / "videos", root / "records",
                label_map=raw / "ava_action_list_synthetic.pbtxt",
                clip_frames=8)
    return root


def make_config(dataset, head="tx", batch_norm="frozen",
                groundtruth_proposals=False):
    config = action_transformer_synthetic.get_config(head)
    task = config.task
    task.data_dir = str(dataset / "records")
    task.clips.num_frames = 8
    task.clips.image_size = (64, 64)
    m = task.model
    m.trunk_width_multiplier = 0.0625
    m.num_proposals = 8
    m.rpn_filters = 8
    m.key_dim = 8
    m.ffn_units = 8
    m.num_layers = 1
    m.query_reduction_channels = 4
    m.dropout = 0.0       # replicas would draw other dropout masks
    m.trunk_batch_norm = batch_norm
    task.losses.add_groundtruth_proposals = groundtruth_proposals
    task.losses.rpn_minibatch_size = 16
    task.losses.second_stage_batch_size = 4
    config.trainer.train_steps = 2
    config.trainer.global_batch_size = 2
    config.trainer.eval_batch_size = 2
    config.optimizer.warmup_steps = 0
    config.optimizer.clip_norm = 10.0
    config.runtime.strategy = "one_device"
    config.runtime.logical_cpus = 0
    return config


def test_batches(dataset):
    task = tasks.build_task(make_config(dataset))
    clips, labels = next(iter(task.build_inputs(True, global_batch_size=2)))
    assert clips.shape == (2, 8, 64, 64, 3)
    assert -1.0 <= float(np.min(clips)) and float(np.max(clips)) <= 1.0
    assert labels["boxes"].shape == (2, 4, 4)
    assert labels["labels"].shape == (2, 4, 5)
    mask = labels["box_mask"].numpy()
    assert mask.any(axis=1).all()
    # Every real person has exactly one motion action (ids 1-3).
    motion = labels["labels"].numpy()[..., :3][mask]
    np.testing.assert_array_equal(motion.sum(-1), 1)
    assert task.class_names[3] == "talk to"


@pytest.fixture(scope="module")
def one_device(dataset, tmp_path_factory):
    """Two steps of the Tx+I3D recipe on one device, then evaluation."""
    workdir = tmp_path_factory.mktemp("at_one_device")
    # Ground-truth proposals: positives for the box losses at step one.
    config = make_config(dataset, "tx_i3d", groundtruth_proposals=True)
    training.configure_runtime(config.runtime, config.trainer.seed)
    trainer = training.Trainer(tasks.build_task(config), config, workdir,
                               training.get_strategy("one_device"))
    initial = {v.path: np.array(v) for v in trainer.model.weights}
    result = trainer.train_and_evaluate()
    trainer.close()
    return trainer, result, workdir, initial


def test_training_moves_the_heads_not_the_frozen_statistics(one_device):
    trainer, _, _, initial = one_device
    moved = {v.path for v in trainer.model.weights
             if not np.array_equal(initial[v.path], np.array(v))}
    assert any(p.startswith("rpn_head/") for p in moved)
    assert any("tx_class_logits" in p for p in moved)
    assert any("i3d_box_deltas" in p for p in moved)
    assert "Conv3d_1a_7x7/batch_norm/beta" in moved  # fine-tuned trunk
    assert not any("moving_mean" in p or "moving_variance" in p
                   for p in moved)


@pytest.mark.slow  # ~110 s on 2 cores; make test-slow runs it
def test_mirrored_matches_one_device(one_device, dataset, tmp_path,
                                     two_cpu_strategy):
    reference, ref_result, _, _ = one_device
    trainer, result = harness.train_and_evaluate(
        make_config(dataset, "tx_i3d", groundtruth_proposals=True), tmp_path,
        two_cpu_strategy)
    assert result["step"] == ref_result["step"] == 2
    for got, want in zip(trainer.model.weights, reference.model.weights):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want),
                                   atol=2e-5, err_msg=got.path)
    assert result["eval"]["frame_mAP"] == pytest.approx(
        ref_result["eval"]["frame_mAP"], abs=1e-6)


def test_trained_batch_statistics_are_synchronised_over_replicas(dataset):
    model = tasks.build_task(make_config(dataset, "tx_i3d",
                                         batch_norm="batch")).build_model()
    norms = [layer for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, keras.layers.BatchNormalization)]
    # Every unit of the trunk and of the I3D head blocks.
    assert len(norms) == 57
    assert all(layer.synchronized for layer in norms)


def test_groundtruth_boxes_join_the_sampled_proposals(dataset):
    task = tasks.build_task(make_config(dataset, groundtruth_proposals=True))
    model = task.build_model()
    clips, labels = next(iter(task.build_inputs(True, global_batch_size=2)))
    seeds = task.sampling_seeds(labels, 0)
    out = task.forward_train(model, clips, labels, seeds=seeds)
    sampled = np.asarray(out["sampled_boxes"])
    boxes = np.asarray(labels["boxes"])
    mask = np.asarray(labels["box_mask"])
    for b in range(2):
        # At most half the minibatch (2 of 4) is positive; the untrained
        # RPN's 8 proposals rarely overlap a person, the true boxes do.
        found = [np.any(np.all(np.isclose(sampled[b], box), axis=1))
                 for box in boxes[b][mask[b]]]
        assert sum(found) >= min(2, int(mask[b].sum())), (b, sampled[b])


def test_detections_csv_is_scored_by_the_evaluate_cli(one_device, dataset,
                                                       tmp_path):
    _, result, workdir, _ = one_device
    detections = workdir / "detections_val.csv"
    table = ava_io.read_box_csv(str(detections), "detections")
    keys, counts = np.unique(table.keys, return_counts=True)
    assert counts.max() <= 50 and len(keys) >= 1
    records = dataset / "records"
    status = evaluate_cli.main([
        "--metric=ava_frame_ap",
        f"--ground_truth={records / 'ground_truth_val.csv'}",
        f"--predictions={detections}",
        f"--label_map={records / 'label_map.pbtxt'}",
        f"--output_json={tmp_path / 'scored.json'}"])
    assert status == 0
    scored = json.loads((tmp_path / "scored.json").read_text())
    assert scored["mAP"] == pytest.approx(result["eval"]["frame_mAP"],
                                          abs=1e-9)


def test_ground_truth_box_evaluation(one_device, dataset):
    """The paper's "GT boxes" rows: the head scores the annotated people,
    so every ground-truth box is detected with every class."""
    trainer, _, _, _ = one_device
    config = make_config(dataset, "tx_i3d")
    config.task.evaluation.boxes = "groundtruth"
    task = tasks.build_task(config)
    logs = []
    for clips, labels in task.build_inputs(False, global_batch_size=2):
        out = task.validation_step((clips, labels), trainer.model, [])
        logs.append({k: np.asarray(v) for k, v in out.items()})
    rows = task.aggregate_logs(None, logs)
    people = sum(int(log["mask"].sum()) for log in logs)
    assert len(rows) == people * task.num_classes
    result = task.reduce_aggregated_logs(rows)
    assert 0.0 < result["frame_mAP"] <= 1.0


def test_recipe_needs_i3d_weights(dataset):
    config = make_config(dataset)
    config.task.train_from_scratch = False
    task = tasks.build_task(config)
    with pytest.raises(errors.ConfigError, match="task.trunk_weights"):
        task.build_model()
    config.task.trunk_weights = "rgb_imagenet/model.ckpt"
    with pytest.raises(errors.ConfigError, match="width is 1.0"):
        tasks.build_task(config)


def test_trunk_weights_load_deepmind_i3d_into_trunk_and_head(dataset,
                                                            tmp_path):
    """`task.trunk_weights` = DeepMind's `rgb_imagenet/model.ckpt` layout:
    the trunk and the Tx+I3D model's I3D head blocks take its weights."""
    from tests.checkpoints.test_i3d_checkpoint import RGB
    from tests.checkpoints.test_i3d_checkpoint import assert_loaded
    from tests.checkpoints.test_i3d_checkpoint import deepmind_arrays
    from tests.checkpoints.test_i3d_checkpoint import scoped
    from tests.checkpoints.test_i3d_checkpoint import write_tf1_checkpoint

    arrays = deepmind_arrays(seed=4)
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt",
                                  scoped(arrays, RGB))
    config = make_config(dataset, "tx_i3d")
    config.task.model.trunk_width_multiplier = 1.0
    config.task.train_from_scratch = False
    config.task.trunk_weights = prefix
    model = tasks.build_task(config).build_model()
    checked = assert_loaded(
        [model.trunk, model.box_head.get_layer("i3d_blocks")], arrays)
    assert checked == 57 * 4  # every unit of Mixed_4f's trunk + the head


def test_config_names_a_bad_batch_norm_choice(dataset):
    config = make_config(dataset)
    config.task.model.trunk_batch_norm = "sync"
    with pytest.raises(errors.ConfigError,
                       match=r"task.model.trunk_batch_norm='sync'"):
        tasks.build_task(config)
