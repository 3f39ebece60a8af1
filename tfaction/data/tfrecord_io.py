"""Sharded, atomic TFRecord writing and checked reading.

`ShardedTFRecordWriter` spreads records round-robin over `num_shards` files
named `<prefix>-00000-of-00004.tfrecord`. Every shard is written under a hidden
temporary name and renamed only when the whole conversion succeeded, so a
failed or interrupted conversion leaves no partial shard and never clobbers the
previous good output. Re-running a conversion replaces its shards (stale shards
of the same prefix with another shard count are removed on commit).

Example:

```python
with ShardedTFRecordWriter("/data/out", "train", num_shards=4) as writer:
    for example in examples:
        writer.write(example.SerializeToString())
print(writer.paths)
```
"""

import os

import tensorflow as tf

from tfaction import errors
from tfaction.data import filesystems

SHARD_SUFFIX = ".tfrecord"
# Bytes around each record's data: length (8) + its CRC (4) + data CRC (4).
_RECORD_OVERHEAD = 16


def shard_name(prefix, index, num_shards):
    """`<prefix>-<index:05d>-of-<num_shards:05d>.tfrecord`."""
    return f"{prefix}-{index:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"


def shard_pattern(output_dir, prefix):
    """Glob pattern matching every shard written under `prefix`."""
    return os.path.join(os.fspath(output_dir),
                        f"{prefix}-?????-of-?????{SHARD_SUFFIX}")


class ShardedTFRecordWriter:
    """Writes serialized records round-robin into atomically committed shards.

    Args:
        output_dir: directory (local or remote URL); created if missing.
        prefix: shard name prefix, e.g. the subset name.
        num_shards: number of shard files (>= 1).
        options: optional `tf.io.TFRecordOptions` (e.g. compression).

    Use as a context manager: on normal exit every shard is committed; on an
    exception every temporary file is removed and the error propagates.
    """

    def __init__(self, output_dir, prefix, num_shards=1, options=None):
        if num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {num_shards}")
        if not prefix or "/" in prefix:
            raise ValueError(f"prefix must be a plain file-name prefix, got "
                             f"{prefix!r}")
        self.output_dir = filesystems.ensure_filesystem(output_dir)
        self.prefix = prefix
        self.num_shards = num_shards
        self.options = options
        self.paths = [os.path.join(self.output_dir,
                                   shard_name(prefix, i, num_shards))
                      for i in range(num_shards)]
        self.num_written = 0
        self._temps = None
        self._writers = None

    def __enter__(self):
        tf.io.gfile.makedirs(self.output_dir)
        self._temps = [filesystems.temp_path_for(p) for p in self.paths]
        self._writers = []
        try:
            for temp in self._temps:
                self._writers.append(tf.io.TFRecordWriter(temp, self.options))
        except BaseException:
            self._abort()
            raise
        return self

    def write(self, record):
        """Appends one serialized record (bytes) to the next shard."""
        if self._writers is None:
            raise RuntimeError("ShardedTFRecordWriter used outside `with`")
        self._writers[self.num_written % self.num_shards].write(record)
        self.num_written += 1

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._abort()
            return False
        try:
            for writer in self._writers:
                writer.close()
            for temp, final in zip(self._temps, self.paths):
                filesystems.commit(temp, final)
        except BaseException:
            self._abort()
            raise
        self._writers = None
        self._remove_stale_shards()
        return False

    def _abort(self):
        for writer in self._writers or ():
            try:
                writer.close()
            except Exception:  # closing a broken writer must not mask `exc`
                pass
        for temp in self._temps or ():
            filesystems.remove_quietly(temp)
        self._writers = None

    def _remove_stale_shards(self):
        keep = set(self.paths)
        for path in tf.io.gfile.glob(shard_pattern(self.output_dir,
                                                   self.prefix)):
            if path not in keep:
                filesystems.remove_quietly(path)


def list_files(pattern):
    """Expands a file pattern, comma-separated patterns or a list of them.

    Raises:
        DataError: nothing matches a pattern.
    """
    if isinstance(pattern, (str, os.PathLike)):
        patterns = [p for p in os.fspath(pattern).split(",") if p]
    else:
        patterns = [os.fspath(p) for p in pattern]
    files = []
    for p in patterns:
        filesystems.ensure_filesystem(p)
        matched = sorted(tf.io.gfile.glob(p))
        if not matched:
            raise errors.DataError("no file matches this pattern", path=p)
        files.extend(matched)
    return files


def iterate_records(path):
    """Yields the serialized records of one TFRecord file, checking integrity.

    Besides TensorFlow's own checks (CRCs, a record cut inside its data),
    the byte count read is compared with the file size: TensorFlow silently
    ends a file that was cut inside a record's 12-byte header, losing that
    record without an error.

    Raises:
        CorruptRecordError: the file is truncated or corrupt; the message names
            the file and the index of the first unreadable record.
    """
    path = filesystems.ensure_filesystem(path)
    index = 0
    consumed = 0
    try:
        for record in tf.data.TFRecordDataset(path):
            data = record.numpy()
            consumed += len(data) + _RECORD_OVERHEAD
            yield data
            index += 1
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as e:
        raise errors.CorruptRecordError(
            f"truncated or corrupt TFRecord: record {index} cannot be read "
            f"({index} intact record(s) before it; {e.message.strip()})",
            path=path) from e
    size = tf.io.gfile.stat(path).length
    if size != consumed:
        raise errors.CorruptRecordError(
            f"truncated or corrupt TFRecord: record {index} cannot be read "
            f"({index} intact record(s) before it; {size - consumed} "
            f"trailing byte(s) do not form a record header)", path=path)


def iterate_record_offsets(path):
    """Yields `(offset, size)` of each record of one TFRecord file, checking
    the file as `iterate_records` does.

    `offset` is where the record's header starts, for `read_record_at`: a
    list of offsets lets another process or machine read single records
    without holding their data.

    Raises:
        CorruptRecordError: as `iterate_records` (after the intact records'
            offsets).
    """
    offset = 0
    for data in iterate_records(path):
        yield offset, len(data)
        offset += len(data) + _RECORD_OVERHEAD


def read_record_at(path, offset):
    """The record of TFRecord file `path` whose header starts at `offset`,
    its length and data CRCs checked.

    Raises:
        CorruptRecordError: no intact record starts there.

    Example:

    ```python
    offsets = [o for o, _ in iterate_record_offsets(path)]
    assert read_record_at(path, offsets[1]) == list(iterate_records(path))[1]
    ```
    """
    # TensorFlow's random-access reader (no public API): it checks both
    # CRCs, which reading `size` bytes at an offset by hand would not.
    from tensorflow.python.lib.io import tf_record

    path = filesystems.ensure_filesystem(path)
    reader = tf_record.tf_record_random_reader(path)
    try:
        data, _ = reader.read(offset)
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError,
            IndexError) as e:
        raise errors.CorruptRecordError(
            f"no intact TFRecord record at byte {offset} ({e})",
            path=path) from e
    finally:
        reader.close()
    return data


def count_records(pattern):
    """Counts the records of every file matching `pattern`, checking each.

    Returns:
        Dict path -> number of records.
    """
    return {path: sum(1 for _ in iterate_records(path))
            for path in list_files(pattern)}
