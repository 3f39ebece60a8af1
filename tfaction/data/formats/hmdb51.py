"""HMDB51 / UCF101 frame folders + split lists -> frames TFRecords.

Layout (ActionVLAD / TSN releases):

```
<frames_root>/<video_path>/image_00001.jpg ... image_<n>.jpg     (1-indexed)
<flow_root>/<video_path>/flow_x_00001.jpg ... flow_x_<n-1>.jpg   (n - 1 each)
                         flow_y_00001.jpg ... flow_y_<n-1>.jpg
train_test_lists/train_split1.txt:   <video_path> <num_frames> <class_id>
                                     brush_hair/1 409 0
```

One `tf.train.SequenceExample` per list line (schema
`schemas.frames_example`): `video/id` = `video_path`, `video/num_frames`,
`clip/label/index`, `clip/label/text`, `video/subset`, and the JPEG bytes
unchanged (`image/encoded`, `flow/x/encoded`, `flow/y/encoded`). Each list file
is one subset, named after the file (`train_split1.txt` -> `train`) unless
names are given.

Checks: malformed list line (file:line), class id out of range of the class
list, repeated video, missing folder or frame, unreadable or undecodable
JPEG, and frame counts that differ from the list (`FrameCountMismatchError`).

ActionVLAD renamed HMDB51 videos to `class/N`, N being the 1-indexed line of
`AllVideos.txt`; pass that file as `all_videos` to keep the original name in
`video/source`.

Example:

```python
convert_hmdb51_frames(
    ["lists/train_split1.txt", "lists/test_split1.txt"], "hmdb51/frames",
    "tfrecords/hmdb51_split1", modalities=("rgb", "flow"),
    class_list="data/hmdb51/actions.txt")
```
"""

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

MODALITIES = ("rgb", "flow")


@dataclasses.dataclass
class SplitEntry:
    """One line of a split list: `video_path num_frames class_id`."""

    video_path: str
    num_frames: int
    class_id: int
    path: str
    line: int


