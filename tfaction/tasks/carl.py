"""CARL task: self-supervised frame-wise representations of long videos.

Wires `tfaction.models.carl.CARL` (Chen, Wei, Li, Cai, CVPR 2022) to the
records of `python -m tfaction.data.convert --format=tcc` (one record per
video: every frame as JPEG, a phase label per frame, the action) and to the
frame-wise protocols of `tfaction.evaluation.framewise`.

Training step: each video of the batch comes as two augmented views of T
frames (`tfaction.data.frame_sequence_pipeline`: `frames` `[B, 2, T, H, W,
3]`, the original frame index of every slot in `steps`, the valid slots in
`masks`). The views are folded into the batch (`[2B, T, ...]`, one mask row
per view), the model's L2-normalised `projections` are unfolded to `[B, 2,
T, D]` and the sequence contrastive loss is computed per video (`scope=
"video"`: a video's loss depends on its own frames only, its other view is
the only negative); the trainer's `compute_loss` divides the sum by the
global number of videos, so 1 and N replicas get the same gradient. With
`sync_batch_norm` (default) the trained batch norms take their statistics
over the whole global batch, as the authors' SyncBatchNorm, so the forward
pass does not depend on how videos are split over replicas either. The
coupled L2 decay (`l2_weight_decay`, PyTorch Adam's `weight_decay`) is
`0.5 * wd * sum(w^2)` over every trainable variable, counted once per step
(each replica adds its 1/N share).

Evaluation embeds every frame of every video of the training AND the
evaluation subset (the probes are fitted on the training videos): a video
of n frames is cut into `ceil(n / frames_per_chunk)` equal chunks, each
embedded on its own in inference mode (its positions interpolated over the
training length, as the reference does); frames labelled < 0 are dropped
afterwards. The protocols (`evaluation.protocols`):

* `"framewise"`: `tfaction.evaluation.framewise.evaluate` (variant "carl":
  Kendall's tau on train and val at `kendalls_tau_stride`, retrieval
  precision@K, logistic-regression phase classification and phase
  progression R^2 at each train fraction of the first videos in dataset
  order; variant "tcc": SVC and few-shot instead of logistic regression and
  retrieval);
* `"few_shot"`: few-shot phase classification (TCC's episodes) with the
  variant's classifier;
* `"finegym"`: FineGym's probe (`finegym_linear_probe`): a linear layer on
  the frozen embeddings trained with SGD, frame accuracy on val.

With `per_action` (PennAction) every action (the record's class) is a
dataset of its own; the results are the mean over actions, with each
action's under `<action>/`. The scored embeddings (labelled frames only)
are written to `<workdir>/embeddings.npz` in the layout of
`tfaction.evaluation.framewise_io`, with the video ids in
`<workdir>/embeddings_videos.json`: `python -m experiments.evaluate
--metric=framewise --variant=carl` on that file recomputes the numbers (its
default strides 5 and 2, fractions 0.1 / 0.5 / 1.0 and K 5 / 10 / 15
include the recipes').

Video order: the converter writes a subset's records round-robin over its
shards, and the evaluation reads the shards round-robin, which restores the
source order: the "first f x N training videos" of the probes are the
reference's.

Config (`config.task`): the keys, defaults and rules of
`tfaction.tasks.carl_config`.
"""

import dataclasses
import math
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfaction import errors
from tfaction import tasks
from tfaction.data import filesystems
from tfaction.data import frame_sequence_pipeline as pipeline_lib
from tfaction.data import input_reader
from tfaction.evaluation import framewise
from tfaction.evaluation import framewise_probes
from tfaction.losses.sequence_contrastive_loss import (
    sequence_contrastive_loss)
from tfaction.models.carl import model as model_lib
from tfaction.models.carl import whole_videos
from tfaction.tasks import base_task
from tfaction.tasks import carl_config
from tfaction.tasks import converted_dataset
from tfaction.tasks.base_task import LOSS_METRIC
from tfaction.training import checkpointing

TASK_NAME = carl_config.TASK_NAME
EMBEDDINGS_FILE = "embeddings.npz"
VIDEOS_FILE = "embeddings_videos.json"
SUBSETS = ("train", "val")  # index 0 / 1 of the `subset` label
DEFAULT_DATASET = "default"
# Per-frame entries of an evaluation example (padded in a batch).
_FRAME_KEYS = ("frames", "steps", "masks", "frame_labels")


