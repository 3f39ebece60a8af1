"""File-system helpers: every read and write of a user-supplied path.

Local paths use Python's own file functions, so code that only touches local
files (the evaluation CLI) never imports TensorFlow. Any other path goes
through `tf.io.gfile`: TensorFlow itself serves `gs://`; the `s3://`,
`hdfs://`, `az://` (and related) schemes come from tensorflow-io's
file-system plugins, which register themselves when `tensorflow_io` is
imported. We import it only when such a path is used, and say what to install
when it is missing.

Errors are the same for every scheme: a missing file raises
`FileNotFoundError`, any other failure `OSError` (TensorFlow's
`tf.errors.OpError` of a remote operation is translated, the path named).

Writes are atomic: the data goes to a hidden temporary name beside the
target, which is then renamed onto it, so readers see the old content or the
new one, never a partial file.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "r.json")
>>> write_json(path, {"top1": 0.5})
>>> read_json(path)
{'top1': 0.5}
"""

import contextlib
import errno
import glob as glob_lib
import importlib
import io
import json
import os
import shutil
import sys
import tempfile
import uuid

from tfaction import errors

# Schemes served by tensorflow-io's plugins (not by core TensorFlow).
TFIO_SCHEMES = ("s3", "hdfs", "viewfs", "har", "az", "azfs", "http", "https")
TFIO_REQUIREMENT = "tensorflow-io==0.37.1"
# tensorflow-io 0.37.1's S3 client aborts the process in its C++ teardown
# ("pure virtual method called", exit status 134; tensorflow/io#2039).
_UNSAFE_TEARDOWN_SCHEMES = ("s3",)

_tfio_loaded = False
_unsafe_teardown = False


def gfile():
    """`tf.io.gfile`, imported on first use."""
    import tensorflow as tf
    return tf.io.gfile


def scheme_of(path):
    """Returns the URL scheme of `path` ("" for local paths)."""
    path = os.fspath(path)
    head, sep, _ = path.partition("://")
    return head.lower() if sep and "/" not in head else ""


def is_local(path):
    """True for plain local paths (served without TensorFlow)."""
    return scheme_of(path) == ""


def ensure_filesystem(path):
    """Makes `path`'s file system available to `tf.io.gfile` / `tf.data`.

    Args:
        path: a local path or URL (str or PathLike).

    Returns:
        `path` as a string.

    Raises:
        MissingDependencyError: the path needs tensorflow-io, which is not
            installed (or cannot be loaded against this TensorFlow).

    Example:

    >>> ensure_filesystem("/data/train.tfrecord")
    '/data/train.tfrecord'
    """
    global _tfio_loaded, _unsafe_teardown
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
    if scheme in _UNSAFE_TEARDOWN_SCHEMES:
        _unsafe_teardown = True
    return path


@contextlib.contextmanager
def _as_os_errors(path):
    """Translates `tf.errors.OpError` raised inside into `OSError`."""
    import tensorflow as tf
    try:
        yield
    except tf.errors.NotFoundError as e:
        raise FileNotFoundError(errno.ENOENT, e.message, str(path)) from e
    except tf.errors.OpError as e:
        raise OSError(errno.EIO, e.message, str(path)) from e


def _remote(path):
    """`(path as str, tf.io.gfile)` for a remote path, file system loaded."""
    return ensure_filesystem(path), gfile()


def _dispatch(path, local, remote):
    """`local(path)` for a local path, else `remote(tf.io.gfile, path)`.

    The remote call runs with its file system loaded and its errors
    translated into `OSError`.
    """
    path = os.fspath(path)
    if is_local(path):
        return local(path)
    path, g = _remote(path)
    with _as_os_errors(path):
        return remote(g, path)


def exists(path):
    """Whether `path` (a file or folder, local or remote) exists.

    Example:

    >>> exists("/no/such/file")
    False
    """
    return _dispatch(path, os.path.exists, lambda g, p: g.exists(p))


