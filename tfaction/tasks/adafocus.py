"""AdaFocus V2 task: glance, a differentiable patch policy, focus, one stage.

Wires the recipe of LeapLabTHU/AdaFocusV2 (`main_v2.py`,
`models/adafocus_v2.py`, `scripts/train.sh`) into a `Task`:

* data: frames records written by `python -m tfaction.data.convert
  --format=actnet_frames` (or `fcvid_frames`, `minik_frames`; any frames
  dataset with 1 to 3 labels per video works); T frames per video by TSN
  sampling, one crop (+ flip) for all frames in training, the centre crop
  at evaluation, ImageNet normalisation, frames reordered coarse-to-fine
  (`frame_order`). Every example also carries `random_locations` `[T, 2]`,
  uniform in `[0, 1)` and drawn in the input pipeline from (seed, epoch,
  video id), so one and several replicas see the same random patches. A
  video with several labels trains on the first one after a seeded
  shuffle (`label_choice="random"`, the authors' loader permutes them) or
  on the first in file order (`"first"`);
* model: `tfaction.models.adafocus.AdaFocusV2` (trunks from local
  ImageNet `.pth` files, the whole model from an authors' checkpoint or
  an earlier run); trained batch norms are synchronised over replicas;
* loss (`build_losses`): per video, the mean over the two passes of the
  `AdaFocusV2.training_model()` (the policy's patches, its input
  detached; the random patches) of the cross-entropy of the classifier's
  logits at every step plus that of the focus head on every frame, plus
  the glance head's cross-entropy on every frame (shared by both passes),
  each averaged over the T frames against the video's label;
* optimisation (`train_step`): SGD whose gradients are scaled per group
  (`lr_multipliers`: policy, glance trunk + head, focus trunk + head,
  classifier; with SGD a gradient scale is a learning-rate multiplier, so
  any other optimizer is refused when a multiplier is not 1) after
  PyTorch's coupled L2 decay (`weight_decay`, a loss term
  `wd * sum(||w||^2) / 2` counted once per step);
* evaluation: the last step's logits of every video (padding skipped):
  `mAP` (`tfaction.evaluation.adafocus_map`, on the first label or on all
  of them: `map_labels`) and `top1`; the same for the glance head alone
  (its logits averaged over the frames: `glance_*`) and for the classifier
  on uniformly random patches (`random_patch_*`); `gflops_per_video`
  (`tfaction.models.adafocus.flops`, the papers' MACs convention).
  Per-video scores go to `<workdir>/predictions.npz` (`video_ids`,
  `scores`, `labels` `[N, 3]` padded with -1, `glance_scores`,
  `random_patch_scores`), the input of `python -m experiments.evaluate
  --metric=adafocus_map`;
* V2+ early exit (`early_exit_budgets`, `tfaction.models.adafocus.
  early_exit`): the evaluation also runs the model on the training videos
  (the authors' calibration pass: training-time frame sampling, crops and
  flips, inference mode; the first `early_exit_calibration_videos` of the
  shuffled epoch-0 order, or all), calibrates the thresholds of every
  budget `q` on their per-step logits, and scores the evaluation videos
  exiting by them: `early_exit_q<q>_mAP`, `_top1` and `_gflops` (expected
  GFLOPs per video) in the results, the whole curve with the thresholds
  in `<workdir>/early_exit.json` (`export_early_exit_file` of the export)
  and the accuracy-vs-GFLOPs figure (mAP and top-1 panels) in
  `<workdir>/early_exit.png`.

Config (`config.task`): the keys, defaults and rules of
`tfaction.tasks.adafocus_config`.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfaction import errors
from tfaction import tasks
from tfaction.checkpoints import adafocus as adafocus_checkpoints
from tfaction.data import filesystems
from tfaction.data import frames_pipeline
from tfaction.data import input_reader
from tfaction.models.adafocus import early_exit
from tfaction.models.adafocus import flops
from tfaction.models.adafocus.v2 import AdaFocusV2
from tfaction.tasks import adafocus_common
from tfaction.tasks import adafocus_config
from tfaction.tasks import base_task
from tfaction.tasks.base_task import LOSS_METRIC
from tfaction.training.checkpointing import restore_model_weights

TASK_NAME = adafocus_config.TASK_NAME
PREDICTIONS_FILE = adafocus_common.PREDICTIONS_FILE
EARLY_EXIT_FILE = "early_exit.json"
EARLY_EXIT_FIGURE = "early_exit.png"
# The `subset` tag of an evaluation example: scored, or early-exit
# calibration (a training video).
_SCORED, _CALIBRATION = 0, 1
# The aggregated state's entry of the calibration videos (a tuple, so it
# never clashes with a video id).
_CALIBRATION_KEY = ("early exit calibration",)
MAX_LABELS = adafocus_common.MAX_LABELS
# Shared with the V1 task (tfaction.tasks.adafocus_common).
coarse_to_fine_order = adafocus_common.coarse_to_fine_order
load_trunk_weights = adafocus_common.load_trunk_weights


@tasks.register_task(TASK_NAME)
class AdaFocusV2Task(adafocus_common.AdaFocusVideoTask):
    """AdaFocus V2 in one training stage (see the module docstring).

    Args:
        config: the `config.task` section (`adafocus_config`).

    Raises:
        ConfigError: `adafocus_config.validate` fails, or the data does not
            fit (an RGB frames dataset with the configured subsets).

    Example:

    ```python
    config = adafocus_config.experiment_config("actnet")
    config.task.data_dir = "data/actnet/records"
    config.task.train_from_scratch = True
    task = tasks.build_task(config)
    model = task.build_model()
    ```
    """

    config_schema = adafocus_config

    def __init__(self, config):
        super().__init__(config, validate=adafocus_config.validate)
        self._parts = {}  # id(model) -> (training, patch, gradient scales)
        self._early_exit = None  # the last evaluation's early_exit.json
        self._gflops = None

    # -------------------------------------------------------------- data
    def build_inputs(self, training, *, global_batch_size, input_context=None,
                     epoch=0, seed=0):
        if training or not self.early_exit_budgets():
            return super().build_inputs(
                training, global_batch_size=global_batch_size,
                input_context=input_context, epoch=epoch, seed=seed)
        per_replica = (input_context.get_per_replica_batch_size(
            global_batch_size) if input_context else global_batch_size)
        return self._early_exit_inputs(input_context, per_replica, seed)

    def early_exit_budgets(self):
        """The V2+ early-exit budgets q evaluated (empty: off)."""
        return tuple(float(q) for q in self.config.early_exit_budgets)

    def _tagged_examples(self, subset, tag, *, training_views, seed):
        """Unbatched evaluation examples of `subset` with `subset` = tag.

        `training_views`: the training pipeline's frame sampling, crops
        and flips (the authors' calibration loader), in its seeded epoch-0
        order; else the evaluation pipeline's.
        """
        config = self.frames_config()
        pipeline = frames_pipeline.build_frames_pipeline(
            config, training=training_views, seed=seed, batch_size=1)
        pipeline.replace("labels", input_reader.map_stage(
            lambda ex: dict(self._labels_stage(ex, training=False),
                            subset=tf.constant(tag, tf.int32)),
            deterministic=True, name="adafocus_labels"))
        for stage in ("batch", "fold_views", "prefetch"):
            pipeline.remove(stage)
        return frames_pipeline.make_frames_dataset(
            self.data.files(subset), config, training=training_views,
            seed=seed, input_context=None, start_epoch=0, num_epochs=1,
            pipeline=pipeline)

    def _early_exit_inputs(self, input_context, per_replica, seed):
        """Evaluation videos, then the calibration (training) videos.

        Every worker reads both in full (the chief scores them), padded
        with blank videos (id "") to whole steps of its replicas.
        """
        scored = self._tagged_examples(self.config.eval_subset, _SCORED,
                                       training_views=False, seed=seed)
        calibration = self._tagged_examples(
            self.config.train_subset, _CALIBRATION, training_views=True,
            seed=seed)
        available = self.data.num_records(self.config.train_subset)
        limit = int(self.config.early_exit_calibration_videos)
        if limit:
            calibration = calibration.take(limit)
            available = min(available, limit)
        num_videos = self.data.num_records(self.config.eval_subset) + (
            available)
        post = input_reader.StagedPipeline([
            ("calibration", lambda ds: ds.concatenate(calibration)),
            ("batch", lambda ds: ds.batch(per_replica)),
            ("split", lambda ds: ds.map(
                lambda b: ({"frames": b["frames"],
                            "random_locations": b["random_locations"]},
                           {"label": b["label"], "labels": b["labels"],
                            "video_id": b["video_id"],
                            "subset": b["subset"]}))),
            ("prefetch", lambda ds: ds.prefetch(input_reader.AUTOTUNE)),
        ])
        base_task.pad_evaluation_split(post, input_context, per_replica,
                                       num_videos, base_task.blank_example,
                                       after="calibration")
        return post(scored)

    # ------------------------------------------------------------- model
    def build_model(self):
        adafocus_config.require_weights(self.config)
        model = AdaFocusV2(self.num_classes,
                           **adafocus_config.model_values(self.config))
        # Trained batch norms take their statistics over the global batch,
        # so that 1 and N replicas compute alike.
        base_task.synchronize_batch_norms(model)
        load_trunk_weights(model, self.config)
        if self.config.adafocus_weights:
            report = adafocus_checkpoints.load_adafocus_v2_checkpoint(
                model, self.config.adafocus_weights)
            logging.info("task.adafocus_weights: %s", report.summary())
        if self.config.init_checkpoint:
            path = restore_model_weights(model, self.config.init_checkpoint)
            logging.info("initialised the model from %s", path)
        self.model = model
        self._model_parts(model)  # built eagerly, outside any tf.function
        return model

    def parameter_groups(self, model):
        """The model's trainable variables by learning-rate group.

        Args:
            model: the task's `AdaFocusV2`.

        Returns:
            Dict group name (`adafocus_config.GROUPS`) -> list of
            variables; every trainable variable is in exactly one group.

        Raises:
            ConfigError: a trainable variable outside the groups.
        """
        groups = {
            "policy": model.policy.trainable_variables,
            "glance": (model.glance.trainable_variables
                       + model.glance_head.trainable_variables),
            "focus": (model.focus.trainable_variables
                      + model.focus_head.trainable_variables),
            "classifier": model.classifier.trainable_variables,
        }
        grouped = {id(v) for members in groups.values() for v in members}
        stray = [v.path for v in model.trainable_variables
                 if id(v) not in grouped]
        if stray:
            raise errors.ConfigError(
                f"AdaFocus V2 variables outside the learning-rate groups "
                f"{adafocus_config.GROUPS}: {stray[:5]}")
        return groups

    def _model_parts(self, model):
        """(training model, patch model, gradient scales) of `model`."""
        key = id(model)
        if key not in self._parts:
            group_of = {id(v): name for name, members in
                        self.parameter_groups(model).items()
                        for v in members}
            multipliers = self.config.lr_multipliers
            scales = [float(multipliers[group_of[id(v)]])
                      for v in model.trainable_variables]
            self._parts[key] = (model.training_model(), model.patch_model(),
                                scales)
        return self._parts[key]

    # ------------------------------------------------------------ losses
    def build_losses(self, labels, outputs):
        """Per-video AdaFocus V2 loss of the `training_model()` outputs.

        Args:
            labels: dict with `label` [B] (or the [B] labels).
            outputs: the training model's dict.

        Returns:
            float32 [B].
        """
        label = labels["label"] if isinstance(labels, dict) else labels
        passes = [self.frame_loss(label, outputs[key]) for key in (
            "logits", "focus_logits", "random_logits",
            "random_focus_logits")]
        return (self.frame_loss(label, outputs["glance_logits"])
                + 0.5 * tf.add_n(passes))

    def build_metrics(self, training=True):
        if not training:
            return []
        return [keras.metrics.Mean(name=LOSS_METRIC),
                keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def process_metrics(self, metrics, labels, outputs, per_example_loss):
        for metric in metrics:
            if metric.name == LOSS_METRIC:
                metric.update_state(per_example_loss)
            else:
                metric.update_state(labels["label"], outputs["logits"][:, -1])

    def train_step(self, inputs, model, optimizer, metrics):
        """One SGD step on both passes with per-group learning rates.

        Args:
            inputs: `(features, labels)` of one replica.
            model: the task's `AdaFocusV2`.
            optimizer: the trainer's `GlobalBatchOptimizer`.
            metrics: the training metrics.

        Returns:
            Dict of scalar logs (`loss`, and `grad_norm` when clipping).

        Raises:
            ConfigError: a learning-rate multiplier other than 1 with an
                optimizer other than SGD.
        """
        features, labels = inputs
        training_model, _, scales = self._model_parts(model)
        self.check_gradient_scales(optimizer, scales,
                                   self.config.lr_multipliers)
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = training_model(features, training=True)
            per_example_loss = self.build_losses(labels, outputs)
            regularization = list(model.losses) + self.coupled_decay(
                self.config.weight_decay, variables)
            loss = optimizer.compute_loss(per_example_loss, regularization)
        grad_norm = optimizer.minimize(loss, variables, tape,
                                       gradient_scales=scales)
        self.process_metrics(metrics, labels, outputs, per_example_loss)
        return base_task.step_logs(loss, grad_norm)

    # -------------------------------------------------------- evaluation
    def validation_step(self, inputs, model, metrics):
        del metrics
        features, labels = inputs
        outputs = model({"frames": features["frames"]}, training=False)
        logs = {"video_id": labels["video_id"], "labels": labels["labels"],
                "scores": outputs["logits"][:, -1],
                "glance_scores": tf.reduce_mean(outputs["glance_logits"],
                                                axis=1)}
        if "subset" in labels:  # early exit: the logits of every step
            logs.update(subset=labels["subset"], step_scores=outputs[
                "logits"])
        if self.config.random_patch_baseline:
            _, patch_model, _ = self._model_parts(model)
            random = patch_model(
                {"frames": features["frames"],
                 "locations": features["random_locations"]}, training=False)
            logs["random_patch_scores"] = random["logits"][:, -1]
        return logs

    def aggregate_logs(self, state, step_logs):
        state = {} if state is None else state
        for logs in step_logs:
            subsets = logs.get("subset")
            for b, raw in enumerate(logs["video_id"]):
                video_id = raw.decode() if isinstance(raw, bytes) else raw
                if not video_id:  # "" pads the last global batch
                    continue
                if subsets is not None and subsets[b] == _CALIBRATION:
                    state.setdefault(_CALIBRATION_KEY, {})[video_id] = (
                        logs["step_scores"][b])
                    continue
                state[video_id] = {k: v[b] for k, v in logs.items()
                                   if k not in ("video_id", "subset")}
        return state

    def gflops(self):
        """The model's GFLOPs (`flops.adafocus_v2_gflops`), computed once."""
        if self._gflops is None:
            self._gflops = flops.adafocus_v2_gflops(self.model)
        return self._gflops

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        state = dict(aggregated_logs or {})
        calibration = state.pop(_CALIBRATION_KEY, {})
        self._early_exit = None
        ids = sorted(state)
        step_scores = None
        if ids and "step_scores" in state[ids[0]]:
            step_scores = np.stack([state[v]["step_scores"] for v in ids])
            state = {v: {k: x for k, x in state[v].items()
                         if k != "step_scores"} for v in ids}
        results = super().reduce_aggregated_logs(state, global_step)
        if step_scores is not None:
            results.update(self._evaluate_early_exit(
                calibration, step_scores, self._predictions["labels"],
                results, global_step))
        return results

    def _evaluate_early_exit(self, calibration, step_scores, labels,
                             results, global_step):
        """The V2+ sweep over `early_exit_budgets` (module docstring).

        Args:
            calibration: training video id -> its per-step logits `[T, C]`.
            step_scores: `[N, T, C]` per-step logits of the scored videos.
            labels: their `[N, 3]` labels.
            results: the results so far (`mAP`, `top1` of the last step).
            global_step: the step evaluated.

        Returns:
            Dict of scalar results; keeps the curve for
            `write_evaluation_outputs`.

        Raises:
            DataError: the calibration pass saw no training video.
        """
        if not calibration:
            raise errors.DataError(
                f"early exit: no training video to calibrate the "
                f"thresholds on (subset {self.config.train_subset!r})",
                path=self.config.data_dir)
        train = np.stack([calibration[v] for v in sorted(calibration)])
        per_frame = self.gflops()["per_frame"]

        def score(logits):
            mean_ap, top1 = self.scores(logits, labels)
            return {"mAP": mean_ap, "top1": top1}

        curve = early_exit.sweep(train, step_scores,
                                 self.early_exit_budgets(), per_frame, score)
        for point in curve:
            point["thresholds"] = early_exit.thresholds_to_json(
                point["thresholds"])
        self._early_exit = {
            "step": None if global_step is None else int(global_step),
            "num_steps": self.num_frames,
            "frame_order": list(self.frame_order),
            "per_frame_gflops": per_frame,
            "calibration_subset": self.config.train_subset,
            "num_calibration_videos": len(calibration),
            "eval_subset": self.config.eval_subset,
            "num_videos": int(step_scores.shape[0]),
            "map_labels": self.config.map_labels,
            "all_frames": {"gflops": per_frame * self.num_frames,
                           "mAP": results["mAP"], "top1": results["top1"]},
            "budgets": curve,
        }
        out = {"early_exit_calibration_videos": float(len(calibration))}
        for point in curve:
            name = f"early_exit_q{point['budget']:g}"
            out[f"{name}_gflops"] = point["expected_gflops"]
            out[f"{name}_mAP"] = point["mAP"]
            out[f"{name}_top1"] = point["top1"]
        return out

    def early_exit_figure(self):
        """The last sweep's accuracy-vs-GFLOPs figure: PNG bytes (mAP and
        top-1 panels side by side), or None without a sweep."""
        result = self._early_exit
        if result is None:
            return None
        full = result["all_frames"]
        panels = [early_exit.render_curve(
            result["budgets"], metric,
            full_model=(full["gflops"], full[metric]),
            title=f"AdaFocus V2+ early exit: {metric} "
                  f"({result['eval_subset']})")
            for metric in ("mAP", "top1")]
        return early_exit.encode_png(np.concatenate(panels, axis=1))

    def write_evaluation_outputs(self, workdir, global_step=None):
        """Writes the last evaluation's scores to `predictions.npz` (and,
        with early exit, `early_exit.json` and `early_exit.png`)."""
        path = super().write_evaluation_outputs(workdir, global_step)
        if path is not None and self._early_exit is not None:
            filesystems.atomic_write_text(
                os.path.join(workdir, EARLY_EXIT_FILE),
                json.dumps(self._early_exit, indent=1) + "\n")
            filesystems.atomic_write_bytes(
                os.path.join(workdir, EARLY_EXIT_FIGURE),
                self.early_exit_figure())
        return path
