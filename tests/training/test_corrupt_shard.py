"""A training shard corrupted during a run: a clear error naming the file
and the record, never a silent partial epoch.

TensorFlow reports a record whose bytes changed as a `DataLossError` that
names no file ("corrupted record at 123"), and ends a file cut inside a
record's header silently, one record short. The trainer turns the first into
a `CorruptRecordError` naming the file and record, and an epoch that ends
before its counted steps into the same error when a file explains it. A
converted folder also records each shard's size, so a shard truncated before
a run starts is refused before training (`ConvertedDataset.files`).
"""

import glob
import shutil

import pytest

from tests.training import classifier_config
from tests.training import harness
from tfaction import errors
from tfaction import training
from tfaction.data import tfrecord_io
from tfaction.tasks import converted_dataset

STEPS_PER_EPOCH = 6  # given, not counted: the count would meet the damage


def _copy(classifier_records, tmp_path):
    source = classifier_records["train"].rsplit("/", 1)[0]
    shutil.copytree(source, tmp_path / "records")
    return {key: str(tmp_path / "records" / pattern.rsplit("/", 1)[1])
            for key, pattern in classifier_records.items()}


def _config(records):
    config = classifier_config.get_config()
    config.task.train_files = records["train"]
    config.task.eval_files = records["eval"]
    config.trainer.epochs = 2
    config.trainer.steps_per_epoch = STEPS_PER_EPOCH
    config.runtime.deterministic = False  # process-wide, irreversible
    return config


def _last_shard(records):
    path = sorted(glob.glob(records["train"]))[-1]
    return path, list(tfrecord_io.iterate_record_offsets(path))


def _train(records, workdir):
    harness.train_and_evaluate(_config(records), workdir,
                               training.get_strategy("one_device"))


def test_changed_bytes_name_the_file_and_record(classifier_records,
                                                tmp_path):
    records = _copy(classifier_records, tmp_path)
    path, offsets = _last_shard(records)
    damaged = len(offsets) // 2
    offset, size = offsets[damaged]
    data = bytearray(open(path, "rb").read())
    data[offset + 12 + size // 2] ^= 0xFF  # inside the record's data
    open(path, "wb").write(bytes(data))
    with pytest.raises(errors.CorruptRecordError,
                       match=rf"record {damaged} cannot be read") as e:
        _train(records, tmp_path / "run")
    assert e.value.path == path
    assert "corrupted record" in str(e.value)  # TensorFlow's words, kept


def test_a_cut_inside_a_header_is_named_not_a_short_epoch(
        classifier_records, tmp_path):
    records = _copy(classifier_records, tmp_path)
    path, offsets = _last_shard(records)
    last, _ = offsets[-1]
    with open(path, "r+b") as f:
        f.truncate(last + 5)  # TensorFlow ends the file here, silently
    with pytest.raises(errors.CorruptRecordError) as e:
        _train(records, tmp_path / "run")
    assert e.value.path == path
    assert f"record {len(offsets) - 1} cannot be read" in str(e.value)
    assert "ended after" in str(e.value)


def test_converted_folder_refuses_a_shard_of_another_size(
        classifier_records, tmp_path):
    records = _copy(classifier_records, tmp_path)
    data = converted_dataset.ConvertedDataset(
        tmp_path / "records", schema="feature_sequence",
        converter="activitynet_features")
    path = data.files("training")[-1]
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(errors.CorruptRecordError,
                       match="dataset_info.json says") as e:
        data.files("training")
    assert e.value.path == path


def test_recipe_tasks_list_their_converted_files(classifier_records,
                                                 tmp_path):
    from experiments.configs import actionformer_synthetic
    from tfaction import tasks

    records = _copy(classifier_records, tmp_path)
    config = actionformer_synthetic.get_config()
    config.task.data_dir = str(tmp_path / "records")
    config.task.train_subset, config.task.eval_subset = ("training",
                                                         "validation")
    task = tasks.build_task(config)
    train = sorted(glob.glob(records["train"]))
    assert task.input_files(True) == train
    # evaluation may read both splits (CARL's protocols do)
    assert task.input_files(False) == train + sorted(
        glob.glob(records["eval"]))