def isdir(path):
    """Whether `path` is a folder (on object stores: a key prefix).

    Example:

    >>> isdir("/")
    True
    """
    return _dispatch(path, os.path.isdir, lambda g, p: g.isdir(p))


def isfile(path):
    """Whether `path` is an existing file (not a folder).

    Example:

    >>> isfile("/")
    False
    """
    return _dispatch(path, os.path.isfile,
                     lambda g, p: g.exists(p) and not g.isdir(p))


def size(path):
    """The size of file `path` in bytes (local or remote).

    Raises:
        FileNotFoundError: no such file.

    Example:

    >>> size(__file__) > 0
    True
    """
    return _dispatch(path, os.path.getsize,
                     lambda g, p: int(g.stat(p).length))


def walk(top):
    """`os.walk` for local and remote folders (top-down).

    Returns:
        An iterator of `(folder, subfolder names, file names)`; empty when
        `top` is not a folder.

    Example:

    >>> list(walk("/no/such/folder"))
    []
    """
    def remote(g, top):
        return [(folder.rstrip("/"), [d.rstrip("/") for d in subfolders],
                 names) for folder, subfolders, names in g.walk(top)]

    return iter(_dispatch(top, os.walk, remote))


def listdir(path):
    """Names (not paths) of the entries of folder `path`, unsorted.

    Raises:
        FileNotFoundError: no such folder.

    Example:

    >>> "tmp" in listdir("/")
    True
    """
    return _dispatch(path, os.listdir,
                     lambda g, p: [n.rstrip("/") for n in g.listdir(p)])


def glob(pattern):
    """Sorted paths matching `pattern` (`*`, `?`, `[...]`; `**` matches
    any folder depth in local patterns only).

    Example:

    >>> glob("/no/such/folder/*.json")
    []
    """
    return sorted(_dispatch(
        pattern, lambda p: glob_lib.glob(p, recursive=True),
        lambda g, p: g.glob(p)))


def makedirs(path):
    """Creates folder `path` and its parents (existing folders are fine).

    On object stores folders exist implicitly; this creates no object there
    that later listings would show.

    Example:

    >>> import tempfile
    >>> makedirs(os.path.join(tempfile.mkdtemp(), "a", "b"))
    """
    _dispatch(path, lambda p: os.makedirs(p, exist_ok=True),
              lambda g, p: g.makedirs(p))


def upload_tree(local_dir, remote_dir):
    """Copies every file under local folder `local_dir` to `remote_dir`.

    Args:
        local_dir: a local folder.
        remote_dir: the destination folder (any scheme); files keep their
            relative paths.

    Example:

    ```python
    upload_tree("/tmp/dataset", "s3://bucket/datasets/synthetic")
    ```
    """
    def remote(g, top):
        for folder, _, names in os.walk(local_dir):
            rel = os.path.relpath(folder, local_dir)
            dest = top if rel == "." else join(top, *rel.split(os.sep))
            g.makedirs(dest)
            for name in names:
                g.copy(os.path.join(folder, name), join(dest, name),
                       overwrite=True)

    def local(top):
        shutil.copytree(local_dir, top, dirs_exist_ok=True)

    _dispatch(remote_dir, local, remote)


def remove_tree(path):
    """Deletes folder `path` and everything under it (local or remote).

    Example:

    ```python
    remove_tree("s3://bucket/datasets/old")
    ```
    """
    _dispatch(path, shutil.rmtree, lambda g, p: g.rmtree(p))


def join(*parts):
    """`os.path.join` that also works for URLs (always '/' on POSIX).

    Example:

    >>> join("s3://bucket/run", "predictions.npz")
    's3://bucket/run/predictions.npz'
    """
    return os.path.join(*[os.fspath(p) for p in parts])


def open_file(path, mode="rb"):
    """An open file object of `path` (builtin `open` or `tf.io.gfile.GFile`).

    For libraries that read a stream (seek, tell, read) rather than a name.
    Remote reads raise TensorFlow's `tf.errors.OpError`, not `OSError`.

    Args:
        path: local path or URL.
        mode: "rb", "wb", "r", "w" or "a" (text modes use UTF-8).

    Returns:
        A file object, to be closed by the caller (`with`).

    Example:

    ```python
    with open_file("s3://bucket/clip.mp4") as f:
        container = av.open(f)
    ```
    """
    encoding = None if "b" in mode else "utf-8"
    return _dispatch(path, lambda p: open(p, mode, encoding=encoding),
                     lambda g, p: g.GFile(p, mode))


