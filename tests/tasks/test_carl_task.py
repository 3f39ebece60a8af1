"""The CARL recipe on converted synthetic TCC-layout data.

* batches: two views per video (folded into the model's batch in the
  training step), their masks and original frame indices; evaluation
  streams every video of the training AND the evaluation subset in source
  order, padded to whole steps with empty videos;
* a training step moves the trained parts (trunk, embedder, transformer,
  projection head); with the ResNet-50 trunk it moves layer4 only, after
  loading a BYOL-layout `.pth`, and never the frozen stages' statistics;
* MirroredStrategy over two replicas trains like one device (per-video
  loss, synchronised batch norms, dropout 0 here);
* evaluation returns finite frame-wise protocol numbers and writes the
  embeddings, which the framewise evaluator scores to the same numbers;
* FineGym's linear probe scores the labelled frames (frames labelled -1
  dropped, videos without labels left out);
* the recipe refuses to start without trunk weights unless told to;
* coupled L2 decay adds `wd * w` to every trainable gradient; the recipes'
  per-epoch cosine schedule is PyTorch's CosineAnnealingLR(T_max=E + 1).
"""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from experiments.configs import carl_finegym
from experiments.configs import carl_penn_action
from experiments.configs import carl_pouring
from experiments.configs import carl_synthetic
from tests.training import harness
from tfaction import errors
from tfaction import tasks
from tfaction import training
from tfaction.data.formats.tcc import convert_tcc
from tfaction.data.synthetic.tcc import generate_tcc
from tfaction.evaluation import framewise
from tfaction.evaluation import framewise_io
from tfaction.tasks import carl as carl_task

T, S = 8, 32  # frames per view, frame side


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("carl_synthetic")
    # 2 actions x (2 train + 2 val) videos of 12-18 frames.
    generate_tcc(root / "raw", num_videos=8, seed=3, size=S, min_frames=12,
                 max_frames=18, val_every=2)
    convert_tcc(str(root / "raw" / "*.tfrecord"), str(root / "records"),
                num_shards=2)
    return root / "records"


def make_config(dataset, dropout=0.0):
    config = carl_synthetic.get_config()
    task = config.task
    task.data_dir = str(dataset)
    task.views.num_frames = T
    task.views.image_size = (S, S)
    m = task.model
    m.small_filters = (8, 16)
    m.fc_units = (16,)
    m.hidden_size = 16
    m.num_heads = 2
    m.ffn_units = 16
    m.num_layers = 1
    m.embedding_size = 8
    m.projection_hidden_units = 8
    m.dropout = dropout   # replicas would draw other dropout masks
    ev = task.evaluation
    ev.retrieval_ks = (3,)
    ev.few_shot_num_labeled = (1, 2)
    ev.few_shot_num_episodes = 2
    ev.frames_per_chunk = 7   # several chunks per video
    ev.frames_per_trunk_batch = 3  # several trunk calls per chunk
    config.trainer.train_steps = 2
    config.trainer.steps_per_epoch = 2  # 4 training videos (not counted)
    config.trainer.global_batch_size = 2
    config.trainer.eval_batch_size = 2
    config.optimizer.lr = 1e-4
    # Adam turns the rounding noise of gradients that vanish in exact
    # arithmetic (biases before a batch norm) into +-lr steps that differ
    # between 1 and 2 replicas; a large epsilon damps them.
    config.optimizer.epsilon = 1e-3
    config.runtime.strategy = "one_device"
    config.runtime.logical_cpus = 0
    return config


def test_batches(dataset):
    task = tasks.build_task(make_config(dataset))
    features, labels = next(iter(task.build_inputs(True,
                                                   global_batch_size=2)))
    assert features["frames"].shape == (2, 2, T, S, S, 3)
    mask = features["mask"].numpy()
    assert mask.shape == (2, 2, T) and mask.dtype == bool
    np.testing.assert_array_equal(labels["masks"].numpy(), mask)
    steps = labels["steps"].numpy()
    lens = labels["seq_lens"].numpy()
    assert lens.shape == (2, 2) and (lens >= 12).all()
    assert ((steps >= 0) & (steps < lens[..., None])).all()
    for video, view in np.ndindex(2, 2):  # sorted original indices
        valid = steps[video, view][mask[video, view]]
        assert (np.diff(valid) >= 0).all() and valid.size >= 1
    # Evaluation: 4 training then 4 evaluation videos, whole, in order;
    # 8 videos in batches of 3 leave one empty padding video.
    batches = list(task.build_inputs(False, global_batch_size=3))
    assert len(batches) == 3
    index = np.concatenate([b[1]["index"].numpy() for b in batches])
    subset = np.concatenate([b[1]["subset"].numpy() for b in batches])
    ids = np.concatenate([b[1]["video_id"].numpy() for b in batches])
    assert index.tolist() == list(range(8)) + [-1]
    assert subset[:8].tolist() == [0] * 4 + [1] * 4 and ids[8] == b""
    # Source order, although each subset is written round-robin over two
    # shards (the first fractions of the probes depend on it).
    assert [i.decode() for i in ids[:4]] == [
        "0001_pour", "0002_spin_slide", "0005_pour", "0006_spin_slide"]
    for features, labels in batches:
        counts = features["mask"].numpy().sum(1)
        np.testing.assert_array_equal(counts, labels["num_frames"].numpy())
        assert ((labels["frame_labels"].numpy() >= 0) ==
                features["mask"].numpy()).all()
    assert batches[-1][0]["mask"].numpy()[-1].sum() == 0


