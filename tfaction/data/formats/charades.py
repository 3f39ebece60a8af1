"""Charades v1 annotation CSVs + RGB frame folders -> frames TFRecords.

Layout of the public Charades v1 download:

```
Charades_v1_train.csv, Charades_v1_test.csv
    id,subject,scene,quality,relevance,verified,script,objects,descriptions,
    actions,length
    46GP8,HR43,Kitchen,6,7,Yes,...,c092 11.90 21.20;c147 0.00 12.60,24.83
Charades_v1_classes.txt          c000 Holding some clothes   (157 lines)
Charades_v1_rgb/<id>/<id>-000001.jpg ... <id>-<n>.jpg        (1-indexed, 24 fps)
```

One `tf.train.SequenceExample` per CSV row (schema `schemas.frames_example`,
multi-label): `video/id`, `video/num_frames` (frames found in the folder,
after `frame_step`), `video/fps` (`fps / frame_step`), `video/duration` (the
CSV's `length`, seconds), `video/subset`, `clip/label/index` = the sorted
unique classes of the video's action instances (`cNNN` -> NNN),
`clip/label/text` = their names, and the JPEG bytes unchanged
(`image/encoded`). Action times are not stored (the frames schema has no
segments); read them from the CSV if needed.

A video with an empty `actions` field is kept, with an empty label list: the
official evaluation (`Charades_v1_classify.m`,
`tfaction.evaluation.charades_map`) counts it as a negative for every class.
The number of such videos is recorded per subset
(`videos_without_actions` in dataset_info.json).

The number of frames is not listed anywhere: it is the count of frames
`1..n` in the video's folder, which must be numbered without gaps.

Checks: missing CSV columns (`id`, `actions`, `length`), bad action items or
class codes (file:line), a class index outside the class list, a bad
`length`, an id repeated within or across CSVs, a missing frame folder, gaps
in the frame numbering, unreadable or undecodable JPEGs (skippable with
`skip_corrupt`), and a malformed class file.

Example:

```python
convert_charades_frames(
    ["Charades/Charades_v1_train.csv", "Charades/Charades_v1_test.csv"],
    "Charades_v1_rgb", "data/charades/records",
    class_list="Charades/Charades_v1_classes.txt", num_shards=64,
    num_workers=8)
```
"""

import csv
import io
import os
import re
import string

from tfaction import errors
from tfaction.data import public_metadata
from tfaction.data import schemas
from tfaction.data.formats import charades_csv
from tfaction.data.formats import class_list as class_list_lib
from tfaction.data.formats import common
from tfaction.data.formats import frame_folders
from tfaction.data.formats import output
from tfaction.data.formats import runners

NUM_CLASSES = charades_csv.NUM_CLASSES
FPS = 24.0
FRAME_PATTERN = "{id}-{index:06d}.jpg"
REQUIRED_COLUMNS = ("id", "actions", "length")

_CLASS_LINE = re.compile(r"^c(\d+)\s+(\S.*)$")


