"""Reading TFRecords for a pipeline: list, shard per worker, interleave.

In the spirit of Model Garden's `official/core/input_reader.py`:

- files come from a glob pattern, comma-separated patterns or a list
  (`tfrecord_io.list_files`; remote schemes load tensorflow-io lazily);
- under multi-worker training every input pipeline (`tf.distribute.
  InputContext`) reads a disjoint part: whole files when there are at least
  as many files as pipelines ("files then read"), else every pipeline reads
  all files and keeps every n-th record ("read then shard");
- file order is shuffled with a seed (under "files then read", each
  pipeline shuffles its own files, the same ones every epoch, so that its
  epoch keeps its length), files are interleaved (`cycle_length`, AUTOTUNE
  parallelism), records shuffled with a seed;
- everything random derives from (seed, epoch): epoch e of a pipeline is
  the same on every run (exactly so in `deterministic` mode), which is how a
  training run resumes its data position (a distributed iterator cannot be
  checkpointed in TF 2.17, so the trainer re-creates epoch e and skips the
  batches already consumed).

`StagedPipeline` is the DMVR-style builder the frames and feature pipelines
use: an ordered list of named `Dataset -> Dataset` stages that a user can
inspect, replace or extend. `naming_corrupt_files` turns TensorFlow's
`DataLossError` (which names no file) into a `CorruptRecordError` naming the
corrupt file. One corruption TensorFlow does not report at all: a file cut
inside a record's 12-byte header just ends early; `tfrecord_io.count_records`
(which compares byte counts with file sizes) catches it, e.g. after copying
a dataset.

Example:

```python
reader = InputReader("/data/train-*.tfrecord", training=True, seed=1,
                     input_context=ctx, shuffle_buffer_size=64)
records = reader.read(start_epoch=0, num_epochs=None)  # (epoch, bytes)
```
"""

import contextlib

import tensorflow as tf

from tfaction import errors
from tfaction.data import samplers
from tfaction.data import tfrecord_io

AUTOTUNE = tf.data.AUTOTUNE


class StagedPipeline:
    """An ordered list of named dataset stages (DMVR builder style).

    Each stage is a function `tf.data.Dataset -> tf.data.Dataset`. Stages
    can be added before/after another, replaced or removed by name, so a
    recipe changes one step (e.g. its own augmentation) without copying the
    pipeline.

    Example:

    ```python
    pipe = frames_pipeline.build_frames_pipeline(config, training=True)
    pipe.replace("augment", my_augment_stage)
    print(pipe.summary())
    dataset = pipe(records)
    ```
    """

    def __init__(self, stages=()):
        self._stages = []
        for name, fn in stages:
            self.add(name, fn)

    @property
    def names(self):
        """Stage names in order."""
        return [name for name, _ in self._stages]

    def _index(self, name):
        for i, (n, _) in enumerate(self._stages):
            if n == name:
                return i
        raise KeyError(f"no stage named {name!r}; stages: {self.names}")

    def add(self, name, fn, *, before=None, after=None):
        """Adds stage `name` at the end, or before/after another stage."""
        if name in self.names:
            raise ValueError(f"stage {name!r} already exists")
        if before is not None and after is not None:
            raise ValueError("give at most one of before= and after=")
        if before is not None:
            at = self._index(before)
        elif after is not None:
            at = self._index(after) + 1
        else:
            at = len(self._stages)
        self._stages.insert(at, (name, fn))
        return self

    def replace(self, name, fn):
        """Replaces the function of stage `name`."""
        self._stages[self._index(name)] = (name, fn)
        return self

    def remove(self, name):
        """Removes stage `name`."""
        del self._stages[self._index(name)]
        return self

    def stage(self, name):
        """The function of stage `name`."""
        return self._stages[self._index(name)][1]

    def summary(self):
        """One line per stage: index, name and function name."""
        return "\n".join(f"{i}. {name}: {_fn_name(fn)}"
                         for i, (name, fn) in enumerate(self._stages))

    def __call__(self, dataset):
        for _, fn in self._stages:
            dataset = fn(dataset)
        return dataset


def require(ok, data, value):
    """`value`, once `ok` holds; otherwise an InvalidArgumentError with `data`.

    A data dependency (`tf.cond`) rather than `tf.control_dependencies`:
    inside tf.data functions TensorFlow does not reliably run an Assert
    before the ops consuming the tensor it guards (e.g. JPEG decoding in a
    `map_fn` loop), so their cryptic error could win the race.

    Args:
        ok: scalar bool tensor.
        data: list of strings / tensors printed in the error.
        value: tensor (or nest of tensors) to pass through.

    Returns:
        `value`, computed only after the check passed.

    Example:
        `frames = require(n > 0, ["video", vid, "has no frames"], frames)`
    """
    def fail():
        with tf.control_dependencies([tf.debugging.Assert(False, data)]):
            return tf.nest.map_structure(tf.identity, value)
    return tf.cond(ok, lambda: tf.nest.map_structure(tf.identity, value),
                   fail)