@pytest.fixture(scope="module")
def one_device(dataset, tmp_path_factory):
    """Two training steps on one device, then evaluation."""
    workdir = tmp_path_factory.mktemp("carl_one_device")
    config = make_config(dataset)
    training.configure_runtime(config.runtime, config.trainer.seed)
    trainer = training.Trainer(tasks.build_task(config), config, workdir,
                               training.get_strategy("one_device"))
    initial = {v.path: np.array(v) for v in trainer.model.weights}
    result = trainer.train_and_evaluate()
    trainer.close()
    return trainer, result, workdir, initial


def test_training_moves_every_trained_part(one_device):
    trainer, result, _, initial = one_device
    assert result["step"] == 2 and np.isfinite(result["train"]["loss"])
    moved = {v.path for v in trainer.model.trainable_weights
             if not np.array_equal(initial[v.path], np.array(v))}
    trunk = {v.path for v in trainer.model.trunk_model.weights}
    assert moved & trunk
    for part in ("fc1/", "fc1_bn/", "frame_projection/", "transformer/",
                 "embedding/", "projection_head/"):
        assert any(p.startswith(part) for p in moved), part
    # Synchronised batch norms (statistics of the global batch).
    assert trainer.model.get_layer("fc1_bn").synchronized


def test_evaluation_reports_finite_protocol_numbers(one_device, dataset):
    trainer, result, workdir, _ = one_device
    metrics = result["eval"]
    for key in ("kendalls_tau_val_stride2", "kendalls_tau_train_stride2",
                "retrieval_AP_stride2/3",
                "phase_classification_logreg_val_acc/0.5",
                "phase_classification_logreg_val_acc/1.0",
                "phase_progression_r2_val/1.0",
                "few_shot_logreg_val_acc_mean_over_episodes/2",
                "pour/phase_classification_logreg_val_acc/1.0",
                "spin_slide/kendalls_tau_val_stride2"):
        assert np.isfinite(metrics[key]), key
    assert 0.0 <= metrics["phase_classification_logreg_val_acc/1.0"] <= 1.0
    assert metrics["num_train_videos"] == 4
    assert metrics["num_val_videos"] == 4
    # The written embeddings are the scored ones, in the framewise layout.
    data = framewise_io.load_framewise(str(workdir / "embeddings.npz"))
    assert sorted(data) == ["pour", "spin_slide"]
    scored = framewise.evaluate(data, "carl", strides=[2],
                                fractions=[0.5, 1.0], retrieval_ks=[3])
    assert scored["mean"]["kendalls_tau_val_stride2"] == pytest.approx(
        metrics["kendalls_tau_val_stride2"], abs=1e-9)
    assert scored["mean"]["phase_progression_r2_val"]["1.0"] == \
        pytest.approx(metrics["phase_progression_r2_val/1.0"], abs=1e-9)
    videos = json.loads((workdir / "embeddings_videos.json").read_text())
    assert len(videos["datasets"]["pour"]["val"]) == 2
    # Chunked embedding of a whole video = the model on each chunk.
    task, model = trainer.task, trainer.model
    features, labels = next(iter(task.build_inputs(False,
                                                   global_batch_size=2)))
    n = int(labels["num_frames"][0])
    got = task.embed_videos(model, features["frames"],
                            tf.constant([n, 0]))
    per = -(-n // -(-n // 7))
    want = np.concatenate([
        model({"frames": features["frames"][:1, s:s + per],
               "mask": tf.ones([1, min(per, n - s)], tf.bool)},
              training=False)["embeddings"][0].numpy()
        for s in range(0, n, per)])
    np.testing.assert_allclose(got[0, :n], want, atol=1e-5)
    assert not np.any(got[1].numpy())


def test_mirrored_matches_one_device(one_device, dataset, tmp_path,
                                     two_cpu_strategy):
    reference, ref_result, _, _ = one_device
    trainer, result = harness.train_and_evaluate(
        make_config(dataset), tmp_path, two_cpu_strategy)
    assert result["step"] == ref_result["step"] == 2
    for got, want in zip(trainer.model.weights, reference.model.weights):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want),
                                   atol=2e-5, err_msg=got.path)
    for key in ("kendalls_tau_val_stride2",
                "phase_progression_r2_val/1.0"):
        assert result["eval"][key] == pytest.approx(ref_result["eval"][key],
                                                    abs=1e-3)


