"""The AdaFocus (V1) stages on converted synthetic AdaFocus-layout data.

* batches: frames, labels, random patch locations and the policy's
  sampling noise, drawn in the input pipeline;
* each stage builds, trains only its own parts for a step and evaluates
  (stage k from stage k - 1's run, as the recipes chain them);
* the refusals: stage k without stage k - 1's model, or with another
  stage's run; authors' files without the entries stage k - 1 trained;
* PPO: returns, standardisation and the loss against a numpy PPO written
  from the authors' `ppo.py`; one PPO step on MirroredStrategy over two
  replicas (returns standardised over the global batch) updates the
  policy exactly as one device does;
* GFLOPs per video: the paper's 26.6 for P = 128.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from experiments.configs import adafocus_v1_actnet
from experiments.configs import adafocus_v1_synthetic
from tests.training import harness
from tfaction import config as config_lib
from tfaction import errors
from tfaction import tasks
from tfaction import training
from tfaction.data.formats.adafocus_lists import convert_adafocus_lists
from tfaction.data.synthetic.adafocus import generate_adafocus
from tfaction.models.adafocus import AdaFocusV1
from tfaction.tasks import adafocus_config
from tfaction.tasks import adafocus_v1

T = 3
GRID = 7


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("adafocus_v1_synthetic")
    raw = root / "raw"
    generate_adafocus(raw, num_videos=12, seed=3, num_classes=3,
                      height=37, width=37, num_distractors=1, min_frames=4,
                      max_frames=6)
    convert_adafocus_lists(
        [raw / "actnet_train_split.txt", raw / "actnet_val_split.txt"],
        raw / "frames", root / "records", dataset="actnet",
        class_list=raw / "classInd.txt")
    return root


def make_config(dataset, stage, init_checkpoint=""):
    config = adafocus_v1_synthetic.get_config(f"stage{stage}")
    task = config.task
    task.data_dir = str(dataset / "records")
    task.init_checkpoint = str(init_checkpoint)
    task.frames.num_steps = T
    task.frames.crop_size = (37, 37)
    model = task.model
    model.patch_size = 13
    model.glance_size = (9, 9)
    model.small_filters = (4, 8)
    model.policy_hidden_units = 8
    model.policy_conv_filters = 4
    model.classifier_hidden_units = 8
    model.dropout = 0.0           # replicas draw their own dropout masks
    task.ppo.epochs = 2           # a ratio other than 1 in the 2nd update
    config.trainer.epochs = 1
    config.trainer.steps_per_epoch = 2
    config.trainer.global_batch_size = 4
    config.trainer.eval_batch_size = 2
    config.optimizer.lr = 0.05 if stage != 2 else 0.01
    config.runtime.deterministic = False
    return config


def run_stage(dataset, stage, workdir, strategy, init_checkpoint=""):
    config = make_config(dataset, stage, init_checkpoint)
    config_lib.write_config_json(config, workdir)  # as the launcher does
    return harness.train_and_evaluate(config, workdir, strategy)


@pytest.fixture(scope="module")
def stages(dataset, tmp_path_factory):
    """Stages 0 -> 1 -> 2 -> 3 on one device; {stage: (trainer, result,
    workdir)}."""
    runs, previous = {}, ""
    for stage in adafocus_config.V1_STAGES:
        workdir = tmp_path_factory.mktemp(f"v1_stage{stage}")
        trainer, result = run_stage(dataset, stage, workdir,
                                    training.get_strategy("one_device"),
                                    previous)
        runs[stage], previous = (trainer, result, workdir), workdir
    return runs


def test_batches(dataset):
    task = tasks.build_task(make_config(dataset, 0))
    assert task.frame_order == [0, 1, 2]
    features, labels = next(iter(task.build_inputs(True,
                                                   global_batch_size=4)))
    assert features["frames"].shape == (4, T, 37, 37, 3)
    noise = features["action_noise"].numpy()
    assert noise.shape == (4, T, GRID * GRID)
    assert ((noise > 0) & (noise < 1)).all()
    assert features["random_locations"].shape == (4, T, 2)
    assert labels["labels"].shape == (4, 3)
    again = next(iter(task.build_inputs(True, global_batch_size=4)))
    np.testing.assert_array_equal(again[0]["action_noise"], noise)


def _group_weights(model, group):
    task_groups = {"glance": [model.glance, model.glance_head],
                   "focus": [model.focus, model.focus_head],
                   "policy": [model.policy],
                   "classifier": [model.classifier]}
    return [np.asarray(v) for layer in task_groups[group]
            for v in layer.trainable_weights + layer.non_trainable_weights
            if "moving" not in v.path]


@pytest.mark.parametrize("stage, trained", [
    (0, {"glance", "focus"}), (1, {"focus", "classifier"}),
    (2, {"policy"}), (3, {"classifier"})])
def test_each_stage_trains_only_its_parts(dataset, stages, stage, trained):
    trainer, result, _ = stages[stage]
    # The weights the run started from: the same seed, the same restore.
    config = make_config(dataset, stage,
                         trainer.task.config.init_checkpoint)
    training.configure_runtime(config.runtime, config.trainer.seed)
    before = tasks.build_task(config).build_model()
    assert result["step"] == 2
    for group in adafocus_config.V1_GROUPS:
        moved = any(not np.allclose(a, b) for a, b in zip(
            _group_weights(trainer.model, group),
            _group_weights(before, group)))
        assert moved == (group in trained), (stage, group)
    if stage == 1:  # the focus head is not in stage 1's loss
        np.testing.assert_array_equal(trainer.model.focus_head.kernel,
                                      before.focus_head.kernel)


def test_each_stage_evaluates(stages):
    for stage, (_, result, workdir) in stages.items():
        metrics = result["eval"]
        assert metrics["num_videos"] == 3.0
        keys = {"top1", "mAP", "glance_top1", "gflops_per_video"}
        keys |= {"focus_top1"} if stage == 0 else set()
        keys |= {"random_patch_top1"} if stage >= 2 else set()
        assert keys <= set(metrics), (stage, sorted(metrics))
        with np.load(workdir / "predictions.npz") as z:
            assert z["scores"].shape == (3, 3)
    # PPO leaves the classifier: its random-patch scores are stage 1's.
    one, two = (np.load(stages[s][2] / "predictions.npz") for s in (1, 2))
    np.testing.assert_allclose(two["random_patch_scores"], one["scores"],
                               atol=1e-5)


def test_stage_refusals(dataset, stages, tmp_path):
    for stage in (1, 2, 3):
        with pytest.raises(errors.ConfigError,
                           match=f"task.stage={stage} starts from the "
                                 f"stage-{stage - 1} model: set "
                                 "task.init_checkpoint"):
            tasks.build_task(make_config(dataset, stage))
    # Another stage's run.
    with pytest.raises(errors.ConfigError,
                       match="is a stage-0 run"):
        tasks.build_task(make_config(dataset, 2, stages[0][2]))
    # A checkpoint prefix inside the run is found through its config.json.
    prefix = tf.train.latest_checkpoint(str(stages[1][2] / "checkpoints"))
    assert tasks.build_task(make_config(dataset, 2, prefix)).stage == 2
    # A checkpoint without config.json: its stage is unknown.
    bare = tmp_path / "bare"
    tf.train.Checkpoint(model=stages[0][0].model).write(str(bare / "ckpt"))
    with pytest.raises(errors.ConfigError, match="no config.json beside"):
        tasks.build_task(make_config(dataset, 1, bare / "ckpt"))
    # Another task's run.
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(
        {"task": {"name": "adafocus_v2"}}))
    with pytest.raises(errors.ConfigError, match="'adafocus_v2' run"):
        tasks.build_task(make_config(dataset, 1, other))
    # Stage 0 of the paper's recipe: ImageNet trunks or a deliberate choice.
    paper = adafocus_v1_actnet.get_config("stage0").task
    with pytest.raises(errors.ConfigError,
                       match="task.glance_weights and task.focus_weights "
                             "are empty"):
        adafocus_config.v1_require_previous_stage(paper)
    paper.pretrain = "focus"
    with pytest.raises(errors.ConfigError, match="task.focus_weights is "):
        adafocus_config.v1_require_previous_stage(paper)


def test_config_rules(dataset):
    def check(change, match):
        config = make_config(dataset, 1)
        change(config.task)
        with pytest.raises(errors.ConfigError, match=match):
            adafocus_config.v1_validate(config.task)

    check(lambda t: setattr(t, "stage", 4),
          r"task.stage=4 must be one of \(0, 1, 2, 3\)")
    check(lambda t: setattr(t.ppo, "gamma", 1.5),
          r"task.ppo.gamma=1.5 must be a number in \[0.0, 1.0\]")
    check(lambda t: setattr(t.ppo, "epochs", 0),
          "task.ppo.epochs=0 must be an int >= 1")
    check(lambda t: setattr(t.ppo, "reward", "best"),
          "task.ppo.reward='best' must be one of")
    check(lambda t: setattr(t, "adafocus_weights", ("",)),
          "task.adafocus_weights=.* must be a tuple of paths")
    check(lambda t: setattr(t.model, "patch_size", 40),
          r"patch_size=40 exceeds task.frames.crop_size=\(37, 37\)")
    check(lambda t: t.lr_multipliers.update({"focus": -1.0}),
          r"lr_multipliers.focus=-1.0")
    with pytest.raises(errors.ConfigError, match="unknown AdaFocus V1 "
                                                 "stage 'stage5'"):
        adafocus_v1_actnet.get_config("stage5")
    # The authors' README commands.
    recipes = {s: adafocus_v1_actnet.get_config(f"stage{s}") for s in
               range(4)}
    assert [(r.optimizer.name, r.optimizer.lr, r.trainer.epochs)
            for r in recipes.values()] == [
        ("sgd", 0.01, 14), ("sgd", 0.05, 49), ("adam", 3e-4, 51),
        ("sgd", 0.005, 9)]
    assert recipes[1].task.lr_multipliers.focus == 0.01
    assert recipes[2].task.weight_decay == 0.0
    assert recipes[2].task.ppo.to_dict() == {
        "gamma": 0.7, "clip": 0.2, "epochs": 1, "value_coef": 0.5,
        "entropy_coef": 0.01, "reward": "random", "std_epsilon": 1e-5}
    for config in recipes.values():
        adafocus_config.v1_validate(config.task)
        assert config.task.model.dropout == 0.8


def test_recipes_round_trip_through_config_json(tmp_path):
    for stage in range(4):
        config = adafocus_v1_synthetic.get_config(f"stage{stage}")
        path = config_lib.write_config_json(config, tmp_path)
        restored = config_lib.read_config_json(path)
        assert config_lib.to_json(restored) == config_lib.to_json(config)
        assert restored.task.model.glance_size == (24, 24)


def test_sgd_rule_for_multipliers(dataset, stages):
    config = make_config(dataset, 1, stages[0][2])
    config.task.lr_multipliers.focus = 0.01
    task = tasks.build_task(config)
    model = task.build_model()
    adam = keras.optimizers.Adam()
    adam.build(model.trainable_variables)
    batch = next(iter(task.build_inputs(True, global_batch_size=2)))
    with pytest.raises(errors.ConfigError, match="only for SGD"):
        task.train_step(batch, model, training.GlobalBatchOptimizer(adam, 2),
                        [])


# --------------------------------------------------------------- PPO maths
def numpy_ppo(logits, values, actions, old_log_probs, rewards, gamma, clip,
              epsilon=1e-5):
    """The authors' `PPO.update` on `[T, B]` arrays, in numpy."""
    returns, later = [], 0.0
    for reward in rewards[::-1]:
        later = reward + gamma * later
        returns.insert(0, later)
    returns = np.stack(returns)
    returns = (returns - returns.mean()) / (returns.std(ddof=1) + epsilon)
    z = logits - logits.max(-1, keepdims=True)
    log_pi = z - np.log(np.exp(z).sum(-1, keepdims=True))
    log_prob = np.take_along_axis(log_pi, actions[..., None], -1)[..., 0]
    ratio = np.exp(log_prob - old_log_probs)
    advantage = returns - values
    surrogate = np.minimum(ratio * advantage,
                           np.clip(ratio, 1 - clip, 1 + clip) * advantage)
    entropy = -(np.exp(log_pi) * log_pi).sum(-1)
    mse = np.mean((values - returns) ** 2)
    return np.mean(-surrogate + 0.5 * mse - 0.01 * entropy), returns


