"""AdaFocus (V1) task: glance, a PPO-trained patch policy, focus; 4 stages.

Wires the recipe of blackfeather-wang/AdaFocus (`main_dist.py`,
`models/gfv_net.py`, `models/ppo.py`, README commands) into one `Task`
whose behaviour is chosen by `task.stage`:

* stage 0: the glance and the focus networks as frame classifiers
  (`AdaFocusV1.glance_classifier()` on glance-size frames,
  `focus_classifier()` on full frames; `pretrain` picks one or both): the
  cross-entropy of the frame-averaged logits of each;
* stage 1: focus + classifier on uniformly random patches (the glance
  frozen): the cross-entropy of the classifier's logits at every step;
* stage 2: the policy alone, by PPO (`train_step`). Per batch, a rollout:
  the policy (on the frozen glance maps) samples one grid cell per frame
  (Gumbel-max with noise drawn in the input pipeline, so one and several
  replicas sample alike), the frozen focus and classifier (inference
  mode) read the patches, and the reward of step t is `p_t(label | the
  policy's patch) - p_t(label | a uniformly random patch)`, the baseline
  scored by one classifier step from the same previous state (the GRU is
  advanced with the policy's patch only). Returns are discounted over the
  T steps (`ppo.gamma`) and standardised with the mean and standard
  deviation (unbiased, as `torch.std`) of ALL returns of the global batch
  (all-reduced over replicas). Loss per step:
  `-min(rho A, clip(rho, 1 - eps, 1 + eps) A) + value_coef (V - R)^2 -
  entropy_coef H`, `A = R - V` (V not differentiated), `rho = exp(log pi
  - log pi_old)` with `log pi_old` from the rollout's own pass, averaged
  over the global batch and the T steps; `ppo.epochs` updates per rollout
  (the authors' K_epochs = 1: rho = 1);
* stage 3: the classifier alone, on the patches of the deterministic
  (argmax) policy (the authors' code; the paper also fine-tunes f_L).

Stage k > 0 starts from stage k - 1's model: `task.init_checkpoint` (a
run of this task whose `config.json` says `stage = k - 1`, checked) or
`task.adafocus_weights` (the authors' `.pth.tar` files holding the entries
stage k - 1 trained); without either the task refuses to start. The parts
a stage does not train are frozen (`trainable = False`: their batch norms
in inference mode, as the authors' `eval()`); trained batch norms are
synchronised over replicas. SGD stages scale gradients per group
(`lr_multipliers`) after PyTorch's coupled L2 decay (`weight_decay`).

Evaluation (every stage): the last step's logits of every video as
`scores` (stage 1: on uniformly random patches, as the authors evaluate
it; stages 2 and 3: the deterministic policy's patches; stage 0: the
focus frame classifier, or the glance one when only it is trained),
`random_patch_scores` (stages 2, 3: the classifier on the pipeline's
random patches), `glance_scores` (the glance head averaged over the
frames) and, in stage 0, `focus_scores`, each scored as `<prefix>mAP` /
`<prefix>top1` (`tfaction.tasks.adafocus_common`), and
`gflops_per_video` (`v1_gflops`).

Config (`config.task`): `tfaction.tasks.adafocus_config` (V1 section).
"""

import math
import os

import keras
import tensorflow as tf
from absl import logging

from tfaction import config as config_lib
from tfaction import errors
from tfaction import tasks
from tfaction.checkpoints import adafocus as adafocus_checkpoints
from tfaction.data import filesystems
from tfaction.data import samplers
from tfaction.models.adafocus import flops
from tfaction.models.adafocus.v1 import AdaFocusV1
from tfaction.tasks import adafocus_common
from tfaction.tasks import adafocus_config
from tfaction.tasks import base_task
from tfaction.tasks.base_task import LOSS_METRIC
from tfaction.training.checkpointing import restore_model_weights

TASK_NAME = adafocus_config.V1_TASK_NAME
REWARD_METRIC = "reward"
_ACTION_SALT = 17
# Uniform noise of the Gumbel-max sampling stays inside (0, 1).
_TINY = 1e-20


