"""The ActionVLAD recipe on converted synthetic HMDB51-layout data.

* batches: T frames (flow: stacks of x/y pairs) per video, one crop in
  training, every test crop's frames pooled along T at evaluation;
* `experiments.actionvlad_init_centers` clusters trunk descriptors into the
  `centers.npz` stage 1 starts from;
* stage 1 trains the classifier only (trunk and NetVLAD keep their
  initialisation), stage 2 starts from the stage-1 run;
* MirroredStrategy over two replicas trains like one device (per-variable
  clipping and the step schedule included) and evaluates every video once
  (padding skipped);
* the evaluation's `predictions.npz` is scored by `experiments.evaluate`
  (video accuracy on the split list) to the trainer's number, and the late
  fusion CLI reads both streams' files.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from experiments import actionvlad_fuse
from experiments import actionvlad_init_centers
from experiments import evaluate as evaluate_cli
from experiments.configs import actionvlad_synthetic_flow
from experiments.configs import actionvlad_synthetic_rgb
from tests.conftest import REPO_ROOT
from tests.training import harness
from tfaction import errors
from tfaction import tasks
from tfaction import training
from tfaction.data.formats.hmdb51 import convert_hmdb51_frames
from tfaction.data.synthetic.video_classification import (
    generate_video_classification)
from tfaction.models.actionvlad import kmeans

CLASSES = ("red_pan", "red_tilt", "yellow_spin", "green_zoom")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("actionvlad_synthetic")
    generate_video_classification(root / "raw", num_videos=14, seed=2,
                                  classes=CLASSES, height=48, width=64,
                                  min_frames=10, max_frames=14)
    lists = root / "raw" / "train_test_lists"
    convert_hmdb51_frames(
        [lists / "train_split1.txt", lists / "test_split1.txt"],
        root / "raw" / "frames", root / "records",
        modalities=("rgb", "flow"), class_list=root / "raw" / "actions.txt")
    return root


def make_config(dataset, modality="rgb", stage="full"):
    module = (actionvlad_synthetic_rgb if modality == "rgb"
              else actionvlad_synthetic_flow)
    config = module.get_config(stage)
    task = config.task
    task.data_dir = str(dataset / "records")
    task.frames.num_steps = 3
    task.frames.crop_size = (40, 56)
    if modality == "flow":
        task.frames.flow_stack = 2
    task.model.filters = (8, 16)
    task.model.num_clusters = 4
    task.centers.num_frames = 12
    task.centers.batch_size = 4
    config.trainer.epochs = 1
    config.trainer.global_batch_size = 4
    config.trainer.eval_batch_size = 2
    config.optimizer.decay_steps = 1
    config.optimizer.decay_rate = 0.5
    config.optimizer.clip_norm_per_variable = 0.05  # active
    config.runtime.deterministic = False
    return config


def test_batches_of_train_and_test_views(dataset):
    config = make_config(dataset, "flow")
    config.task.frames.test_crop = "five"
    task = tasks.build_task(config)
    frames, labels = next(iter(task.build_inputs(True, global_batch_size=4)))
    assert frames.shape == (4, 3, 40, 56, 4)  # 2 x/y pairs interleaved
    assert labels["label"].shape == (4,)
    frames, labels = next(iter(task.build_inputs(False,
                                                 global_batch_size=2)))
    assert frames.shape == (2, 15, 40, 56, 4)  # 5 crops x 3 stacks
    assert all(labels["video_id"].numpy())
    assert task.input_channels == 4


def test_modality_must_be_converted(dataset, tmp_path):
    config = make_config(dataset)
    config.task.frames.sampler = "nonsense"
    with pytest.raises(errors.ConfigError, match="sampler must be one of"):
        tasks.build_task(config).frames_config(True)
    config = make_config(dataset)
    config.task.data_dir = str(tmp_path)
    with pytest.raises(errors.MalformedFileError, match="hmdb51_frames"):
        tasks.build_task(config)


def test_init_centers_command(dataset, tmp_path):
    config = make_config(dataset, "flow")
    path = actionvlad_init_centers.init_centers(config, tmp_path)
    centers = kmeans.load_centers(path, 4, 16)
    assert np.isfinite(centers).all()
    info = json.loads(str(np.load(path)["info"]))
    assert info["num_frames"] == 12 and info["modality"] == "flow"
    # 12 frames of 20x28 descriptors (one 2x2 pool of 40x56).
    assert info["num_descriptors"] == 12 * 20 * 28
    with pytest.raises(errors.ConfigError, match="initialises ActionVLAD"):
        actionvlad_init_centers.parse_command_line([
            "x", "--config=experiments/configs/actionformer_synthetic.py",
            "--workdir=/tmp/x"])


@pytest.fixture(scope="module")
def one_device(dataset, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("av_one_device")
    config = make_config(dataset)
    trainer, result = harness.train_and_evaluate(
        config, workdir, training.get_strategy("one_device"))
    return trainer, result, workdir


def test_mirrored_matches_one_device(one_device, dataset, tmp_path,
                                     two_cpu_strategy):
    reference, ref_result, _ = one_device
    trainer, result = harness.train_and_evaluate(
        make_config(dataset), tmp_path, two_cpu_strategy)
    assert result["step"] == ref_result["step"] == 2
    for got, want in zip(trainer.model.weights, reference.model.weights):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want),
                                   atol=2e-5, err_msg=got.path)
    for key in ("top1_accuracy", "num_videos"):
        assert result["eval"][key] == pytest.approx(ref_result["eval"][key])
    # 4 test videos, 1 per replica and step: every one scored once.
    assert result["eval"]["num_videos"] == 4.0
    with np.load(tmp_path / "predictions.npz") as z:
        assert len(set(z["video_ids"].tolist())) == 4


def test_predictions_are_scored_by_the_evaluate_cli(one_device, dataset,
                                                    tmp_path):
    _, result, workdir = one_device
    split = dataset / "raw" / "train_test_lists" / "test_split1.txt"
    status = evaluate_cli.main([
        "--metric=video_accuracy", f"--ground_truth={split}",
        f"--predictions={workdir / 'predictions.npz'}",
        "--top_k=1", f"--output_json={tmp_path / 'scored.json'}"])
    assert status == 0
    scored = json.loads((tmp_path / "scored.json").read_text())
    assert scored["top1"] == pytest.approx(result["eval"]["top1_accuracy"])
    assert scored["num_videos"] == 4


def test_stage1_trains_only_the_classifier_then_stage2_continues(
        dataset, tmp_path):
    config = make_config(dataset, stage="stage1")
    config.task.centers_file = actionvlad_init_centers.init_centers(
        config, tmp_path / "init")
    training.configure_runtime(config.runtime, config.trainer.seed)
    initial = tasks.build_task(config).build_model()  # as the trainer will
    start = {v.path: np.array(v) for v in initial.weights}
    trainer, _ = harness.train_and_evaluate(
        config, tmp_path / "stage1", training.get_strategy("one_device"))
    changed = {v.path for v in trainer.model.weights
               if not np.allclose(np.asarray(v), start[v.path])}
    assert changed == {"classifier/kernel", "classifier/bias"}

    config2 = make_config(dataset, stage="stage2")
    config2.task.init_checkpoint = str(tmp_path / "stage1")
    model2 = tasks.build_task(config2).build_model()
    for got, want in zip(model2.weights, trainer.model.weights):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    owners = {v.path.split("/")[0] for v in model2.trainable_variables}
    assert owners == {"classifier", "netvlad", "block2_conv1"}
    config2.task.init_checkpoint = str(tmp_path / "nothing")
    with pytest.raises(errors.ConfigError, match="init_checkpoint"):
        tasks.build_task(config2).build_model()


def test_fusion_cli_reads_both_streams(one_device, dataset, tmp_path):
    _, _, workdir = one_device
    rgb = workdir / "predictions.npz"
    with np.load(rgb) as z:
        flow = {k: z[k] for k in z.files}
    flow["scores"] = np.roll(flow["scores"], 1, axis=1)[::-1].copy()
    flow["video_ids"] = flow["video_ids"][::-1].copy()  # other order
    flow["labels"] = flow["labels"][::-1].copy()
    np.savez(tmp_path / "flow.npz", **flow)
    split = dataset / "raw" / "train_test_lists" / "test_split1.txt"
    out = subprocess.run(
        [sys.executable, "-m", "experiments.actionvlad_fuse",
         f"--rgb={rgb}", f"--flow={tmp_path / 'flow.npz'}",
         f"--output={tmp_path / 'fused.npz'}", f"--split_list={split}"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) == {"num_videos", "rgb", "flow", "fused"}
    ids, fused, inputs = actionvlad_fuse.fuse_files(
        str(rgb), str(tmp_path / "flow.npz"))
    with np.load(tmp_path / "fused.npz") as z:
        np.testing.assert_allclose(z["scores"], fused, rtol=1e-6)
        assert z["video_ids"].tolist() == ids
    np.testing.assert_allclose(
        fused, 0.333 * inputs["rgb"] + 0.667 * inputs["flow"], rtol=1e-5)


def test_multi_label_charades_layout(tmp_path):
    from tfaction.data.formats.charades import convert_charades_frames
    from tfaction.data.synthetic.charades import generate_charades

    raw = tmp_path / "Charades"
    summary = generate_charades(raw, num_videos=12, num_classes=4,
                                height=32, width=40)
    convert_charades_frames(
        [raw / "Charades_v1_train.csv", raw / "Charades_v1_test.csv"],
        raw / "Charades_v1_rgb", tmp_path / "records",
        class_list=raw / "Charades_v1_classes.txt", num_classes=4)
    config = actionvlad_synthetic_rgb.get_config()
    config.task.data_dir = str(tmp_path / "records")
    with pytest.raises(errors.ConfigError, match="multi_label=False"):
        tasks.build_task(config)
    config.task.multi_label = True
    config.task.frames.num_steps = 2
    config.task.frames.crop_size = (24, 32)
    config.task.model.filters = (8, 16)
    config.task.model.num_clusters = 4
    config.trainer.global_batch_size = 3
    config.trainer.eval_batch_size = 2
    config.trainer.train_steps = 2
    config.runtime.deterministic = False
    trainer, result = harness.train_and_evaluate(
        config, tmp_path / "run", training.get_strategy("one_device"))
    assert result["eval"]["num_videos"] == summary["num_test"]
    with np.load(tmp_path / "run" / "predictions.npz") as z:
        assert z["labels"].shape == (summary["num_test"], 4)
    out = tmp_path / "scored.json"
    status = evaluate_cli.main([
        "--metric=charades_map",
        f"--ground_truth={raw / 'Charades_v1_test.csv'}",
        f"--predictions={tmp_path / 'run' / 'charades_submission.txt'}",
        "--num_classes=4", f"--output_json={out}"])
    assert status == 0
    official = json.loads(out.read_text())
    assert official["mAP_nanmean"] == pytest.approx(
        result["eval"]["mAP_nanmean"], abs=1e-6)


def test_export_serves_the_evaluated_logits(one_device, dataset, tmp_path):
    """export.export_saved_model on the trained run; the request client's
    JPEGs of each test video give the logits the evaluation wrote."""
    import tensorflow as tf

    from export import actionvlad_request
    from export import export_saved_model

    _, _, workdir = one_device
    path = export_saved_model.export(make_config(dataset), str(workdir),
                                     str(tmp_path / "models" / "actionvlad"))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    with np.load(workdir / "predictions.npz") as z:
        ids, scores = z["video_ids"].tolist(), z["scores"]
    for video, want in zip(ids, scores):
        inputs = actionvlad_request.request_inputs(
            str(dataset / "raw" / "frames" / video), {"frames"}, 3)
        got = serve(frames=tf.constant(inputs["frames"]))
        np.testing.assert_allclose(got["logits"][0], want, atol=1e-4,
                                   err_msg=video)
        assert int(got["top_k_classes"][0, 0]) == int(np.argmax(want))
    body = actionvlad_request.rest_body(inputs)
    assert len(body["inputs"]["frames"][0]) == 3
    assert set(body["inputs"]["frames"][0][0]) == {"b64"}


def test_two_stream_export_serves_the_fused_logits(one_device, dataset,
                                                   tmp_path):
    """export.actionvlad_two_stream on an RGB and a flow run: the served
    logits are 0.333 * rgb + 0.667 * flow of the evaluated logits."""
    import tensorflow as tf

    from export import actionvlad_request
    from export import actionvlad_two_stream

    _, _, rgb_dir = one_device
    flow_config = make_config(dataset, "flow")
    flow_dir = tmp_path / "flow"
    harness.train_and_evaluate(flow_config, flow_dir,
                               training.get_strategy("one_device"))
    rgb_config, flow_config, options = (
        actionvlad_two_stream.parse_command_line([
            "x", "--rgb_config=experiments/configs/actionvlad_synthetic_rgb.py",
            f"--rgb_workdir={rgb_dir}",
            "--flow_config=experiments/configs/actionvlad_synthetic_flow.py",
            f"--flow_workdir={flow_dir}",
            f"--export_dir={tmp_path / 'models' / 'two_stream'}",
            "--served_versions=1"]))
    assert options["served_versions"] == [1]
    # The tests' small networks and data (as `make_config`).
    rgb_config = make_config(dataset, "rgb")
    flow_config = make_config(dataset, "flow")
    path = actionvlad_two_stream.export(rgb_config, flow_config, **options)
    models_config = (tmp_path / "models" / "two_stream" /
                     "models.config").read_text()
    assert "specific" in models_config and "versions: 1" in models_config
    serve = tf.saved_model.load(path).signatures["serving_default"]
    want = {}
    for stream, workdir in (("rgb", rgb_dir), ("flow", flow_dir)):
        with np.load(workdir / "predictions.npz") as z:
            want[stream] = dict(zip(z["video_ids"].tolist(), z["scores"]))
    video = sorted(want["rgb"])[0]
    inputs = actionvlad_request.request_inputs(
        str(dataset / "raw" / "frames" / video),
        {"frames", "flow_x", "flow_y"}, 3, stack=2)
    got = serve(**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(got["rgb_logits"][0], want["rgb"][video],
                               atol=1e-4)
    np.testing.assert_allclose(got["flow_logits"][0], want["flow"][video],
                               atol=1e-4)
    np.testing.assert_allclose(
        got["logits"][0],
        0.333 * want["rgb"][video] + 0.667 * want["flow"][video], atol=1e-4)


def test_group_names_match_the_trunk(dataset):
    model = tasks.build_task(make_config(dataset)).build_model()
    names = [layer.name for layer in
             model.group_layers("last_block")]
    assert names == ["block2_conv1"]


def test_frozen_parts_without_weights_are_refused(dataset):
    """No silent random frozen layers: a stage that freezes the trunk or
    NetVLAD names the missing key, unless `train_from_scratch` says so."""
    config = make_config(dataset, stage="stage1")
    assert config.task.train_from_scratch  # the synthetic recipes say so
    config.task.train_from_scratch = False
    with pytest.raises(errors.ConfigError, match="task.trunk_weights") as e:
        tasks.build_task(config).build_trunk()
    assert "freezes the trunk" in str(e.value)
    with pytest.raises(errors.ConfigError,
                       match="task.trunk_weights and task.centers_file are "
                             "empty") as e:
        tasks.build_task(config).build_model()
    assert "freezes the trunk and the NetVLAD layer" in str(e.value)
    # Stage 2 trains NetVLAD and conv5 but keeps the lower trunk frozen.
    config = make_config(dataset, stage="stage2")
    config.task.train_from_scratch = False
    with pytest.raises(errors.ConfigError, match="task.trunk_weights"):
        tasks.build_task(config).build_trunk()
    # Everything trains: nothing to refuse.
    config = make_config(dataset, stage="full")
    config.task.train_from_scratch = False
    tasks.build_task(config).build_model()