def test_ppo_loss_matches_the_authors_update():
    rng = np.random.default_rng(0)
    batch, steps, actions_n = 3, 4, 5
    logits = rng.normal(size=(steps, batch, actions_n)).astype("float32")
    values = rng.normal(size=(steps, batch)).astype("float32")
    actions = rng.integers(0, actions_n, size=(steps, batch))
    old = (rng.normal(size=(steps, batch)) * 0.3 - 1.5).astype("float32")
    rewards = rng.uniform(-1, 1, size=(steps, batch)).astype("float32")
    want, want_returns = numpy_ppo(logits, values, actions, old, rewards,
                                   0.7, 0.2)
    # [T, B] -> the task's [B, T].
    returns = adafocus_v1.standardize_over_replicas(
        adafocus_v1.discounted_returns(tf.constant(rewards.T), 0.7), 1e-5)
    np.testing.assert_allclose(returns.numpy().T, want_returns, rtol=1e-5,
                               atol=1e-6)
    got = adafocus_v1.ppo_loss(
        tf.constant(logits.transpose(1, 0, 2)), tf.constant(values.T),
        tf.constant(actions.T, tf.int32), tf.constant(old.T), returns,
        clip=0.2, value_coef=0.5, entropy_coef=0.01)
    assert got.shape == (batch,)
    np.testing.assert_allclose(float(tf.reduce_mean(got)), want, rtol=1e-5)
    # Some ratios are clipped (else the clip would go untested).
    ratio = np.exp(np.take_along_axis(
        logits - np.log(np.exp(logits).sum(-1, keepdims=True)),
        actions[..., None], -1)[..., 0] - old)
    assert ((ratio > 1.2) | (ratio < 0.8)).any()