def test_coupled_weight_decay_adds_wd_times_w_to_every_gradient(dataset):
    """SGD (lr 1) with and without the decay: the updates differ by
    `wd * w` on every trainable variable, biases and batch norms included,
    counted once per step (not divided by the batch)."""
    config = make_config(dataset)
    inputs = next(iter(tasks.build_task(config).build_inputs(
        True, global_batch_size=2)))
    updated = []
    for wd in (0.0, 0.25):
        config.task.l2_weight_decay = wd
        task = tasks.build_task(config)
        keras.utils.set_random_seed(5)
        model = task.build_model()
        before = [np.array(v) for v in model.trainable_variables]
        gbo = training.GlobalBatchOptimizer(
            keras.optimizers.SGD(1.0), global_batch_size=2, num_replicas=1)
        task.train_step(inputs, model, gbo, task.build_metrics())
        updated.append([np.array(v) for v in model.trainable_variables])
    assert len(before) > 20
    for w0, plain, decayed in zip(before, *updated):
        np.testing.assert_allclose(plain - decayed, 0.25 * w0, atol=2e-5)


@pytest.mark.parametrize("recipe, layers, frames, epochs", [
    (carl_pouring, 2, 240, 500), (carl_penn_action, 3, 80, 300),
    (carl_finegym, 3, 240, 300)])
def test_recipes_follow_the_papers_optimisation(recipe, layers, frames,
                                                epochs):
    config = recipe.get_config()
    task, opt = config.task, config.optimizer
    assert (task.model.num_layers, task.views.num_frames,
            config.trainer.epochs) == (layers, frames, epochs)
    assert (opt.name, opt.lr, opt.beta_1, opt.beta_2, opt.epsilon) == (
        "adam", 1e-4, 0.9, 0.999, 1e-8)
    assert opt.weight_decay == 0.0 and task.l2_weight_decay == 1e-5
    assert opt.clip_norm == 10.0 and opt.warmup_steps == 0
    assert config.runtime.mixed_precision == "mixed_float16"
    assert config.trainer.global_batch_size == 1
    # Cosine annealing stepped per epoch, T_max = epochs + 1, no warm-up.
    per_epoch = 7
    schedule = training.build_learning_rate(
        opt, total_steps=epochs * per_epoch, steps_per_epoch=per_epoch)
    for epoch in (0, 1, epochs // 2, epochs - 1):
        want = 0.5 * 1e-4 * (1 + math.cos(math.pi * epoch / (epochs + 1)))
        for step in (epoch * per_epoch, epoch * per_epoch + per_epoch - 1):
            assert float(schedule(step)) == pytest.approx(want, rel=1e-5)
    assert float(schedule(epochs * per_epoch - 1)) > 0


def test_finegym_probe_and_unlabelled_frames(dataset, tmp_path):
    """FineGym's protocol on separable fake embeddings: frames labelled -1
    (outside sub-actions) are dropped, videos without a labelled frame are
    left out, and the linear probe classifies the rest."""
    config = make_config(dataset)
    ev = config.task.evaluation
    ev.protocols = ("finegym",)
    ev.per_action = False
    ev.fractions = (0.5, 1.0)
    ev.num_phase_classes = 3
    ev.finegym.learning_rate = 5.0
    ev.finegym.epochs = 20
    ev.finegym.batch_videos = 2
    task = tasks.build_task(config)
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8)
    state = {}
    for index in range(14):
        labels = rng.integers(-1, 3, 12)
        if index == 13:
            labels[:] = -1
        embs = centres[np.maximum(labels, 0)] + 0.05 * rng.normal(
            size=(12, 8))
        state[index] = {"video_id": f"v{index}",
                        "subset": "train" if index < 10 else "val",
                        "label": 0, "embs": embs.astype(np.float32),
                        "labels": labels}
    metrics = task.reduce_aggregated_logs(state)
    assert metrics["finegym_val_acc/0.5"] == 1.0
    assert metrics["finegym_val_acc/1.0"] == 1.0
    assert (metrics["num_train_videos"], metrics["num_val_videos"],
            metrics["num_unlabelled_videos"]) == (10, 3, 1)
    task.write_evaluation_outputs(str(tmp_path), global_step=7)
    data = framewise_io.load_framewise(str(tmp_path / "embeddings.npz"))
    kept = state[10]["labels"] >= 0
    np.testing.assert_array_equal(data["default"]["val"]["embs"][0],
                                  state[10]["embs"][kept])
    # The probe alone: the first max(batch_videos, f * N) videos.
    probe = carl_task.finegym_linear_probe(
        {"embs": [centres[[0, 1]]] * 4, "labels": [np.array([0, 1])] * 4},
        {"embs": [centres[[2]]], "labels": [np.array([2])]}, [0.25], 3,
        learning_rate=1.0, epochs=5, batch_videos=1)
    assert probe == {"0.25": 0.0}  # class 2 never seen in training


