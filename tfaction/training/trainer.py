"""tfaction's distributed training loop (in the spirit of Model Garden's Orbit).

One code path for the default/one-device strategy, MirroredStrategy,
MultiWorkerMirroredStrategy and TPUStrategy:
`strategy.distribute_datasets_from_function` feeds per-replica batches
(each worker reads its own shard through a `tf.distribute.InputContext`),
and a `tf.function` calls `strategy.run(task.train_step)`. `model.fit` is not
used: with Keras 3 it fails under MultiWorkerMirroredStrategy
(keras-team/keras#20585), while this loop trains identically on any number of
replicas.

Resume. TF 2.17 cannot checkpoint a distributed iterator, so the input
position is checkpointed as (epoch, batch in epoch) next to the global step.
The dataset of an epoch is a deterministic function of (seed, epoch); on
resume the trainer rebuilds the current epoch's dataset and skips the batches
already consumed (`Dataset.skip` inside each input pipeline). With
`runtime.deterministic` a resumed run ends with exactly the weights of an
uninterrupted one.

Workdir layout: `config.json` (written by the launcher), `checkpoints/`,
`train/` and `eval/` (TensorBoard events), `eval_metrics.json`.
"""

import contextlib
import json
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data import input_reader
from tfaction.training import checkpointing
from tfaction.training import ema as ema_lib
from tfaction.training import global_batch_optimizer
from tfaction.training import optimizers
from tfaction.training import preemption
from tfaction.training import progress
from tfaction.training import strategies
from tfaction.training import trainer_config as trainer_config_lib

EVAL_METRICS_FILE = "eval_metrics.json"
CHECKPOINT_DIR = "checkpoints"


