"""Data, weights and evaluation shared by the AdaFocus tasks (V1 and V2).

`AdaFocusVideoTask` is the part of an AdaFocus task that does not depend on
the model version:

* data: frames records written by `python -m tfaction.data.convert
  --format=actnet_frames` (or `fcvid_frames`, `minik_frames`); T frames
  per video by the `task.frames` sampling, in `task.frame_order`; 1 to 3
  labels per video (padded with -1 to `labels` `[3]`, `label` the first,
  after a seeded shuffle when `label_choice="random"`); per-example random
  draws (`random_draws`: at least `random_locations` `[T, 2]` uniform in
  `[0, 1)`) seeded by (seed, epoch, video id), so one and several replicas
  see the same random patches; evaluation splits padded to whole global
  batches with blank videos (id "");
* evaluation: `validation_step` returns `video_id`, `labels` and any
  number of `<prefix>scores` logits `[B, C]`; `aggregate_logs` keeps one
  row per video, `reduce_aggregated_logs` gives `<prefix>mAP`
  (`tfaction.evaluation.adafocus_map`, first or all labels:
  `map_labels`) and `<prefix>top1` for each, `num_videos` and
  `gflops_per_video` (`gflops()`); `write_evaluation_outputs` writes them
  to `<workdir>/predictions.npz`, the input of `python -m
  experiments.evaluate --metric=adafocus_map`.

Subclasses give the config module, the model and the steps.
"""

import abc
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfaction import errors
from tfaction import tasks
from tfaction.checkpoints import adafocus as adafocus_checkpoints
from tfaction.checkpoints import resnet50 as resnet50_checkpoints
from tfaction.data import filesystems
from tfaction.data import frames_pipeline
from tfaction.data import input_reader
from tfaction.data import samplers
from tfaction.data import schemas
from tfaction.evaluation import adafocus_map
from tfaction.tasks import adafocus_config
from tfaction.tasks import base_task
from tfaction.tasks import converted_dataset

PREDICTIONS_FILE = "predictions.npz"
MAX_LABELS = 3
SCORES = "scores"
# Salts of the per-example random streams (samplers.make_seed).
LABEL_SALT, LOCATION_SALT = 11, 13


