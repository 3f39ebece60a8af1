"""Tests of the file-system helpers (remote schemes, atomic writes)."""

import os

import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import filesystems


@pytest.mark.parametrize("path,scheme", [
    ("/data/x.tfrecord", ""), ("relative/x", ""), ("s3://b/k", "s3"),
    ("HDFS://nn/p", "hdfs"), ("gs://b/k", "gs"), ("az://c/p", "az"),
    ("dir/with://inside", ""),
])
def test_scheme_of(path, scheme):
    assert filesystems.scheme_of(path) == scheme


@pytest.mark.parametrize("url", ["s3://bucket/a.tfrecord",
                                 "hdfs://nn:9000/a", "az://c/a"])
def test_remote_scheme_without_tensorflow_io(no_tfio, url):
    with pytest.raises(errors.MissingDependencyError) as info:
        filesystems.ensure_filesystem(url)
    message = str(info.value)
    assert "pip install tensorflow-io==0.37.1" in message
    assert url in message and isinstance(info.value, ImportError)
    assert no_tfio == ["tensorflow_io"]


def test_local_and_gcs_paths_never_import_tensorflow_io(no_tfio, tmp_path):
    assert filesystems.ensure_filesystem(tmp_path / "x") == \
        str(tmp_path / "x")
    filesystems.ensure_filesystem("gs://bucket/x")  # core TF scheme
    assert no_tfio == []


def test_tensorflow_io_is_imported_once(monkeypatch):
    calls = []
    monkeypatch.setattr(filesystems, "_tfio_loaded", False)
    monkeypatch.setattr(filesystems.importlib, "import_module",
                        lambda name: calls.append(name))
    filesystems.ensure_filesystem("s3://b/1")
    filesystems.ensure_filesystem("s3://b/2")
    assert calls == ["tensorflow_io"]


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "out.json"
    filesystems.atomic_write_text(path, "old")
    filesystems.atomic_write_text(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_write_failure_leaves_old_content(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    filesystems.atomic_write_bytes(path, b"old")

    def broken_commit(temp, final):
        raise tf.errors.PermissionDeniedError(None, None, "denied")

    monkeypatch.setattr(filesystems, "commit", broken_commit)
    with pytest.raises(tf.errors.PermissionDeniedError):
        filesystems.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]  # temporary removed


def test_temp_path_is_hidden_and_unique(tmp_path):
    a = filesystems.temp_path_for(tmp_path / "x.tfrecord")
    b = filesystems.temp_path_for(tmp_path / "x.tfrecord")
    assert a != b and os.path.basename(a).startswith(".x.tfrecord.tmp-")
    filesystems.remove_quietly(a)  # missing: no error
