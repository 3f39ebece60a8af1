"""AdaFocus split lists (ActivityNet, FCVID, Mini-Kinetics) -> frames TFRecords.

Layouts of the AdaFocus / AdaFocus V2 data folders (frames extracted with
ffmpeg at the native frame rate, 1-indexed):

```
actnet, fcvid:  DIR/classInd.txt                 one class name per line
                DIR/{actnet,fcvid}_{train,val}_split.txt
                    <path>,<num_frames>,<label>[,<label>[,<label>]]
                DIR/frames/<path>/image_00001.jpg ...
minik:          DIR/minik_classInd.txt
                DIR/mini_{train,val}_videofolder.txt
                    <path> <num_frames> <label>   (the path may hold spaces)
                DIR/<path>/img_00001.jpg ...
```

One `tf.train.SequenceExample` per kept list line (schema
`schemas.frames_example`): `video/id` = `<path>`, `video/num_frames`,
`video/fps` (`--fps` or -1), `clip/label/index` = the row's labels **in
file order** (1 to 3; Mini-Kinetics exactly 1), `clip/label/text`,
`video/subset`, and the JPEG bytes unchanged (`image/encoded`). Each list
file is one subset named after the file (`actnet_val_split.txt` -> `val`,
`mini_train_videofolder.txt` -> `train`) unless names are given.

What the authors' loader does and this converter records instead of
hiding:

* rows with fewer than `min_frames` (3) frames are dropped, as the loader
  drops them from both lists; they are counted per subset
  (`dataset_info.json` `dropped_short`);
* a label repeated within one row is kept once (the loader takes the set
  of a row's labels); such rows are counted (`repeated_labels`);
* the loader sorts a row's labels and, for a row with several, permutes
  them at random on every access; the records keep the file order and a
  task decides how to pick (`tfaction.tasks.adafocus`).

Checks (errors name the file and line): wrong field count, a frame count
or label that is not an integer, more than 3 labels, a label outside the
class list, a video repeated within or across lists, and every frame
folder (missing folder or frame, count different from the list,
unreadable JPEG; skippable with `skip_corrupt`).

Example:

```python
convert_adafocus_lists(
    ["ActivityNet/actnet_train_split.txt", "ActivityNet/actnet_val_split.txt"],
    "ActivityNet/frames", "records/actnet", dataset="actnet",
    class_list="ActivityNet/classInd.txt", num_shards=64, num_workers=8)
```
"""

import collections
import dataclasses
import os
import re

from tfaction import errors
from tfaction.data import schemas
from tfaction.data.formats import class_list as class_list_lib
from tfaction.data.formats import common
from tfaction.data.formats import frame_folders
from tfaction.data.formats import output
from tfaction.data.formats import runners

MAX_LABELS = 3
# dataset -> (separator, most labels per row, frame file pattern).
DATASETS = {
    "actnet": (",", MAX_LABELS, "image_%05d.jpg"),
    "fcvid": (",", MAX_LABELS, "image_%05d.jpg"),
    "minik": (" ", 1, "img_%05d.jpg"),
}
MIN_FRAMES = 3


@dataclasses.dataclass
class ListEntry:
    """One row of an AdaFocus split list."""

    video_path: str
    num_frames: int
    labels: tuple
    repeated_labels: bool
    path: str
    line: int


def _integer(text, what, expected, **where):
    try:
        return int(text)
    except ValueError:
        raise errors.MalformedFileError(
            f"{expected}; {what} {text!r} is not an integer",
            **where) from None


