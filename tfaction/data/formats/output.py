"""Atomic, verified converter output: shards, classes.txt, dataset_info.json.

A conversion writes everything into a hidden staging folder inside the output
folder (`<output_dir>/.staging-<random>/`). Only when every video converted,
every shard was read back and counted, and the metadata is complete, are the
staged files renamed onto their final names — shards first, `classes.txt`
next, `dataset_info.json` last (it is the commit marker). Any failure removes
the staging folder, so the previous good output stays untouched. (A process
killed outright may leave a hidden `.staging-*` folder behind: it is never
read, and can be deleted.) Shards of subsets that a later run does not write
are left alone but are no longer listed in dataset_info.json: convert the
subsets of one dataset together, or into separate folders.

Output layout (one shard set per subset; the prefix is the subset name):

```
<output_dir>/
  <subset>-00000-of-0000N.tfrecord ...
  classes.txt          one class name per line (index = line number, 0-based)
  dataset_info.json    schema, counts per subset and shard, settings, skips
  [ground_truth.json]  feature formats: ActivityNet-style ground truth
```

`verify_output(output_dir)` re-reads an existing output folder and checks each
shard against `dataset_info.json` (`python -m tfaction.data.convert
--format=verify --input=<output_dir>`).
"""

import json
import os
import uuid

import tensorflow as tf
from absl import logging
from google.protobuf import message as protobuf_message

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data import schemas
from tfaction.data import tfrecord_io
from tfaction.data.formats import class_list as class_list_lib

DATASET_INFO_FILE = "dataset_info.json"


def to_json(obj, indent=2):
    """Deterministic JSON text (sorted keys, trailing newline).

    Floats are written with `repr`, so float64 values read back exactly.
    """
    separators = None if indent else (",", ":")
    return json.dumps(obj, indent=indent, sort_keys=True, allow_nan=False,
                      separators=separators) + "\n"


def source_paths(**paths):
    """The `sources` entry of dataset_info.json: the inputs a run read.

    Args:
        **paths: input name -> path (str, `os.PathLike`), a list of
            paths, or None.

    Returns:
        Dict name -> path as a string (a list of strings for a list),
        None where not given.

    Example:

    >>> source_paths(input="videos.txt", class_list=None)
    {'input': 'videos.txt', 'class_list': None}
    """
    return {name: (None if path is None
                   else [str(p) for p in path]
                   if isinstance(path, (list, tuple)) else str(path))
            for name, path in paths.items()}


def expected_shard_counts(num_records, num_shards):
    """Records per shard under `ShardedTFRecordWriter`'s round-robin."""
    return [len(range(i, num_records, num_shards)) for i in range(num_shards)]


def check_shard(path, expected_count=None):
    """Reads back one shard: every record intact and a SequenceExample.

    Args:
        path: shard file.
        expected_count: number of records the shard must hold, or None.

    Returns:
        The number of records.

    Raises:
        CorruptRecordError: the file is missing, truncated or corrupt, a
            record does not parse, lacks `video/id`, or the count differs.
    """
    if not tf.io.gfile.exists(path):
        raise errors.CorruptRecordError("shard file is missing", path=path)
    count = 0
    for index, record in enumerate(tfrecord_io.iterate_records(path)):
        try:
            example = tf.train.SequenceExample.FromString(record)
        except protobuf_message.DecodeError as e:
            raise errors.CorruptRecordError(
                f"record {index} is not a serialized SequenceExample ({e})",
                path=path) from e
        if schemas.VIDEO_ID not in example.context.feature:
            raise errors.CorruptRecordError(
                f"record {index} has no {schemas.VIDEO_ID!r}", path=path,
                key=schemas.VIDEO_ID)
        count += 1
    if expected_count is not None and count != expected_count:
        raise errors.CorruptRecordError(
            f"shard holds {count} record(s), expected {expected_count} "
            "(truncated at a record boundary, or from another conversion)",
            path=path)
    return count


class StagedShards:
    """A staged shard set written by something other than this process.

    Attributes:
        paths: the shard files in the staging folder, in shard order.
        num_shards: number of shards.
        num_written: records written into them (set by the writer); their
            counts per shard must follow the round-robin of
            `ShardedTFRecordWriter` (`expected_shard_counts`).
    """

    def __init__(self, staging, prefix, num_shards):
        if num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {num_shards}")
        self.num_shards = num_shards
        self.paths = [os.path.join(staging, tfrecord_io.shard_name(
            prefix, i, num_shards)) for i in range(num_shards)]
        self.num_written = 0


