"""Video Action Transformer task: AVA-style person action detection.

Wires `tfaction.models.action_transformer.ActionTransformer` to the records
of `python -m tfaction.data.convert --format=ava` (one keyframe per record,
its clip and its person boxes with multi-label actions) and to the
official AVA frame-AP (`tfaction.evaluation.ava_frame_ap`).

Training step (Faster R-CNN, TF Object Detection API semantics): the I3D
trunk runs on the clip; the RPN on its central frame is trained against
anchor targets (256 anchors per clip, half positive at most, IoU >= 0.7 /
< 0.3, anchors crossing the image pruned); its proposals (NMS at 0.7, R
per clip, no gradient) are matched to the ground truth at IoU 0.5 and a
minibatch of 64 (a quarter positive at most) goes through the box head,
trained with per-class sigmoid cross-entropy (background column) and a
class-agnostic smooth-L1 box loss. The per-clip losses are summed and the
trainer divides by the global batch. With `losses.add_groundtruth_proposals`
the ground-truth boxes join the proposals before the minibatch is sampled
(positives from the first step, before the RPN finds anyone). Trained
batch norms (`model.trunk_batch_norm="batch"`, for training from scratch)
take their statistics over the global batch.

Evaluation: the whole model on each validation clip, person NMS (0.6),
per-box action probabilities, the top 50 (box, action) rows of each
keyframe written as the official CSV and scored against the converter's
ground-truth CSV (`evaluation.boxes="groundtruth"` scores the head on the
ground-truth boxes instead, the paper's "GT boxes" rows). The detections
are written to `<workdir>/detections_<subset>.csv`.
"""

import io
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfaction import errors
from tfaction import tasks
from tfaction.data import filesystems
from tfaction.data import keyframe_boxes_pipeline as pipeline_lib
from tfaction.data.formats import ava_label_maps
from tfaction.evaluation import ava_frame_ap
from tfaction.losses.box_classifier_loss import box_classifier_loss
from tfaction.losses.rpn_loss import rpn_loss
from tfaction.models.action_transformer import decoding
from tfaction.models.action_transformer import model as model_lib
from tfaction.ops import box_coder
from tfaction.ops import detection_targets
from tfaction.tasks import action_transformer_config
from tfaction.tasks import base_task
from tfaction.tasks import converted_dataset
from tfaction.tasks.base_task import LOSS_METRIC
from tfaction.training import checkpointing

TASK_NAME = action_transformer_config.TASK_NAME
DETECTIONS_FILE = "detections_{subset}.csv"


def open_dataset(data_dir):
    """The AVA converter output `data_dir`."""
    return converted_dataset.ConvertedDataset(
        data_dir, schema="keyframe_boxes", converter="ava")


def load_trunk_weights(models, path, weights_format="auto", scope="RGB"):
    """Loads I3D weights into the trunk (and I3D head blocks).

    Args:
        models: `InceptionI3D` models (trunk, head blocks).
        path: DeepMind TF1 checkpoint prefix or keras-kinetics-i3d `.h5`.
        weights_format: "tf1", "h5" or "auto" (by the file name).
        scope: the TF1 checkpoint's stream scope ("RGB", "Flow", "").

    Returns:
        The loader's report (`tfaction.checkpoints.i3d.I3DImport`).
    """
    from tfaction.checkpoints import i3d as i3d_checkpoints

    if weights_format == "auto":
        weights_format = "h5" if path.endswith(".h5") else "tf1"
    if weights_format == "h5":
        return i3d_checkpoints.load_keras_i3d_weights(models, path)
    return i3d_checkpoints.load_i3d_checkpoint(models, path, scope=scope)


def _format_row(row):
    video_id, timestamp, x1, y1, x2, y2, action, score = row
    return (f"{video_id},{timestamp},{x1:.6f},{y1:.6f},{x2:.6f},{y2:.6f},"
            f"{action},{score:.6g}")


