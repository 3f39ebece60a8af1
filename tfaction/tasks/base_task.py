"""`Task`: what a model family supplies to the trainer (Model Garden's split).

A task builds the model, the input pipeline, the per-example losses and the
metrics from its `config.task` section, and defines one training step and one
validation step on one replica's batch. The trainer
(`tfaction.training.Trainer`) owns everything around it: the distribution
strategy, the optimizer and schedule, global-batch loss scaling, gradient
clipping, EMA, checkpoints, summaries.

Batches. `build_inputs` returns a dataset of PER-REPLICA batches: with an
`input_context` it reads only its pipeline's share of the data
(`input_context.input_pipeline_id` of `num_input_pipelines`) and batches
`input_context.get_per_replica_batch_size(global_batch_size)` examples. For
exact resume the dataset of a training epoch must be a deterministic function
of `(seed, epoch)` (seeded shuffles, no `reshuffle_each_iteration`), finite
(one pass over the data) and, under several pipelines, give every pipeline
the same number of batches.

Evaluation batches. tf.distribute deals per-replica batches to replicas in
turn; when the split does not fill the last global batch, some replicas get
a partial or an EMPTY batch, which many layers mishandle (TF 2.17's Conv1D
returns a wrongly shaped result on a 0-example batch). Pad the evaluation
split to whole global batches with examples the losses and metrics weight 0
(see `tests/training/classifier_task.py`).

Losses. `build_losses` returns UNREDUCED per-example losses; the trainer's
`GlobalBatchOptimizer.compute_loss` sums them and divides by the global batch
size, so 1 and N replicas compute the same gradients.
"""

import abc

import keras
import tensorflow as tf

from tfaction.layers.frozen_batch_normalization import (
    FrozenBatchNormalization)


LOSS_METRIC = "loss"


def step_logs(loss, grad_norm, **extra):
    """A training step's logs: `loss`, `grad_norm` when the optimizer
    clipped (it returns None otherwise) and any `extra` scalars.

    Example:

    >>> step_logs(1.0, None, loss_normalizer=3.0)
    {'loss': 1.0, 'loss_normalizer': 3.0}
    """
    logs = {LOSS_METRIC: loss, **extra}
    if grad_norm is not None:
        logs["grad_norm"] = grad_norm
    return logs


