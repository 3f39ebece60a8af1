"""`ConvertedDataset`: a converter output folder as a task reads it.

`python -m tfaction.data.convert` writes shards, `classes.txt` and
`dataset_info.json` (schema, classes, shards and record counts per subset).
Tasks read their data through this class, so every recipe checks the folder
the same way and names the file it could not use.

Example:

```python
data = ConvertedDataset("out/hmdb51_s1", schema="frames",
                        converter="hmdb51_frames")
files = data.files("train")
names = data.class_names
```
"""

import os

from tfaction import errors
from tfaction.data import filesystems

DATASET_INFO = "dataset_info.json"


class ConvertedDataset:
    """Reads a converter output folder's metadata.

    Args:
        data_dir: the folder written by `tfaction.data.convert`.
        schema: the record schema the task needs ("frames",
            "feature_sequence", ...), checked against `dataset_info.json`.
        converter: the `--format` that writes such folders (for messages).

    Raises:
        MalformedFileError: no `dataset_info.json`, invalid JSON, another
            schema, or a `classes.txt` that disagrees with it.
    """

    def __init__(self, data_dir, *, schema, converter):
        self.data_dir = os.fspath(data_dir)
        self.converter = converter
        path = os.path.join(self.data_dir, DATASET_INFO)
        if not filesystems.exists(path):
            raise errors.MalformedFileError(
                f"no {DATASET_INFO} in task.data_dir {self.data_dir!r}: "
                "convert the data with `python -m tfaction.data.convert "
                f"--format={converter}` first", path=path)
        try:
            self.info = filesystems.read_json(path)
        except ValueError as e:
            raise errors.MalformedFileError(f"not valid JSON ({e})",
                                            path=path) from None
        if self.info.get("schema") != schema:
            raise errors.MalformedFileError(
                f"expected a {schema} dataset (written by --format="
                f"{converter}), got schema {self.info.get('schema')!r}",
                path=path, key="schema")
        self._class_names = None

    @property
    def class_names(self):
        """Class names in label-index order (`classes.txt`)."""
        if self._class_names is None:
            path = os.path.join(self.data_dir,
                                self.info.get("class_list", "classes.txt"))
            names = [line.strip() for line in
                     filesystems.read_text(path).splitlines() if line.strip()]
            if len(names) != int(self.info["num_classes"]):
                raise errors.MalformedFileError(
                    f"{len(names)} class names but num_classes="
                    f"{self.info['num_classes']} in {DATASET_INFO}",
                    path=path)
            self._class_names = names
        return self._class_names

    @property
    def num_classes(self):
        """Number of classes (`num_classes` of `dataset_info.json`)."""
        return int(self.info["num_classes"])

    def _subset(self, subset):
        subsets = self.info.get("subsets", {})
        if subset not in subsets:
            raise errors.UnknownSubsetError(
                f"task subset {subset!r} is not in the dataset; it has "
                f"{sorted(subsets)}",
                path=os.path.join(self.data_dir, DATASET_INFO),
                key="subsets")
        return subsets[subset]

    def require_subsets(self, *subsets):
        """Raises `UnknownSubsetError` unless every subset exists."""
        for subset in subsets:
            self._subset(subset)

    def path(self, key, default):
        """The path of a metadata file named by `dataset_info.json[key]`."""
        return os.path.join(self.data_dir, self.info.get(key, default))

    def files(self, subset):
        """The shard paths of `subset`, each checked against its recorded
        size (a file stat, no read).

        Raises:
            CorruptRecordError: a shard is missing, or its size is not the
                `num_bytes` the converter wrote (truncated or replaced): a
                cut inside a record's header would otherwise only shorten
                the epoch, silently.
        """
        paths = []
        for shard in self._subset(subset)["shards"]:
            path = os.path.join(self.data_dir, shard["file"])
            expected = shard.get("num_bytes")  # absent: an older converter
            if expected is not None:
                try:
                    size = filesystems.size(path)
                except FileNotFoundError:
                    raise errors.CorruptRecordError(
                        f"shard of subset {subset!r} listed in "
                        f"{DATASET_INFO} is missing", path=path) from None
                if size != int(expected):
                    raise errors.CorruptRecordError(
                        f"shard is {size} bytes, {DATASET_INFO} says "
                        f"{expected}: truncated or replaced since it was "
                        "converted; convert it again (or check with "
                        "`python -m tfaction.data.convert --format=verify`)",
                        path=path)
            paths.append(path)
        return paths

    def num_records(self, subset):
        """The number of records (videos) of `subset`."""
        return int(self._subset(subset)["num_records"])