def discounted_returns(rewards, gamma):
    """`R_t = r_t + gamma R_{t+1}` over the steps of `[B, T]` rewards.

    Args:
        rewards: float `[B, T]` with a static T.
        gamma: the discount.

    Returns:
        float `[B, T]`.

    Example:

    >>> discounted_returns(tf.constant([[1.0, 0.0, 2.0]]), 0.5).numpy()
    array([[1.5, 1. , 2. ]], dtype=float32)
    """
    later = tf.zeros_like(rewards[:, 0])
    returns = []
    for t in reversed(range(rewards.shape[1])):
        later = rewards[:, t] + gamma * later
        returns.append(later)
    return tf.stack(returns[::-1], axis=1)


def standardize_over_replicas(values, epsilon):
    """`(x - mean) / (std + epsilon)` over every value of the global batch.

    The mean and the unbiased standard deviation (`torch.std`) are those
    of all entries of all replicas (two all-reduces over the replica
    context: the sum and count, then the squared deviations), so 1 and N
    replicas standardise alike.

    Args:
        values: float `[B, ...]`, this replica's part.
        epsilon: added to the standard deviation.

    Returns:
        Standardised values, the shape of `values`.
    """
    context = tf.distribute.get_replica_context()
    total, count = context.all_reduce(
        tf.distribute.ReduceOp.SUM,
        [tf.reduce_sum(values), tf.cast(tf.size(values), values.dtype)])
    mean = total / count
    squares = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                 tf.reduce_sum(tf.square(values - mean)))
    std = tf.sqrt(squares / tf.maximum(count - 1.0, 1.0))
    return (values - mean) / (std + epsilon)


def step_rewards(confidence, baseline, kind):
    """Per-step rewards of the authors' `get_reward`.

    Args:
        confidence: `[B, T]` p_t(label) with the policy's patches.
        baseline: `[B, T]` p_t(label) with random patches.
        kind: "random" (`confidence - baseline`), "prev" (`p_t - p_{t-1}`,
            `p_{-1} = 0`) or "conf" (`p_t`).

    Returns:
        float `[B, T]`.
    """
    if kind == "random":
        return confidence - baseline
    if kind == "prev":
        return confidence - tf.pad(confidence[:, :-1], [[0, 0], [1, 0]])
    return confidence


def ppo_loss(logits, values, actions, old_log_probs, returns, *, clip,
             value_coef, entropy_coef):
    """The authors' PPO loss per video, averaged over its steps.

    Per step: `-min(rho A, clip(rho, 1 - clip, 1 + clip) A) + value_coef
    (V - R)^2 - entropy_coef H(pi)` with `rho = exp(log pi(a) - old)`,
    `A = R - stop_gradient(V)`.

    Args:
        logits: `[B, T, A]` actor logits (distribution `softmax`).
        values: `[B, T]` critic values.
        actions: int `[B, T]` the rollout's actions.
        old_log_probs: `[B, T]` their log-probabilities at the rollout.
        returns: `[B, T]` standardised discounted returns.
        clip, value_coef, entropy_coef: the PPO coefficients.

    Returns:
        float32 `[B]` (the mean over steps; the global-batch mean of it is
        the authors' `loss.mean()`).
    """
    log_pi = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    log_prob = tf.gather(log_pi, actions, batch_dims=2)
    ratio = tf.exp(log_prob - old_log_probs)
    advantage = returns - tf.stop_gradient(values)
    surrogate = tf.minimum(
        ratio * advantage,
        tf.clip_by_value(ratio, 1.0 - clip, 1.0 + clip) * advantage)
    entropy = -tf.reduce_sum(tf.exp(log_pi) * log_pi, axis=-1)
    per_step = (-surrogate + value_coef * tf.square(values - returns)
                - entropy_coef * entropy)
    return tf.reduce_mean(per_step, axis=1)


def sample_actions(logits, uniform):
    """Categorical samples of `softmax(logits)` by the Gumbel-max trick.

    Args:
        logits: `[..., A]`.
        uniform: `[..., A]` uniform noise in (0, 1).

    Returns:
        int32 `[...]`: `argmax(logits - log(-log(uniform)))`.
    """
    gumbel = -tf.math.log(-tf.math.log(uniform))
    return tf.argmax(tf.cast(logits, tf.float32) + gumbel, axis=-1,
                     output_type=tf.int32)


