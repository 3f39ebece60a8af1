"""ActionVLAD task: one stream (RGB or flow) of the two-stream classifier.

Wires the recipe of rohitgirdhar/ActionVLAD (`train_image_classifier.py`,
`eval_image_classifier.py`, `experiments/00{1,3,4}_*`) into a `Task`:

* data: frames TFRecords written by `python -m tfaction.data.convert
  --format=hmdb51_frames` (RGB and/or flow); T frames (flow: stacks of
  `flow_stack` x/y pairs) sampled uniformly and deterministically per video,
  256x340 resize, one multi-scale crop + flip per video in training, the
  centre crop (or 5 crops pooled into ONE vector) at test time, BGR mean
  subtraction (flow: -128);
* model: `tfaction.models.actionvlad.model.ActionVLAD` (trunk -> NetVLAD ->
  linear); trunk weights from a local Keras `.h5` or TF-slim checkpoint
  (`trunk_weights`), NetVLAD from k-means centres (`centers_file`, written by
  `python -m experiments.actionvlad_init_centers`), or everything from an
  earlier stage (`init_checkpoint`); `trainable` selects the groups of the
  stage (stage 1: the classifier; stage 2: classifier, NetVLAD, conv5);
* loss: softmax cross-entropy, or sigmoid cross-entropy averaged over
  classes with `multi_label` (Charades); slim-style L2 on conv and
  classifier kernels through the model's regularisers (none on NetVLAD);
* evaluation: per-video logits keyed by video id (deterministic order),
  top-1/top-5 video accuracy and mean class accuracy, or mAP / wAP
  (`Charades_v1_classify.m` rules) with `multi_label`; written to
  `<workdir>/predictions.npz` (`video_ids`, `scores` = logits, `labels`),
  the input of `experiments.evaluate --metric=video_accuracy` and of the
  late fusion `experiments.actionvlad_fuse` (plus `charades_submission.txt`
  with `multi_label`);
* export: `tfaction.serving.build_export_module(task, model)` (an
  `ActionVLADExportModule`: JPEGs or uint8 frames in, probabilities and
  top-k out).

Config (`config.task`): the keys, defaults and rules of
`tfaction.tasks.actionvlad_config` (validated when the task is built; a
stage that freezes the trunk or NetVLAD refuses to build them when nothing
gives them weights, unless `train_from_scratch`).
"""

import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfaction import errors
from tfaction import tasks
from tfaction.data import filesystems
from tfaction.data import frames_pipeline
from tfaction.evaluation import charades_map
from tfaction.evaluation import video_accuracy
from tfaction.models.actionvlad import kmeans
from tfaction.models.actionvlad import model as model_lib
from tfaction.models.backbones import vgg16
from tfaction.tasks import actionvlad_config
from tfaction.tasks import converted_dataset
from tfaction.tasks import base_task
from tfaction.tasks.base_task import LOSS_METRIC
from tfaction.training.checkpointing import restore_model_weights

TASK_NAME = actionvlad_config.TASK_NAME
PREDICTIONS_FILE = "predictions.npz"
CHARADES_SUBMISSION_FILE = "charades_submission.txt"


def open_dataset(data_dir):
    """The frames converter output `data_dir`."""
    return converted_dataset.ConvertedDataset(
        data_dir, schema="frames", converter="hmdb51_frames")


def load_trunk_weights(trunk, path, weights_format="auto"):
    """Loads pre-trained trunk weights from a local file.

    Args:
        trunk: the per-frame trunk model (VGG16 layer names).
        path: a Keras `.h5` / `.weights.h5` file of `keras.applications.
            VGG16`, or a TF-slim VGG16 checkpoint prefix (`vgg_16/...`).
        weights_format: "keras", "slim", or "auto" (by the file name).

    Raises:
        ConfigError: unknown format.
        MalformedFileError: the file does not fit the trunk.
    """
    if weights_format == "auto":
        weights_format = "keras" if path.endswith(".h5") else "slim"
    if weights_format == "keras":
        vgg16.load_keras_vgg16_weights(trunk, path)
    elif weights_format == "slim":
        vgg16.load_slim_vgg16_checkpoint(trunk, path)
    else:
        raise errors.ConfigError(
            f"task.trunk_weights_format must be auto, keras or slim, got "
            f"{weights_format!r}")