class Trainer:
    """Trains and evaluates a `Task` under a distribution strategy.

    Builds the model, optimizer (with schedule), EMA and metrics inside
    `strategy.scope()`, restores the newest checkpoint of `workdir`, and runs
    the training loop: global-batch loss scaling, global-norm clipping,
    optional EMA, TensorBoard scalars, progress bar, checkpoints every
    `trainer.checkpoint_interval` steps and on SIGTERM.

    Args:
        task: a `tfaction.tasks.Task`.
        config: the experiment `ConfigDict`; uses its `trainer`, `optimizer`
            and `ema` sections.
        workdir: run directory (local or remote URL).
        strategy: a `tf.distribute.Strategy` (default: the current one). The
            process-wide runtime (`configure_runtime`) must be set before.
        evaluation_only: build only what `evaluate` needs (no optimizer, no
            pass over the training split to count its steps).

    Example:

    ```python
    configure_runtime(config.runtime, config.trainer.seed)
    strategy = get_strategy("mirrored")
    trainer = Trainer(build_task(config), config, "runs/exp1", strategy)
    trainer.train()
    print(trainer.evaluate())
    ```
    """

    def __init__(self, task, config, workdir, strategy=None,
                 evaluation_only=False):
        self.task = task
        self.config = config
        self.workdir = os.fspath(workdir)
        self.strategy = strategy or tf.distribute.get_strategy()
        trainer_config_lib.check_trainer_config(
            config.trainer, self.strategy.num_replicas_in_sync)
        trainer_config = config.trainer
        _, _, self.is_chief = strategies.worker_info(self.strategy)
        self.seed = int(trainer_config.seed)
        self.global_batch_size = int(trainer_config.global_batch_size)
        self.eval_batch_size = int(trainer_config.eval_batch_size or
                                   self.global_batch_size)
        self._input_options = strategies.input_options(
            self.strategy,
            config.runtime.get("input_pipeline_per_replica", False))
        context = strategies.local_input_context(self.strategy,
                                                 self._input_options)
        # Each step takes one batch per replica from every input pipeline.
        self._replicas_per_pipeline = (context.num_replicas_in_sync //
                                       context.num_input_pipelines)
        self._num_pipelines = context.num_input_pipelines
        self.evaluation_only = evaluation_only
        self.steps_per_epoch = self.total_steps = None
        if not evaluation_only:
            self.steps_per_epoch = (int(trainer_config.steps_per_epoch) or
                                    self._count_steps_per_epoch())
            self.total_steps = int(
                trainer_config.train_steps or
                trainer_config.epochs * self.steps_per_epoch)

        with self.strategy.scope():
            self.model = task.build_model()
            if not self.model.built or not self.model.trainable_variables:
                raise errors.ConfigError(
                    f"{type(task).__name__}.build_model() must return a built "
                    "model with trainable weights (e.g. a functional model)")
            self.optimizer = None
            if not evaluation_only:
                self.optimizer = optimizers.build_optimizer(
                    config.optimizer, self.total_steps,
                    exclude_variables=task.weight_decay_exclusions(
                        self.model),
                    steps_per_epoch=self.steps_per_epoch)
                self.optimizer.build(self.model.trainable_variables)
            self.ema = (ema_lib.ModelEMA(self.model, config.ema.decay)
                        if config.ema.enabled else None)
            self.train_metrics = list(task.build_metrics(training=True))
            self.eval_metrics = list(task.build_metrics(training=False))
        self.position = checkpointing.DataPosition()
        task_items = dict(task.checkpoint_items())
        clash = set(task_items) & {"model", "position", "optimizer", "ema",
                                   "random_states"}
        if clash:
            raise errors.ConfigError(
                f"{type(task).__name__}.checkpoint_items() uses reserved "
                f"names {sorted(clash)}")
        trackables = dict(task_items, model=self.model,
                          position=self.position)
        random_states = checkpointing.RandomStates(self.model)
        if random_states.states:  # a model without random layers: none
            trackables["random_states"] = random_states
        if self.optimizer is not None:
            trackables["optimizer"] = self.optimizer
            self.updater = global_batch_optimizer.GlobalBatchOptimizer(
                self.optimizer, self.global_batch_size,
                clip_norm=config.optimizer.clip_norm,
                clip_norm_per_variable=config.optimizer.get(
                    "clip_norm_per_variable", 0.0),
                num_replicas=self.strategy.num_replicas_in_sync)
            self._train_fn = self._make_train_fn()
        if self.ema is not None:
            trackables["ema"] = self.ema
        self.checkpointer = checkpointing.Checkpointer(
            os.path.join(self.workdir, CHECKPOINT_DIR), self.strategy,
            int(trainer_config.max_checkpoints_to_keep), **trackables)
        self.reporter = progress.ProgressReporter(
            self.workdir, self.total_steps, self.is_chief)
        self._restored = False
        self.last_eval = None
        self._eval_fn = self._make_eval_fn()

    # --- Setup --------------------------------------------------------------
    def _train_dataset(self, epoch, skip_steps=0):
        skip = skip_steps * self._replicas_per_pipeline

        def dataset_fn(input_context):
            dataset = self.task.build_inputs(
                True, global_batch_size=self.global_batch_size,
                input_context=input_context, epoch=epoch, seed=self.seed)
            return dataset.skip(skip) if skip else dataset

        return self.strategy.distribute_datasets_from_function(
            dataset_fn, self._input_options)

    def _count_steps_per_epoch(self):
        """Steps in one training epoch, agreed by every worker (the min)."""
        local = []

        def dataset_fn(input_context):
            dataset = self.task.build_inputs(
                True, global_batch_size=self.global_batch_size,
                input_context=input_context, epoch=0, seed=self.seed)
            batches = int(dataset.reduce(np.int64(0), lambda n, _: n + 1))
            local.append(batches // self._replicas_per_pipeline)
            return tf.data.Dataset.range(1)

        with input_reader.naming_corrupt_files(self._training_files):
            self.strategy.distribute_datasets_from_function(
                dataset_fn, self._input_options)
        steps = min(local)
        if self._num_pipelines > 1:
            steps = self._agreed_min(steps)
        if steps <= 0:
            raise errors.DataError(
                f"the training split of task {type(self.task).__name__} "
                f"yields no full step of global batch size "
                f"{self.global_batch_size}")
        logging.info("one training epoch = %d steps", steps)
        return steps

    def _agreed_min(self, value):
        @tf.function
        def gather_min():
            values = self.strategy.run(
                lambda: tf.constant([value], tf.int64))
            return tf.reduce_min(self.strategy.gather(values, axis=0))

        return int(gather_min())

    def _make_train_fn(self):
        task, model, metrics = self.task, self.model, self.train_metrics
        updater, ema, strategy = self.updater, self.ema, self.strategy

        def replica_step(inputs, stop):
            logs = task.train_step(inputs, model, updater, metrics)
            if ema is not None:
                ema.update()
            # Agree on SIGTERM so every worker checkpoints the same step.
            # (identity places the host input on this replica's device,
            # which MultiWorkerMirroredStrategy's all-reduce needs.)
            stop = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.identity(stop))
            return logs, stop

        @tf.function
        def train_fn(inputs, stop):
            logs, stop = strategy.run(replica_step, args=(inputs, stop))
            reduced = {
                k: strategy.reduce(
                    tf.distribute.ReduceOp.SUM if k == "loss"
                    else tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in logs.items()}
            return reduced, strategy.experimental_local_results(stop)[0] > 0

        return train_fn

    def _make_eval_fn(self):
        task, model, metrics = self.task, self.model, self.eval_metrics
        strategy = self.strategy

        # Evaluation inputs may vary in length (whole videos): trace shapes
        # with unknown dimensions instead of once per length.
        @tf.function(reduce_retracing=True)
        def eval_fn(inputs):
            logs = strategy.run(
                lambda x: task.validation_step(x, model, metrics),
                args=(inputs,))
            return strategy.experimental_local_results(logs)

        return eval_fn

    # --- State --------------------------------------------------------------
    def restore(self):
        """Restores the newest checkpoint of the workdir (once).

        Returns:
            The checkpoint path, or None when the run starts fresh.
        """
        path = self.checkpointer.restore_latest()
        self._restored = True
        if path is not None:
            step, epoch, batch = self.position.values()
            logging.info("restored %s: step %d, epoch %d, batch %d", path,
                         step, epoch, batch)
        return path

    @property
    def global_step(self):
        """Optimizer steps done so far (from the checkpointed position)."""
        return self.position.values()[0]

    def current_learning_rate(self):
        """The learning rate of the next step, as a float."""
        return float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))

    # --- Training -----------------------------------------------------------
    def train(self, eval_interval=0):
        """Trains until `total_steps`, or until SIGTERM.

        Args:
            eval_interval: also evaluate every this many steps (0 = never).

        Returns:
            Dict with `step` (steps done), `preempted` (stopped by SIGTERM)
            and `train` (the last logged training scalars).

        Raises:
            ConfigError: the trainer was built with `evaluation_only`.
            LostWorkerError: under MultiWorkerMirroredStrategy, another
                worker died or became unreachable (the message names it
                and the checkpoint a restart resumes from).
        """
        if self.evaluation_only:
            raise errors.ConfigError("this Trainer was built with "
                                     "evaluation_only=True; it cannot train")
        if not self._restored:
            self.restore()
        step, epoch, batch = self.position.values()
        last_saved, scalars, iterator = step, {}, None
        log_interval = int(self.config.trainer.log_interval)
        checkpoint_interval = int(self.config.trainer.checkpoint_interval)
        with preemption.SigtermWatcher() as watcher, \
                self._explaining_lost_workers(), \
                input_reader.naming_corrupt_files(self._training_files):
            while step < self.total_steps:
                if iterator is None:
                    iterator = iter(self._train_dataset(epoch, batch))
                inputs = next(iterator, None)
                if inputs is None:
                    self._raise_short_epoch(epoch, batch)
                logs, stop = self._train_fn(
                    inputs, tf.constant(int(watcher.received), tf.int32))
                step, batch = step + 1, batch + 1
                if batch == self.steps_per_epoch:
                    epoch, batch, iterator = epoch + 1, 0, None
                self.position.assign(step, epoch, batch)
                if step % log_interval == 0 or step == self.total_steps:
                    scalars = self._log_train(step, logs)
                # One process decides alone; several agree through `stop`.
                if bool(stop) or (watcher.received and
                                  self._num_pipelines == 1):
                    self._save(step)
                    logging.warning("stopped by SIGTERM at step %d; "
                                    "checkpoint saved", step)
                    return {"step": step, "preempted": True,
                            "train": scalars}
                if step % checkpoint_interval == 0:
                    last_saved = self._save(step)
                if eval_interval and step % eval_interval == 0:
                    self.evaluate()
        if last_saved != step:
            self._save(step)
        return {"step": step, "preempted": False, "train": scalars}

    def _training_files(self):
        return self.task.input_files(True)

    def _raise_short_epoch(self, epoch, batch):
        """An epoch that ended early: a file cut inside a record header
        (TensorFlow ends such a file silently) is named; else the count."""
        found = input_reader.find_corrupt_files(self._training_files(),
                                                max_files=1)
        if found:
            raise errors.CorruptRecordError(
                f"{found[0].message}; training epoch {epoch} ended after "
                f"{batch} of {self.steps_per_epoch} steps",
                path=found[0].path)
        raise errors.DataError(
            f"training epoch {epoch} ended after {batch} steps; "
            f"expected trainer.steps_per_epoch={self.steps_per_epoch}")

    @contextlib.contextmanager
    def _explaining_lost_workers(self):
        """Turns a multi-worker collective failure into `LostWorkerError`.

        When a worker dies, TensorFlow's coordination service misses its
        heartbeats and aborts the collectives of the others (within
        seconds) with a long, cryptic error; this says which worker was
        lost, that every worker must be restarted, and from which
        checkpoint the restarted job resumes. Launchers ending through
        `filesystems.exit_process` then exit at once.
        """
        try:
            yield
        except strategies.PEER_FAILURES as e:
            if strategies.worker_info(self.strategy)[0] is None:
                raise  # one process: not a lost peer
            lost = strategies.lost_peers(self.strategy.cluster_resolver, e)
            latest = self.checkpointer.latest()
            resume = (f"it resumes from checkpoint {latest}" if latest else
                      "no checkpoint was written yet, so it starts over")
            # TensorFlow's teardown at exit can wait on the dead peer
            # forever (seen when the peer died inside a ring all-reduce).
            filesystems.skip_teardown_at_exit()
            raise errors.LostWorkerError(
                f"multi-worker training lost {', '.join(lost) or 'a peer'} "
                f"after step {self.global_step} ({type(e).__name__}: "
                f"{strategies.peer_failure_cause(e)}). The job cannot go on "
                "with fewer workers: restart every worker with the same "
                f"command and TF_CONFIG; {resume}") from e

    def _save(self, step):
        path = self.checkpointer.save(step)
        if path:
            logging.info("saved checkpoint %s", path)
        return step

    def _log_train(self, step, logs):
        scalars = {m.name: float(m.result()) for m in self.train_metrics}
        for key, value in logs.items():
            scalars.setdefault(key, float(value))
        scalars["learning_rate"] = self.current_learning_rate()
        self.reporter.log_train(step, scalars)
        for metric in self.train_metrics:
            metric.reset_state()
        return scalars

    # --- Evaluation ---------------------------------------------------------
    def evaluate(self):
        """Runs `validation_step` over the evaluation split.

        Uses the EMA weights when `ema.enabled` and `ema.evaluate_with_ema`.
        The chief writes `eval_metrics.json` and `eval/` summaries.

        Returns:
            Dict metric name -> float (Keras metrics, then the task's
            `reduce_aggregated_logs`).

        Raises:
            ConfigError: called before any training, with no checkpoint in
                the workdir.
        """
        if not self._restored and self.restore() is None:
            raise errors.ConfigError(
                f"nothing to evaluate: no checkpoint in "
                f"{self.checkpointer.directory}; train first or point "
                "--workdir at a trained run")
        step = self.global_step
        for metric in self.eval_metrics:
            metric.reset_state()
        eval_steps = int(self.config.trainer.eval_steps)
        state = None
        dataset = self.strategy.distribute_datasets_from_function(
            lambda context: self.task.build_inputs(
                False, global_batch_size=self.eval_batch_size,
                input_context=context, epoch=0, seed=self.seed))
        use_ema = self.ema is not None and self.config.ema.evaluate_with_ema
        with (self.ema.swapped_weights() if use_ema
              else contextlib.nullcontext()), \
                input_reader.naming_corrupt_files(
                    lambda: self.task.input_files(False)):
            for index, inputs in enumerate(dataset):
                if eval_steps and index >= eval_steps:
                    break
                replica_logs = self._eval_fn(inputs)
                if any(replica_logs):
                    state = self.task.aggregate_logs(
                        state, [tf.nest.map_structure(np.asarray, logs)
                                for logs in replica_logs])
        results = {m.name: float(m.result()) for m in self.eval_metrics}
        results.update(self.task.reduce_aggregated_logs(state, step))
        if self.is_chief:
            written = self.task.write_evaluation_outputs(self.workdir, step)
            if written:
                logging.info("wrote %s", written)
            filesystems.atomic_write_text(
                os.path.join(self.workdir, EVAL_METRICS_FILE),
                json.dumps({"step": step, "metrics": results}, indent=2,
                           sort_keys=True) + "\n")
        self.reporter.log_eval(step, results)
        self.last_eval = results
        return results

    def train_and_evaluate(self):
        """Trains (evaluating every `trainer.eval_interval` steps), then
        evaluates the final weights unless training was preempted.

        Returns:
            The `train()` result with an `eval` entry (None if preempted).
        """
        interval = int(self.config.trainer.eval_interval)
        result = self.train(eval_interval=interval)
        result["eval"] = None
        if not result["preempted"]:
            already = interval and result["step"] % interval == 0
            result["eval"] = self.last_eval if already else self.evaluate()
        return result

    def close(self):
        """Flushes the summary writers."""
        self.reporter.close()