def test_ppo_gradient_with_ratio_one_is_the_policy_gradient():
    """K_epochs = 1: rho = 1 and the loss gradient is the authors'."""
    logits = tf.Variable([[[0.3, -0.2, 0.5], [0.1, 0.0, -0.4]]])
    values = tf.Variable([[0.2, -0.1]])
    actions = tf.constant([[2, 0]])
    returns = tf.constant([[1.0, -1.0]])
    old = tf.gather(tf.nn.log_softmax(logits), actions, batch_dims=2)
    with tf.GradientTape() as tape:
        loss = adafocus_v1.ppo_loss(logits, values, actions, old, returns,
                                    clip=0.2, value_coef=0.5,
                                    entropy_coef=0.0)
    g_logits, g_values = tape.gradient(loss, [logits, values])
    probs = tf.nn.softmax(logits).numpy()[0]
    advantage = (returns - values).numpy()[0]
    for t, a in enumerate([2, 0]):
        want = -advantage[t] * (np.eye(3)[a] - probs[t]) / 2
        np.testing.assert_allclose(g_logits.numpy()[0, t], want, rtol=1e-5)
    np.testing.assert_allclose(
        g_values.numpy()[0], (values - returns).numpy()[0] / 2, rtol=1e-5)


def test_rewards_and_sampling():
    conf = tf.constant([[0.5, 0.7, 0.2]])
    base = tf.constant([[0.1, 0.9, 0.2]])
    np.testing.assert_allclose(adafocus_v1.step_rewards(conf, base, "random"),
                               [[0.4, -0.2, 0.0]], atol=1e-6)
    np.testing.assert_allclose(adafocus_v1.step_rewards(conf, base, "prev"),
                               [[0.5, 0.2, -0.5]], atol=1e-6)
    # Gumbel-max samples follow softmax(logits).
    logits = tf.math.log(tf.constant([[0.1, 0.6, 0.3]]))
    noise = tf.random.stateless_uniform([20000, 3], [1, 2], minval=1e-20)
    samples = adafocus_v1.sample_actions(tf.tile(logits, [20000, 1]), noise)
    counts = np.bincount(samples.numpy(), minlength=3) / 20000
    np.testing.assert_allclose(counts, [0.1, 0.6, 0.3], atol=0.015)


