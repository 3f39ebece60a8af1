"""Tests of file listing, per-worker sharding and reading (input_reader)."""

import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data import input_reader
from tfaction.data import tfrecord_io


def _write(tmp_path, num_files, per_file, prefix="part"):
    """Files whose records are b"<file>-<record>"."""
    paths = []
    for f in range(num_files):
        path = str(tmp_path / f"{prefix}-{f}.tfrecord")
        with tf.io.TFRecordWriter(path) as w:
            for r in range(per_file):
                w.write(f"{f}-{r}".encode())
        paths.append(path)
    return paths


def _records(ds):
    return [r.decode() for r in ds.as_numpy_iterator()]


def _ctx(n, i):
    return tf.distribute.InputContext(num_input_pipelines=n,
                                      input_pipeline_id=i)


def test_staged_pipeline_add_replace_remove():
    pipe = input_reader.StagedPipeline([
        ("a", lambda ds: ds.map(lambda x: x + 1)),
        ("c", lambda ds: ds.map(lambda x: x * 10))])
    pipe.add("b", lambda ds: ds.map(lambda x: x * 2), after="a")
    assert pipe.names == ["a", "b", "c"]
    ds = tf.data.Dataset.range(3)
    assert list(pipe(ds).as_numpy_iterator()) == [20, 40, 60]
    pipe.replace("c", lambda ds: ds)
    pipe.remove("a")
    pipe.add("z", lambda ds: ds.take(1), before="b")
    assert pipe.names == ["z", "b", "c"]
    assert list(pipe(ds).as_numpy_iterator()) == [0]
    assert "1. b" in pipe.summary()
    with pytest.raises(KeyError, match="no stage named 'x'"):
        pipe.remove("x")
    with pytest.raises(ValueError, match="already exists"):
        pipe.add("b", lambda ds: ds)


def test_shard_plan_modes():
    assert input_reader.shard_plan(4, None) == ("none", 1, 0)
    assert input_reader.shard_plan(4, _ctx(2, 1)) == ("files", 2, 1)
    assert input_reader.shard_plan(1, _ctx(2, 0)) == ("records", 2, 0)


def test_files_then_read_gives_disjoint_complete_shards(tmp_path):
    paths = _write(tmp_path, 4, 3)
    shards = []
    for i in range(2):
        reader = input_reader.InputReader(
            str(tmp_path / "part-*.tfrecord"), training=True, seed=5,
            input_context=_ctx(2, i), shuffle_buffer_size=8)
        assert reader.mode == "files"
        got = _records(reader.records(epoch=0))
        # Whole files: every record of a file lands on one worker.
        assert len({r.split("-")[0] for r in got}) == 2
        shards.append(set(got))
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == {f"{f}-{r}" for f in range(4)
                                     for r in range(3)}
    assert len(paths) == 4


def test_read_then_shard_when_fewer_files_than_workers(tmp_path):
    _write(tmp_path, 1, 7)
    shards = []
    for i in range(2):
        reader = input_reader.InputReader(
            str(tmp_path / "*.tfrecord"), training=True, seed=1,
            input_context=_ctx(2, i), shuffle_buffer_size=4)
        assert reader.mode == "records"
        shards.append(_records(reader.records(3)))
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == [f"0-{r}" for r in range(7)]


def test_shuffle_is_a_function_of_seed_and_epoch(tmp_path):
    _write(tmp_path, 3, 5)
    pattern = str(tmp_path / "*.tfrecord")

    def order(seed, epoch):
        reader = input_reader.InputReader(
            pattern, training=True, seed=seed, shuffle_buffer_size=16,
            deterministic=True)
        return _records(reader.records(epoch))

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)
    assert sorted(order(1, 1)) == sorted(order(1, 0))
    reader = input_reader.InputReader(pattern, training=True, seed=1,
                                      shuffle_buffer_size=16,
                                      deterministic=True)
    pairs = list(reader.read(start_epoch=0, num_epochs=2)
                 .as_numpy_iterator())
    assert [int(e) for e, _ in pairs] == [0] * 15 + [1] * 15
    assert [r.decode() for _, r in pairs] == order(1, 0) + order(1, 1)