def test_recipe_needs_trunk_weights(dataset):
    config = make_config(dataset)
    config.task.train_from_scratch = False
    config.task.model.trunk = "resnet50"
    task = tasks.build_task(config)
    with pytest.raises(errors.ConfigError, match="task.trunk_weights"):
        task.build_model()
    config.task.trunk_weights = "resnet50_weights_tf_dim_ordering.h5"
    with pytest.raises(errors.ConfigError, match="v1.5"):
        tasks.build_task(config)
    config.task.model.trunk = "small"
    config.task.trunk_weights = "BYOL_1000.pth"
    with pytest.raises(errors.ConfigError, match="task.model.trunk"):
        tasks.build_task(config)
    config.task.trunk_weights = ""
    config.task.evaluation.frames_per_trunk_batch = -1
    with pytest.raises(errors.ConfigError,
                       match="evaluation.frames_per_trunk_batch"):
        tasks.build_task(config)


def test_byol_pth_into_the_resnet_trunk_then_layer4_trains(dataset,
                                                          tmp_path):
    """`task.trunk_weights` = a BYOL-layout `.pth` (`module.encoder.` under
    `model`); one step moves layer4 and the embedder, not conv1 ... layer3
    nor their batch-norm statistics."""
    from tests.checkpoints.test_resnet50_checkpoint import recipe_weights
    from tests.checkpoints.test_resnet50_checkpoint import write_pth

    state, _ = recipe_weights(0, (1, 3, 8, 8))
    path = write_pth(tmp_path / "BYOL_1000.pth", {"model": {
        f"module.encoder.{k}": v for k, v in state.items()}})
    config = make_config(dataset)
    config.task.train_from_scratch = False
    config.task.trunk_weights = str(path)
    config.task.model.trunk = "resnet50"
    config.task.views.num_frames = 4
    task = tasks.build_task(config)
    model = task.build_model()
    trunk = model.trunk_model
    np.testing.assert_array_equal(
        trunk.get_layer("conv1").kernel.numpy(),
        state["conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(
        trunk.get_layer("layer4_2_bn3").moving_variance.numpy(),
        state["layer4.2.bn3.running_var"])
    before = {v.path: np.array(v) for v in model.weights}
    gbo = training.GlobalBatchOptimizer(
        keras.optimizers.Adam(1e-3), global_batch_size=2, num_replicas=1)
    inputs = next(iter(task.build_inputs(True, global_batch_size=2)))
    task.train_step(inputs, model, gbo, task.build_metrics())
    moved = {v.path for v in model.weights
             if not np.array_equal(before[v.path], np.array(v))}
    frozen = [v.path for v in trunk.weights if v.path.startswith(
        ("conv1", "bn1", "layer1", "layer2", "layer3"))]
    assert len(frozen) > 200 and not moved & set(frozen)
    assert "layer4_0_conv2/kernel" in moved
    assert "layer4_0_bn2/moving_mean" in moved  # trained batch norm
    assert any(p.startswith("transformer/") for p in moved)


def test_load_trunk_weights_refuses_other_variants(tmp_path):
    """A keras.applications `.h5` holds ResNet-50 v1 weights; CARL's trunk
    is v1.5, so the loader refuses it before reading anything."""
    model = carl_task.model_lib.build_frame_trunk("resnet50")
    with pytest.raises(errors.ConfigError, match="variant"):
        carl_task.load_trunk_weights(model, str(tmp_path / "w.h5"))