def test_ppo_step_on_two_replicas_matches_one_device(dataset, stages,
                                                     tmp_path,
                                                     two_cpu_strategy):
    """Returns standardised over the global batch: 2 replicas = 1."""
    reference, ref_result, _ = stages[2]
    trainer, result = run_stage(dataset, 2, tmp_path, two_cpu_strategy,
                                stages[1][2])
    assert result["step"] == ref_result["step"] == 2
    for got, want in zip(trainer.model.policy.weights,
                         reference.model.policy.weights):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want),
                                   atol=2e-6, err_msg=got.path)
    for key in ("mAP", "top1", "random_patch_top1", "num_videos"):
        assert result["eval"][key] == pytest.approx(ref_result["eval"][key],
                                                    abs=1e-4), key


def test_per_replica_standardisation_would_differ(two_cpu_strategy):
    """The all-reduce matters: each replica's own statistics differ."""
    values = np.array([[0.0, 1.0], [2.0, 4.0], [10.0, 20.0], [5.0, 5.5]],
                      "float32")
    dataset = tf.data.Dataset.from_tensor_slices(values).batch(4)
    dist = two_cpu_strategy.experimental_distribute_dataset(dataset)
    batch = next(iter(dist))
    out = two_cpu_strategy.run(
        lambda x: adafocus_v1.standardize_over_replicas(x, 1e-5),
        args=(batch,))
    got = np.concatenate([np.asarray(v) for v in
                          two_cpu_strategy.experimental_local_results(out)])
    want = (values - values.mean()) / (values.std(ddof=1) + 1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_gflops_match_the_paper():
    model = AdaFocusV1(200, patch_size=128)
    gflops = adafocus_v1.v1_gflops(model)
    assert gflops["per_video"] == pytest.approx(26.6, abs=0.2)
    assert 0.01 < gflops["policy"] + gflops["classifier"] < 0.03


def test_keras_applications_weights_need_the_keras_variant():
    """V1 takes keras.applications' .h5 trunks as V2 does: only into a
    "keras" trunk (another network, other numbers)."""
    config = adafocus_config.v1_experiment_config("actnet", 1).task
    config.glance_weights = (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
    with pytest.raises(errors.ConfigError, match="glance_variant"):
        adafocus_config.v1_validate(config)
    config.model.glance_variant = "keras"
    adafocus_config.v1_validate(config)
    config.focus_weights = "resnet50-19c8e357.pth"
    config.model.focus_variant = "keras"
    with pytest.raises(errors.ConfigError, match="focus_variant"):
        adafocus_config.v1_validate(config)
