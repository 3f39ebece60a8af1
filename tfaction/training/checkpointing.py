"""Checkpoints: what is saved, where each worker writes, how a run restores.

A checkpoint holds the model, the optimizer (slots, iteration count, loss
scale), the EMA shadows, the `DataPosition` (global step, epoch, batch in
epoch) and the model's `RandomStates` (where its dropout / drop-path draws
are). `tf.train.CheckpointManager` keeps the last `max_to_keep` of them in
`<workdir>/checkpoints`.

Multi-worker (MultiWorkerMirroredStrategy): every worker must take part in a
save, but only the chief keeps its files; the other workers write into a
private temporary directory that is deleted right after (the pattern of TF's
multi-worker tutorial). Every worker restores from the chief's directory,
which must therefore be on a file system all workers share.
"""

import contextlib
import os

import tensorflow as tf

from tfaction import errors
from tfaction.data import filesystems
from tfaction.training import strategies


class DataPosition(tf.Module):
    """Global step and input position (epoch, batch in epoch) as variables.

    TF 2.17 cannot checkpoint a distributed iterator, so the trainer rebuilds
    the epoch's dataset (a deterministic function of seed and epoch) and
    skips `batch_in_epoch` steps of it on resume.

    Example:

    ```python
    position = DataPosition()
    position.assign(step=120, epoch=2, batch_in_epoch=20)
    tf.train.Checkpoint(position=position).save("/tmp/ckpt")
    ```
    """

    def __init__(self):
        super().__init__(name="data_position")
        with tf.init_scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                    name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False,
                                     name="epoch")
            self.batch_in_epoch = tf.Variable(0, dtype=tf.int64,
                                              trainable=False,
                                              name="batch_in_epoch")

    def assign(self, step, epoch, batch_in_epoch):
        """Sets the three counters."""
        self.step.assign(step)
        self.epoch.assign(epoch)
        self.batch_in_epoch.assign(batch_in_epoch)

    def values(self):
        """Returns `(step, epoch, batch_in_epoch)` as Python ints."""
        return (int(self.step.numpy()), int(self.epoch.numpy()),
                int(self.batch_in_epoch.numpy()))


class RandomStates(tf.Module):
    """The states of a Keras model's seed generators, as checkpoint items.

    Keras keeps the position of a layer's random draws (dropout masks, drop
    path) in `keras.random.SeedGenerator` variables, which are in
    `model.variables` but not in `model.weights`, and which a TF checkpoint
    of the model does not reach (a `SeedGenerator` is not trackable).
    Without them a resumed run would draw the masks of step 0 again instead
    of the uninterrupted run's.

    Args:
        model: a built Keras model.

    Example:

    ```python
    states = RandomStates(model)
    if states.states:
        tf.train.Checkpoint(model=model, random_states=states).save(path)
    ```
    """

    def __init__(self, model):
        super().__init__(name="random_states")
        weights = {id(w) for w in model.weights}
        self.states = [v for v in model.variables if id(v) not in weights]