class Task(abc.ABC):
    """Base class of tfaction tasks.

    Subclasses implement `build_model`, `build_inputs` and `build_losses`
    and may override `build_metrics`, `train_step`, `validation_step`,
    `aggregate_logs` and `reduce_aggregated_logs`. Register a subclass with
    `tfaction.tasks.register_task(name)` so configs can name it.

    Class attributes:
        config_schema: the module describing the `task` section
            (`task_config()`: defaults and types; `validate(config)`:
            unknown keys and cross-field rules, as `ConfigError`s naming the
            key), or None when the section is free-form. The launchers
            validate with it before building anything, and
            `tfaction.config.read_config_json` restores types with it.

    Args:
        config: the `config.task` section of an experiment config.

    Example:

    ```python
    @register_task("clip_classifier")
    class ClipClassifier(Task):
        def build_model(self):
            inputs = keras.Input((16, 64))
            x = keras.layers.GlobalAveragePooling1D()(inputs)
            return keras.Model(inputs, keras.layers.Dense(10)(x))

        def build_inputs(self, training, *, global_batch_size,
                         input_context=None, epoch=0, seed=0):
            ...  # per-replica batches of (features, labels)

        def build_losses(self, labels, outputs):
            return keras.losses.sparse_categorical_crossentropy(
                labels, outputs, from_logits=True)
    ```
    """

    config_schema = None

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def build_model(self):
        """Returns a built `keras.Model` (called inside `strategy.scope()`)."""

    @abc.abstractmethod
    def build_inputs(self, training, *, global_batch_size, input_context=None,
                     epoch=0, seed=0):
        """Returns a `tf.data.Dataset` of per-replica batches.

        Args:
            training: True for the training split, False for evaluation.
            global_batch_size: examples per step summed over all replicas.
            input_context: a `tf.distribute.InputContext` (shard by
                `input_pipeline_id` / `num_input_pipelines`, batch
                `get_per_replica_batch_size(global_batch_size)`), or None
                for a single pipeline with one replica.
            epoch: the training epoch this dataset covers (one pass).
            seed: the experiment seed; shuffling derives from (seed, epoch).

        Returns:
            A finite dataset of `(features, labels)` batches (or whatever
            structure this task's `train_step`/`validation_step` expect).
        """

    def input_files(self, training):
        """The TFRecord files `build_inputs(training, ...)` reads.

        TensorFlow reports a corrupt record without naming its file; the
        trainer scans these files, only then, to name the file and record.
        This default serves the tasks that keep their converted data as
        `self.data` (a `ConvertedDataset`) and read `config.train_subset` /
        `config.eval_subset`; a task reading other files overrides it.

        Args:
            training: True for the training split, False for evaluation.

        Returns:
            List of paths (empty when the task keeps no `self.data`: the
            error then stays TensorFlow's).

        Example:

        ```python
        task.input_files(True)  # ['/data/train-00000-of-00004.tfrecord', ...]
        ```
        """
        data = getattr(self, "data", None)
        if data is None:
            return []
        subsets = [self.config.train_subset]
        if not training:  # some tasks embed both splits for evaluation
            subsets.append(self.config.eval_subset)
        return [path for subset in dict.fromkeys(subsets)
                for path in data.files(subset)]

    @abc.abstractmethod
    def build_losses(self, labels, outputs):
        """Returns per-example losses [b] (or [b, ...]), not reduced."""

    def build_metrics(self, training=True):
        """Returns a list of `keras.metrics.Metric` (inside the scope).

        A metric named "loss" receives the per-example losses; every other
        metric receives `(labels, outputs)` (see `process_metrics`).

        Args:
            training: True for the training metrics, False for evaluation.

        Returns:
            List of metrics; by default a mean of the per-example loss.
        """
        del training
        return [keras.metrics.Mean(name=LOSS_METRIC)]

    def process_metrics(self, metrics, labels, outputs, per_example_loss):
        """Updates `metrics` with one replica's batch.

        Args:
            metrics: the list from `build_metrics`.
            labels: the batch labels.
            outputs: the model outputs.
            per_example_loss: the task losses of the batch.
        """
        for metric in metrics:
            if metric.name == LOSS_METRIC:
                metric.update_state(per_example_loss)
            else:
                metric.update_state(labels, outputs)

    def train_step(self, inputs, model, optimizer, metrics):
        """One optimisation step on one replica's batch.

        Args:
            inputs: one per-replica batch `(features, labels)`.
            model: the task's model.
            optimizer: a `tfaction.training.GlobalBatchOptimizer`: use its
                `compute_loss` (global-batch normalisation) and `minimize`
                (loss scaling, all-replica clipping, update).
            metrics: the training metrics.

        Returns:
            Dict of scalar logs; "loss" is this replica's share of the
            global-batch loss (the trainer sums it over replicas), other
            entries (here "grad_norm" when clipping) are averaged over
            replicas.
        """
        features, labels = inputs
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            per_example_loss = self.build_losses(labels, outputs)
            loss = optimizer.compute_loss(per_example_loss, model.losses)
        grad_norm = optimizer.minimize(loss, model.trainable_variables, tape)
        self.process_metrics(metrics, labels, outputs, per_example_loss)
        return step_logs(loss, grad_norm)

    def validation_step(self, inputs, model, metrics):
        """Evaluates one replica's batch and updates `metrics`.

        Args:
            inputs: one per-replica batch `(features, labels)`.
            model: the task's model (EMA weights when the recipe uses them).
            metrics: the evaluation metrics.

        Returns:
            Dict of tensors handed to `aggregate_logs` (by default empty:
            Keras metrics carry the results across replicas and workers).
        """
        features, labels = inputs
        outputs = model(features, training=False)
        per_example_loss = self.build_losses(labels, outputs)
        self.process_metrics(metrics, labels, outputs, per_example_loss)
        return {}

    def checkpoint_items(self):
        """Task state to checkpoint next to the model (name -> trackable).

        Called after `build_model`. Use it for training state that is not a
        model weight, e.g. a loss normaliser, so a resumed run continues
        exactly.

        Returns:
            Dict name -> `tf.Variable` or other trackable (default empty).
        """
        return {}

    def write_evaluation_outputs(self, workdir, global_step=None):
        """Writes files of the last evaluation (the chief calls it).

        Args:
            workdir: the run directory.
            global_step: the training step evaluated.

        Returns:
            The path written, or None (default: nothing to write).
        """
        del workdir, global_step
        return None

    def weight_decay_exclusions(self, model):
        """Variables the optimizer must not decay (besides name patterns).

        Called once after `build_model`, inside the strategy scope; the
        trainer passes the result to
        `optimizer.exclude_from_weight_decay(var_list=...)`.

        Args:
            model: the built model.

        Returns:
            A list of variables (by default empty: only the
            `optimizer.weight_decay_exclude` name patterns apply).
        """
        del model
        return []

    def aggregate_logs(self, state, step_logs):
        """Accumulates validation outputs not expressible as Keras metrics.

        Args:
            state: the value returned by the previous call (None at first).
            step_logs: this step's `validation_step` logs, as numpy values,
                one entry per local replica.

        Returns:
            The new state (by default unchanged).
        """
        del step_logs
        return state

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        """Turns the aggregated state into a dict of named results.

        Args:
            aggregated_logs: the final state of `aggregate_logs`.
            global_step: the training step evaluated.

        Returns:
            Dict name -> float, merged with the Keras metric results.
        """
        del aggregated_logs, global_step
        return {}