def _fn_name(fn):
    inner = getattr(fn, "func", fn)  # functools.partial
    return getattr(inner, "__name__", repr(fn))


def map_stage(fn, *, deterministic, name=None):
    """A stage applying `fn` element-wise with AUTOTUNE parallelism.

    Args:
        fn: element function (AutoGraph is not applied).
        deterministic: keep the input order.
        name: op name shown in tf.data errors and profiles.

    Returns:
        A `Dataset -> Dataset` function for `StagedPipeline`.

    Example:
        `pipe.add("blank", map_stage(blank_fn, deterministic=True))`
    """
    # Stage functions branch on static settings only: skip AutoGraph.
    fn = tf.autograph.experimental.do_not_convert(fn)

    def stage(dataset):
        return dataset.map(fn, num_parallel_calls=AUTOTUNE,
                           deterministic=deterministic, name=name)
    stage.__name__ = f"map({name or _fn_name(fn)})"
    return stage


def shard_plan(num_files, input_context=None):
    """How this input pipeline splits `num_files` files among pipelines.

    Args:
        num_files: number of files of the whole dataset.
        input_context: a `tf.distribute.InputContext`, or None (one
            pipeline).

    Returns:
        (mode, num_pipelines, pipeline_id) with mode "none" (one pipeline),
        "files" (each pipeline reads whole files) or "records" (each reads
        all files, keeps every `num_pipelines`-th record).

    Example:
        >>> shard_plan(1, tf.distribute.InputContext(2, 1))
        ('records', 2, 1)
    """
    if input_context is None or input_context.num_input_pipelines <= 1:
        return "none", 1, 0
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    return ("files" if num_files >= n else "records"), n, i


class InputReader:
    """Lists, shards, shuffles and interleaves TFRecord files.

    Args:
        file_pattern: glob, comma-separated globs, or a list of them.
        training: shuffle files/records (and default to non-deterministic
            order).
        seed: int seed; with `epoch` it fixes every shuffle.
        input_context: `tf.distribute.InputContext` of this pipeline.
        shuffle_files: defaults to `training`.
        shuffle_buffer_size: record shuffle buffer (training only; <= 1
            disables it).
        cycle_length: files read concurrently (None: AUTOTUNE, or up to 16
            in deterministic mode so that the order is machine-independent).
        block_length: consecutive records taken from one file.
        deterministic: keep a reproducible order (default: not training).
        compression_type: "", "GZIP" or "ZLIB".
        buffer_size: read buffer per file in bytes (None: TF default).

    Raises:
        DataError: a pattern matches no file.
        MissingDependencyError: a remote scheme needs tensorflow-io.
    """

    def __init__(self, file_pattern, *, training=False, seed=0,
                 input_context=None, shuffle_files=None,
                 shuffle_buffer_size=0, cycle_length=None, block_length=1,
                 deterministic=None, compression_type="", buffer_size=None):
        self.files = tfrecord_io.list_files(file_pattern)
        self.training = training
        self.seed = int(seed)
        self.shuffle_files = training if shuffle_files is None else \
            shuffle_files
        self.shuffle_buffer_size = int(shuffle_buffer_size)
        self.cycle_length = cycle_length
        self.block_length = block_length
        self.deterministic = (not training) if deterministic is None else \
            bool(deterministic)
        self.compression_type = compression_type or ""
        self.buffer_size = buffer_size
        self.mode, self.num_pipelines, self.pipeline_id = shard_plan(
            len(self.files), input_context)

    def _read_file(self, path):
        return tf.data.TFRecordDataset(path, self.compression_type,
                                       self.buffer_size)

    def _cycle_length(self, deterministic):
        if self.cycle_length:
            return self.cycle_length
        # AUTOTUNE means "number of cores": a deterministic order must not
        # depend on the machine.
        return min(len(self.files), 16) if deterministic else AUTOTUNE

    def records(self, epoch=0):
        """The serialized records of one epoch for this pipeline.

        Args:
            epoch: int or int64 scalar tensor.

        Returns:
            `tf.data.Dataset` of scalar strings.
        """
        files = self.files
        if self.mode == "files":
            # The same files in every epoch (shuffled among themselves
            # below): split after a shuffle, a pipeline would get other
            # files, so another number of records, each epoch, while the
            # trainer fixes an epoch's steps once (from epoch 0's smallest
            # pipeline), and a later epoch could run dry on one worker.
            files = files[self.pipeline_id::self.num_pipelines]
        files = tf.constant(files)
        if self.shuffle_files:
            files = tf.random.experimental.stateless_shuffle(
                files, samplers.make_seed(self.seed, epoch, 0))
        ds = tf.data.Dataset.from_tensor_slices(files)
        # Read-then-shard needs the same record order on every worker, or
        # the per-record shards would overlap.
        deterministic = self.deterministic or self.mode == "records"
        ds = ds.interleave(
            self._read_file, cycle_length=self._cycle_length(deterministic),
            block_length=self.block_length, num_parallel_calls=AUTOTUNE,
            deterministic=deterministic)
        if self.mode == "records":
            ds = ds.shard(self.num_pipelines, self.pipeline_id)
        if self.training and self.shuffle_buffer_size > 1:
            ds = ds.shuffle(
                self.shuffle_buffer_size,
                seed=samplers.seed_scalar(
                    samplers.make_seed(self.seed, epoch, 1)),
                reshuffle_each_iteration=False)
        return ds

    def read(self, start_epoch=0, num_epochs=1):
        """(epoch, record) pairs for `num_epochs` epochs (None: forever).

        Returns:
            `tf.data.Dataset` of (int64 epoch, string record).
        """
        if num_epochs == 1:
            epoch = tf.constant(start_epoch, tf.int64)
            return self.records(epoch).map(lambda r: (epoch, r))
        if num_epochs is not None:
            # Each epoch built with a concrete epoch: inside a traced
            # flat_map, `Dataset.shuffle` compares its tensor seed with
            # Python ints when a global seed of 0 is set
            # (`tf.random.set_seed(0)`), which fails in graph mode.
            ds = None
            for index in range(start_epoch, start_epoch + num_epochs):
                epoch = tf.constant(index, tf.int64)
                part = self.records(epoch).map(
                    lambda r, e=epoch: (e, r))
                ds = part if ds is None else ds.concatenate(part)
            return ds
        epochs = tf.data.Dataset.range(start_epoch, 2**62)
        return epochs.flat_map(
            lambda e: self.records(e).map(lambda r: (e, r)))


