"""Tests of the sharded atomic writer and the checked reader (tfrecord_io)."""

import os

import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import tfrecord_io


def _write(tmp_path, prefix="train", num_shards=2, n=5):
    with tfrecord_io.ShardedTFRecordWriter(tmp_path, prefix,
                                           num_shards) as w:
        for i in range(n):
            w.write(f"r{i}".encode())
    return w


def test_writer_round_robin_and_names(tmp_path):
    w = _write(tmp_path)
    assert [os.path.basename(p) for p in w.paths] == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    assert w.num_written == 5
    got = [list(tfrecord_io.iterate_records(p)) for p in w.paths]
    assert got == [[b"r0", b"r2", b"r4"], [b"r1", b"r3"]]
    assert sorted(os.listdir(tmp_path)) == sorted(
        os.path.basename(p) for p in w.paths)  # no temporary left


def test_failed_conversion_leaves_previous_output(tmp_path):
    first = _write(tmp_path, n=2)
    with pytest.raises(RuntimeError, match="boom"):
        with tfrecord_io.ShardedTFRecordWriter(tmp_path, "train", 2) as w:
            w.write(b"new")
            raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == sorted(
        os.path.basename(p) for p in first.paths)
    assert list(tfrecord_io.iterate_records(first.paths[0])) == [b"r0"]


def test_rerun_with_other_shard_count_removes_stale_shards(tmp_path):
    _write(tmp_path, num_shards=3)
    w = _write(tmp_path, num_shards=1)
    assert os.listdir(tmp_path) == [os.path.basename(w.paths[0])]
    with pytest.raises(RuntimeError, match="outside"):
        tfrecord_io.ShardedTFRecordWriter(tmp_path, "x").write(b"")
    with pytest.raises(ValueError, match="num_shards"):
        tfrecord_io.ShardedTFRecordWriter(tmp_path, "x", 0)


def test_list_files_patterns(tmp_path):
    w = _write(tmp_path)
    pattern = tfrecord_io.shard_pattern(tmp_path, "train")
    assert tfrecord_io.list_files(pattern) == w.paths
    assert tfrecord_io.list_files(",".join(reversed(w.paths))) == \
        list(reversed(w.paths))
    assert tfrecord_io.list_files(w.paths) == w.paths
    with pytest.raises(errors.DataError, match="no file matches") as info:
        tfrecord_io.list_files(str(tmp_path / "nothing-*"))
    assert info.value.path.endswith("nothing-*")


def _cut(path, size):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:size])


@pytest.mark.parametrize("keep,what", [
    (19 * 2 + 14, "cut inside the data"),
    (19 * 2 + 5, "cut inside a header (TF itself is silent)"),
])
def test_truncated_file_is_a_corrupt_record_error(tmp_path, keep, what):
    path = str(tmp_path / "x.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for i in range(4):
            w.write(f"r-{i}".encode())  # 3 bytes: 19 bytes per record
    _cut(path, keep)
    with pytest.raises(errors.CorruptRecordError) as info:
        list(tfrecord_io.iterate_records(path))
    assert info.value.path == path, what
    assert "record 2 cannot be read" in str(info.value)
    with pytest.raises(errors.CorruptRecordError):
        tfrecord_io.count_records(path)


def test_flipped_byte_fails_the_crc(tmp_path):
    path = str(tmp_path / "x.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for i in range(3):
            w.write(b"payload-%d" % i)
    data = bytearray(open(path, "rb").read())
    data[-6] ^= 0xFF  # inside the last record's data
    open(path, "wb").write(bytes(data))
    with pytest.raises(errors.CorruptRecordError,
                       match="record 2 cannot be read"):
        list(tfrecord_io.iterate_records(path))


def test_count_records(tmp_path):
    w = _write(tmp_path, n=3)
    assert tfrecord_io.count_records(
        tfrecord_io.shard_pattern(tmp_path, "train")) == {
            w.paths[0]: 2, w.paths[1]: 1}


def test_record_offsets_read_single_records_back(tmp_path):
    path = str(tmp_path / "x.tfrecord")
    records = [b"a", b"bcdef", b""]
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    spans = list(tfrecord_io.iterate_record_offsets(path))
    assert spans == [(0, 1), (17, 5), (38, 0)]  # 16 bytes around each
    assert [tfrecord_io.read_record_at(path, o) for o, _ in spans] == records
    with pytest.raises(errors.CorruptRecordError, match="at byte 5"):
        tfrecord_io.read_record_at(path, 5)  # not a record's start
    data = bytearray(open(path, "rb").read())
    data[17 + 12] ^= 0xFF  # a byte of "bcdef": its data CRC fails
    open(path, "wb").write(bytes(data))
    assert tfrecord_io.read_record_at(path, 0) == b"a"
    with pytest.raises(errors.CorruptRecordError, match="at byte 17"):
        tfrecord_io.read_record_at(path, 17)