def read_charades_classes(path):
    """Reads `Charades_v1_classes.txt` (`c000 Holding some clothes` lines).

    Args:
        path: class file; blank lines are ignored. Line k (0-based, blank
            lines excluded) must carry code `c<k>`. `"charades"` names the
            list shipped with tfaction (`tfaction.data.public_metadata`).

    Returns:
        A `ClassList` of the names (the text after the code); index = NNN.

    Raises:
        MalformedFileError: a line is not `cNNN name`, codes are not
            c000, c001, ... in order, or a name repeats (file:line).

    Example:

    >>> classes = read_charades_classes("charades")
    >>> classes.name(0)
    'Holding some clothes'
    """
    path = str(public_metadata.class_list_path(path))
    text = common.read_text(path, what="Charades class file")
    names, seen = [], {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _CLASS_LINE.match(line.strip())
        if match is None:
            raise errors.MalformedFileError(
                f"expected 'cNNN class name', got {line.strip()!r}",
                path=path, line=number)
        code, name = int(match.group(1)), match.group(2).strip()
        if code != len(names):
            raise errors.MalformedFileError(
                f"class code c{code:03d} out of order; expected "
                f"c{len(names):03d} (codes must be c000, c001, ... in order)",
                path=path, line=number)
        if name in seen:
            raise errors.MalformedFileError(
                f"class name {name!r} repeats line {seen[name]}", path=path,
                line=number)
        seen[name] = number
        names.append(name)
    if not names:
        raise errors.MalformedFileError("class file is empty", path=path)
    return class_list_lib.ClassList(names, path=path)


def subset_name(csv_path):
    """`Charades_v1_train.csv` -> `train`; other names -> the file stem."""
    stem = os.path.splitext(os.path.basename(str(csv_path)))[0]
    match = re.match(r"(?i)charades(?:_v\d+)?_(.+)$", stem)
    return match.group(1) if match else stem


class CharadesVideo:
    """One CSV row: id, sorted unique classes, length (s), where it is."""

    __slots__ = ("video_id", "classes", "length", "path", "line")

    def __init__(self, video_id, classes, length, path, line):
        self.video_id = video_id
        self.classes = classes
        self.length = length
        self.path = path
        self.line = line

    def __repr__(self):
        return (f"CharadesVideo({self.video_id!r}, classes={self.classes}, "
                f"length={self.length}, line={self.line})")


def read_charades_videos(path, num_classes=NUM_CLASSES):
    """Reads a Charades CSV for conversion (local path or URL).

    Uses `charades_csv.iter_charades_rows`, the parser of the official
    evaluation, and also checks `length` and the action times.

    Args:
        path: `Charades_v1_{train,test}.csv`.
        num_classes: size of the class list; larger codes are errors.

    Returns:
        List of `CharadesVideo` in file order.

    Raises:
        MalformedFileError: missing columns, empty or repeated id, bad
            action item or time, bad `length` (file:line and video named).
        UnknownLabelError: a class code >= num_classes.
    """
    path = str(path)
    text = common.read_text(path, what="Charades CSV")
    videos = []
    try:
        for line, vid, actions, rec in charades_csv.iter_charades_rows(
                io.StringIO(text, newline=""), path, num_classes,
                columns=REQUIRED_COLUMNS):
            where = dict(path=path, line=line, video_id=vid)
            for cls, start, end in actions:
                begin = common.parse_number(start, key="actions", **where)
                finish = common.parse_number(end, key="actions", **where)
                if not 0 <= begin <= finish:
                    raise errors.MalformedFileError(
                        f"action c{cls:03d} {start} {end}: expected "
                        "0 <= start <= end", key="actions", **where)
            length = common.parse_positive((rec["length"] or "").strip(),
                                           key="length", **where)
            classes = sorted({cls for cls, _, _ in actions})
            videos.append(CharadesVideo(vid, classes, length, path, line))
    except csv.Error as e:
        raise errors.MalformedFileError(f"cannot parse CSV: {e}",
                                        path=path) from None
    return videos


def printf_pattern(frame_pattern, video_id):
    """`{id}-{index:06d}.jpg` for one video -> `<id>-%06d.jpg`.

    Args:
        frame_pattern: `str.format` pattern with fields `id` and
            `index` (format spec `d`, `6d` or `06d`-style).
        video_id: the video.

    Raises:
        ValueError: unknown field, no `{index}` field, or a bad spec.
    """
    out, has_index = [], False
    for literal, field, spec, conversion in string.Formatter().parse(
            frame_pattern):
        out.append(literal.replace("%", "%%"))
        if field is None:
            continue
        if field == "id" and not spec and not conversion:
            out.append(video_id.replace("%", "%%"))
        elif (field == "index" and not has_index and not conversion
              and re.fullmatch(r"0?\d*d?", spec or "")):
            has_index = True
            out.append("%" + (spec or "d").rstrip("d") + "d")
        else:
            raise ValueError(
                f"frame pattern {frame_pattern!r}: unsupported field "
                f"{{{field}{':' + spec if spec else ''}}}; use {{id}} and "
                "one {index:06d}-style field")
    if not has_index:
        raise ValueError(f"frame pattern {frame_pattern!r} has no {{index}} "
                         "field (e.g. {id}-{index:06d}.jpg)")
    return "".join(out)


def count_frames(folder, pattern, *, video_id):
    """Number of frames `pattern % 1 .. pattern % n` in a folder.

    Raises:
        MissingFrameError: no folder, no matching frame, or a gap in the
            numbering (naming the first missing file).
    """
    if not common.is_dir(folder):
        raise errors.MissingFrameError(
            f"frame folder {folder} not found (expected files {pattern})",
            path=folder, video_id=video_id)
    regex = frame_folders.pattern_regex(pattern)
    present = set()
    for name in common.listdir(folder):
        match = regex.match(name)
        if match:
            present.add(int(match.group(1)))
    if not present:
        raise errors.MissingFrameError(
            f"no frame {pattern} in the folder", path=folder,
            video_id=video_id)
    count = max(present)
    missing = sorted(set(range(1, count + 1)) - present)
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (
            ", ..." if len(missing) > 5 else "")
        raise errors.MissingFrameError(
            f"missing frame(s) {shown} of 1..{count} ({len(missing)} in all)",
            path=common.join(folder, pattern % missing[0]),
            video_id=video_id)
    return count


def convert_charades_frames(
        csv_paths, frames_root, output_dir, *, class_list=None,
        subsets=None, num_classes=NUM_CLASSES, frame_pattern=FRAME_PATTERN,
        fps=FPS, frame_step=1, jpeg_check="decode", num_shards=1,
        skip_corrupt=False, verify=True, num_workers=1,
        runner=None):
    """Converts Charades CSVs + RGB frame folders to multi-label frames records.

    Args:
        csv_paths: `Charades_v1_train.csv` / `..._test.csv` (list or comma
            string); one subset each.
        frames_root: the `Charades_v1_rgb` folder (`<id>/<id>-000001.jpg`).
        output_dir: output folder (see `output` for the layout).
        class_list: `Charades_v1_classes.txt` (class names = the text after
            the code, index = NNN of cNNN). Default: names `c000`...
            for `num_classes` classes.
        subsets: subset names parallel to `csv_paths` (default from the
            file names: `Charades_v1_train.csv` -> `train`).
        num_classes: classes when `class_list` is None (157).
        frame_pattern: `str.format` frame name with `{id}` and a 1-indexed
            `{index:06d}`.
        fps: frame rate of the frame folders (24).
        frame_step: keep frames 1, 1 + step, ... (all are still counted;
            only the kept ones are read and checked); the recorded fps is
            `fps / frame_step`. 1 keeps every frame.
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
        `schema` "frames", `format` "charades_frames", `modalities` ["rgb"],
        `multi_label` true, `videos_without_actions` per subset, ...

    Raises:
        MalformedFileError, UnknownLabelError, MissingFrameError,
        CorruptRecordError: nothing is written.

    Example:

    ```python
    info = convert_charades_frames(
        "Charades_v1_train.csv,Charades_v1_test.csv", "Charades_v1_rgb",
        "data/charades/records", class_list="Charades_v1_classes.txt")
    print(info["subsets"]["test"]["num_records"])   # 1863
    ```
    """
    csv_paths = common.parse_list_flag(csv_paths)
    if not csv_paths:
        raise ValueError("no Charades CSV given")
    if jpeg_check not in frame_folders.JPEG_CHECKS:
        raise ValueError(f"jpeg_check must be one of "
                         f"{frame_folders.JPEG_CHECKS}, got {jpeg_check!r}")
    if int(frame_step) != frame_step or frame_step < 1:
        raise ValueError(f"frame_step must be an integer >= 1, got "
                         f"{frame_step!r}")
    frame_step = int(frame_step)
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    frame_folders.pattern_regex(printf_pattern(frame_pattern, "x"))
    names = common.parse_list_flag(subsets) or [subset_name(p)
                                                for p in csv_paths]
    if len(names) != len(csv_paths) or len(set(names)) != len(names):
        raise ValueError(f"need one distinct subset name per CSV, got "
                         f"{names} for {csv_paths}")
    if class_list is not None:
        classes = read_charades_classes(class_list)
    else:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        classes = class_list_lib.ClassList(
            [f"c{i:03d}" for i in range(num_classes)])
    tables = [read_charades_videos(p, len(classes)) for p in csv_paths]
    first_seen = {}
    for videos in tables:
        for v in videos:
            if v.video_id in first_seen:
                other = first_seen[v.video_id]
                raise errors.MalformedFileError(
                    f"video {v.video_id!r} is also in {other.path}:"
                    f"{other.line}; subsets must be disjoint", path=v.path,
                    line=v.line)
            first_seen[v.video_id] = v
    skipper = common.Skipper(skip_corrupt)
    out_fps = fps / frame_step

    def convert_one(item):
        video, subset = item
        folder = common.join(frames_root, video.video_id)
        pattern = printf_pattern(frame_pattern, video.video_id)
        count = count_frames(folder, pattern, video_id=video.video_id)
        if frame_step == 1:
            images = frame_folders.read_frames(
                folder, pattern, count, video_id=video.video_id,
                list_path=video.path, list_line=video.line, check=jpeg_check)
        else:
            images = frame_folders.read_numbered_frames(
                folder, pattern, range(1, count + 1, frame_step),
                video_id=video.video_id, check=jpeg_check)
        example = schemas.frames_example(
            video.video_id, num_frames=len(images), fps=out_fps,
            duration=video.length, label_index=video.classes,
            label_text=[classes.name(c) for c in video.classes],
            images=images, subset=subset)
        return runners.one_record(
            example.SerializeToString(deterministic=True))

    without_actions = {}
    with output.StagedOutput(output_dir, verify=verify) as out:
        for subset, videos in zip(names, tables):
            without_actions[subset] = 0
            for (video, _), _ in runners.write_subset(
                    out, subset, convert_one, [(v, subset) for v in videos],
                    skipper, num_shards=num_shards, num_workers=num_workers,
                    runner=runner):
                without_actions[subset] += not video.classes
        info = {
            "format": "charades_frames",
            "schema": "frames",
            "modalities": ["rgb"],
            "multi_label": True,
            "sources": {"csv": dict(zip(names, csv_paths)),
                        **output.source_paths(frames_root=frames_root,
                                              class_list=class_list)},
            "patterns": {"rgb": frame_pattern},
            "jpeg_check": jpeg_check,
            "fps": out_fps,
            "source_fps": fps,
            "frame_step": frame_step,
            "videos_without_actions": without_actions,
            "skipped": skipper.summary(),
        }
        return out.commit(info, classes)
