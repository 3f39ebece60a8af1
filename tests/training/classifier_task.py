"""A tiny feature-sequence classifier task, registered for the tests only.

Reads feature-sequence TFRecords (as written by `python -m
tfaction.data.convert --format=activitynet_features`): features [T, C] and
one segment per video whose label is the video's class. The training
dataset of an epoch is a deterministic function of (seed, epoch): a seeded
shuffle of all records, cut to whole global batches, then split element-wise
across input pipelines, so every pipeline yields the same number of batches
and global batch k holds the same examples whatever the number of replicas
or workers. The evaluation split is padded to whole global batches with
examples of label -1, which the losses and metrics weight 0, so no replica
ever gets a partial or empty batch.
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfaction import serving
from tfaction import tasks
from tfaction.data import schemas
from tfaction.data import tfrecord_io

TASK_NAME = "test_feature_classifier"


class FeatureClassifierExportModule(serving.ExportModule):
    """`serving_default`: features [B, T, C] -> logits, probabilities, class.

    Args:
        model: the task's model.
        num_steps: T.
        feature_dim: C.
    """

    def __init__(self, model, num_steps, feature_dim):
        super().__init__(model)
        self.num_steps, self.feature_dim = int(num_steps), int(feature_dim)

    def input_specs(self):
        return {"features": tf.TensorSpec(
            [None, self.num_steps, self.feature_dim], tf.float32)}

    def serve(self, inputs):
        logits = tf.cast(self.model(inputs["features"], training=False),
                         tf.float32)
        return {"logits": logits,
                "probabilities": tf.nn.softmax(logits),
                "classes": tf.argmax(logits, axis=-1, output_type=tf.int32)}

    def warmup_inputs(self):
        return {"features": np.zeros([1, self.num_steps, self.feature_dim],
                                     np.float32)}


@serving.register_export_module(TASK_NAME)
def export_module_from_task(task, model):
    """The classifier's `FeatureClassifierExportModule`."""
    return FeatureClassifierExportModule(
        model, task.config.num_steps, task.config.feature_dim)


@tasks.register_task(TASK_NAME)
class FeatureClassifierTask(tasks.Task):
    """Conv1D + average pooling + dense over [T, C] features.

    Config keys (`config.task`): `train_files`, `eval_files` (patterns),
    `num_classes`, `feature_dim`, `num_steps` (T), `hidden`, and for the
    interruption tests `input_gate_file` / `input_gate_examples`: while that
    file does not exist, the training input stops before its
    `input_gate_examples`-th example, so a test can signal a run at a known
    step.
    """

    def __init__(self, config):
        super().__init__(config)
        self._num_records = {}

    def build_model(self):
        c = self.config
        inputs = keras.Input((c.num_steps, c.feature_dim), name="features")
        x = keras.layers.Conv1D(c.hidden, 3, padding="same",
                                activation="relu", name="conv")(inputs)
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
        outputs = keras.layers.Dense(c.num_classes, dtype="float32",
                                     name="logits")(x)
        return keras.Model(inputs, outputs, name="feature_classifier")

    def build_losses(self, labels, outputs):
        valid = labels >= 0
        losses = keras.losses.sparse_categorical_crossentropy(
            tf.where(valid, labels, 0), outputs, from_logits=True)
        return tf.where(valid, losses, 0.0)

    def process_metrics(self, metrics, labels, outputs, per_example_loss):
        weights = tf.cast(labels >= 0, tf.float32)
        for metric in metrics:
            if metric.name == "loss":
                metric.update_state(per_example_loss, sample_weight=weights)
            else:
                metric.update_state(tf.maximum(labels, 0), outputs,
                                    sample_weight=weights)

    def build_metrics(self, training=True):
        return super().build_metrics(training) + [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def _count(self, files):
        key = tuple(files)
        if key not in self._num_records:
            self._num_records[key] = int(tf.data.TFRecordDataset(files).reduce(
                np.int64(0), lambda n, _: n + 1))
        return self._num_records[key]

    def _parse(self, serialized):
        parsed = schemas.parse_feature_sequence(
            serialized, feature_dim=self.config.feature_dim)
        features = tf.ensure_shape(
            parsed["features"],
            [self.config.num_steps, self.config.feature_dim])
        return features, parsed[schemas.SEGMENT_LABEL_INDEX][0]

    def input_files(self, training):
        return tfrecord_io.list_files(
            self.config.train_files if training else self.config.eval_files)

    def build_inputs(self, training, *, global_batch_size, input_context=None,
                     epoch=0, seed=0):
        files = self.input_files(training)
        pipelines, index, batch_size = 1, 0, global_batch_size
        if input_context is not None:
            pipelines = input_context.num_input_pipelines
            index = input_context.input_pipeline_id
            batch_size = input_context.get_per_replica_batch_size(
                global_batch_size)
        num = self._count(files)
        dataset = tf.data.TFRecordDataset(files)
        if training:
            dataset = dataset.shuffle(num, seed=seed * 100_003 + epoch,
                                      reshuffle_each_iteration=False)
            dataset = dataset.take(num // global_batch_size *
                                   global_batch_size)
        dataset = dataset.map(self._parse)
        if not training:
            dataset = dataset.concatenate(
                self._padding(-num % global_batch_size))
        dataset = dataset.shard(pipelines, index)
        if training and self.config.input_gate_file:
            dataset = dataset.enumerate().map(self._gate)
        dataset = dataset.batch(batch_size, drop_remainder=True)
        return dataset.prefetch(1)

    def _padding(self, count):
        features = tf.zeros([count, self.config.num_steps,
                             self.config.feature_dim])
        labels = tf.fill([count], tf.constant(-1, tf.int64))
        return tf.data.Dataset.from_tensor_slices((features, labels))

    def _gate(self, index, example):
        features, label = example
        gate = self.config.input_gate_file
        limit = self.config.input_gate_examples

        def wait(index):
            while index >= limit and not os.path.exists(gate):
                time.sleep(0.01)
            return np.float32(0.0)

        # Adding 0.0 keeps the features bit-identical.
        return features + tf.numpy_function(wait, [index], tf.float32), label