def finalize(dataset, *, deterministic, sharded):
    """Sets dataset options: order, map fusion, no re-sharding.

    Args:
        dataset: the finished pipeline.
        deterministic: keep a reproducible element order.
        sharded: the data was already split per worker (turns tf.distribute
            auto-sharding off).

    Returns:
        The dataset with options.
    """
    options = tf.data.Options()
    options.deterministic = deterministic
    # Stages are separate named maps for readability; fusing them saves a
    # thread pool and a buffer per stage (+30-60 % frames/s on 2 cores).
    options.experimental_optimization.map_fusion = True
    if sharded:
        # We already split the data per worker; auto-sharding would split
        # it again.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)
    return dataset.with_options(options)


# --- Corrupt files ----------------------------------------------------------
def find_corrupt_files(files, max_files=None):
    """Scans files and returns a CorruptRecordError for each corrupt one.

    Args:
        files: TFRecord paths.
        max_files: stop after this many corrupt files (None: scan all).

    Returns:
        List of `CorruptRecordError` (each names its file and record).
    """
    found = []
    for path in files:
        try:
            for _ in tfrecord_io.iterate_records(path):
                pass
        except errors.CorruptRecordError as e:
            found.append(e)
            if max_files is not None and len(found) >= max_files:
                break
    return found


def corrupt_file_error(error, files):
    """The `CorruptRecordError` explaining a `DataLossError`, if any.

    TensorFlow's message ("corrupted record at 128") names no file; this
    scans `files` (only on this error path) to find which one is corrupt.

    Returns:
        A `CorruptRecordError`, or `error` itself when no file is corrupt.
    """
    found = find_corrupt_files(files)
    if not found:
        return error
    first = found[0]
    more = (f" ({len(found) - 1} more corrupt file(s): "
            f"{', '.join(e.path for e in found[1:])})" if found[1:] else "")
    return errors.CorruptRecordError(
        f"{first.message}{more}; TensorFlow reported: "
        f"{getattr(error, 'message', str(error)).strip()}", path=first.path)


@contextlib.contextmanager
def naming_corrupt_files(files):
    """Re-raises a `DataLossError` as a `CorruptRecordError` naming the file.

    Args:
        files: the TFRecord paths being read, or a function returning them
            (called only on the error path).

    Example:

    ```python
    with input_reader.naming_corrupt_files(reader.files):
        for batch in dataset:
            ...
    ```
    """
    try:
        yield
    except tf.errors.DataLossError as e:
        named = corrupt_file_error(e, files() if callable(files) else files)
        if named is e:
            raise
        raise named from e