@tasks.register_task(TASK_NAME)
class ActionVLADTask(tasks.Task):
    """One stream of ActionVLAD (see the module docstring).

    Args:
        config: the `config.task` section (`actionvlad_config`).

    Raises:
        ConfigError: `actionvlad_config.validate` fails (weights are
            required when the model is built), or the data does not fit.

    Example:

    ```python
    config = actionvlad_config.experiment_config()
    config.task.data_dir = "data/hmdb51/records/split1"
    config.task.train_from_scratch = True
    task = tasks.build_task(config)
    model = task.build_model()
    ```
    """

    config_schema = actionvlad_config

    def __init__(self, config):
        super().__init__(config)
        # Frozen parts need weights only when built (build_trunk,
        # build_model): the k-means command reads data before any exist.
        actionvlad_config.validate(config, weights_for=())
        if not config.data_dir:
            raise errors.ConfigError(
                "task.data_dir is empty: set it to a folder written by "
                "`python -m tfaction.data.convert --format=hmdb51_frames`")
        self.data = open_dataset(config.data_dir)
        self.class_names = self.data.class_names
        self.num_classes = len(self.class_names)
        self.data.require_subsets(config.train_subset, config.eval_subset)
        modality = config.frames.get("modality", "rgb")
        have = self.data.info.get("modalities", ["rgb"])
        if modality not in have:
            raise errors.ConfigError(
                f"task.frames.modality={modality!r} but {config.data_dir} "
                f"holds only {have}: convert with --modalities=rgb,flow")
        self.multi_label = bool(config.multi_label)
        if bool(self.data.info.get("multi_label", False)) != self.multi_label:
            raise errors.ConfigError(
                f"task.multi_label={self.multi_label} but {config.data_dir} "
                f"holds {'multi' if not self.multi_label else 'single'}-"
                "label videos (dataset_info.json multi_label)")
        self.model = None
        self._predictions = None

    # -------------------------------------------------------------- data
    def frames_config(self, training=False, batch_size=1, **overrides):
        """The `FramesConfig` of the pipelines (`training` is unused: one
        config serves both; the pipeline's `training` flag decides)."""
        del training
        values = actionvlad_config.frames_values(self.config.frames)
        # Deterministic order in training too: an epoch is a function of
        # (seed, epoch), for exact resume and 1-vs-N-replica equality.
        values.update(
            sampler=values.get("sampler", "actionvlad"),
            num_classes=self.num_classes, multi_label=self.multi_label,
            batch_size=batch_size, fold_views="time", deterministic=True)
        values.update(overrides)
        return frames_pipeline.FramesConfig(**values)

    @property
    def input_channels(self):
        config = self.frames_config(False)
        return 3 if config.modality == "rgb" else 2 * config.flow_stack

    def build_inputs(self, training, *, global_batch_size, input_context=None,
                     epoch=0, seed=0):
        subset = (self.config.train_subset if training
                  else self.config.eval_subset)
        per_replica = (input_context.get_per_replica_batch_size(
            global_batch_size) if input_context else global_batch_size)
        config = self.frames_config(training, batch_size=global_batch_size)
        pipeline = frames_pipeline.build_frames_pipeline(
            config, training=training, seed=seed, batch_size=per_replica)
        read_context = input_context
        if not training:
            # Every worker reads every evaluation video (the chief writes
            # all predictions), padded to whole steps of its replicas with
            # blank videos (id "") that the evaluation skips.
            read_context = None
            base_task.pad_evaluation_split(
                pipeline, input_context, per_replica,
                self.data.num_records(subset), base_task.blank_example,
                after="labels")
        pipeline.add("split", lambda ds: ds.map(
            lambda b: (b["frames"], {"label": b["label"],
                                     "video_id": b["video_id"]})),
            after="fold_views")
        return frames_pipeline.make_frames_dataset(
            self.data.files(subset), config, training=training, seed=seed,
            input_context=read_context, start_epoch=epoch, num_epochs=1,
            pipeline=pipeline)

    # ------------------------------------------------------------- model
    def build_trunk(self):
        """The per-frame trunk, with `trunk_weights` loaded if given.

        Raises:
            ConfigError: the stage freezes (part of) the trunk and nothing
                gives it weights (`trunk_weights`, `init_checkpoint`), unless
                `train_from_scratch`.
        """
        actionvlad_config.require_weights(self.config, ("trunk",))
        return self._build_actionvlad().trunk_model

    def _build_actionvlad(self):
        """The configured `ActionVLAD`, with `trunk_weights` loaded if
        given (no weight requirement checked)."""
        m = self.config.model
        model = model_lib.ActionVLAD(
            self.num_classes, trunk=m.trunk,
            input_channels=self.input_channels, endpoint=m.endpoint,
            filters=tuple(m.filters), num_clusters=int(m.num_clusters),
            alpha=float(m.alpha),
            crop_size=tuple(self.frames_config(False).crop_size),
            trunk_weight_decay=float(m.trunk_weight_decay),
            classifier_weight_decay=float(m.classifier_weight_decay))
        if self.config.trunk_weights:
            load_trunk_weights(model.trunk_model, self.config.trunk_weights,
                               self.config.trunk_weights_format)
        return model

    def build_model(self):
        actionvlad_config.require_weights(self.config)
        m = self.config.model
        model = self._build_actionvlad()
        if self.config.centers_file:
            netvlad = model.get_layer("netvlad")
            netvlad.set_centers(kmeans.load_centers(
                self.config.centers_file, int(m.num_clusters),
                int(netvlad.centers.shape[-1])))
        if self.config.init_checkpoint:
            path = restore_model_weights(model, self.config.init_checkpoint)
            logging.info("initialised the model from %s", path)
        model.set_trainable_groups(tuple(self.config.trainable))
        self.model = model
        return model

    def weight_decay_exclusions(self, model):
        # Decay is the model's L2 regularisers (slim); Keras' decoupled
        # decay, if configured, must spare NetVLAD as the reference does.
        return list(model.get_layer("netvlad").trainable_variables)

    # ------------------------------------------------------------ losses
    def build_losses(self, labels, outputs):
        labels = labels["label"] if isinstance(labels, dict) else labels
        if self.multi_label:
            return keras.losses.binary_crossentropy(
                tf.cast(labels, tf.float32), outputs, from_logits=True)
        return keras.losses.sparse_categorical_crossentropy(
            labels, outputs, from_logits=True)

    def build_metrics(self, training=True):
        if not training:
            return []
        metrics = [keras.metrics.Mean(name=LOSS_METRIC)]
        if not self.multi_label:
            metrics.append(keras.metrics.SparseCategoricalAccuracy(
                name="accuracy"))
        return metrics

    def process_metrics(self, metrics, labels, outputs, per_example_loss):
        labels = labels["label"] if isinstance(labels, dict) else labels
        super().process_metrics(metrics, labels, outputs, per_example_loss)

    # -------------------------------------------------------- evaluation
    def validation_step(self, inputs, model, metrics):
        del metrics
        frames, labels = inputs
        return {"video_id": labels["video_id"], "label": labels["label"],
                "logits": model(frames, training=False)}

    def aggregate_logs(self, state, step_logs):
        state = {} if state is None else state
        for logs in step_logs:
            for b, raw in enumerate(logs["video_id"]):
                video_id = raw.decode() if isinstance(raw, bytes) else raw
                if video_id:  # "" pads the last global batch
                    state[video_id] = (logs["logits"][b], logs["label"][b])
        return state

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        state = aggregated_logs or {}
        if not state:
            self._predictions = None
            return {}
        ids = sorted(state)
        scores = np.stack([state[v][0] for v in ids]).astype(np.float32)
        labels = np.stack([state[v][1] for v in ids])
        self._predictions = {"video_ids": np.array(ids), "scores": scores,
                             "labels": labels}
        if self.multi_label:
            positives = labels > 0.5
            # As Charades_v1_classify.m: a video without any label is never
            # registered, so its scores stay -inf (last in every ranking).
            ranked = np.where(positives.any(1, keepdims=True), scores,
                              -np.inf)
            ap, npos = charades_map.per_class_ap(ranked, positives)
            return {"mAP": float(np.mean(ap)),
                    "mAP_nanmean": float(np.nanmean(ap)),
                    "wAP": float(np.nansum(ap * npos) / np.sum(npos)),
                    "num_videos": float(len(ids))}
        result = video_accuracy.accuracies(
            scores, labels.astype(np.int64),
            top_k=sorted({1, min(5, self.num_classes)}))
        metrics = {f"{k}_accuracy": v for k, v in result.items()
                   if k.startswith("top")}
        metrics.update(mean_class_accuracy=result["mean_class_accuracy"],
                       num_videos=float(len(ids)))
        return metrics

    def write_evaluation_outputs(self, workdir, global_step=None):
        """Writes the last evaluation's logits to `predictions.npz`."""
        if self._predictions is None:
            return None
        path = os.path.join(workdir, PREDICTIONS_FILE)
        write_predictions(path, **self._predictions, step=global_step)
        if self.multi_label:
            lines = [" ".join([v] + [f"{s:.6g}" for s in row])
                     for v, row in zip(self._predictions["video_ids"],
                                       self._predictions["scores"])]
            filesystems.atomic_write_text(
                os.path.join(workdir, CHARADES_SUBMISSION_FILE),
                "\n".join(lines) + "\n")
        return path


def write_predictions(path, *, video_ids, scores, labels=None, step=None):
    """Writes per-video scores as `.npz` (atomically).

    Args:
        path: output file.
        video_ids: [N] strings.
        scores: [N, K] logits (or fused scores).
        labels: optional [N] indices or [N, K] multi-hot.
        step: optional training step recorded with them.
    """
    arrays = {"video_ids": np.asarray(video_ids, dtype=str),
              "scores": np.asarray(scores, np.float32)}
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    if step is not None:
        arrays["step"] = np.asarray(int(step))
    filesystems.save_npz(path, **arrays)