def open_dataset(data_dir):
    """The TCC converter output `data_dir`."""
    return converted_dataset.ConvertedDataset(
        data_dir, schema="frame_labels", converter="tcc")


def load_trunk_weights(model, path, weights_format="auto"):
    """Loads pretrained ResNet-50 weights into the model's frame encoder.

    Args:
        model: a model holding one `tfaction` ResNet50 (the CARL trunk).
        path: a PyTorch `.pth` (torchvision's ResNet-50, CARL's
            `BYOL_1000.pth`, MoCo / SimCLR files: the ResNet-50 is found in
            the file, `tfaction.checkpoints.resnet50.load_resnet50_checkpoint`)
            or a keras.applications `.h5` (only into a "v1" ResNet-50,
            `load_keras_resnet50_weights`).
        weights_format: "pth", "h5" or "auto" (by the file name).

    Returns:
        The loader's report (`ResNet50Import`).

    Raises:
        ConfigError: unknown format, or weights of another ResNet-50
            variant than the model's.
        CheckpointError: the file does not fit (nothing is assigned).
    """
    from tfaction.checkpoints import resnet50 as resnet50_checkpoints

    if weights_format == "auto":
        weights_format = "h5" if str(path).endswith(".h5") else "pth"
    if weights_format == "pth":
        return resnet50_checkpoints.load_resnet50_checkpoint(model, path)
    if weights_format == "h5":
        return resnet50_checkpoints.load_keras_resnet50_weights(model, path)
    raise errors.ConfigError(
        f"task.trunk_weights_format must be one of "
        f"{carl_config.TRUNK_WEIGHT_FORMATS}, got {weights_format!r}")


def coupled_l2_loss(variables, weight_decay):
    """`0.5 * weight_decay * sum(w^2)`: its gradient is PyTorch's coupled
    decay `weight_decay * w` (float32 scalar)."""
    terms = [tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
             for v in variables]
    if not terms or not weight_decay:
        return tf.constant(0.0)
    return 0.5 * float(weight_decay) * tf.add_n(terms)


def finegym_linear_probe(train, val, fractions, num_classes, *,
                         learning_rate=50.0, epochs=100, momentum=0.9,
                         weight_decay=1e-6, batch_videos=10, seed=0):
    """FineGym's probe: a linear classifier on frozen frame embeddings.

    As the CARL authors' FineGym evaluation: for each fraction f the first
    `max(batch_videos, int(f * N))` training videos (at most N), a linear
    layer (PyTorch `nn.Linear` initialisation) trained with softmax
    cross-entropy (mean over the frames of a batch) by SGD with momentum
    and coupled weight decay, the learning rate `lr * (1 + cos(pi * e /
    epochs)) / 2` in epoch e, batches of the frames of `batch_videos`
    shuffled videos (the last partial batch dropped); the score is the
    frame accuracy on every val frame after the last epoch. Computed in
    float64 NumPy.

    Args:
        train, val: dicts `{"embs": [(T_i, D)], "labels": [(T_i,)]}` of
            labelled frames (labels in [0, num_classes)).
        fractions: train fractions.
        num_classes: classifier outputs (Gym99: 99).
        learning_rate, epochs, momentum, weight_decay, batch_videos, seed:
            the SGD settings (the authors': 50, 100, 0.9, 1e-6, 10) and the
            seed of the initialisation and of the shuffles.

    Returns:
        Dict `{str(fraction): accuracy}`.
    """
    embs = [np.asarray(e, np.float64) for e in train["embs"]]
    labels = [np.asarray(y, np.int64) for y in train["labels"]]
    val_x = np.concatenate(val["embs"]).astype(np.float64)
    val_y = np.concatenate(val["labels"]).astype(np.int64)
    dim = val_x.shape[1]
    out = {}
    for fraction in fractions:
        n = min(len(embs), max(int(batch_videos), int(fraction * len(embs))))
        rng = np.random.RandomState(seed)
        bound = 1.0 / math.sqrt(dim)
        w = rng.uniform(-bound, bound, (dim, num_classes))
        b = rng.uniform(-bound, bound, num_classes)
        vw, vb = np.zeros_like(w), np.zeros_like(b)
        size = min(int(batch_videos), n)
        for epoch in range(int(epochs)):
            lr = learning_rate * (1 + math.cos(math.pi * epoch / epochs)) / 2
            order = rng.permutation(n)
            for i in range(n // size):
                chosen = order[i * size:(i + 1) * size]
                x = np.concatenate([embs[j] for j in chosen])
                y = np.concatenate([labels[j] for j in chosen])
                z = x @ w + b
                z -= z.max(axis=1, keepdims=True)
                p = np.exp(z)
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(len(y)), y] -= 1.0
                p /= len(y)
                vw = momentum * vw + x.T @ p + weight_decay * w
                vb = momentum * vb + p.sum(axis=0) + weight_decay * b
                w -= lr * vw
                b -= lr * vb
        predicted = np.argmax(val_x @ w + b, axis=1)
        out[str(float(fraction))] = float(np.mean(predicted == val_y))
    return out