def test_eval_reads_in_file_order(tmp_path):
    _write(tmp_path, 2, 2)
    reader = input_reader.InputReader(
        f"{tmp_path}/part-1.tfrecord,{tmp_path}/part-0.tfrecord",
        cycle_length=1)
    assert reader.deterministic and not reader.shuffle_files
    assert _records(reader.records()) == ["1-0", "1-1", "0-0", "0-1"]


def test_no_match_is_a_data_error(tmp_path):
    with pytest.raises(errors.DataError, match="no file matches"):
        input_reader.InputReader(str(tmp_path / "missing-*.tfrecord"))


def test_remote_path_without_tensorflow_io(no_tfio):
    with pytest.raises(errors.MissingDependencyError,
                       match=r"pip install tensorflow-io==0\.37\.1"):
        input_reader.InputReader("s3://bucket/train-*.tfrecord")
    assert no_tfio == ["tensorflow_io"]


def test_local_path_never_imports_tensorflow_io(tmp_path, monkeypatch):
    _write(tmp_path, 1, 1)

    def fail(name):
        raise AssertionError(f"imported {name} for a local path")

    monkeypatch.setattr(filesystems, "_tfio_loaded", False)
    monkeypatch.setattr(filesystems.importlib, "import_module", fail)
    reader = input_reader.InputReader(str(tmp_path / "*.tfrecord"))
    assert _records(reader.records()) == ["0-0"]


def _truncate(path, keep):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:keep])


def test_data_loss_is_reraised_naming_the_file(tmp_path):
    paths = _write(tmp_path, 2, 4)
    _truncate(paths[1], 19 * 2 + 14)  # cut inside the data of record 2
    reader = input_reader.InputReader(str(tmp_path / "*.tfrecord"))
    with pytest.raises(tf.errors.DataLossError):
        _records(reader.records())  # TensorFlow's own error: no file name
    with pytest.raises(errors.CorruptRecordError) as info:
        with input_reader.naming_corrupt_files(reader.files):
            _records(reader.records())
    assert info.value.path == paths[1]
    assert paths[1] in str(info.value) and "record 2" in str(info.value)
    assert isinstance(info.value.__cause__, tf.errors.DataLossError)


def test_data_loss_without_corrupt_file_keeps_original(tmp_path):
    paths = _write(tmp_path, 1, 2)
    err = tf.errors.DataLossError(None, None, "corrupted record at 0")
    assert input_reader.corrupt_file_error(err, paths) is err
    with pytest.raises(tf.errors.DataLossError):
        with input_reader.naming_corrupt_files(paths):
            raise err
    assert tfrecord_io.count_records(paths[0]) == {paths[0]: 2}


def test_multi_epoch_read_under_a_global_seed_of_zero(tmp_path):
    """`tf.random.set_seed(0)` (the trainer's default seed) made
    `Dataset.shuffle` compare a traced seed with Python ints."""
    _write(tmp_path, 2, 3)
    tf.random.set_seed(0)
    try:
        reader = input_reader.InputReader(
            str(tmp_path / "*.tfrecord"), training=True, seed=1,
            shuffle_buffer_size=8, deterministic=True)
        pairs = list(reader.read(start_epoch=3, num_epochs=2)
                     .as_numpy_iterator())
    finally:
        tf.random.set_seed(None)
    assert [int(e) for e, _ in pairs] == [3] * 6 + [4] * 6


def test_files_per_worker_stay_the_same_every_epoch(tmp_path):
    # Shards of unequal sizes (3, 3, 2 records): a worker's epoch must keep
    # its length (the trainer fixes the steps of an epoch once), so each
    # worker reads the same files every epoch, in an order that varies.
    for f, size in enumerate((3, 3, 2)):
        with tf.io.TFRecordWriter(str(tmp_path / f"part-{f}.tfrecord")) as w:
            for r in range(size):
                w.write(f"{f}-{r}".encode())
    per_worker = []
    for i in range(2):
        reader = input_reader.InputReader(
            str(tmp_path / "*.tfrecord"), training=True, seed=3,
            input_context=_ctx(2, i), deterministic=True)
        assert reader.mode == "files"
        per_worker.append([_records(reader.records(e)) for e in range(6)])
    for epochs in per_worker:
        assert len({frozenset(records) for records in epochs}) == 1
    for e in range(6):
        assert not set(per_worker[0][e]) & set(per_worker[1][e])
    assert len({tuple(records) for records in per_worker[0]}) > 1