def read_split_list(path, dataset):
    """Reads one AdaFocus split list.

    Args:
        path: list file (local or remote). Blank lines are ignored.
        dataset: "actnet" or "fcvid" (`path,num_frames,label[,...]`, 1 to 3
            labels) or "minik" (`path num_frames label`, the path may
            contain spaces).

    Returns:
        List of `ListEntry` in file order (labels in file order, a
        repeated label kept once).

    Raises:
        ConfigError: unknown `dataset`.
        MalformedFileError: a row with too few fields or too many labels,
            a non-integer frame count or label, a negative label or frame
            count, or a video listed twice (file and line named).

    Example:

    ```python
    entries = read_split_list("actnet_val_split.txt", "actnet")
    print(entries[0].video_path, entries[0].labels)   # v_abc 148
    ```
    """
    if dataset not in DATASETS:
        raise errors.ConfigError(f"unknown AdaFocus dataset {dataset!r}; "
                                 f"expected one of {sorted(DATASETS)}")
    separator, most, _ = DATASETS[dataset]
    if separator == ",":
        expected = ("expected 'path,num_frames,label' with 1 to "
                    f"{most} labels")
    else:
        expected = "expected 'path num_frames label'"
    path = str(path)
    text = common.read_text(path, what="split list")
    entries, seen = [], {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = dict(path=path, line=number)
        if separator == ",":
            fields = [f.strip() for f in line.strip().split(",")]
        else:
            parts = line.split()
            # As the authors' loader: the last two fields are the frame
            # count and the label, everything before is the path.
            fields = ([" ".join(parts[:-2]), *parts[-2:]]
                      if len(parts) >= 3 else parts)
        if len(fields) < 3 or not fields[0]:
            raise errors.MalformedFileError(
                f"{expected}, got {line.strip()!r}", **where)
        video_path = fields[0]
        where["video_id"] = video_path
        if len(fields) - 2 > most:
            raise errors.MalformedFileError(
                f"{expected}; got {len(fields) - 2} labels", **where)
        num_frames = _integer(fields[1], "num_frames", expected, **where)
        labels = [_integer(f, "label", expected, **where)
                  for f in fields[2:]]
        if num_frames < 0 or min(labels) < 0:
            raise errors.MalformedFileError(
                f"{expected}; num_frames and labels must be >= 0, got "
                f"{line.strip()!r}", **where)
        if video_path in seen:
            raise errors.MalformedFileError(
                f"video {video_path!r} repeats line {seen[video_path]}",
                path=path, line=number)
        seen[video_path] = number
        unique = tuple(dict.fromkeys(labels))
        entries.append(ListEntry(video_path, num_frames, unique,
                                 len(unique) != len(labels), path, number))
    return entries


def subset_name(list_path):
    """`actnet_val_split.txt` -> `val`, `mini_train_videofolder.txt` ->
    `train`; other names -> the file stem."""
    stem = os.path.splitext(os.path.basename(str(list_path)))[0]
    match = re.match(
        r"^(?:actnet|fcvid|minik?)_(.+?)(?:_split|_videofolder)?$", stem)
    return match.group(1) if match else stem


def _check_disjoint(lists):
    first = {}
    for entries in lists:
        for entry in entries:
            other = first.setdefault(entry.video_path, entry)
            if other is not entry:
                raise errors.MalformedFileError(
                    f"video {entry.video_path!r} is also in {other.path}:"
                    f"{other.line}; split lists must be disjoint",
                    path=entry.path, line=entry.line)


def convert_adafocus_lists(
        split_lists, frames_root, output_dir, *, dataset, class_list,
        subsets=None, frame_pattern=None, fps=None, min_frames=MIN_FRAMES,
        jpeg_check="decode", num_shards=1, skip_corrupt=False, verify=True,
        num_workers=1, runner=None):
    """Converts AdaFocus split lists over frame folders to frames records.

    Args:
        split_lists: list file(s) (list or comma string); one subset each.
        frames_root: the folder the list paths are relative to (`DIR/frames`
            for ActivityNet / FCVID, `DIR` for Mini-Kinetics).
        output_dir: output folder (see `output` for the layout).
        dataset: "actnet", "fcvid" or "minik" (list syntax, label count
            and default frame names).
        class_list: `classInd.txt` / `minik_classInd.txt` (line k names
            label k).
        subsets: subset names parallel to `split_lists` (default from the
            file names).
        frame_pattern: 1-indexed printf frame name (default
            `image_%05d.jpg`, Mini-Kinetics `img_%05d.jpg`).
        fps: frame rate to record (-1 when None).
        min_frames: rows with fewer frames are dropped and counted.
        jpeg_check: "decode" (every JPEG decoded) or "header" (markers only).
        num_shards: shards per subset.
        skip_corrupt: skip (and report) videos with missing or bad frames
            instead of raising.
        verify: read every written shard back before committing.
        num_workers: threads reading frames.
        runner: a `runners.Runner` (None: this process); a Beam runner
            writes the same records.

    Returns:
        The dataset_info dict (also written to `dataset_info.json`):
        `schema` "frames", `format` "<dataset>_frames", `multi_label`
        (True for ActivityNet / FCVID), `max_labels`, `dropped_short` and
        `repeated_labels` per subset, `skipped`, ...

    Raises:
        ConfigError: unknown dataset, bad pattern, subset names or
            `min_frames`.
        MalformedFileError, UnknownLabelError, MissingFrameError,
        FrameCountMismatchError, CorruptRecordError: nothing is written.

    Example:

    ```python
    info = convert_adafocus_lists(
        "mini_train_videofolder.txt,mini_val_videofolder.txt", "minik",
        "records/minik", dataset="minik", class_list="minik_classInd.txt")
    print(info["subsets"]["val"]["num_records"], info["dropped_short"])
    ```
    """
    if dataset not in DATASETS:
        raise errors.ConfigError(f"unknown AdaFocus dataset {dataset!r}; "
                                 f"expected one of {sorted(DATASETS)}")
    _, most, default_pattern = DATASETS[dataset]
    split_lists = common.parse_list_flag(split_lists)
    if not split_lists:
        raise errors.ConfigError("no split list given")
    if int(min_frames) < 1:
        raise errors.ConfigError(f"min_frames must be >= 1, got "
                                 f"{min_frames}")
    frame_pattern = frame_pattern or default_pattern
    try:
        frame_folders.pattern_regex(frame_pattern)
    except ValueError as e:
        raise errors.ConfigError(str(e)) from None
    if jpeg_check not in frame_folders.JPEG_CHECKS:
        raise errors.ConfigError(f"jpeg_check must be one of "
                                 f"{frame_folders.JPEG_CHECKS}, got "
                                 f"{jpeg_check!r}")
    names = common.parse_list_flag(subsets) or [subset_name(p)
                                                for p in split_lists]
    if len(names) != len(split_lists) or len(set(names)) != len(names):
        raise errors.ConfigError(
            f"need one distinct subset name per split list, got {names} "
            f"for {split_lists}")
    classes = class_list_lib.read_class_list(class_list)
    lists = [read_split_list(p, dataset) for p in split_lists]
    _check_disjoint(lists)
    for entries in lists:
        for entry in entries:
            for label in entry.labels:
                classes.check_index(label, path=entry.path, line=entry.line,
                                    video_id=entry.video_path, key="label")
    skipper = common.Skipper(skip_corrupt)

    def convert_one(item):
        entry, subset = item
        images = frame_folders.read_frames(
            common.join(frames_root, entry.video_path), frame_pattern,
            entry.num_frames, video_id=entry.video_path,
            list_path=entry.path, list_line=entry.line, check=jpeg_check)
        example = schemas.frames_example(
            entry.video_path, num_frames=entry.num_frames,
            fps=-1.0 if fps is None else float(fps),
            duration=-1.0 if fps is None else entry.num_frames / fps,
            label_index=list(entry.labels),
            label_text=[classes.name(k) for k in entry.labels],
            images=images, subset=subset)
        return runners.one_record(
            example.SerializeToString(deterministic=True))

    dropped = collections.Counter()
    repeated = collections.Counter()
    with output.StagedOutput(output_dir, verify=verify) as out:
        for subset, entries in zip(names, lists):
            kept = [e for e in entries if e.num_frames >= min_frames]
            dropped[subset] = len(entries) - len(kept)
            repeated[subset] = sum(e.repeated_labels for e in kept)
            runners.write_subset(
                out, subset, convert_one, [(e, subset) for e in kept],
                skipper, num_shards=num_shards, num_workers=num_workers,
                runner=runner)
        info = {
            "format": f"{dataset}_frames",
            "schema": "frames",
            "modalities": ["rgb"],
            "multi_label": most > 1,
            "max_labels": most,
            "label_order": "file",
            "sources": {"split_lists": dict(zip(names, split_lists)),
                        **output.source_paths(frames_root=frames_root,
                                              class_list=class_list)},
            "patterns": {"rgb": frame_pattern},
            "jpeg_check": jpeg_check,
            "fps": fps,
            "min_frames": int(min_frames),
            "dropped_short": {s: dropped[s] for s in names},
            "repeated_labels": {s: repeated[s] for s in names},
            "skipped": skipper.summary(),
        }
        return out.commit(info, classes)