def _flatten(results, prefix=""):
    """Nested metric dicts -> flat `{"a/b": float}`."""
    flat = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = float(value)
    return flat


def _mean_over(per_dataset):
    """Mean of flat metric dicts over datasets (keys of the first)."""
    first = next(iter(per_dataset.values()))
    return {key: float(np.mean([m[key] for m in per_dataset.values()]))
            for key in first}


@tasks.register_task(TASK_NAME)
class CARLTask(tasks.Task):
    """Frame-wise representation learning with CARL (module docstring).

    Args:
        config: the `config.task` section (`carl_config`).

    Raises:
        ConfigError: the config fails `carl_config.validate`, or
            `task.data_dir` is empty.
        MalformedFileError: `task.data_dir` is not a `--format=tcc` output.

    Example:

    ```python
    config = carl_config.experiment_config("pouring")
    config.task.data_dir = "data/pouring/records"
    config.task.trunk_weights = "pretrained/BYOL_1000.pth"
    task = tasks.build_task(config)
    model = task.build_model()
    ```
    """

    config_schema = carl_config

    def __init__(self, config):
        super().__init__(config)
        carl_config.validate(config)
        if not config.data_dir:
            raise errors.ConfigError(
                "task.data_dir is empty: set it to a folder written by "
                "`python -m tfaction.data.convert --format=tcc` (or "
                "--format=finegym)")
        self.data = open_dataset(config.data_dir)
        self.class_names = self.data.class_names
        self.data.require_subsets(config.train_subset, config.eval_subset)
        self.model = None
        self._scored = None

    # -------------------------------------------------------------- data
    def views_config(self, batch_size=1, **overrides):
        """The `FrameSequenceConfig` of the pipelines."""
        values = carl_config.views_values(self.config.views)
        # Deterministic order in training too: an epoch is a function of
        # (seed, epoch), for exact resume and 1-vs-N-replica equality.
        values.update(batch_size=batch_size, deterministic=True)
        values.update(overrides)
        return pipeline_lib.FrameSequenceConfig(**values)

    @staticmethod
    def _split_train(batch):
        features = {"frames": batch["frames"], "mask": batch["masks"]}
        labels = {k: batch[k] for k in ("steps", "masks", "seq_lens",
                                        "frame_labels", "video_id",
                                        "label")}
        return features, labels

    @staticmethod
    def _split_eval(batch):
        features = {"frames": batch["frames"], "mask": batch["masks"]}
        labels = {k: batch[k] for k in ("video_id", "label", "subset",
                                        "index", "frame_labels",
                                        "num_frames")}
        return features, labels

    @staticmethod
    def _blank(example):
        """A padding video without frames (id "")."""
        out = {}
        for key, value in example.items():
            if key in _FRAME_KEYS:
                out[key] = value[:0]
            elif value.dtype == tf.string:
                out[key] = tf.constant("")
            else:
                out[key] = tf.zeros_like(value)
        out["index"] = tf.constant(-1, tf.int32)
        return out

    def _subset_videos(self, subset, split_index, config, seed):
        """Unbatched whole videos of one subset, in the source order."""
        files = self.data.files(subset)
        # Round-robin over every shard undoes the converter's round-robin
        # writing (source order).
        config = dataclasses.replace(config, cycle_length=len(files))
        pipeline = pipeline_lib.build_frame_sequence_pipeline(
            config, training=False, seed=seed, batch_size=1)
        pipeline.remove("batch").remove("prefetch")
        pipeline.add("subset", lambda ds: ds.map(
            lambda ex: dict(ex, subset=tf.constant(split_index, tf.int32))))
        return pipeline_lib.make_frame_sequence_dataset(
            files, config, training=False, seed=seed, input_context=None,
            pipeline=pipeline)

    def build_inputs(self, training, *, global_batch_size, input_context=None,
                     epoch=0, seed=0):
        per_replica = (input_context.get_per_replica_batch_size(
            global_batch_size) if input_context else global_batch_size)
        config = self.views_config(batch_size=global_batch_size)
        if training:
            pipeline = pipeline_lib.build_frame_sequence_pipeline(
                config, training=True, seed=seed, batch_size=per_replica)
            pipeline.add("split", lambda ds: ds.map(self._split_train),
                         after="batch")
            return pipeline_lib.make_frame_sequence_dataset(
                self.data.files(self.config.train_subset), config,
                training=True, seed=seed, input_context=input_context,
                start_epoch=epoch, num_epochs=1, pipeline=pipeline)
        # Evaluation: every worker reads every video of both subsets (the
        # chief scores them all), padded with empty videos (id "") to
        # whole steps of its replicas.
        subsets = (self.config.train_subset, self.config.eval_subset)
        videos = self._subset_videos(subsets[0], 0, config, seed)
        videos = videos.concatenate(
            self._subset_videos(subsets[1], 1, config, seed))
        num_videos = sum(self.data.num_records(s) for s in subsets)
        padding = {"frames": 0.0, "steps": -1, "masks": False,
                   "frame_labels": -1, "video_id": "", "label": 0,
                   "num_frames": 0, "subset": 0, "index": -1}
        post = input_reader.StagedPipeline([
            ("index", lambda ds: ds.enumerate().map(
                lambda i, ex: dict(ex, index=tf.cast(i, tf.int32)))),
            ("batch", lambda ds: ds.padded_batch(
                per_replica, padding_values={
                    k: tf.constant(v, ds.element_spec[k].dtype)
                    for k, v in padding.items()})),
            ("split", lambda ds: ds.map(self._split_eval)),
            ("prefetch", lambda ds: ds.prefetch(input_reader.AUTOTUNE)),
        ])
        base_task.pad_evaluation_split(post, input_context, per_replica,
                                       num_videos, self._blank,
                                       after="index")
        return post(videos)

    # ------------------------------------------------------------- model
    def build_model(self):
        carl_config.require_weights(self.config)
        model = model_lib.CARL(**carl_config.model_values(self.config))
        if self.config.sync_batch_norm:
            base_task.synchronize_batch_norms(model)
        if self.config.trunk_weights:
            report = load_trunk_weights(model, self.config.trunk_weights,
                                        carl_config.weights_format(
                                            self.config))
            logging.info("ResNet-50 weights: %s", report.summary())
        if self.config.init_checkpoint:
            path = checkpointing.restore_model_weights(
                model, self.config.init_checkpoint)
            logging.info("initialised the model from %s", path)
        self.model = model
        return model

    # ---------------------------------------------------------- training
    @staticmethod
    def forward_views(model, features, training=True):
        """Projections of both views, `[B, 2, T, D]`.

        Args:
            model: the `CARL` model.
            features: `frames` `[B, 2, T, H, W, 3]`, `mask` `[B, 2, T]`.
            training: dropout and batch statistics on.

        Returns:
            The L2-normalised projections, `[B, 2, T, D]`.
        """
        frames, mask = features["frames"], features["mask"]
        shape = tf.shape(frames)
        folded = tf.reshape(frames, tf.concat([[-1], shape[2:]], 0))
        out = model({"frames": folded,
                     "mask": tf.reshape(mask, [-1, shape[2]])},
                    training=training)
        projections = out["projections"]
        return tf.reshape(projections, tf.concat(
            [shape[:3], tf.shape(projections)[-1:]], 0))

    def build_losses(self, labels, outputs):
        """Per-video sequence contrastive losses `[B]` (float32)."""
        losses = self.config.losses
        return sequence_contrastive_loss(
            outputs, labels["steps"], labels["seq_lens"], labels["masks"],
            temperature=float(losses.temperature),
            label_variance=float(losses.label_variance),
            positive_type=losses.positive_type,
            negative_type=losses.negative_type,
            positive_window=float(losses.positive_window),
            masked_negative_weight=float(losses.masked_negative_weight),
            scope="video", reduction="none")

    def train_step(self, inputs, model, optimizer, metrics):
        features, labels = inputs
        with tf.GradientTape() as tape:
            projections = self.forward_views(model, features, training=True)
            per_video = self.build_losses(labels, projections)
            regularization = list(model.losses)
            if float(self.config.l2_weight_decay):
                regularization.append(coupled_l2_loss(
                    model.trainable_variables,
                    float(self.config.l2_weight_decay)))
            loss = optimizer.compute_loss(per_video, regularization)
        grad_norm = optimizer.minimize(loss, model.trainable_variables, tape)
        for metric in metrics:
            if metric.name == LOSS_METRIC:
                metric.update_state(per_video)
        return base_task.step_logs(loss, grad_norm)

    def build_metrics(self, training=True):
        return [keras.metrics.Mean(name=LOSS_METRIC)] if training else []

    # -------------------------------------------------------- evaluation
    def embed_videos(self, model, frames, lengths):
        """Embeddings of whole videos, chunk by chunk (inference mode).

        A video of n frames is cut into `k = ceil(n / frames_per_chunk)`
        chunks of `ceil(n / k)` frames (the last one shorter), each embedded
        on its own, its frames through the trunk `frames_per_trunk_batch`
        at a time, as the reference's evaluation
        (`tfaction.models.carl.whole_videos.embed_whole_videos`).

        Args:
            model: the `CARL` model.
            frames: `[B, N, H, W, 3]` videos padded to N frames.
            lengths: `[B]` int32 frames of each video (0: nothing to
                embed).

        Returns:
            float32 `[B, N, D]` (zeros after each video's length).
        """
        ev = self.config.evaluation
        return whole_videos.embed_whole_videos(
            model, frames, lengths, int(ev.frames_per_chunk),
            int(ev.frames_per_trunk_batch))

    def validation_step(self, inputs, model, metrics):
        del metrics
        features, labels = inputs
        lengths = tf.reduce_sum(tf.cast(features["mask"], tf.int32), axis=1)
        return {"video_id": labels["video_id"], "label": labels["label"],
                "subset": labels["subset"], "index": labels["index"],
                "frame_labels": labels["frame_labels"], "lengths": lengths,
                "embeddings": self.embed_videos(model, features["frames"],
                                                lengths)}

    def aggregate_logs(self, state, step_logs):
        state = {} if state is None else state
        for logs in step_logs:
            for b, raw in enumerate(logs["video_id"]):
                video_id = raw.decode() if isinstance(raw, bytes) else raw
                if not video_id:  # "" pads the last global batch
                    continue
                n = int(logs["lengths"][b])
                state[int(logs["index"][b])] = {
                    "video_id": video_id,
                    "subset": SUBSETS[int(logs["subset"][b])],
                    "label": int(logs["label"][b]),
                    "embs": np.asarray(logs["embeddings"][b][:n],
                                       np.float32),
                    "labels": np.asarray(logs["frame_labels"][b][:n],
                                         np.int64)}
        return state

    def _dataset_name(self, label):
        if not self.config.evaluation.per_action:
            return DEFAULT_DATASET
        if 0 <= label < len(self.class_names):
            return self.class_names[label]
        return f"class_{label}"

    def scored_datasets(self, aggregated_logs):
        """The labelled frames of every video, grouped for the protocols.

        Args:
            aggregated_logs: the state of `aggregate_logs`.

        Returns:
            (datasets, skipped): `{dataset: {"train"|"val": {"embs",
            "labels", "video_ids"}}}` in the source order (frames labelled
            < 0 removed) and the number of videos left out for having no
            labelled frame.
        """
        datasets, skipped = {}, 0
        for index in sorted(aggregated_logs or {}):
            video = aggregated_logs[index]
            keep = video["labels"] >= 0
            if not keep.any():
                skipped += 1
                continue
            name = self._dataset_name(video["label"])
            split = datasets.setdefault(name, {
                s: {"embs": [], "labels": [], "video_ids": []}
                for s in SUBSETS})[video["subset"]]
            split["embs"].append(video["embs"][keep])
            split["labels"].append(video["labels"][keep])
            split["video_ids"].append(video["video_id"])
        return datasets, skipped

    def _protocols(self, train, val):
        """Flat metrics of one dataset."""
        ev = self.config.evaluation
        protocols = tuple(ev.protocols)
        num_classes = int(ev.num_phase_classes) or None
        fractions = [float(f) for f in ev.fractions]
        out = {}
        if "framewise" in protocols:
            out.update(_flatten(framewise.evaluate_dataset(
                train, val, ev.variant,
                strides=[int(ev.kendalls_tau_stride)],
                distance=ev.distance, fractions=fractions,
                few_shot_num_labeled=[int(k) for k in
                                      ev.few_shot_num_labeled],
                few_shot_num_episodes=int(ev.few_shot_num_episodes),
                retrieval_ks=[int(k) for k in ev.retrieval_ks],
                num_classes=num_classes)))
        if "few_shot" in protocols:
            model = "logreg" if ev.variant == "carl" else "svm"
            means, _ = framewise_probes.few_shot(
                train, val, [int(k) for k in ev.few_shot_num_labeled],
                int(ev.few_shot_num_episodes), model)
            out.update(_flatten(
                {f"few_shot_{model}_val_acc_mean_over_episodes": means}))
        if "finegym" in protocols:
            gym = ev.finegym
            classes = num_classes or int(max(
                y.max() for y in train["labels"] + val["labels"]) + 1)
            out.update(_flatten({"finegym_val_acc": finegym_linear_probe(
                train, val, fractions, classes,
                learning_rate=float(gym.learning_rate),
                epochs=int(gym.epochs), momentum=float(gym.momentum),
                weight_decay=float(gym.weight_decay),
                batch_videos=int(gym.batch_videos), seed=int(gym.seed))}))
        return out

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        datasets, skipped = self.scored_datasets(aggregated_logs)
        self._scored = datasets
        counts = {s: sum(len(d[s]["embs"]) for d in datasets.values())
                  for s in SUBSETS}
        if not counts["train"] or not counts["val"]:
            raise errors.DataError(
                f"the evaluation needs labelled training and evaluation "
                f"videos; got {counts['train']} and {counts['val']} "
                f"({skipped} without labelled frames)")
        per_dataset = {}
        for name, splits in datasets.items():
            if not splits["train"]["embs"] or not splits["val"]["embs"]:
                raise errors.DataError(
                    f"dataset {name!r} has {len(splits['train']['embs'])} "
                    f"training and {len(splits['val']['embs'])} evaluation "
                    "videos with labelled frames; the protocols need both")
            try:
                per_dataset[name] = self._protocols(splits["train"],
                                                    splits["val"])
            except errors.DataError as e:
                raise type(e)(f"dataset {name!r}: {e.message}", path=e.path,
                              line=e.line, video_id=e.video_id,
                              key=e.key) from e
        metrics = _mean_over(per_dataset)
        if self.config.evaluation.per_action:
            for name, values in per_dataset.items():
                metrics.update({f"{name}/{k}": v for k, v in values.items()})
        metrics.update(num_train_videos=float(counts["train"]),
                       num_val_videos=float(counts["val"]),
                       num_unlabelled_videos=float(skipped))
        return metrics

    def write_evaluation_outputs(self, workdir, global_step=None):
        """Writes the scored embeddings (`embeddings.npz`, framewise_io
        layout) and their video ids (`embeddings_videos.json`)."""
        if not self._scored or not self.config.evaluation.write_embeddings:
            return None
        arrays, videos = {}, {}
        for name, splits in self._scored.items():
            prefix = "" if name == DEFAULT_DATASET else f"{name}/"
            videos[name] = {}
            for split, data in splits.items():
                for i, (embs, labels) in enumerate(zip(data["embs"],
                                                       data["labels"])):
                    arrays[f"{prefix}{split}_embs_{i}"] = embs
                    arrays[f"{prefix}{split}_labels_{i}"] = labels
                videos[name][split] = list(data["video_ids"])
        path = os.path.join(workdir, EMBEDDINGS_FILE)
        filesystems.save_npz(path, **arrays)
        filesystems.write_json(os.path.join(workdir, VIDEOS_FILE), {
            "step": None if global_step is None else int(global_step),
            "datasets": videos})
        return path
