"""ActionFormer task: temporal action localisation on feature sequences.

Wires the pieces of the recipe (happyharrycn/actionformer_release,
`train.py` / `eval.py` / `PtTransformer`) into a `Task`:

* data: feature-sequence TFRecords written by `python -m
  tfaction.data.convert --format=activitynet_features` (the task reads the
  folder's `dataset_info.json` for the feature dimension, the record
  encoding, the classes and the shard sizes, and `ground_truth.json` for
  evaluation); training crops (`random_truncate`: `trunc_thresh`,
  `crop_ratio`), padding to `max_seq_len`, and the ActivityNet dataset's
  rules (`tfaction.data.segment_rules`): duplicate annotations removed
  (`remove_duplicate_segments`), features resampled to a fixed length
  (`resample_length`), training annotations past the features dropped or
  clamped (`clip_segments_to_features`);
* training step: FCOS-style targets (`assign_point_labels`), sigmoid focal
  loss + centre DIoU loss, both summed and divided by the loss normaliser,
  an EMA (`loss_norm_momentum`) of the positive count **all-reduced over
  replicas** and updated before use, so 1 and N replicas train alike;
* weight decay on convolution / dense kernels only
  (`weight_decay_exclusions`);
* evaluation: per-video decoding, Soft-NMS (numpy, the reference algorithm)
  and conversion to seconds on the host (`VideoPostprocessor`), optional
  ActivityNet score fusion, official-style detection mAP; the detections
  are written to `<workdir>/predictions.json` (the `experiments.evaluate`
  format);
* export: `tfaction.serving.build_export_module(task, model)` (an
  `ActionFormerExportModule`).

Config (`config.task`): the keys, defaults and rules of
`tfaction.tasks.actionformer_config` (validated when the task is built).
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction import tasks
from tfaction.data import features_pipeline
from tfaction.data import filesystems
from tfaction.data import input_reader
from tfaction.data import segment_rules
from tfaction.data.formats import class_list
from tfaction.evaluation import activitynet_detection
from tfaction.losses.ctr_diou_loss_1d import ctr_diou_loss_1d
from tfaction.losses.sigmoid_focal_loss import sigmoid_focal_loss
from tfaction.models.actionformer import score_fusion
from tfaction.models.actionformer.model import ActionFormer
from tfaction.models.actionformer.postprocessing import VideoPostprocessor
from tfaction.ops.label_assignment import assign_point_labels
from tfaction.tasks import actionformer_config
from tfaction.tasks import converted_dataset
from tfaction.tasks import base_task
from tfaction.tasks.base_task import LOSS_METRIC

TASK_NAME = actionformer_config.TASK_NAME
PREDICTIONS_FILE = "predictions.json"
# Only convolution / dense kernels are decayed; biases, norms, Scale and
# LayerScale are not (the reference's optimizer parameter groups).
_DECAYED_WEIGHTS = ("kernel", "depthwise_kernel")


def open_dataset(data_dir):
    """The feature-sequence converter output `data_dir`.

    Raises:
        MalformedFileError: missing `dataset_info.json` or another schema.
    """
    return converted_dataset.ConvertedDataset(
        data_dir, schema="feature_sequence", converter="activitynet_features")


@tasks.register_task(TASK_NAME)
class ActionFormerTask(tasks.Task):
    """Temporal action localisation with ActionFormer.

    Args:
        config: the `config.task` section (`actionformer_config`).

    Raises:
        ConfigError: `actionformer_config.validate` fails, or `data_dir`
            is empty.

    Example:

    ```python
    config = actionformer_config.experiment_config()
    config.task.data_dir = "/data/synthetic_records"
    task = tasks.build_task(config)
    trainer = Trainer(task, config, "runs/af")
    trainer.train_and_evaluate()
    ```
    """

    config_schema = actionformer_config

    def __init__(self, config):
        super().__init__(config)
        actionformer_config.validate(config)
        if not config.data_dir:
            raise errors.ConfigError(
                "task.data_dir is empty: set it to a folder written by "
                "`python -m tfaction.data.convert "
                "--format=activitynet_features`")
        self.data = open_dataset(config.data_dir)
        self.info = self.data.info
        self.class_names = self.data.class_names
        self.num_classes = (1 if config.class_agnostic
                            else len(self.class_names))
        # Class-agnostic detections take their classes from external
        # video-level scores; without them they have none, and are
        # labelled and scored as one class (class-agnostic mAP).
        self.one_class_evaluation = bool(
            config.class_agnostic and not config.inference.ext_score_file)
        self.data.require_subsets(config.train_subset, config.eval_subset)
        self.max_segments = int(config.max_segments) or \
            self._max_segments_per_video(config.train_subset)
        self.model = None
        self.loss_normalizer = None
        self._predictions = None
        self._postprocessor = None  # built with the model's strides

    def _max_segments_per_video(self, subset):
        """Most GT segments of one video of `subset` (ground_truth.json).

        Padding every batch to it keeps the training step's shapes fixed
        (one trace instead of one per batch maximum).
        """
        path = self.data.path("ground_truth", "ground_truth.json")
        database = filesystems.read_json(path)["database"]
        counts = [len(v.get("annotations", ())) for v in database.values()
                  if str(v.get("subset", "")).lower() == subset.lower()]
        return max(counts + [1])

    # ------------------------------------------------------------- model
    def model_kwargs(self):
        """ActionFormer constructor arguments from `config.model`."""
        kwargs = dict(self.config.model.to_dict())
        kwargs.update(input_dim=int(self.info["feature_dim"]),
                      num_classes=self.num_classes,
                      max_seq_len=int(self.config.max_seq_len))
        if not self.config.class_agnostic:
            # Class ids no annotation uses (the converter's placeholders)
            # get the empty-class prior, as the authors' training sets
            # `head_empty_cls` from its dataset (EPIC-Kitchens nouns).
            kwargs["empty_classes"] = sorted(
                set(kwargs["empty_classes"] or ())
                | set(class_list.unannotated_ids(self.class_names)))
        return kwargs

    def build_model(self):
        self.model = ActionFormer(**self.model_kwargs(), name="actionformer")
        self._postprocessor = None
        # Training state of the losses (a checkpointed non-trainable
        # variable, unlike the reference's Python float, so that a resumed
        # run continues exactly). All replicas assign the same value.
        self.loss_normalizer = tf.Variable(
            float(self.config.loss.init_loss_norm), trainable=False,
            dtype=tf.float32, name="loss_normalizer",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        return self.model

    def checkpoint_items(self):
        return {"loss_normalizer": self.loss_normalizer}

    def weight_decay_exclusions(self, model):
        decayed = set()
        for layer in model._flatten_layers(include_self=False):
            for name in _DECAYED_WEIGHTS:
                var = getattr(layer, name, None)
                if isinstance(var, keras.Variable):
                    decayed.add(id(var))
        return [v for v in model.trainable_variables if id(v) not in decayed]

    # -------------------------------------------------------------- data
    def _features_config(self, training, global_batch_size):
        c = self.config
        resample = int(c.resample_length)
        div = self.model.max_div_factor if self.model is not None else 1
        return features_pipeline.FeaturesConfig(
            feature_dim=int(self.info["feature_dim"]),
            encoding=self.info["feature_encoding"],
            storage_dtype=self.info.get("feature_dtype", "float32"),
            max_length=int(c.max_seq_len) if training else None,
            pad_multiple=None if training else div,
            min_length=None if training else int(c.max_seq_len),
            max_segments=self.max_segments if training else None,
            # Resampled (fixed-length) features are not cropped, as in the
            # reference.
            truncate=training and not resample,
            crop_ratio=tuple(c.crop_ratio) if c.crop_ratio else None,
            trunc_thresh=float(c.trunc_thresh),
            batch_size=global_batch_size,
            shuffle_buffer_size=int(c.shuffle_buffer_size),
            deterministic=True)

    def _filler(self, count):
        """`count` empty parsed examples (video id "") padding the eval
        split to whole global batches; they produce no detections."""
        dim = int(self.info["feature_dim"])
        ex = {
            "epoch": tf.constant(0, tf.int64),
            "video_id": tf.constant(""),
            "features": tf.zeros([1, dim], tf.float32),
            "fps": tf.constant(1.0), "duration": tf.constant(1.0),
            "feature_stride": tf.constant(1.0),
            "feature_window": tf.constant(1.0),
            "crop_start": tf.constant(0, tf.int32),
            "segments": tf.zeros([0, 2], tf.float64),
            "segment_labels": tf.zeros([0], tf.int32),
        }
        return tf.data.Dataset.from_tensors(ex).repeat(count)

    def build_inputs(self, training, *, global_batch_size, input_context=None,
                     epoch=0, seed=0):
        subset = (self.config.train_subset if training
                  else self.config.eval_subset)
        config = self._features_config(training, global_batch_size)
        per_replica = (input_context.get_per_replica_batch_size(
            global_batch_size) if input_context else global_batch_size)
        pipeline = features_pipeline.build_features_pipeline(
            config, training=training, seed=seed, batch_size=per_replica)
        # The dataset's rules, in the reference's order, right after
        # parsing: deduplicate (by the original labels), resample, then
        # merge the classes.
        after = "parse"
        if training and self.config.remove_duplicate_segments:
            pipeline.add("remove_duplicates", lambda ds: ds.map(
                segment_rules.remove_duplicate_segments,
                num_parallel_calls=input_reader.AUTOTUNE,
                deterministic=True), after=after)
            after = "remove_duplicates"
        if self.config.resample_length:
            pipeline.add("resample", lambda ds: ds.map(
                lambda ex: segment_rules.resample_features(
                    ex, length=int(self.config.resample_length)),
                num_parallel_calls=input_reader.AUTOTUNE,
                deterministic=True), after=after)
            after = "resample"
        if self.config.class_agnostic:
            pipeline.add("class_agnostic", lambda ds: ds.map(
                lambda ex: dict(ex, segment_labels=tf.zeros_like(
                    ex["segment_labels"]))), after=after)
        read_context = input_context
        if not training:
            # Every worker reads every evaluation video, so the chief's
            # predictions (and metrics) cover the whole split; the split is
            # padded to whole steps of this worker's replicas.
            read_context = None
            fill = base_task.evaluation_fill(
                input_context, per_replica, self.data.num_records(subset))
            if fill:
                pipeline.add("fill", lambda ds: ds.concatenate(
                    self._filler(fill)), after="parse")
        return features_pipeline.make_features_dataset(
            self.data.files(subset), config, training=training, seed=seed,
            input_context=read_context, start_epoch=epoch, num_epochs=1,
            pipeline=pipeline)

    # ------------------------------------------------------------ losses
    def training_segments(self, batch):
        """Training GT of a batch in grid units, and its validity mask.

        Seconds -> grid as the reference datasets; with
        `clip_segments_to_features` (ActivityNet), annotations past the
        features are dropped or clamped (`segment_rules`).
        """
        grid = segment_rules.seconds_to_grid(
            batch["segments"], batch["fps"], batch["feature_stride"],
            batch["feature_window"])
        valid = batch["segment_mask"]
        if self.config.clip_segments_to_features:
            grid, valid = segment_rules.clip_to_feature_span(
                grid, valid, batch["length"],
                segment_rules.grid_offset(batch["feature_stride"],
                                          batch["feature_window"]),
                float(self.config.trunc_thresh))
        return grid, valid

    def _targets(self, batch, outputs):
        grid, valid = self.training_segments(batch)
        points = outputs["points"][0]
        return assign_point_labels(
            points, grid, tf.maximum(batch["segment_labels"], 0),
            self.num_classes, gt_valid=valid,
            center_sample="radius",
            center_sample_radius=float(self.config.loss.center_sample_radius))

    def compute_losses(self, batch, outputs):
        """Per-video (cls, reg) loss sums and the positive count.

        Args:
            batch: a pipeline batch (`segments` in seconds, ...).
            outputs: the model outputs.

        Returns:
            dict: `cls` `[B]` focal-loss sums over valid points and classes,
            `reg` `[B]` DIoU sums over positive points, `num_pos` scalar
            (this replica), `cls_targets`, `reg_targets`, `positive`.
        """
        loss_cfg = self.config.loss
        cls_t, reg_t = self._targets(batch, outputs)
        valid = outputs["mask"]
        positive = valid & (tf.reduce_sum(cls_t, axis=-1) > 0)
        cls = sigmoid_focal_loss(
            cls_t, outputs["cls_logits"], mask=valid,
            alpha=float(loss_cfg.focal_alpha),
            gamma=float(loss_cfg.focal_gamma),
            label_smoothing=float(loss_cfg.label_smoothing),
            reduction="none")
        reg = ctr_diou_loss_1d(reg_t, outputs["offsets"], mask=positive,
                               reduction="none")
        # "+ 0 * sum(offsets)" keeps the regression head connected to the
        # loss when a batch has no positive point (reference).
        reg_sum = tf.reduce_sum(reg, axis=-1) + 0.0 * tf.reduce_sum(
            tf.cast(outputs["offsets"], tf.float32), axis=[1, 2])
        return {"cls": tf.reduce_sum(cls, axis=[1, 2]), "reg": reg_sum,
                "num_pos": tf.reduce_sum(tf.cast(positive, tf.float32)),
                "cls_targets": cls_t, "reg_targets": reg_t,
                "positive": positive}

    def build_losses(self, labels, outputs):
        """Per-video `cls + loss_weight * reg` sums (before the normaliser)."""
        parts = self.compute_losses(labels, outputs)
        return parts["cls"] + float(self.config.loss.loss_weight) * \
            parts["reg"]

    def update_loss_normalizer(self, num_pos):
        """`N <- m N + (1 - m) max(num_pos, 1)`; returns the new N.

        `num_pos` must already be the global (all-replica) count.
        """
        m = float(self.config.loss.loss_norm_momentum)
        value = m * self.loss_normalizer + (1.0 - m) * tf.maximum(num_pos,
                                                                  1.0)
        self.loss_normalizer.assign(value)
        return value

    # ------------------------------------------------------------- steps
    def _model_inputs(self, batch):
        return {"features": batch["features"], "mask": batch["mask"]}

    def train_step(self, inputs, model, optimizer, metrics):
        weight = float(self.config.loss.loss_weight)
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            outputs = model(self._model_inputs(inputs), training=True)
            parts = self.compute_losses(inputs, outputs)
            num_pos = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                         parts["num_pos"])
            normalizer = tf.stop_gradient(self.update_loss_normalizer(
                num_pos))
            per_video = parts["cls"] + weight * parts["reg"]
            loss = optimizer.compute_loss(per_video, model.losses,
                                          global_normalizer=normalizer)
        grad_norm = optimizer.minimize(loss, model.trainable_variables, tape)
        # Each replica holds its share of the global loss; the Mean metrics
        # average over replicas, so scale the shares to the global value.
        share = float(context.num_replicas_in_sync) / normalizer
        values = {"cls_loss": tf.reduce_sum(parts["cls"]) * share,
                  "reg_loss": tf.reduce_sum(parts["reg"]) * share,
                  LOSS_METRIC: tf.reduce_sum(per_video) * share}
        for metric in metrics:
            metric.update_state(values[metric.name])
        return base_task.step_logs(loss, grad_norm,
                                   loss_normalizer=normalizer)

    def build_metrics(self, training=True):
        if not training:
            return []
        return [keras.metrics.Mean(name=LOSS_METRIC),
                keras.metrics.Mean(name="cls_loss"),
                keras.metrics.Mean(name="reg_loss")]

    def validation_step(self, inputs, model, metrics):
        del metrics
        outputs = model(self._model_inputs(inputs), training=False)
        return {
            "video_id": inputs["video_id"],
            "fps": inputs["fps"], "duration": inputs["duration"],
            "feature_stride": inputs["feature_stride"],
            "feature_window": inputs["feature_window"],
            "cls_logits": outputs["cls_logits"],
            "offsets": outputs["offsets"], "mask": outputs["mask"],
        }

    # -------------------------------------------------------- evaluation
    def postprocess_video(self, cls_logits, offsets, mask, *, fps, duration,
                          feature_stride, feature_window):
        """Detections of one video: decode, Soft-NMS, seconds.

        Args:
            cls_logits, offsets, mask: the model outputs of the video
                (`[P, K]`, `[P, 2]`, `[P]`, levels concatenated).
            fps, duration, feature_stride, feature_window: the video's.

        Returns:
            `(segments [N, 2] seconds, scores [N], labels [N])` numpy.
        """
        if self._postprocessor is None:
            inf = self.config.inference
            self._postprocessor = VideoPostprocessor(
                self.model.fpn_strides,
                pre_nms_thresh=float(inf.pre_nms_thresh),
                pre_nms_topk=int(inf.pre_nms_topk),
                duration_thresh=float(inf.duration_thresh),
                iou_threshold=float(inf.iou_threshold),
                min_score=float(inf.min_score),
                max_seg_num=int(inf.max_seg_num), method=inf.nms_method,
                multiclass=bool(inf.multiclass_nms),
                sigma=float(inf.nms_sigma),
                voting_thresh=float(inf.voting_thresh))
        return self._postprocessor(
            cls_logits, offsets, mask, fps=float(fps),
            duration=float(duration), feature_stride=float(feature_stride),
            feature_window=float(feature_window))

    def aggregate_logs(self, state, step_logs):
        state = {} if state is None else state
        for logs in step_logs:
            for b, raw in enumerate(logs["video_id"]):
                video_id = raw.decode() if isinstance(raw, bytes) else raw
                if not video_id:  # filler padding the last global batch
                    continue
                state[video_id] = self.postprocess_video(
                    logs["cls_logits"][b], logs["offsets"][b],
                    logs["mask"][b], fps=logs["fps"][b],
                    duration=logs["duration"][b],
                    feature_stride=logs["feature_stride"][b],
                    feature_window=logs["feature_window"][b])
        return state

    def predictions(self, detections):
        """Detections -> `{"results": {video: [{segment, score, label}]}}`.

        With `inference.ext_score_file`, ActivityNet score fusion replaces
        the (class-agnostic) labels by the external classifier's top
        classes; class-agnostic detections without it are labelled
        `activitynet_detection.AGNOSTIC_LABEL` and scored as one class
        (`python -m experiments.evaluate --class_agnostic` scores the
        written file alike).
        """
        inf = self.config.inference
        names = self.class_names
        if inf.ext_score_file:
            external = score_fusion.load_external_scores(inf.ext_score_file)
            fused = score_fusion.fuse_scores(
                {vid: {"segments": segs, "scores": scores}
                 for vid, (segs, scores, _) in detections.items()},
                external, topk_classes=int(inf.fusion_topk_classes),
                topk_segments=int(inf.fusion_topk_segments))
            detections = {vid: (d["segments"], d["scores"], d["labels"])
                          for vid, d in fused.items()}
            # Labels index the classifier's classes: its own names when the
            # file lists them, else the dataset's class order.
            names = external.class_names or self.class_names
            if external.num_classes != len(names):
                raise errors.MalformedFileError(
                    f"{external.num_classes} scores per video but "
                    f"{len(names)} class names", path=inf.ext_score_file,
                    key="class")
        if self.one_class_evaluation:
            names = [activitynet_detection.AGNOSTIC_LABEL]
        results = {}
        for video_id, (segs, scores, labels) in detections.items():
            results[video_id] = [
                {"segment": [float(s), float(e)], "score": float(p),
                 "label": names[int(k)]}
                for (s, e), p, k in zip(segs, scores, labels)]
        return {"results": results}

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        del global_step
        detections = aggregated_logs or {}
        self._predictions = self.predictions(detections)
        ev = self.config.evaluation
        gt_path = self.data.path("ground_truth", "ground_truth.json")
        columns = {"video-id": [], "t-start": [], "t-end": [], "label": [],
                   "score": []}
        for video_id, items in self._predictions["results"].items():
            for item in items:
                columns["video-id"].append(video_id)
                columns["t-start"].append(item["segment"][0])
                columns["t-end"].append(item["segment"][1])
                columns["label"].append(item["label"])
                columns["score"].append(item["score"])
        top_k = tuple(int(k) for k in ev.recall_top_k)
        result = activitynet_detection.evaluate_detection(
            gt_path, columns, subset=self.config.eval_subset,
            tiou_thresholds=np.asarray(ev.tiou_thresholds, np.float64),
            variant=ev.variant, top_k=top_k or (1, 5),
            skip_unknown_labels=bool(ev.skip_unknown_labels),
            class_agnostic=self.one_class_evaluation)
        metrics = {"average_mAP": result.average_mAP,
                   "num_videos": float(len(detections))}
        for t, value in zip(result.tiou_thresholds, result.mAP_per_tiou):
            metrics[f"mAP@{t:.2f}"] = float(value)
        # Recall@kx per threshold, e.g. "R@1x@0.50" (the authors' Ego4D
        # headline number).
        for j, k in enumerate(top_k):
            for t, value in zip(result.tiou_thresholds, result.recall[:, j]):
                metrics[f"R@{k}x@{t:.2f}"] = float(value)
        return metrics

    def write_evaluation_outputs(self, workdir, global_step=None):
        """Writes the last evaluation's detections to `predictions.json`."""
        if self._predictions is None:
            return None
        path = os.path.join(workdir, PREDICTIONS_FILE)
        payload = dict(self._predictions, step=global_step,
                       subset=self.config.eval_subset)
        filesystems.atomic_write_text(path, json.dumps(payload) + "\n")
        return path