def evaluation_fill(input_context, per_replica_batch_size, num_records):
    """How many blank examples pad an evaluation split to whole steps.

    Tasks that write predictions let every worker read the WHOLE split (the
    chief's file then covers every video) and pad it to whole steps of the
    worker's replicas (see "Evaluation batches" above).

    Args:
        input_context: the `tf.distribute.InputContext`, or None.
        per_replica_batch_size: examples per replica and step.
        num_records: examples in the split.

    Returns:
        The number of blank examples to append.
    """
    replicas = 1
    if input_context is not None:
        replicas = (input_context.num_replicas_in_sync //
                    input_context.num_input_pipelines)
    return -num_records % (per_replica_batch_size * replicas)


def blank_example(example, text_keys=("video_id",)):
    """A zero-weight copy of a parsed example, padding an evaluation split.

    Args:
        example: dict of tensors of one example.
        text_keys: string entries set to "" (an empty video id marks the
            example as padding for `aggregate_logs`).

    Returns:
        The dict with every tensor zeroed and `text_keys` empty.
    """
    out = {k: tf.zeros_like(v) for k, v in example.items()}
    for key in text_keys:
        out[key] = tf.constant("")
    return out


def pad_evaluation_split(pipeline, input_context, per_replica_batch_size,
                         num_records, blank, *, after):
    """Pads an evaluation pipeline with blank examples to whole steps.

    Tasks that write predictions let every worker read the WHOLE split, so
    the chief's file covers every example (pass `input_context=None` to the
    reader) and pad it with `evaluation_fill` blank copies of its first
    example, which the metrics skip.

    Args:
        pipeline: the staged pipeline (`add(name, fn, after=...)`).
        input_context: the `tf.distribute.InputContext`, or None.
        per_replica_batch_size: examples per replica and step.
        num_records: examples in the split.
        blank: example -> blank example (e.g. `blank_example`).
        after: the stage the padding follows (examples parsed, not yet
            batched).
    """
    fill = evaluation_fill(input_context, per_replica_batch_size, num_records)
    if fill:
        pipeline.add("fill", lambda ds: ds.concatenate(
            ds.take(1).map(blank).repeat(fill)), after=after)


def synchronize_batch_norms(model):
    """Makes every trained `BatchNormalization` of `model` synchronised.

    In training mode their batch statistics are then all-reduced over the
    replicas (Keras' `synchronized=True`, TensorFlow backend), as PyTorch's
    SyncBatchNorm. Frozen batch norms are left alone.

    Args:
        model: a built Keras model.

    Returns:
        The number of layers changed.
    """
    changed = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and not \
                isinstance(layer, FrozenBatchNormalization):
            layer.synchronized = True
            changed += 1
    return changed