def read_split_list(path):
    """Reads a split list (`video_path num_frames class_id` per line).

    Args:
        path: list file. Blank lines are ignored.

    Returns:
        List of `SplitEntry` in file order.

    Raises:
        MalformedFileError: a line without exactly three fields, a
            non-integer or non-positive frame count, a non-integer class id,
            or a repeated video (naming file and line).

    Example:

    >>> entries = read_split_list("train_split1.txt")  # doctest: +SKIP
    >>> entries[0]  # doctest: +SKIP
    SplitEntry(video_path='brush_hair/1', num_frames=409, class_id=0, ...)
    """
    path = str(path)
    text = common.read_text(path, what="split list")
    entries, seen = [], {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        expected = "expected 'video_path num_frames class_id'"
        if len(fields) != 3:
            raise errors.MalformedFileError(
                f"{expected}, got {len(fields)} field(s): {line.strip()!r}",
                path=path, line=number)
        video_path, frames, label = fields
        try:
            frames = int(frames)
        except ValueError:
            frames = None
        if frames is None or frames < 1:
            raise errors.MalformedFileError(
                f"{expected}; num_frames {fields[1]!r} is not a positive "
                "integer", path=path, line=number, video_id=video_path)
        try:
            label = int(label)
        except ValueError:
            raise errors.MalformedFileError(
                f"{expected}; class_id {fields[2]!r} is not an integer",
                path=path, line=number, video_id=video_path) from None
        if video_path in seen:
            raise errors.MalformedFileError(
                f"video {video_path!r} repeats line {seen[video_path]}",
                path=path, line=number)
        seen[video_path] = number
        entries.append(SplitEntry(video_path, frames, label, path, number))
    return entries


def subset_name(list_path):
    """`train_split1.txt` -> `train`; other names -> the file stem."""
    stem = os.path.splitext(os.path.basename(str(list_path)))[0]
    return re.sub(r"_?split\d*$", "", stem) or stem


def read_all_videos(path):
    """Reads `AllVideos.txt`: one original `class/name.avi` per line.

    Returns:
        List of names; the name of renamed video `class/N` is item N - 1.
    """
    return [line.strip() for line in
            common.read_text(path, what="video name list").splitlines()]


def _source_name(entry, all_videos, all_videos_path):
    where = dict(path=entry.path, line=entry.line, video_id=entry.video_path)
    head, _, tail = entry.video_path.rpartition("/")
    if not tail.isdigit() or not 1 <= int(tail) <= len(all_videos):
        raise errors.MalformedFileError(
            f"expected a renamed id 'class/N' with 1 <= N <= "
            f"{len(all_videos)} to look up {all_videos_path}", **where)
    source = all_videos[int(tail) - 1]
    if head and source.split("/")[0] != head.split("/")[-1]:
        raise errors.MalformedFileError(
            f"line {tail} of {all_videos_path} is {source!r}, not a video of "
            f"class {head!r}", **where)
    return source


def _classes_from_lists(entries):
    """Class names from folder names when no class list is given."""
    names = {}
    for e in entries:
        name = e.video_path.split("/")[0]
        if e.class_id < 0:
            continue  # rejected (or skipped) with its video
        if names.setdefault(e.class_id, name) != name:
            raise errors.MalformedFileError(
                f"class id {e.class_id} is used for folders "
                f"{names[e.class_id]!r} and {name!r}; pass a class list",
                path=e.path, line=e.line)
    ids = sorted(names)
    if ids != list(range(len(ids))):
        gaps = sorted(set(range(max(ids) + 1)) - set(ids))
        raise errors.MalformedFileError(
            f"class ids are not 0..{max(ids)} (missing {gaps[:10]}); pass a "
            "class list to name the classes", path=entries[0].path)
    return class_list_lib.ClassList([names[i] for i in ids])


def convert_hmdb51_frames(
        split_lists, frames_root, output_dir, *, flow_root=None,
        modalities=("rgb",), subsets=None, class_list=None, all_videos=None,
        fps=None, rgb_pattern="image_%05d.jpg",
        flow_x_pattern="flow_x_%05d.jpg", flow_y_pattern="flow_y_%05d.jpg",
        jpeg_check="decode", num_shards=1, skip_corrupt=False, verify=True,
        num_workers=1, runner=None):
    """Converts frame folders listed in split files to frames TFRecords.

    Args:
        split_lists: list file(s) (list or comma string); one subset each.
        frames_root: root of the RGB frame folders.
        output_dir: output folder (see `output` for the layout).
        flow_root: root of the flow folders (default `frames_root`).
        modalities: "rgb" and/or "flow" (list or comma string).
        subsets: subset names parallel to `split_lists` (default from the
            file names, e.g. `test_split1.txt` -> `test`).
        class_list: class list file (index = line); default the folder names
            of each class id (ids must then be 0..K-1).
        all_videos: optional `AllVideos.txt` to record original names.
        fps: frame rate to record (and duration = num_frames / fps).
        rgb_pattern, flow_x_pattern, flow_y_pattern: 1-indexed printf
            file-name patterns.
        jpeg_check: "decode" (every JPEG decoded) or "header" (markers only).
        num_shards: shards per subset.
        skip_corrupt: skip (and report) bad videos instead of raising.
        verify: read every written shard back before committing.
        num_workers: threads reading frames.
        runner: a `runners.Runner` (None: this process); a Beam runner
            writes the same records.

    Returns:
        The dataset_info dict (also written to `dataset_info.json`).

    Raises:
        MalformedFileError, UnknownLabelError, MissingFrameError,
        FrameCountMismatchError, CorruptRecordError: nothing is written.

    Example:

    ```python
    info = convert_hmdb51_frames("lists/train_split1.txt", "hmdb51/frames",
                                 "tfrecords/hmdb51", modalities="rgb,flow",
                                 flow_root="hmdb51/flow", skip_corrupt=True)
    print(info["subsets"]["train"]["num_records"], info["skipped"]["count"])
    ```
    """
    split_lists = common.parse_list_flag(split_lists)
    modalities = common.parse_list_flag(modalities)
    if not split_lists:
        raise ValueError("no split list given")
    if not modalities or set(modalities) - set(MODALITIES):
        raise ValueError(f"modalities must be among {MODALITIES}, got "
                         f"{modalities}")
    for pattern in (rgb_pattern, flow_x_pattern, flow_y_pattern):
        frame_folders.pattern_regex(pattern)  # fail early on a bad pattern
    names = common.parse_list_flag(subsets) or [subset_name(p)
                                                for p in split_lists]
    if len(names) != len(split_lists) or len(set(names)) != len(names):
        raise ValueError(f"need one distinct subset name per split list, got "
                         f"{names} for {split_lists}")
    lists = [read_split_list(p) for p in split_lists]
    first_seen = {}
    for entries in lists:
        for e in entries:
            if e.video_path in first_seen:
                other = first_seen[e.video_path]
                raise errors.MalformedFileError(
                    f"video {e.video_path!r} is also in {other.path}:"
                    f"{other.line}; splits must be disjoint", path=e.path,
                    line=e.line)
            first_seen[e.video_path] = e
    all_entries = [e for entries in lists for e in entries]
    classes = (class_list_lib.read_class_list(class_list)
               if class_list is not None else _classes_from_lists(all_entries))
    video_names = (read_all_videos(all_videos) if all_videos is not None
                   else None)
    flow_root = frames_root if flow_root is None else flow_root
    skipper = common.Skipper(skip_corrupt)

    def convert_one(item):
        entry, subset = item
        where = dict(path=entry.path, line=entry.line,
                     video_id=entry.video_path)
        classes.check_index(entry.class_id, key="class_id", **where)
        source = (None if video_names is None else
                  _source_name(entry, video_names, all_videos))
        kwargs = dict(video_id=entry.video_path, list_path=entry.path,
                      list_line=entry.line, check=jpeg_check)
        images = flow_x = flow_y = None
        if "rgb" in modalities:
            images = frame_folders.read_frames(
                common.join(frames_root, entry.video_path), rgb_pattern,
                entry.num_frames, **kwargs)
        if "flow" in modalities:
            folder = common.join(flow_root, entry.video_path)
            flow_x = frame_folders.read_frames(
                folder, flow_x_pattern, entry.num_frames - 1, grayscale=True,
                **kwargs)
            flow_y = frame_folders.read_frames(
                folder, flow_y_pattern, entry.num_frames - 1, grayscale=True,
                **kwargs)
        example = schemas.frames_example(
            entry.video_path, num_frames=entry.num_frames,
            fps=-1.0 if fps is None else fps,
            duration=-1.0 if fps is None else entry.num_frames / fps,
            label_index=[entry.class_id],
            label_text=[classes.name(entry.class_id)], images=images,
            flow_x=flow_x, flow_y=flow_y, subset=subset, source=source)
        return runners.one_record(
            example.SerializeToString(deterministic=True))

    with output.StagedOutput(output_dir, verify=verify) as out:
        for subset, entries in zip(names, lists):
            runners.write_subset(
                out, subset, convert_one, [(e, subset) for e in entries],
                skipper, num_shards=num_shards, num_workers=num_workers,
                runner=runner)
        info = {
            "format": "hmdb51_frames",
            "schema": "frames",
            "modalities": modalities,
            "sources": {"split_lists": dict(zip(names, split_lists)),
                        **output.source_paths(
                            frames_root=frames_root,
                            flow_root=(flow_root if "flow" in modalities
                                       else None),
                            class_list=class_list, all_videos=all_videos)},
            "patterns": {"rgb": rgb_pattern, "flow_x": flow_x_pattern,
                         "flow_y": flow_y_pattern},
            "jpeg_check": jpeg_check,
            "fps": fps,
            "skipped": skipper.summary(),
        }
        return out.commit(info, classes)