def _weight_macs(layer, map_positions):
    # Every kernel once (frozen layers too); conv kernels at each position.
    total = 0
    for variable in layer.weights:
        if "kernel" in variable.path.split("/")[-1]:
            size = math.prod(variable.shape)
            total += size * (map_positions if len(variable.shape) == 4
                             else 1)
    return total


def v1_gflops(model):
    """GFLOPs (GMACs, the AdaFocus papers' count) of an `AdaFocusV1`.

    What inference runs per frame: the glance trunk on its input, the
    focus trunk on a `P x P` patch (`flops.trunk_macs`), the policy's
    kernels (1x1 conv on the glance map, dense, GRU, actor, critic) and
    the classifier's (GRU and head).

    Args:
        model: a built `AdaFocusV1`.

    Returns:
        Dict of floats in GMACs: `glance`, `focus`, `policy`,
        `classifier`, `per_frame` and `per_video` (`per_frame * T`).

    Example:

    ```python
    v1_gflops(AdaFocusV1(200, patch_size=128))["per_video"]   # ~ 26.6
    ```
    """
    glance_size = tuple(model.glance_size)
    maps = model.glance.compute_output_shape((None, *glance_size, 3))
    parts = {
        "glance": flops.trunk_macs(model.glance, glance_size),
        "focus": flops.trunk_macs(model.focus, (model.patch_size,) * 2),
        "policy": _weight_macs(model.policy, maps[1] * maps[2]),
        "classifier": _weight_macs(model.classifier, 1),
    }
    out = {key: value / 1e9 for key, value in parts.items()}
    out["per_frame"] = sum(parts.values()) / 1e9
    out["per_video"] = out["per_frame"] * model.num_frames
    return out


def previous_stage_of(path):
    """The stage of the AdaFocus V1 run holding checkpoint `path`.

    Args:
        path: a run directory or a checkpoint prefix in its
            `checkpoints/` (or beside its `config.json`).

    Returns:
        `(stage, config_json_path)`.

    Raises:
        ConfigError: no `config.json` found, or one of another task.
    """
    path = os.fspath(path).rstrip("/")
    parent = os.path.dirname(path)
    candidates = ([path] if filesystems.isdir(path) else []) + [
        parent, os.path.dirname(parent)]
    for folder in candidates:
        config_path = os.path.join(folder, config_lib.CONFIG_JSON)
        if folder and filesystems.isfile(config_path):
            task = filesystems.read_json(config_path).get("task") or {}
            if task.get("name") != TASK_NAME or task.get(
                    "stage") not in adafocus_config.V1_STAGES:
                raise errors.ConfigError(
                    f"task.init_checkpoint {path!r}: {config_path} is a "
                    f"{task.get('name')!r} run, not an {TASK_NAME} stage")
            return int(task["stage"]), config_path
    raise errors.ConfigError(
        f"task.init_checkpoint {path!r}: no {config_lib.CONFIG_JSON} beside "
        f"it, so its training stage is unknown; point it at the workdir "
        f"of an {TASK_NAME} run (or a checkpoint in its checkpoints/)")