class StagedOutput:
    """Stages a conversion's files and commits them all at once.

    Args:
        output_dir: final output folder (created if missing).
        verify: read every staged shard back before committing.

    Example:

    ```python
    with StagedOutput("/data/hmdb51_tfrecords") as out:
        with out.shard_writer("train", num_shards=4) as writer:
            for record in records:
                writer.write(record)
        out.commit(info={"format": "hmdb51_frames"}, classes=class_list)
    ```
    """

    def __init__(self, output_dir, verify=True):
        self.output_dir = filesystems.ensure_filesystem(output_dir)
        self.verify = verify
        self.staging = None
        self._writers = {}  # prefix -> ShardedTFRecordWriter
        self._texts = {}  # file name -> text
        self._committed = False

    def __enter__(self):
        tf.io.gfile.makedirs(self.output_dir)
        self.staging = os.path.join(self.output_dir,
                                    f".staging-{uuid.uuid4().hex[:12]}")
        tf.io.gfile.makedirs(self.staging)
        return self

    def __exit__(self, exc_type, exc, tb):
        self._remove_staging()
        return False

    def _remove_staging(self):
        if self.staging is not None and tf.io.gfile.exists(self.staging):
            try:
                tf.io.gfile.rmtree(self.staging)
            except tf.errors.OpError as e:  # cleanup must not mask `exc`
                logging.warning("could not remove %s: %s", self.staging, e)

    def shard_writer(self, prefix, num_shards=1):
        """A `ShardedTFRecordWriter` for one subset, writing into staging."""
        if prefix in self._writers:
            raise ValueError(f"shards for {prefix!r} were already written")
        writer = tfrecord_io.ShardedTFRecordWriter(self.staging, prefix,
                                                   num_shards)
        self._writers[prefix] = writer
        return writer

    def staged_shards(self, prefix, num_shards):
        """Reserves the staged shard set of `prefix` for another writer.

        For shards that are not written through `shard_writer` (a Beam
        pipeline writes them on its workers): the caller writes
        `paths` and sets `num_written`; `commit` verifies and renames them
        like any other shard set.

        Args:
            prefix: shard name prefix (the subset).
            num_shards: number of shard files.

        Returns:
            A `StagedShards`.

        Example:

        ```python
        shards = out.staged_shards("train", 4)
        write_elsewhere(shards.paths)
        shards.num_written = 120
        ```
        """
        if prefix in self._writers:
            raise ValueError(f"shards for {prefix!r} were already written")
        shards = StagedShards(self.staging, prefix, num_shards)
        self._writers[prefix] = shards
        return shards

    def add_text(self, name, text):
        """Stages an extra text file (committed before dataset_info.json)."""
        self._texts[name] = text

    def _shard_table(self):
        table = {}
        for prefix, writer in sorted(self._writers.items()):
            counts = expected_shard_counts(writer.num_written,
                                           writer.num_shards)
            shards = []
            for path, count in zip(writer.paths, counts):
                if self.verify:
                    check_shard(path, count)
                # num_bytes: readers spot a truncated or replaced shard by
                # its size, without reading it (ConvertedDataset.files).
                shards.append({"file": os.path.basename(path),
                               "num_records": count,
                               "num_bytes": int(
                                   tf.io.gfile.stat(path).length)})
            table[prefix] = {"num_records": writer.num_written,
                             "num_shards": writer.num_shards,
                             "shards": shards}
        return table

    def commit(self, info, classes=None):
        """Verifies staged shards, writes metadata and renames into place.

        Args:
            info: dict for `dataset_info.json`; `subsets`, `num_records` and
                `class_list` are filled in here.
            classes: the `ClassList` used, written as `classes.txt`.

        Returns:
            The final `info` dict.
        """
        info = dict(info)
        info["subsets"] = self._shard_table()
        info["num_records"] = sum(s["num_records"]
                                  for s in info["subsets"].values())
        if classes is not None:
            info["class_list"] = class_list_lib.CLASS_LIST_FILE
            info["num_classes"] = len(classes)
            self._texts[class_list_lib.CLASS_LIST_FILE] = classes.to_text()
        else:  # a class list of an earlier run would no longer apply
            filesystems.remove_quietly(os.path.join(
                self.output_dir, class_list_lib.CLASS_LIST_FILE))
        self._texts[DATASET_INFO_FILE] = to_json(info)
        for name, text in self._texts.items():
            with tf.io.gfile.GFile(os.path.join(self.staging, name),
                                   "wb") as f:
                f.write(text.encode("utf-8"))
        # Everything is staged and checked: move shards, then metadata.
        for prefix, writer in sorted(self._writers.items()):
            for path in writer.paths:
                filesystems.commit(path, os.path.join(
                    self.output_dir, os.path.basename(path)))
            self._remove_stale_shards(prefix, writer)
        names = sorted(self._texts, key=lambda n: n == DATASET_INFO_FILE)
        for name in names:
            filesystems.commit(os.path.join(self.staging, name),
                               os.path.join(self.output_dir, name))
        self._committed = True
        return info

    def _remove_stale_shards(self, prefix, writer):
        keep = {os.path.basename(p) for p in writer.paths}
        for path in tf.io.gfile.glob(tfrecord_io.shard_pattern(
                self.output_dir, prefix)):
            if os.path.basename(path) not in keep:
                filesystems.remove_quietly(path)


def read_dataset_info(output_dir):
    """Loads `<output_dir>/dataset_info.json`.

    Raises:
        MalformedFileError: the file is missing or not valid JSON.
    """
    path = os.path.join(os.fspath(output_dir), DATASET_INFO_FILE)
    filesystems.ensure_filesystem(path)
    if not tf.io.gfile.exists(path):
        raise errors.MalformedFileError(
            "dataset_info.json not found; is this a converter output "
            "folder?", path=path)
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.MalformedFileError(f"not valid JSON ({e})",
                                        path=path) from e


def verify_output(output_dir):
    """Checks every shard of a converter output against dataset_info.json.

    Args:
        output_dir: a folder written by a tfaction converter.

    Returns:
        Dict subset -> number of records checked.

    Raises:
        MalformedFileError: dataset_info.json is missing or malformed.
        CorruptRecordError: a shard is missing, truncated or corrupt, or its
            record count differs from dataset_info.json.

    Example:

    >>> verify_output("/data/thumos_tfrecords")  # doctest: +SKIP
    {'test': 210, 'validation': 200}
    """
    info = read_dataset_info(output_dir)
    subsets = info.get("subsets")
    if not isinstance(subsets, dict):
        raise errors.MalformedFileError(
            "no 'subsets' table", key="subsets",
            path=os.path.join(os.fspath(output_dir), DATASET_INFO_FILE))
    checked = {}
    for subset, entry in sorted(subsets.items()):
        total = 0
        for shard in entry["shards"]:
            total += check_shard(os.path.join(os.fspath(output_dir),
                                              shard["file"]),
                                 shard["num_records"])
        checked[subset] = total
    return checked