def coarse_to_fine_order(num_frames):
    """AdaFocus V2's `--sample` frame order: middle, ends, then halvings.

    The first three steps are the middle frame `(T - 1) // 2` and both
    ends; then, for q = 2, 4, 8, ..., the midpoints of the q intervals
    between `floor(linspace(0, T - 1, q + 1))` not taken yet, until every
    frame is listed.

    Args:
        num_frames: T >= 1.

    Returns:
        A list, a permutation of `range(T)`.

    Example:

    >>> coarse_to_fine_order(16)
    [7, 0, 15, 3, 11, 1, 5, 9, 13, 2, 4, 6, 8, 10, 12, 14]
    """
    num_frames = int(num_frames)
    order = list(dict.fromkeys([(num_frames - 1) // 2, 0, num_frames - 1]))
    intervals = 2
    while len(order) < num_frames:
        ends = np.floor(np.linspace(0, num_frames - 1, intervals + 1))
        for a, b in zip(ends[:-1], ends[1:]):
            middle = int((a + b) // 2)
            if middle not in order:
                order.append(middle)
        intervals *= 2
    return order


def open_dataset(data_dir):
    """The frames converter output `data_dir`."""
    return converted_dataset.ConvertedDataset(
        data_dir, schema="frames", converter="actnet_frames")


def load_trunk_weights(model, config):
    """Loads `glance_weights` / `focus_weights` into the model's trunks.

    A `.h5` is keras.applications' ImageNet weights (into a "keras" trunk:
    `load_keras_mobilenet_v2_weights`, `load_keras_resnet50_weights`), any
    other file a PyTorch checkpoint (into a "torchvision" trunk).

    Args:
        model: an `AdaFocusV1` or `AdaFocusV2`.
        config: the `task` section.

    Raises:
        ConfigError: a trunk of the other variant than the file's.
        CheckpointError: a file that does not fit the trunk (named).
    """
    for key, trunk, arch in (
            ("glance_weights", model.glance, model.glance_arch),
            ("focus_weights", model.focus, model.focus_arch)):
        path = config[key]
        if not path:
            continue
        # keras.applications' .h5 into "keras" trunks, PyTorch files into
        # "torchvision" ones (adafocus_config.validate checks the pairing).
        keras_file = adafocus_config.trunk_weights_format(path) == "h5"
        if arch == "mobilenet_v2":
            load = (adafocus_checkpoints.load_keras_mobilenet_v2_weights
                    if keras_file else
                    adafocus_checkpoints.load_mobilenet_v2_checkpoint)
        else:  # "resnet50" ("small" trunks take no weights: validate)
            load = (resnet50_checkpoints.load_keras_resnet50_weights
                    if keras_file else
                    resnet50_checkpoints.load_resnet50_checkpoint)
        report = load(trunk, path)
        logging.info("task.%s: %s", key, report.summary())




class AdaFocusVideoTask(tasks.Task):
    """Frames data and video-level evaluation of an AdaFocus task.

    Args:
        config: the `config.task` section.
        validate: the family's `validate(config)`.

    Raises:
        ConfigError: `validate` fails, or the data does not fit (an RGB
            frames dataset with the configured subsets).

    Example:

    ```python
    class MyAdaFocusTask(AdaFocusVideoTask):
        def __init__(self, config):
            super().__init__(config, validate=my_config.validate)
    ```
    """

    def __init__(self, config, *, validate):
        super().__init__(config)
        validate(config)
        if not config.data_dir:
            raise errors.ConfigError(
                "task.data_dir is empty: set it to a folder written by "
                "`python -m tfaction.data.convert --format=actnet_frames` "
                "(or fcvid_frames, minik_frames)")
        self.data = open_dataset(config.data_dir)
        self.class_names = self.data.class_names
        self.num_classes = len(self.class_names)
        self.data.require_subsets(config.train_subset, config.eval_subset)
        if "rgb" not in self.data.info.get("modalities", ["rgb"]):
            raise errors.ConfigError(
                f"{config.data_dir} holds no RGB frames (dataset_info.json "
                "modalities)")
        values = adafocus_config.frames_values(config.frames)
        self.num_frames = int(values["num_steps"])
        self.frame_size = tuple(int(v) for v in values["crop_size"])
        self.frame_order = (
            coarse_to_fine_order(self.num_frames)
            if config.frame_order == "coarse_to_fine"
            else list(range(self.num_frames)))
        self._predictions = None
        self.model = None

    # -------------------------------------------------------------- data
    def frames_config(self, batch_size=1):
        """The `FramesConfig` of both pipelines (the pipeline's `training`
        flag chooses sampling and crops)."""
        values = adafocus_config.frames_values(self.config.frames)
        # Deterministic order in training too: an epoch is a function of
        # (seed, epoch), for exact resume and 1-vs-N-replica equality.
        values.update(num_classes=self.num_classes, multi_label=False,
                      batch_size=batch_size, fold_views="none",
                      deterministic=True)
        return frames_pipeline.FramesConfig(**values)

    def random_draws(self, seed):
        """Per-example random tensors, features of every batch.

        Args:
            seed: the example's stateless seed (`ex["seed"]`).

        Returns:
            Dict name -> tensor: `random_locations` float32 `[T, 2]`,
            uniform in `[0, 1)` (subclasses add their own).
        """
        return {"random_locations": tf.random.stateless_uniform(
            [self.num_frames, 2], samplers.make_seed(seed, LOCATION_SALT))}

    def _labels_stage(self, ex, *, training):
        """Frames `[T, H, W, 3]` in the model's order, the labels and the
        random draws of one video."""
        video_id = ex[schemas.VIDEO_ID]
        labels = tf.cast(ex[schemas.CLIP_LABEL_INDEX], tf.int32)
        count = tf.size(labels)
        labels = input_reader.require(
            (count >= 1) & (count <= MAX_LABELS) & tf.reduce_all(
                (labels >= 0) & (labels < self.num_classes)),
            [f"expected 1 to {MAX_LABELS} clip/label/index values in "
             f"[0, {self.num_classes}) in video", video_id, labels], labels)
        if training and self.config.label_choice == "random":
            keys = tf.random.stateless_uniform(
                [count], samplers.make_seed(ex["seed"], LABEL_SALT))
            labels = tf.gather(labels, tf.argsort(keys))
        padded = tf.concat([labels, tf.fill([MAX_LABELS - count], -1)], 0)
        frames = tf.gather(ex["frames"][0], self.frame_order)
        frames = tf.ensure_shape(frames, [self.num_frames, *self.frame_size,
                                          3])
        return {"video_id": video_id, "frames": frames, "label": padded[0],
                "labels": padded, **self.random_draws(ex["seed"])}

    def build_inputs(self, training, *, global_batch_size, input_context=None,
                     epoch=0, seed=0):
        subset = (self.config.train_subset if training
                  else self.config.eval_subset)
        per_replica = (input_context.get_per_replica_batch_size(
            global_batch_size) if input_context else global_batch_size)
        config = self.frames_config(batch_size=global_batch_size)
        pipeline = frames_pipeline.build_frames_pipeline(
            config, training=training, seed=seed, batch_size=per_replica)
        pipeline.replace("labels", input_reader.map_stage(
            lambda ex: self._labels_stage(ex, training=training),
            deterministic=True, name="adafocus_labels"))
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
        label_keys = ("label", "labels", "video_id")
        pipeline.add("split", lambda ds: ds.map(
            lambda b: ({k: v for k, v in b.items() if k not in label_keys},
                       {k: b[k] for k in label_keys})), after="fold_views")
        return frames_pipeline.make_frames_dataset(
            self.data.files(subset), config, training=training, seed=seed,
            input_context=read_context, start_epoch=epoch, num_epochs=1,
            pipeline=pipeline)

    # -------------------------------------------------------------- steps
    @staticmethod
    def frame_loss(label, logits):
        """Cross-entropy of `[B, T, C]` logits, averaged over T -> [B]."""
        steps = tf.shape(logits)[1]
        per_step = keras.losses.sparse_categorical_crossentropy(
            tf.repeat(label[:, None], steps, axis=1), logits,
            from_logits=True)
        return tf.reduce_mean(per_step, axis=1)

    @staticmethod
    def check_gradient_scales(optimizer, scales, multipliers):
        """Per-group gradient scales are learning rates only with SGD.

        Args:
            optimizer: the trainer's `GlobalBatchOptimizer`.
            scales: the gradient scale of every trained variable.
            multipliers: the `task.lr_multipliers` section (for the error).

        Raises:
            ConfigError: a scale other than 1 with another optimizer.
        """
        inner = getattr(optimizer.optimizer, "inner_optimizer",
                        optimizer.optimizer)
        if any(s != 1.0 for s in scales) and not isinstance(
                inner, keras.optimizers.SGD):
            raise errors.ConfigError(
                f"task.lr_multipliers={dict(multipliers)} scale gradients, "
                f"which is a learning-rate multiplier only for SGD; "
                f"optimizer.name must be 'sgd' (got {type(inner).__name__})"
                f" or every multiplier 1")

    @staticmethod
    def coupled_decay(decay, variables):
        """PyTorch's coupled L2 decay as a loss: `decay * sum ||w||^2 / 2`
        (a list of one scalar, or empty when `decay` is 0)."""
        if not decay:
            return []
        return [float(decay) * tf.add_n(
            [tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in variables])]

    # -------------------------------------------------------- evaluation
    def aggregate_logs(self, state, step_logs):
        state = {} if state is None else state
        for logs in step_logs:
            for b, raw in enumerate(logs["video_id"]):
                video_id = raw.decode() if isinstance(raw, bytes) else raw
                if video_id:  # "" pads the last global batch
                    state[video_id] = {k: v[b] for k, v in logs.items()
                                       if k != "video_id"}
        return state

    def scores(self, logits, labels):
        """(mAP, top-1), both percent, of `[N, C]` logits against `[N, 3]`
        labels (-1 padded): the authors' `cal_map` on the first or all
        labels (`task.map_labels`)."""
        gt = labels if self.config.map_labels == "all" else labels[:, :1]
        return (adafocus_map.adafocus_map(logits, gt).map,
                adafocus_map.topk_accuracy(logits, labels, (1,))[0])

    @abc.abstractmethod
    def gflops(self):
        """The model's GFLOPs per video: a dict with `per_video`."""

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        state = aggregated_logs or {}
        if not state:
            self._predictions = None
            return {}
        ids = sorted(state)
        arrays = {key: np.stack([state[v][key] for v in ids])
                  for key in state[ids[0]]}
        labels = arrays.pop("labels").astype(np.int64)
        self._predictions = {"video_ids": np.array(ids), "labels": labels,
                             **{k: v.astype(np.float32)
                                for k, v in arrays.items()}}
        results = {"num_videos": float(len(ids))}
        for key in sorted(arrays):
            if key.endswith(SCORES):
                prefix = key[:-len(SCORES)]
                (results[f"{prefix}mAP"],
                 results[f"{prefix}top1"]) = self.scores(arrays[key], labels)
        if self.model is not None:
            results["gflops_per_video"] = self.gflops()["per_video"]
        return results

    def write_evaluation_outputs(self, workdir, global_step=None):
        """Writes the last evaluation's scores to `predictions.npz`."""
        if self._predictions is None:
            return None
        path = os.path.join(workdir, PREDICTIONS_FILE)
        arrays = dict(self._predictions)
        if global_step is not None:
            arrays["step"] = np.asarray(int(global_step))
        filesystems.save_npz(path, **arrays)
        return path
