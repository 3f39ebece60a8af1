"""File-system helpers: remote schemes and atomic writes through `tf.io.gfile`.

TensorFlow itself reads local paths and `gs://`. The `s3://`, `hdfs://`,
`az://` (and related) schemes are provided by tensorflow-io's file-system
plugins, which register themselves when `tensorflow_io` is imported. We import
it only when such a path is used, and say what to install when it is missing.
TensorFlow itself is imported on first use, so code that only reads local
annotation files (the evaluation CLI) starts without it.
"""

import importlib
import os
import uuid

from tfaction import errors

# Schemes served by tensorflow-io's plugins (not by core TensorFlow).
TFIO_SCHEMES = ("s3", "hdfs", "viewfs", "har", "az", "azfs", "http", "https")
TFIO_REQUIREMENT = "tensorflow-io==0.37.1"

_tfio_loaded = False


def gfile():
    """`tf.io.gfile`, imported on first use."""
    import tensorflow as tf
    return tf.io.gfile


def scheme_of(path):
    """Returns the URL scheme of `path` ("" for local paths)."""
    path = os.fspath(path)
    head, sep, _ = path.partition("://")
    return head.lower() if sep and "/" not in head else ""


def ensure_filesystem(path):
    """Makes `path`'s file system available to `tf.io.gfile` / `tf.data`.

    Args:
        path: a local path or URL (str or PathLike).

    Returns:
        `path` as a string.

    Raises:
        MissingDependencyError: the path needs tensorflow-io, which is not
            installed (or cannot be loaded against this TensorFlow).
    """
    global _tfio_loaded
    path = os.fspath(path)
    scheme = scheme_of(path)
    if scheme in TFIO_SCHEMES and not _tfio_loaded:
        import tensorflow as tf
        try:
            importlib.import_module("tensorflow_io")
        except (ImportError, tf.errors.NotFoundError) as e:
            raise errors.MissingDependencyError(
                f"the path {path!r} uses the '{scheme}://' file system, which "
                f"is provided by tensorflow-io: install it with `pip install "
                f"{TFIO_REQUIREMENT}` (it must match tensorflow 2.17). "
                f"Import failed with: {e}") from e
        _tfio_loaded = True
    return path


def temp_path_for(path):
    """A hidden temporary name beside `path`, unique to this writer."""
    head, tail = os.path.split(os.fspath(path))
    return os.path.join(head, f".{tail}.tmp-{uuid.uuid4().hex[:12]}")


def commit(temp, final):
    """Renames a finished temporary file onto its final name."""
    gfile().rename(temp, final, overwrite=True)


def remove_quietly(path):
    """Removes `path` if it exists (cleanup after a failure)."""
    import tensorflow as tf
    try:
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    except tf.errors.OpError:
        pass


def atomic_write_bytes(path, data):
    """Writes `data` to `path` via a temporary name + rename.

    Readers never see a partial file: either the old content or the new one.
    """
    path = ensure_filesystem(path)
    temp = temp_path_for(path)
    try:
        with gfile().GFile(temp, "wb") as f:
            f.write(data)
        commit(temp, path)
    except BaseException:
        remove_quietly(temp)
        raise


def atomic_write_text(path, text):
    """Text version of `atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))