class Checkpointer:
    """Saves and restores a run's state under chief / non-chief rules.

    Args:
        directory: the chief's checkpoint directory.
        strategy: the run's `tf.distribute.Strategy`.
        max_to_keep: checkpoints kept by the chief.
        **trackables: objects to save (model=..., optimizer=..., ...).

    Example:

    ```python
    ckpt = Checkpointer(f"{workdir}/checkpoints", strategy, max_to_keep=3,
                        model=model, optimizer=optimizer, position=position)
    ckpt.restore_latest()
    ...
    ckpt.save(step)
    ```
    """

    def __init__(self, directory, strategy, max_to_keep, **trackables):
        self.directory = os.fspath(directory)
        task_type, task_id, self.is_chief = strategies.worker_info(strategy)
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self._manager = None
        self._temp_dir = None
        if self.is_chief:
            self._manager = tf.train.CheckpointManager(
                self.checkpoint, self.directory, max_to_keep=max_to_keep)
        else:
            self._temp_dir = os.path.join(
                os.path.dirname(self.directory.rstrip("/")),
                f".tmp_checkpoint_{task_type}_{task_id}")

    def latest(self):
        """Path prefix of the newest checkpoint in `directory`, or None."""
        return tf.train.latest_checkpoint(self.directory)

    def restore_latest(self):
        """Restores the newest checkpoint, if any.

        Returns:
            The restored checkpoint's path prefix, or None.

        Raises:
            ConfigError: the checkpoint does not fit the objects of this run
                (the model or optimizer config changed).
        """
        path = self.latest()
        if path is None:
            return None
        return self.restore(path)

    def restore(self, path):
        """Restores checkpoint `path` (a path prefix).

        Returns:
            `path`.

        Raises:
            ConfigError: the checkpoint does not fit the objects of this run.
        """
        try:
            status = self.checkpoint.restore(path)
            status.assert_existing_objects_matched()
            status.expect_partial()  # evaluation does not restore optimizer
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            raise errors.ConfigError(
                f"checkpoint {path} does not match the model/optimizer built "
                f"from this config (was the config changed?): {e}") from e
        return path

    def save(self, step):
        """Saves the state as checkpoint number `step` (every worker calls).

        Returns:
            The chief's checkpoint path; None on other workers.

        Raises:
            CheckpointWriteError: the chief's write failed (disk full, file
                size limit, I/O error); nothing of this checkpoint is left
                and the previous one stays the latest.
        """
        if self.is_chief:
            try:
                return self._manager.save(checkpoint_number=step)
            except (OSError, tf.errors.OpError) as e:
                removed = self._remove_partial(step)
                latest = self.latest()
                resume = (f"the last complete checkpoint is {latest}, which "
                          f"a restarted run resumes from" if latest else
                          "there is no complete checkpoint yet: a restarted "
                          "run starts from the beginning")
                raise errors.CheckpointWriteError(
                    f"writing checkpoint {step} to {self.directory} failed "
                    f"({e}); {removed} partial file(s) removed; "
                    f"{resume}") from e
        self.checkpoint.write(os.path.join(self._temp_dir, "ckpt"))
        tf.io.gfile.rmtree(self._temp_dir)
        return None

    def _remove_partial(self, step):
        """Deletes what a failed save of `step` left (its staging folder,
        and its files unless the checkpoint state already lists it, i.e.
        the failure came after the checkpoint was complete); returns how
        many paths it removed."""
        prefix = os.path.join(self.directory, f"ckpt-{step}")
        leftovers = tf.io.gfile.glob(prefix + "_temp*")
        if self.latest() != prefix:
            leftovers += tf.io.gfile.glob(prefix + ".*")
        for path in leftovers:  # cleanup must not mask the write error
            if tf.io.gfile.isdir(path):
                with contextlib.suppress(tf.errors.OpError, OSError):
                    tf.io.gfile.rmtree(path)
            else:
                filesystems.remove_quietly(path)
        return len(leftovers)


def restore_model_weights(model, path):
    """Restores a model's weights from a tfaction training checkpoint.

    Args:
        model: the model (same architecture as the checkpoint's).
        path: a checkpoint prefix, or a run directory (its newest
            checkpoint under `checkpoints/`).

    Returns:
        The checkpoint prefix read.

    Raises:
        ConfigError: no checkpoint there, or one whose model differs.
    """
    prefix = path
    if filesystems.isdir(path):
        directory = os.path.join(path, "checkpoints")
        prefix = tf.train.latest_checkpoint(directory) or \
            tf.train.latest_checkpoint(path)
        if prefix is None:
            raise errors.ConfigError(
                f"task.init_checkpoint: no checkpoint in {path!r} (nor in "
                f"{directory!r})")
    try:
        status = tf.train.Checkpoint(model=model).read(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (tf.errors.NotFoundError, AssertionError, ValueError) as e:
        raise errors.ConfigError(
            f"task.init_checkpoint {prefix!r} does not hold this model's "
            f"weights: {e}") from None
    return prefix