@tasks.register_task(TASK_NAME)
class ActionTransformerTask(tasks.Task):
    """Person action detection with the Video Action Transformer.

    Args:
        config: the `config.task` section (`action_transformer_config`).

    Raises:
        ConfigError: the config fails `action_transformer_config.validate`,
            or `task.data_dir` is empty.
        MalformedFileError: `task.data_dir` is not an AVA converter output.

    Example:

    ```python
    config = action_transformer_config.experiment_config("tx")
    config.task.data_dir = "data/ava/records"
    config.task.trunk_weights = "i3d/rgb_imagenet/model.ckpt"
    task = tasks.build_task(config)
    model = task.build_model()
    ```
    """

    config_schema = action_transformer_config

    def __init__(self, config):
        super().__init__(config)
        action_transformer_config.validate(config)
        if not config.data_dir:
            raise errors.ConfigError(
                "task.data_dir is empty: set it to a folder written by "
                "`python -m tfaction.data.convert --format=ava`")
        self.data = open_dataset(config.data_dir)
        self.class_names = self.data.class_names
        self.num_classes = len(self.class_names)
        self.data.require_subsets(config.train_subset, config.eval_subset)
        # Records store label index = AVA action id - 1.
        self.action_ids = np.arange(1, self.num_classes + 1)
        self.model = None
        self._rows = None

    # -------------------------------------------------------------- data
    def clips_config(self, batch_size=1):
        """The `KeyframeBoxesConfig` of the pipelines."""
        values = action_transformer_config.clips_values(self.config.clips)
        values.update(num_classes=self.num_classes, batch_size=batch_size,
                      deterministic=True)
        return pipeline_lib.KeyframeBoxesConfig(**values)

    @staticmethod
    def _split(ex):
        labels = {k: ex[k] for k in ("boxes", "box_mask", "labels",
                                     "video_id", "timestamp_text")}
        return ex["frames"], labels

    def build_inputs(self, training, *, global_batch_size, input_context=None,
                     epoch=0, seed=0):
        subset = (self.config.train_subset if training
                  else self.config.eval_subset)
        per_replica = (input_context.get_per_replica_batch_size(
            global_batch_size) if input_context else global_batch_size)
        config = self.clips_config(batch_size=global_batch_size)
        pipeline = pipeline_lib.build_keyframe_boxes_pipeline(
            config, training=training, seed=seed, batch_size=per_replica)
        read_context = input_context
        if not training:
            # Every worker reads every keyframe (the chief scores them
            # all), padded with blank clips (id "") to whole steps.
            read_context = None
            base_task.pad_evaluation_split(
                pipeline, input_context, per_replica,
                self.data.num_records(subset),
                lambda ex: base_task.blank_example(
                    ex, ("video_id", "timestamp_text")),
                after="normalize")
        return pipeline_lib.make_keyframe_boxes_dataset(
            self.data.files(subset), config, training=training, seed=seed,
            input_context=read_context, start_epoch=epoch, num_epochs=1,
            pipeline=pipeline).map(self._split)

    # ------------------------------------------------------------- model
    def _i3d_models(self, model):
        models = [model.trunk]
        if model.head in ("i3d", "tx_i3d"):
            models.append(model.box_head.get_layer("i3d_blocks"))
        return models

    def build_model(self):
        action_transformer_config.require_weights(self.config)
        model = model_lib.ActionTransformer(
            self.num_classes,
            **action_transformer_config.model_values(self.config.model))
        # Trained batch norms take their statistics over the global batch,
        # so that 1 and N replicas compute alike.
        base_task.synchronize_batch_norms(model)
        if self.config.trunk_weights:
            report = load_trunk_weights(
                self._i3d_models(model), self.config.trunk_weights,
                self.config.trunk_weights_format,
                self.config.trunk_weights_scope)
            logging.info("I3D weights: %s", report.summary())
        if self.config.init_checkpoint:
            path = checkpointing.restore_model_weights(
                model, self.config.init_checkpoint)
            logging.info("initialised the model from %s", path)
        self.model = model
        return model

    # ---------------------------------------------------------- training
    @staticmethod
    def sampling_seeds(labels, step):
        """Per-clip stateless seeds `[B, 2]` of the minibatch samplers.

        A hash of the keyframe (video id and timestamp) and the step: each
        clip's anchors and proposals are sampled the same way whatever else
        is in its batch, so 1 and N replicas train alike, and a resumed run
        draws what the uninterrupted one drew.

        Args:
            labels: the batch labels (`video_id`, `timestamp_text`).
            step: the optimizer step (int tensor).

        Returns:
            int64 `[B, 2]`.
        """
        key = tf.strings.join([labels["video_id"], labels["timestamp_text"]],
                              separator=",")
        hashed = tf.strings.to_hash_bucket_fast(key, 2 ** 31 - 1)
        step = tf.fill(tf.shape(hashed), tf.cast(step, tf.int64))
        return tf.stack([hashed, step], axis=1)

    def forward_train(self, model, clips, labels, training=True, seeds=None):
        """The training forward pass: RPN outputs + sampled box head.

        Args:
            model: the `ActionTransformer`.
            clips: `[B, T, H, W, 3]`.
            labels: dict with `boxes` `[B, G, 4]`, `box_mask` `[B, G]`,
                `labels` `[B, G, C]`.
            training: dropout on.
            seeds: optional `[B, 2]` sampler seeds (`sampling_seeds`); None
                draws from TF's global random state.

        Returns:
            dict of the tensors `build_losses` needs.
        """
        losses = self.config.losses
        features = model.trunk(clips, training=training)
        centre = model.rpn_frame_layer(features)
        rpn_logits, rpn_deltas = model.rpn_head(centre, training=training)
        generator = model.proposal_generator
        anchors = generator.anchors(centre, clips)
        proposals = generator([rpn_logits, rpn_deltas, centre, clips])
        boxes, mask = proposals["boxes"], proposals["mask"]
        if losses.add_groundtruth_proposals:
            boxes = tf.concat([boxes, tf.cast(labels["boxes"], boxes.dtype)],
                              axis=1)
            mask = tf.concat([mask, tf.cast(labels["box_mask"], tf.bool)],
                             axis=1)
        sampled = detection_targets.sample_proposals(
            boxes, mask, labels["boxes"],
            labels["box_mask"], labels["labels"],
            batch_size=int(losses.second_stage_batch_size),
            positive_fraction=float(losses.second_stage_positive_fraction),
            seed=None if seeds is None else seeds + [[1, 0]])
        second = model.box_head([features, sampled["boxes"]],
                                training=training)
        return {"anchors": anchors, "rpn_logits": rpn_logits,
                "rpn_deltas": rpn_deltas, "sampled_boxes": sampled["boxes"],
                "sampled_mask": sampled["mask"],
                "class_logits": second["class_logits"],
                "box_deltas": second["box_deltas"], "seeds": seeds}

    def build_losses(self, labels, outputs):
        """Per-clip RPN + box-classifier losses `[B]` (float32)."""
        losses = self.config.losses
        anchors = outputs["anchors"]
        anchor_mask = None
        if losses.rpn_inside_anchors_only:
            anchor_mask = box_coder.boxes_inside_window(
                anchors)
        rpn = detection_targets.rpn_targets(
            anchors, labels["boxes"], labels["box_mask"],
            anchor_mask=anchor_mask,
            minibatch_size=int(losses.rpn_minibatch_size),
            positive_fraction=float(losses.rpn_positive_fraction),
            seed=outputs.get("seeds"))
        first = rpn_loss(
            outputs["rpn_logits"], outputs["rpn_deltas"], rpn,
            localization_weight=float(losses.rpn_localization_weight),
            objectness_weight=float(losses.rpn_objectness_weight),
            reduction="none")
        targets = detection_targets.box_classifier_targets(
            outputs["sampled_boxes"], outputs["sampled_mask"],
            labels["boxes"], labels["box_mask"], labels["labels"])
        second = box_classifier_loss(
            outputs["class_logits"], outputs["box_deltas"], targets,
            localization_weight=float(losses.localization_weight),
            classification_weight=float(losses.classification_weight),
            reduction="none")
        return (first["localization_loss"] + first["objectness_loss"]
                + second["localization_loss"]
                + second["classification_loss"])

    def train_step(self, inputs, model, optimizer, metrics):
        clips, labels = inputs
        seeds = self.sampling_seeds(labels, optimizer.optimizer.iterations)
        with tf.GradientTape() as tape:
            outputs = self.forward_train(model, clips, labels, training=True,
                                         seeds=seeds)
            per_example_loss = self.build_losses(labels, outputs)
            loss = optimizer.compute_loss(per_example_loss, model.losses)
        grad_norm = optimizer.minimize(loss, model.trainable_variables, tape)
        for metric in metrics:
            if metric.name == LOSS_METRIC:
                metric.update_state(per_example_loss)
        return base_task.step_logs(loss, grad_norm)

    def build_metrics(self, training=True):
        return [keras.metrics.Mean(name=LOSS_METRIC)] if training else []

    # -------------------------------------------------------- evaluation
    def detect(self, model, clips, boxes=None, box_mask=None):
        """Person detections of a batch of clips.

        Args:
            model: the `ActionTransformer`.
            clips: `[B, T, H, W, 3]`.
            boxes: optional `[B, G, 4]` boxes to score instead of the
                detected people (the "GT boxes" evaluation), with
                `box_mask` `[B, G]`.

        Returns:
            dict: `boxes` `[B, N, 4]`, `scores` `[B, N, C]`, `mask`
            `[B, N]`.
        """
        ev = self.config.evaluation
        if boxes is not None:
            features = model.trunk(clips, training=False)
            second = model.box_head([features, boxes], training=False)
            return {"boxes": boxes, "mask": box_mask,
                    "scores": tf.sigmoid(second["class_logits"][..., 1:])}
        out = model(clips, training=False)
        return decoding.decode_detections(
            out["proposals"], out["proposal_mask"], out["class_logits"],
            out["box_deltas"], nms_iou_threshold=ev.nms_iou_threshold,
            max_detections=int(ev.max_detections))

    def validation_step(self, inputs, model, metrics):
        del metrics
        clips, labels = inputs
        if self.config.evaluation.boxes == "groundtruth":
            det = self.detect(model, clips, labels["boxes"],
                              labels["box_mask"])
        else:
            det = self.detect(model, clips)
        return {"video_id": labels["video_id"],
                "timestamp": labels["timestamp_text"],
                "boxes": det["boxes"], "scores": det["scores"],
                "mask": det["mask"]}

    def aggregate_logs(self, state, step_logs):
        state = [] if state is None else state
        top_k = int(self.config.evaluation.rows_per_keyframe)
        for logs in step_logs:
            for b, raw in enumerate(logs["video_id"]):
                video_id = raw.decode() if isinstance(raw, bytes) else raw
                if not video_id:  # "" pads the last global batch
                    continue
                ts = logs["timestamp"][b]
                ts = ts.decode() if isinstance(ts, bytes) else str(ts)
                keep = np.asarray(logs["mask"][b], bool)
                state.extend(decoding.ava_rows(
                    video_id, ts, np.asarray(logs["boxes"][b])[keep],
                    np.asarray(logs["scores"][b])[keep], self.action_ids,
                    top_k=top_k))
        return state

    def _label_map(self):
        ev = self.config.evaluation
        if ev.label_map:
            return ava_label_maps.label_map_path(ev.label_map)
        return os.path.join(self.config.data_dir,
                            self.data.info.get("label_map",
                                               "label_map.pbtxt"))

    def _ground_truth(self):
        subset = self.config.eval_subset
        name = self.data.info.get("ground_truth", {}).get(subset)
        if not name:
            raise errors.MalformedFileError(
                f"no ground truth for subset {subset!r} in dataset_info.json",
                path=os.path.join(self.config.data_dir,
                                  converted_dataset.DATASET_INFO),
                key="ground_truth")
        return os.path.join(self.config.data_dir, name)

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        rows = aggregated_logs or []
        self._rows = rows
        text = "".join(_format_row(r) + "\n" for r in rows)
        with tempfile.TemporaryDirectory() as tmp:
            detections = os.path.join(tmp, "detections.csv")
            ground_truth = os.path.join(tmp, "ground_truth.csv")
            with open(detections, "w") as f:
                f.write(text)
            # The evaluator reads local files; the data may be remote.
            with open(ground_truth, "w") as f:
                f.write(filesystems.read_text(self._ground_truth()))
            label_map = self._label_map()
            local_map = os.path.join(tmp, os.path.basename(label_map))
            with open(local_map, "w") as f:
                f.write(filesystems.read_text(label_map))
            result = ava_frame_ap.evaluate(ground_truth, detections,
                                           local_map)
        return {"frame_mAP": float(result["mAP"]),
                "num_detection_rows": float(len(rows)),
                **{f"AP/{name}": float(ap)
                   for name, ap in result["ap_per_class"].items()}}

    def write_evaluation_outputs(self, workdir, global_step=None):
        """Writes the last evaluation's AVA CSV (official format)."""
        del global_step
        if self._rows is None:
            return None
        path = os.path.join(workdir, DETECTIONS_FILE.format(
            subset=self.config.eval_subset))
        buffer = io.StringIO()
        for row in self._rows:
            buffer.write(_format_row(row) + "\n")
        filesystems.atomic_write_text(path, buffer.getvalue())
        return path