def read_bytes(path):
    """The whole content of file `path` (local or remote).

    Raises:
        FileNotFoundError: no such file.
        OSError: any other read failure.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.bin")
    >>> atomic_write_bytes(path, b"abc")
    >>> read_bytes(path)
    b'abc'
    """
    def read_all(f):
        with f:
            return f.read()

    return _dispatch(path, lambda p: read_all(open(p, "rb")),
                     lambda g, p: read_all(g.GFile(p, "rb")))


def read_text(path, encoding="utf-8"):
    """The whole content of text file `path`, decoded.

    Args:
        path: local path or URL.
        encoding: the text encoding ("utf-8-sig" also drops a BOM).

    Returns:
        The text, with its line endings unchanged.

    Raises:
        FileNotFoundError / OSError: as `read_bytes`.
        UnicodeDecodeError: not text in `encoding`.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.txt")
    >>> atomic_write_text(path, "a\\nb\\n")
    >>> read_text(path).splitlines()
    ['a', 'b']
    """
    return read_bytes(path).decode(encoding)


def read_json(path):
    """Decodes JSON file `path` (UTF-8, BOM allowed).

    Raises:
        FileNotFoundError / OSError: as `read_bytes`.
        ValueError: not UTF-8, not JSON (`json.JSONDecodeError`), or
            nested deeper than Python's recursion limit.

    Example: see the module docstring.
    """
    text = read_text(path, encoding="utf-8-sig")
    try:
        return json.loads(text)
    except RecursionError as e:  # a hostile file, not a crash
        raise ValueError(f"{path}: JSON nested too deeply") from e


def load_numpy(path):
    """`np.load` of a `.npy` / `.npz` file, local or remote, never pickled.

    Returns:
        An array (`.npy`) or an `NpzFile` (`.npz`; a context manager whose
        arrays are read from memory).

    Raises:
        FileNotFoundError / OSError: as `read_bytes`.
        ValueError: not a NumPy file, or it holds pickled objects.

    Example:

    >>> import tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> save_npz(path, x=np.arange(3))
    >>> with load_numpy(path) as z:
    ...     z["x"].tolist()
    [0, 1, 2]
    """
    import numpy as np
    return np.load(io.BytesIO(read_bytes(path)), allow_pickle=False)


def temp_path_for(path):
    """A hidden temporary name beside `path`, unique to this writer."""
    head, tail = os.path.split(os.fspath(path))
    return os.path.join(head, f".{tail}.tmp-{uuid.uuid4().hex[:12]}")


def commit(temp, final):
    """Renames a finished temporary file onto its final name."""
    temp, final = os.fspath(temp), os.fspath(final)
    if is_local(final):
        os.replace(temp, final)
        return
    gfile().rename(temp, final, overwrite=True)


def remove_quietly(path):
    """Removes file `path` if it exists (cleanup after a failure).

    Only called while another error propagates: a failing removal must
    not replace that error, which is the one the user needs to see.
    """
    path = os.fspath(path)
    if is_local(path):
        with contextlib.suppress(OSError):
            os.remove(path)
        return
    import tensorflow as tf
    with contextlib.suppress(tf.errors.OpError):
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)


def atomic_write_bytes(path, data):
    """Writes `data` to `path` via a temporary name + rename.

    Readers never see a partial file: either the old content or the new one.
    The folder must exist (on object stores folders exist implicitly).

    Args:
        path: local path or URL.
        data: bytes.

    Raises:
        OSError: the write or the rename failed (the temporary is removed).

    Example: see `read_bytes`.
    """
    path = ensure_filesystem(path)
    temp = temp_path_for(path)
    try:
        if is_local(path):
            with open(temp, "wb") as f:
                f.write(data)
            commit(temp, path)
        else:
            with _as_os_errors(path):
                with gfile().GFile(temp, "wb") as f:
                    f.write(data)
                commit(temp, path)
    except BaseException:
        remove_quietly(temp)
        raise