@tasks.register_task(TASK_NAME)
class AdaFocusV1Task(adafocus_common.AdaFocusVideoTask):
    """AdaFocus (V1), one training stage per run (see the module docstring).

    Args:
        config: the `config.task` section (V1 section of
            `adafocus_config`).

    Raises:
        ConfigError: `adafocus_config.v1_validate` fails; stage k > 0
            without the stage k - 1 model (or with another stage's run);
            data that does not fit.

    Example:

    ```python
    config = adafocus_config.v1_experiment_config("actnet", stage=2)
    config.task.data_dir = "data/actnet/records"
    config.task.init_checkpoint = "runs/adafocus_v1/stage1"
    task = tasks.build_task(config)
    model = task.build_model()
    ```
    """

    config_schema = adafocus_config.V1Schema

    def __init__(self, config):
        super().__init__(config, validate=adafocus_config.v1_validate)
        self.stage = int(config.stage)
        self.start = adafocus_config.v1_require_previous_stage(config)
        if self.stage > 0 and self.start == "init_checkpoint":
            stage, source = previous_stage_of(config.init_checkpoint)
            if stage != self.stage - 1:
                raise errors.ConfigError(
                    f"task.stage={self.stage} starts from the stage-"
                    f"{self.stage - 1} model, but task.init_checkpoint "
                    f"{config.init_checkpoint!r} is a stage-{stage} run "
                    f"({source})")
        self.trained_groups = adafocus_config.v1_trained_groups(config)
        self.num_actions = int(config.model.grid_size) ** 2
        self._parts = {}  # id(model) -> dict of sub-models and scales
        self._gflops = None

    def random_draws(self, seed):
        """`random_locations` and `action_noise` `[T, grid_size ** 2]`
        (uniform in (0, 1), the stage-2 policy's sampling noise)."""
        draws = super().random_draws(seed)
        draws["action_noise"] = tf.random.stateless_uniform(
            [self.num_frames, self.num_actions],
            samplers.make_seed(seed, _ACTION_SALT), minval=_TINY)
        return draws

    # ------------------------------------------------------------- model
    def build_model(self):
        config = self.config
        model = AdaFocusV1(self.num_classes,
                           **adafocus_config.v1_model_values(config))
        # Trained batch norms take their statistics over the global batch,
        # so that 1 and N replicas compute alike.
        base_task.synchronize_batch_norms(model)
        if self.stage == 0:
            adafocus_common.load_trunk_weights(model, config)
        self._load_authors_files(model)
        if config.init_checkpoint:
            path = restore_model_weights(model, config.init_checkpoint)
            logging.info("initialised the model from %s", path)
        self._freeze(model)
        self.model = model
        self._model_parts(model)  # built eagerly, outside any tf.function
        return model

    def _load_authors_files(self, model):
        """Loads `task.adafocus_weights`; stage k > 0 needs the entries
        stage k - 1 trained among them."""
        held = set()
        for path in self.config.adafocus_weights:
            report = adafocus_checkpoints.load_adafocus_v1_checkpoint(
                model, path)
            held.update(part for part, name in (
                ("glancer", "glance"), ("focuser", "focus"),
                ("fc", "classifier"), ("policy", "policy"))
                if name in report.parts)
            logging.info("task.adafocus_weights: %s", report.summary())
        if self.stage > 0 and self.start == "adafocus_weights":
            needed = adafocus_config.V1_ENTRIES[self.stage - 1]
            missing = [e for e in needed if e not in held]
            if missing:
                raise errors.ConfigError(
                    f"task.stage={self.stage} starts from the stage-"
                    f"{self.stage - 1} model, but task.adafocus_weights "
                    f"{tuple(self.config.adafocus_weights)} hold no "
                    f"{missing} entries")

    def parameter_groups(self, model):
        """The model's layers by learning-rate group.

        Args:
            model: the task's `AdaFocusV1`.

        Returns:
            Dict group (`adafocus_config.V1_GROUPS`) -> list of layers.

        Raises:
            ConfigError: a weight outside the groups.
        """
        groups = {"glance": [model.glance, model.glance_head],
                  "focus": [model.focus, model.focus_head],
                  "policy": [model.policy],
                  "classifier": [model.classifier]}
        grouped = {id(v) for layers in groups.values() for layer in layers
                   for v in layer.weights}
        stray = [v.path for v in model.weights if id(v) not in grouped]
        if stray:
            raise errors.ConfigError(
                f"AdaFocus V1 weights outside the learning-rate groups "
                f"{adafocus_config.V1_GROUPS}: {stray[:5]}")
        return groups

    def _freeze(self, model):
        """Only the stage's groups train; frame heads only in stage 0."""
        for group, layers in self.parameter_groups(model).items():
            for index, layer in enumerate(layers):
                head = index == 1  # glance_head / focus_head
                layer.trainable = group in self.trained_groups and (
                    self.stage == 0 or not head)

    def _model_parts(self, model):
        """Sub-models sharing `model`'s weights, and gradient scales."""
        key = id(model)
        if key not in self._parts:
            group_of = {id(v): name for name, layers in
                        self.parameter_groups(model).items()
                        for layer in layers for v in layer.weights}
            multipliers = self.config.lr_multipliers
            self._parts[key] = {
                "glance": model.glance_model(),
                "focus": model.focus_model(),
                "patches": model.patch_model(),
                "glance_classifier": model.glance_classifier(),
                "focus_classifier": model.focus_classifier(),
                "scales": [float(multipliers[group_of[id(v)]])
                           for v in model.trainable_variables],
            }
        return self._parts[key]

    # ------------------------------------------------------------ losses
    def build_losses(self, labels, outputs):
        """Per-video loss of the stage's outputs.

        Args:
            labels: dict with `label` [B] (or the [B] labels).
            outputs: stage 0: `glance_logits` and / or `focus_logits`
                `[B, C]` (frame-averaged); stages 1, 3: `logits`
                `[B, T, C]`; stage 2: the PPO terms (`ppo_loss`
                arguments: `policy_logits`, `values`, `actions`,
                `old_log_probs`, `returns`).

        Returns:
            float32 [B].
        """
        label = labels["label"] if isinstance(labels, dict) else labels
        if "returns" in outputs:
            ppo = self.config.ppo
            return ppo_loss(
                outputs["policy_logits"], outputs["values"],
                outputs["actions"], outputs["old_log_probs"],
                outputs["returns"], clip=float(ppo.clip),
                value_coef=float(ppo.value_coef),
                entropy_coef=float(ppo.entropy_coef))
        if self.stage == 0:
            return tf.add_n([keras.losses.sparse_categorical_crossentropy(
                label, outputs[f"{group}_logits"], from_logits=True)
                for group in self.trained_groups])
        return self.frame_loss(label, outputs["logits"])

    def build_metrics(self, training=True):
        if not training:
            return []
        metrics = [keras.metrics.Mean(name=LOSS_METRIC),
                   keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if self.stage == 2:
            metrics.append(keras.metrics.Mean(name=REWARD_METRIC))
        return metrics

    def process_metrics(self, metrics, labels, outputs, per_example_loss):
        for metric in metrics:
            if metric.name == LOSS_METRIC:
                metric.update_state(per_example_loss)
            elif metric.name == REWARD_METRIC:
                metric.update_state(outputs["rewards"])
            else:
                metric.update_state(labels["label"], outputs["prediction"])

    # ------------------------------------------------------------- steps
    def _frame_logits(self, parts, frames, group, training):
        """Frame-averaged `[B, C]` logits of a stage-0 frame classifier."""
        model = self.model
        if group == "glance" and tuple(model.glance_size) != tuple(
                model.frame_size):
            frames = model.get_layer("glance_resize")(frames)
        size = tuple(frames.shape[2:])
        logits = parts[f"{group}_classifier"](
            tf.reshape(frames, (-1, *size)), training=training)
        return tf.reduce_mean(tf.reshape(
            logits, (-1, self.num_frames, self.num_classes)), axis=1)

    def _forward(self, features, training):
        """The classification outputs of stages 0, 1 and 3."""
        parts = self._model_parts(self.model)
        frames = features["frames"]
        if self.stage == 0:
            outputs = {f"{g}_logits": self._frame_logits(parts, frames, g,
                                                         training)
                       for g in self.trained_groups}
            outputs["prediction"] = outputs[f"{self.trained_groups[-1]}"
                                            f"_logits"]
            return outputs
        if self.stage == 1:
            outputs = parts["patches"](
                {"frames": frames,
                 "locations": features["random_locations"]},
                training=training)
        else:
            outputs = self.model({"frames": frames}, training=training)
        return {"logits": outputs["logits"],
                "prediction": outputs["logits"][:, -1]}

    def rollout(self, features, labels, glance, policy):
        """Stage 2: samples the policy's patches and scores the rewards.

        Args:
            features: the batch features (`frames`, `random_locations`,
                `action_noise`).
            labels: the batch labels (`label`).
            glance: the glance model's outputs (`maps`, `features`).
            policy: the policy's outputs on the glance maps (`logits`).

        Returns:
            Dict: `actions` int32 `[B, T]`, `old_log_probs`, `rewards`,
            `returns` (discounted and standardised over the global batch)
            `[B, T]`, and `prediction` `[B, C]` (the last step's logits
            with the sampled patches).
        """
        parts = self._model_parts(self.model)
        model, ppo, frames = self.model, self.config.ppo, features["frames"]
        logits = tf.stop_gradient(policy["logits"])
        actions = sample_actions(logits, features["action_noise"])
        old_log_probs = tf.gather(tf.nn.log_softmax(logits), actions,
                                  batch_dims=2)

        def joint(locations):
            focus = parts["focus"]({"frames": frames,
                                    "locations": locations}, training=False)
            return tf.concat([tf.cast(glance["features"], focus.dtype),
                              focus], axis=-1)

        chosen = model.classifier(
            joint(model.policy.action_locations(actions)), training=False)
        # The baseline: one step from the same previous state, not kept.
        states = chosen["states"]
        previous = tf.concat([tf.zeros_like(states[:, :1]), states[:, :-1]],
                             axis=1)
        random = joint(features["random_locations"])
        width = random.shape[-1]
        baseline = model.classifier.step(
            tf.reshape(random, (-1, width)),
            tf.reshape(previous, (-1, states.shape[-1])), training=False)
        label = labels["label"]

        def confidence(step_logits):
            probs = tf.nn.softmax(tf.reshape(
                step_logits, (-1, self.num_frames, self.num_classes)))
            return tf.gather(probs, label, axis=2, batch_dims=1)

        rewards = step_rewards(confidence(chosen["logits"]),
                               confidence(baseline["logits"]), ppo.reward)
        returns = standardize_over_replicas(
            discounted_returns(rewards, float(ppo.gamma)),
            float(ppo.std_epsilon))
        return {"actions": actions, "old_log_probs": old_log_probs,
                "rewards": rewards, "returns": returns,
                "prediction": chosen["logits"][:, -1]}

    def train_step(self, inputs, model, optimizer, metrics):
        """One update of the stage's parts (stage 2: `ppo.epochs` PPO
        updates of the policy on one rollout).

        Args:
            inputs: `(features, labels)` of one replica.
            model: the task's `AdaFocusV1`.
            optimizer: the trainer's `GlobalBatchOptimizer`.
            metrics: the training metrics.

        Returns:
            Dict of scalar logs (`loss`, and `grad_norm` when clipping).

        Raises:
            ConfigError: a learning-rate multiplier other than 1 with an
                optimizer other than SGD.
        """
        features, labels = inputs
        scales = self._model_parts(model)["scales"]
        self.check_gradient_scales(optimizer, scales,
                                   self.config.lr_multipliers)
        variables = model.trainable_variables
        updates, glance, rollout = 1, None, None
        if self.stage == 2:
            updates = int(self.config.ppo.epochs)
            glance = self._model_parts(model)["glance"](
                {"frames": features["frames"]}, training=False)
        for _ in range(updates):
            with tf.GradientTape() as tape:
                if glance is None:
                    outputs = self._forward(features, training=True)
                else:
                    policy = model.policy(glance["maps"], training=True)
                    if rollout is None:  # log pi_old: this very pass
                        with tape.stop_recording():
                            rollout = self.rollout(features, labels, glance,
                                                   policy)
                    outputs = dict(rollout, policy_logits=policy["logits"],
                                   values=policy["values"])
                per_example_loss = self.build_losses(labels, outputs)
                loss = optimizer.compute_loss(
                    per_example_loss, list(model.losses) + self.coupled_decay(
                        self.config.weight_decay, variables))
            grad_norm = optimizer.minimize(loss, variables, tape,
                                           gradient_scales=scales)
        self.process_metrics(metrics, labels, outputs, per_example_loss)
        return base_task.step_logs(loss, grad_norm)

    # -------------------------------------------------------- evaluation
    def validation_step(self, inputs, model, metrics):
        del metrics
        features, labels = inputs
        parts = self._model_parts(model)
        frames = features["frames"]
        outputs = model({"frames": frames}, training=False)
        logs = {"video_id": labels["video_id"], "labels": labels["labels"],
                "glance_scores": tf.reduce_mean(outputs["glance_logits"],
                                                axis=1)}
        if self.stage == 0:
            logs["focus_scores"] = self._frame_logits(parts, frames, "focus",
                                                      False)
            logs["scores"] = logs[f"{self.trained_groups[-1]}_scores"]
            return logs
        logs["scores"] = outputs["logits"][:, -1]
        if self.stage == 1 or self.config.random_patch_baseline:
            random = parts["patches"](
                {"frames": frames,
                 "locations": features["random_locations"]}, training=False)
            key = "scores" if self.stage == 1 else "random_patch_scores"
            logs[key] = random["logits"][:, -1]
        return logs

    def gflops(self):
        """The model's GFLOPs (`v1_gflops`), computed once."""
        if self._gflops is None:
            self._gflops = v1_gflops(self.model)
        return self._gflops

