"""Staged commit, read-back and `verify_output` on truncated/corrupt shards."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import schemas
from tfaction.data.formats import class_list
from tfaction.data.formats import output

from . import _builders as b


def _record(video_id):
    example = schemas.feature_sequence_example(
        video_id, np.ones((3, 2), np.float32), fps=10.0, duration=1.0,
        stride=1, window=1)
    return example.SerializeToString(deterministic=True)


@pytest.fixture
def written(tmp_path):
    out = tmp_path / "out"
    with output.StagedOutput(out) as staged:
        with staged.shard_writer("train", num_shards=2) as writer:
            for i in range(5):
                writer.write(_record(f"v{i}"))
        staged.commit({"format": "test"}, class_list.ClassList(["a", "b"]))
    return out


def test_layout_and_verify(written):
    assert sorted(os.listdir(written)) == [
        "classes.txt", "dataset_info.json",
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    info = json.load(open(written / "dataset_info.json"))
    sizes = [os.path.getsize(written / f"train-0000{i}-of-00002.tfrecord")
             for i in range(2)]
    assert info["subsets"]["train"]["shards"] == [
        {"file": "train-00000-of-00002.tfrecord", "num_records": 3,
         "num_bytes": sizes[0]},
        {"file": "train-00001-of-00002.tfrecord", "num_records": 2,
         "num_bytes": sizes[1]}]
    assert info["num_classes"] == 2 and info["class_list"] == "classes.txt"
    assert output.verify_output(written) == {"train": 5}


def test_truncated_shard(written):
    path = written / "train-00000-of-00002.tfrecord"
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-7])
    with pytest.raises(errors.CorruptRecordError) as e:
        output.verify_output(written)
    assert e.value.path == str(path)
    assert "record 2" in str(e.value)


def test_corrupt_byte(written):
    path = written / "train-00001-of-00002.tfrecord"
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))
    with pytest.raises(errors.CorruptRecordError) as e:
        output.verify_output(written)
    assert e.value.path == str(path)


def test_shard_cut_at_a_record_boundary(written):
    path = str(written / "train-00000-of-00002.tfrecord")
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    with tf.io.TFRecordWriter(path) as writer:
        for record in records[:2]:
            writer.write(record)
    with pytest.raises(errors.CorruptRecordError, match="expected 3"):
        output.verify_output(written)


def test_missing_shard_and_info(written):
    os.remove(written / "train-00001-of-00002.tfrecord")
    with pytest.raises(errors.CorruptRecordError, match="missing"):
        output.verify_output(written)
    os.remove(written / "dataset_info.json")
    with pytest.raises(errors.MalformedFileError, match="dataset_info"):
        output.verify_output(written)


def test_read_back_blocks_commit_of_a_bad_record(written):
    before = b.snapshot(written)
    with pytest.raises(errors.CorruptRecordError, match="record 1"):
        with output.StagedOutput(written) as staged:
            with staged.shard_writer("train", num_shards=1) as writer:
                writer.write(_record("v0"))
                writer.write(b"\x0a\xff\xff not a SequenceExample")
            staged.commit({"format": "test"})
    assert b.snapshot(written) == before


def test_exception_removes_staging(tmp_path):
    with pytest.raises(RuntimeError):
        with output.StagedOutput(tmp_path / "o") as staged:
            with staged.shard_writer("train") as writer:
                writer.write(_record("v0"))
            raise RuntimeError("boom")
    assert os.listdir(tmp_path / "o") == []


def test_stale_shards_of_a_prefix_are_replaced(written):
    with output.StagedOutput(written) as staged:
        with staged.shard_writer("train", num_shards=1) as writer:
            writer.write(_record("v0"))
        staged.commit({"format": "test"})  # no class list this time
    assert sorted(os.listdir(written)) == [
        "dataset_info.json", "train-00000-of-00001.tfrecord"]
    assert output.verify_output(written) == {"train": 1}