def atomic_write_text(path, text):
    """Text version of `atomic_write_bytes` (UTF-8).

    Example: see `read_text`.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path, value, indent=2):
    """Writes `value` as JSON (plus a final newline), atomically.

    Args:
        path: local path or URL.
        value: a JSON-serialisable value.
        indent: `json.dumps` indentation.

    Example: see the module docstring.
    """
    atomic_write_text(path, json.dumps(value, indent=indent) + "\n")


def save_npz(path, **arrays):
    """`np.savez` of `arrays` to `path` (local or remote), atomically.

    Example: see `load_numpy`.
    """
    import numpy as np
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def save_npy(path, array):
    """`np.save` of `array` to `path` (local or remote), atomically.

    Example:

    >>> import tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> save_npy(path, np.ones(2))
    >>> load_numpy(path).tolist()
    [1.0, 1.0]
    """
    import numpy as np
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def local_copy(path):
    """A local file holding `path`'s content, for libraries that need one.

    Local paths are yielded unchanged; a remote file is downloaded into a
    temporary folder under its own name (readers such as Keras look at the
    name's ending, e.g. `.weights.h5`), removed on exit.

    Args:
        path: local path or URL of a file.

    Yields:
        A local path.

    Raises:
        FileNotFoundError / OSError: as `read_bytes`.

    Example:

    ```python
    with local_copy("s3://bucket/vgg16.weights.h5") as local:
        model.load_weights(local)
    ```
    """
    path = os.fspath(path)
    if is_local(path):
        yield path
        return
    data = read_bytes(path)
    folder = tempfile.mkdtemp(prefix="tfaction-")
    local = os.path.join(folder, os.path.basename(path.rstrip("/")))
    try:
        with open(local, "wb") as f:
            f.write(data)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def skip_teardown_at_exit():
    """Makes `exit_process` end the process at once (see there).

    For a process whose TensorFlow runtime is left in a state its C++
    teardown can block on, e.g. a multi-worker run that lost a peer (the
    teardown may wait on the dead worker forever).

    Example:

    ```python
    filesystems.skip_teardown_at_exit()
    raise errors.LostWorkerError("...")
    ```
    """
    global _unsafe_teardown
    _unsafe_teardown = True


def exit_process(status=0):
    """Ends the process with `status`, surviving tensorflow-io's S3 teardown.

    After an `s3://` path was used, tensorflow-io 0.37.1 aborts the process
    in its C++ teardown (exit status 134 whatever the command's outcome);
    after `skip_teardown_at_exit` (a multi-worker run that lost a peer) the
    teardown can hang. Then this flushes the standard streams and the absl
    log and ends the process at once (`os._exit`), skipping that teardown;
    otherwise it is `sys.exit(status)`.

    Args:
        status: the exit status (int; None means 0).

    Example:

    ```python
    exit_process(main(sys.argv[1:]))
    ```
    """
    status = 0 if status is None else status
    if not _unsafe_teardown:
        sys.exit(status)
    if not isinstance(status, int):  # sys.exit("message") semantics
        print(status, file=sys.stderr)
        status = 1
    with contextlib.suppress(Exception):
        from absl import logging
        logging.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def run_and_exit(run, *args, **kwargs):
    """Calls `run(*args, **kwargs)`, then `exit_process` with its status.

    For command entry points: `run` may return the status or raise
    `SystemExit` (as `absl.app.run` does).

    Args:
        run: the entry point, e.g. `absl.app.run`.
        *args, **kwargs: its arguments.

    Example:

    ```python
    if __name__ == "__main__":
        filesystems.run_and_exit(app.run, main)
    ```
    """
    try:
        status = run(*args, **kwargs)
    except SystemExit as e:
        status = e.code
    exit_process(status)
