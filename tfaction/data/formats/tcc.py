"""TCC TFRecords (Pouring, PennAction) -> frame-label records.

Input: the TFRecord files the TCC / CARL dataset preparation writes (the
public Pouring download `pouring_{train,val}-<i>-of-<n>.tfrecord`, PennAction
`penn_action_{train,val}-<i>.tfrecord`, or any file of the same layout). Each
record is one `tf.train.SequenceExample` per video:

| where | key | type | meaning |
|---|---|---|---|
| context | `name` | bytes | video name (`0001_baseball_pitch` in PennAction) |
| context | `len` | int64 | number of frames |
| context | `label` | int64 | video class, -1 when unset (optional here) |
| context | `label_string` | bytes | class name (optional) |
| context | `framelabels_string` | bytes | comma-joined phase names (optional) |
| feature list | `video` | bytes | one JPEG per frame |
| feature list | `frame_labels` | int64 | one phase label per frame |

Output: one record per video in the frame-labels schema
(`schemas.frame_labels_example`): context `video/id` (the TCC `name`),
`video/num_frames`, `video/fps` and `video/duration` (when `fps` is given,
else -1), `video/subset`, `clip/label/index` / `clip/label/text` (the action,
when the layout gives one) and feature lists `image/encoded` (the JPEG bytes,
copied unchanged) and `frame/label/index`. Sharded per subset, committed
atomically (`output.StagedOutput`) with `classes.txt` (the actions) and
`dataset_info.json` (counts, phases per action, settings, skips).

Subsets come from the file names (`pouring_val-0-of-1.tfrecord` -> `val`,
`penn_action_train-3.tfrecord` -> `train`), or from `subsets` (one per input
pattern).

The action of a video depends on the layout (`layout`):

* `pouring`: every video is class 0, `pouring`.
* `penn_action`: the class named by the video name after its 4-digit id and
  `_` (`0001_baseball_pitch` -> `baseball_pitch`), among the 13 actions CARL
  and TCC keep (`PENN_ACTION_ACTIONS`, in their order).
* `generic`: the record's `label` when >= 0 (named by `label_string` when
  present, else `class_<label>`); no action when `label` is -1 or absent.
* `auto` (default): `pouring` when every file name starts with `pouring`,
  `penn_action` when every one starts with `penn_action`, else `generic`.

Checks, each error naming the file and the record index (0-based) and, once
known, the video: a record that is not a SequenceExample; `name` missing,
empty or repeated (in any subset); `len` missing or different from the
number of JPEGs; a frame that is not a complete JPEG (with `decode_check`,
one that does not decode, or whose size differs from the first frame's);
`frame_labels` missing (unless `require_frame_labels=False`: every frame is
then labelled -1), of another length than `video`, or below -1; an unknown
PennAction action; the same `label` with two `label_string`s. A truncated or
corrupt TFRecord file is an error naming the file and the first unreadable
record. With `skip_corrupt`, a bad record is skipped, and a corrupt file
keeps its records before the damage; both are counted, printed and listed in
dataset_info.json (`skipped`, `skipped_files`).

How it runs: the files are read once up front to find each record's offset
and any corrupt tail; each record is then read back at its offset, checked
and converted on its own (`runners.write_subset`: threads, or one Beam
element per record with `runner`). The checks that compare a record with
the ones before it (a repeated name, a label named two ways) run afterwards
in input order over what each record reported (a `runners` screen), so
every runner keeps and skips the same records.

Example:

```python
info = convert_tcc("pouring/pouring_*.tfrecord", "records/pouring")
print(info["subsets"]["train"]["num_records"])  # 70
```
"""

import collections
import dataclasses
import os
import re

import tensorflow as tf
from google.protobuf import message as protobuf_message

from tfaction import errors
from tfaction.data import schemas
from tfaction.data import tfrecord_io
from tfaction.data.formats import class_list as class_list_lib
from tfaction.data.formats import common
from tfaction.data.formats import jpeg
from tfaction.data.formats import output
from tfaction.data.formats import runners

LAYOUTS = ("auto", "pouring", "penn_action", "generic")
# The PennAction actions TCC / CARL keep (strum_guitar and jump_rope are
# left out), in the order CARL numbers them.
PENN_ACTION_ACTIONS = (
    "baseball_pitch", "baseball_swing", "bench_press", "bowl",
    "clean_and_jerk", "golf_swing", "jumping_jacks", "pushup", "pullup",
    "situp", "squat", "tennis_forehand", "tennis_serve")
POURING_CLASS = "pouring"

# TCC keys.
NAME = "name"
LEN = "len"
LABEL = "label"
LABEL_STRING = "label_string"
FRAME_LABELS_STRING = "framelabels_string"
VIDEO = "video"
FRAME_LABELS = "frame_labels"

_SUBSET = re.compile(r"_(train|val|validation|test)(?=[-_.]|$)")


def subset_name(path):
    """The subset of a TCC file from its name (the stem when unknown).

    Example:

    >>> subset_name("gs/pouring_train-0-of-2.tfrecord")
    'train'
    >>> subset_name("penn_action_val-1.tfrecord")
    'val'
    """
    base = os.path.basename(str(path))
    match = _SUBSET.search(base)
    if match:
        return match.group(1)
    return os.path.splitext(base)[0]


def detect_layout(paths):
    """`pouring`, `penn_action` or `generic` from the file names.

    Example:

    >>> detect_layout(["a/pouring_train-0-of-2.tfrecord"])
    'pouring'
    """
    names = [os.path.basename(str(p)) for p in paths]
    for layout in ("penn_action", "pouring"):
        if names and all(n.startswith(layout) for n in names):
            return layout
    return "generic"


@dataclasses.dataclass
class TccVideo:
    """One parsed TCC record.

    Attributes:
        name: the video name (`video/id` of the output).
        images: JPEG bytes per frame.
        frame_labels: int phase label per frame (-1: unlabelled).
        label: the record's `label` (-1 when absent).
        label_string: its `label_string` ("" when absent).
        phase_names: the `framelabels_string` names (empty when absent).
        frame_size: (height, width) of the frames, or None (not decoded).
        path, index: where the record is.
    """

    name: str
    images: list
    frame_labels: list
    label: int
    label_string: str
    phase_names: tuple
    frame_size: tuple
    path: str
    index: int


def _error(cls, message, *, path, index, video_id=None, key=None):
    return cls(f"record {index}: {message}", path=path, video_id=video_id,
               key=key)


def _single(feature, kind, *, what, **where):
    """The one value of a context feature of `kind` (bytes / int64)."""
    which = feature.WhichOneof("kind")
    values = getattr(feature, f"{kind}_list").value
    if which != f"{kind}_list" or len(values) != 1:
        count = len(getattr(feature, which).value) if which else 0
        raise _error(errors.MalformedFileError,
                     f"context {what!r} must hold exactly one {kind} value, "
                     f"got {count} {which or 'empty'} value(s)", key=what,
                     **where)
    return values[0]


def _text(raw, *, what, **where):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _error(errors.MalformedFileError,
                     f"context {what!r} is not UTF-8 text ({e})", key=what,
                     **where) from None


def parse_tcc_record(data, *, path, index, require_frame_labels=True,
                     decode_check=True):
    """Parses and checks one serialized TCC SequenceExample.

    Args:
        data: the serialized record.
        path: its TFRecord file; `index`: its 0-based position there.
        require_frame_labels: a record without `frame_labels` is an error
            (False: its frames are labelled -1).
        decode_check: decode every JPEG (else only check its markers) and
            require one frame size per video.

    Returns:
        A `TccVideo`.

    Raises:
        CorruptRecordError: not a SequenceExample.
        MalformedFileError: a missing / malformed key, labels below -1.
        FrameCountMismatchError: `len`, `video` and `frame_labels` disagree.
        MissingFrameError: a frame is not a complete, decodable JPEG.

    Example:

    >>> video = parse_tcc_record(record, path="pouring_val-0-of-1.tfrecord",
    ...                          index=0)  # doctest: +SKIP
    >>> video.name, len(video.images)  # doctest: +SKIP
    ('pouring_001', 215)
    """
    where = {"path": str(path), "index": index}
    try:
        example = tf.train.SequenceExample.FromString(data)
    except protobuf_message.DecodeError as e:
        raise _error(errors.CorruptRecordError,
                     f"not a serialized tf.train.SequenceExample ({e})",
                     **where) from None
    context = example.context.feature
    if NAME not in context:
        raise _error(errors.MalformedFileError,
                     f"no context {NAME!r} (the video name)", key=NAME,
                     **where)
    name = _text(_single(context[NAME], "bytes", what=NAME, **where),
                 what=NAME, **where).strip()
    if not name:
        raise _error(errors.MalformedFileError, "empty video name",
                     key=NAME, **where)
    where["video_id"] = name
    lists = example.feature_lists.feature_list
    if VIDEO not in lists or not lists[VIDEO].feature:
        raise _error(errors.MalformedFileError,
                     f"no frames (feature list {VIDEO!r} is missing or "
                     "empty)", key=VIDEO, **where)
    images = []
    for j, feature in enumerate(lists[VIDEO].feature):
        values = feature.bytes_list.value
        if feature.WhichOneof("kind") != "bytes_list" or len(values) != 1:
            raise _error(errors.MalformedFileError,
                         f"frame {j} of {VIDEO!r} must hold exactly one "
                         "bytes value (a JPEG)", key=VIDEO, **where)
        images.append(values[0])
    if LEN not in context:
        raise _error(errors.MalformedFileError,
                     f"no context {LEN!r} (the number of frames)", key=LEN,
                     **where)
    length = _single(context[LEN], "int64", what=LEN, **where)
    if length != len(images):
        raise _error(errors.FrameCountMismatchError,
                     f"context {LEN!r} is {length} but {VIDEO!r} holds "
                     f"{len(images)} frame(s)", key=LEN, **where)
    if FRAME_LABELS in lists:
        labels = []
        for j, feature in enumerate(lists[FRAME_LABELS].feature):
            values = feature.int64_list.value
            if (feature.WhichOneof("kind") != "int64_list"
                    or len(values) != 1):
                raise _error(errors.MalformedFileError,
                             f"frame {j} of {FRAME_LABELS!r} must hold "
                             "exactly one int64 label", key=FRAME_LABELS,
                             **where)
            labels.append(int(values[0]))
        if len(labels) != len(images):
            raise _error(errors.FrameCountMismatchError,
                         f"{len(images)} frame(s) but {len(labels)} frame "
                         "label(s)", key=FRAME_LABELS, **where)
        low = min(labels)
        if low < -1:
            raise _error(errors.MalformedFileError,
                         f"frame {labels.index(low)} has label {low}; "
                         "expected a phase index >= 0 or -1 (unlabelled)",
                         key=FRAME_LABELS, **where)
    elif require_frame_labels:
        raise _error(errors.MalformedFileError,
                     f"no feature list {FRAME_LABELS!r} (per-frame phase "
                     "labels); pass require_frame_labels=False "
                     "(--norequire_frame_labels) to label every frame -1",
                     key=FRAME_LABELS, **where)
    else:
        labels = [-1] * len(images)
    label = (_single(context[LABEL], "int64", what=LABEL, **where)
             if LABEL in context else -1)
    label_string = ""
    if LABEL_STRING in context:
        label_string = _text(_single(context[LABEL_STRING], "bytes",
                                     what=LABEL_STRING, **where),
                             what=LABEL_STRING, **where).strip()
    phase_names = ()
    if FRAME_LABELS_STRING in context:
        text = _text(_single(context[FRAME_LABELS_STRING], "bytes",
                             what=FRAME_LABELS_STRING, **where),
                     what=FRAME_LABELS_STRING, **where)
        phase_names = tuple(p.strip() for p in text.split(",") if p.strip())
    frame_size = _check_frames(images, decode_check, where)
    return TccVideo(name=name, images=images, frame_labels=labels,
                    label=int(label), label_string=label_string,
                    phase_names=phase_names, frame_size=frame_size,
                    path=str(path), index=index)


def _check_frames(images, decode_check, where):
    size = None
    for j, data in enumerate(images):
        try:
            if decode_check:
                image = jpeg.check_jpeg(data, path=where["path"],
                                        video_id=where["video_id"])
            else:
                jpeg.check_jpeg_markers(data, path=where["path"],
                                        video_id=where["video_id"])
                continue
        except errors.MissingFrameError as e:
            raise _error(errors.MissingFrameError,
                         f"frame {j}: {e.message}", key=VIDEO,
                         **where) from None
        if size is None:
            size = image.shape[:2]
        elif image.shape[:2] != size:
            raise _error(errors.MalformedFileError,
                         f"frame {j} is {image.shape[0]}x{image.shape[1]} "
                         f"but frame 0 is {size[0]}x{size[1]}; frames of "
                         "a video must share one size", key=VIDEO, **where)
    return None if size is None else tuple(int(s) for s in size)


def _action_of(layout, video):
    """(index, name) of the video's action under `layout`, or (None, None).

    Raises:
        UnknownLabelError: a PennAction name without a known action.
    """
    if layout == "pouring":
        return 0, POURING_CLASS
    if layout == "penn_action":
        match = re.match(r"^\d+_(.+)$", video.name)
        action = match.group(1) if match else None
        if action not in PENN_ACTION_ACTIONS:
            raise _error(
                errors.UnknownLabelError,
                f"cannot tell the PennAction action from the name "
                f"{video.name!r}; expected '<id>_<action>' with one of "
                f"{', '.join(PENN_ACTION_ACTIONS)}", path=video.path,
                index=video.index, video_id=video.name, key=NAME)
        return PENN_ACTION_ACTIONS.index(action), action
    if video.label < 0:
        return None, None
    return video.label, video.label_string or f"class_{video.label}"


class _Screen:
    """Checks each converted record against those before it (all subsets,
    in input order): names are unique, and a `generic` label keeps the
    name it first had. Builds classes.txt.

    A `runners` screen: `check` takes a record's extra (see
    `_convert_record`) and raises a `MalformedFileError` to reject it.
    """

    def __init__(self, layout):
        self.layout = layout
        self.owners = {}  # video name -> (subset, path, index)
        self.names = {}  # generic: label -> name
        self.first = {}  # generic: label -> (path, index) naming it

    def check(self, extra):
        """Accepts (and remembers) one converted record, or raises."""
        if "skipped" in extra:
            return
        where = dict(path=extra["path"], index=extra["index"],
                     video_id=extra["name"])
        label, name = extra["label_index"], extra["label_text"]
        known = self.names.get(label)
        if self.layout == "generic" and label is not None and (
                known is not None and known != name):
            path, index = self.first[label]
            raise _error(
                errors.MalformedFileError,
                f"label {label} is named {name!r} here but {known!r} in "
                f"{path} record {index}", key=LABEL_STRING, **where)
        first = self.owners.get(extra["name"])
        if first is not None:
            raise _error(
                errors.MalformedFileError,
                f"video name repeats {first[1]} record {first[2]} (subset "
                f"{first[0]}); names must be unique", key=NAME, **where)
        self.owners[extra["name"]] = (extra["subset"], extra["path"],
                                      extra["index"])
        if self.layout == "generic" and label is not None and known is None:
            self.names[label] = name
            self.first[label] = (extra["path"], extra["index"])

    def class_list(self):
        """The `ClassList` of the layout, or None (generic, no labels)."""
        if self.layout == "pouring":
            return class_list_lib.ClassList([POURING_CLASS])
        if self.layout == "penn_action":
            return class_list_lib.ClassList(PENN_ACTION_ACTIONS)
        if not self.names:
            return None
        names = [self.names.get(i, f"class_{i}")
                 for i in range(max(self.names) + 1)]
        return class_list_lib.ClassList(names)


@dataclasses.dataclass(frozen=True)
class _Settings:
    layout: str
    fps: float
    require_frame_labels: bool
    decode_check: bool
    skip_corrupt: bool


def _convert_record(item, settings):
    """`runners.VideoRecords` of one TCC record, read at its offset.

    Args:
        item: `(subset, path, index, offset)` of the record.
        settings: the `_Settings`.

    Returns:
        One record and, as the extra, what the screen and the statistics
        need (`name`, `path`, `index`, `subset`, `label_index`,
        `label_text`, `num_frames`, `unlabelled_frames`, `num_phases`,
        `phase_names`, `frame_size`); with `skip_corrupt`, a bad record
        gives no record and the extra `{"skipped": item}`.

    Raises:
        DataError: a bad record (unless skipping).
    """
    subset, path, index, offset = item
    try:
        data = tfrecord_io.read_record_at(path, offset)
        video = parse_tcc_record(
            data, path=path, index=index,
            require_frame_labels=settings.require_frame_labels,
            decode_check=settings.decode_check)
        label_index, name = _action_of(settings.layout, video)
    except errors.DataError as e:
        # TCC skips any bad record, also one whose name is unknown (the
        # `Skipper` policy would not), so it keeps its own skip list.
        if not settings.skip_corrupt:
            raise
        return runners.VideoRecords((), {"skipped": _skip_item(e, subset)})
    n, fps = len(video.images), settings.fps
    example = schemas.frame_labels_example(
        video.name, images=video.images, frame_labels=video.frame_labels,
        fps=-1.0 if fps is None else fps,
        duration=-1.0 if fps is None else n / fps, subset=subset,
        label_index=[] if label_index is None else [label_index],
        label_text=[] if label_index is None else [name])
    size = video.frame_size
    return runners.one_record(example.SerializeToString(deterministic=True), {
        "name": video.name, "path": video.path, "index": video.index,
        "subset": subset, "label_index": label_index, "label_text": name,
        "num_frames": n,
        "unlabelled_frames": sum(1 for c in video.frame_labels if c < 0),
        "num_phases": max(video.frame_labels) + 1,
        "phase_names": list(video.phase_names),
        "frame_size": None if size is None else "x".join(map(str, size))})


def _record_items(files, subset, skip_corrupt, bad_files):
    """The records of `files`, located.

    Returns:
        `(items, error)`: `(subset, path, index, offset)` of every readable
        record, and None, or (not skipping) the `CorruptRecordError` of the
        first corrupt file, whose readable records end `items`: it is
        raised after them, as reading in order would. When skipping, a
        corrupt file's tail goes to `bad_files`.
    """
    items = []
    for path in files:
        index = -1
        try:
            for index, (offset, _) in enumerate(
                    tfrecord_io.iterate_record_offsets(path)):
                items.append((subset, path, index, offset))
        except errors.CorruptRecordError as e:
            if not skip_corrupt:
                return items, e
            bad_files.append({"path": path, "subset": subset,
                              "records_kept": index + 1,
                              "error": type(e).__name__,
                              "message": str(e)})
    return items, None


def _skip_item(error, subset):
    return {"path": error.path, "video_id": error.video_id,
            "subset": subset, "error": type(error).__name__,
            "message": str(error)}


def _group_inputs(inputs, subsets):
    """{subset: [files]} in input order."""
    patterns = common.parse_list_flag(inputs)
    if not patterns:
        raise ValueError("no TCC TFRecord file given")
    names = common.parse_list_flag(subsets)
    if names and len(names) != len(patterns):
        raise ValueError(f"--subsets needs one name per --input pattern, got "
                         f"{names} for {patterns}")
    grouped = collections.OrderedDict()
    seen = set()
    for i, pattern in enumerate(patterns):
        for path in tfrecord_io.list_files(pattern):
            if path in seen:
                continue
            seen.add(path)
            subset = names[i] if names else subset_name(path)
            if not subset or "/" in subset:
                raise ValueError(f"invalid subset name {subset!r}")
            grouped.setdefault(subset, []).append(path)
    return grouped


def convert_tcc(inputs, output_dir, *, layout="auto", subsets=None,
                fps=None, require_frame_labels=True, decode_check=True,
                num_shards=1, skip_corrupt=False,
                verify=True, num_workers=1, runner=None):
    """Converts TCC TFRecords to frame-label records (see module doc).

    Args:
        inputs: TFRecord files or globs (list or comma-separated string).
        output_dir: output folder (see `output` for the layout).
        layout: `auto`, `pouring`, `penn_action` or `generic` (how a
            video's action is found).
        subsets: subset names, one per input pattern (default: from the
            file names).
        fps: frame rate of the frames (PennAction: 30), or None (unknown:
            `video/fps` and `video/duration` are -1).
        require_frame_labels: a record without `frame_labels` is an error
            (False: its frames are labelled -1).
        decode_check: decode every JPEG to check it (else only its start
            and end markers).
        num_shards: shards per subset.
        skip_corrupt: skip (and report) bad records and the unreadable
            tail of corrupt files instead of raising.
        verify: read every written shard back before committing.
        num_workers: threads checking records (the local runner).
        runner: a `runners.Runner` (None: this process); a Beam runner
            reads, checks and converts each record on a worker.

    Returns:
        The dataset_info dict (also written to `dataset_info.json`).

    Raises:
        DataError: bad input (nothing is written); `ValueError`: bad
            arguments.

    Example:

    ```python
    info = convert_tcc("penn_action/penn_action_*.tfrecord",
                       "records/penn_action", fps=30, num_shards=4)
    print(info["num_records"], info["num_classes"])  # 13 actions
    ```
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if fps is not None and not (fps > 0):
        raise ValueError(f"fps must be positive, got {fps!r}")
    grouped = _group_inputs(inputs, subsets)
    all_files = [p for files in grouped.values() for p in files]
    resolved = detect_layout(all_files) if layout == "auto" else layout
    screen = _Screen(resolved)
    settings = _Settings(layout=resolved, fps=fps,
                         require_frame_labels=bool(require_frame_labels),
                         decode_check=bool(decode_check),
                         skip_corrupt=bool(skip_corrupt))
    skipped, bad_files = [], []
    stats = collections.OrderedDict()
    # Policy is TCC's own (see `_convert_record`); the skipper only sees
    # the screen's rejections, which always name their video.
    skipper = common.Skipper(skip_corrupt)

    with output.StagedOutput(output_dir, verify=verify) as out:
        for subset, files in grouped.items():
            counts = {"num_frames": 0, "min_frames": None,
                      "max_frames": None, "unlabelled_frames": 0,
                      "videos_per_class": collections.Counter(),
                      "phases_per_class": {}, "frame_sizes":
                      collections.Counter()}
            items, unreadable = _record_items(files, subset, skip_corrupt,
                                              bad_files)
            position = {item: k for k, item in enumerate(items)}
            subset_skips = []  # (position, skipped item), input order

            def on_skip(item, error):
                subset_skips.append((position[item],
                                     _skip_item(error, item[0])))

            for item, extra in runners.write_subset(
                    out, subset, lambda i: _convert_record(i, settings),
                    items, skipper, num_shards=num_shards,
                    num_workers=num_workers, runner=runner, screen=screen,
                    on_skip=on_skip):
                if "skipped" in extra:
                    subset_skips.append((position[item], extra["skipped"]))
                else:
                    _count(counts, extra)
            if unreadable is not None:
                raise unreadable
            skipped.extend(entry for _, entry in sorted(
                subset_skips, key=lambda skip: skip[0]))
            stats[subset] = _finish(counts)
        classes = screen.class_list()
        info = {
            "format": "tcc",
            "schema": "frame_labels",
            "layout": resolved,
            "sources": {"input": {s: list(f) for s, f in grouped.items()}},
            "fps": -1.0 if fps is None else float(fps),
            "require_frame_labels": bool(require_frame_labels),
            "decode_check": bool(decode_check),
            "label_index": ("action class (classes.txt line); absent when "
                            "the video has none"),
            "frame_label_index": "phase index per frame, -1 = unlabelled",
            "stats": stats,
            "skipped": _summary(skipped),
            "skipped_files": _summary(bad_files),
        }
        return out.commit(info, classes)


def _count(counts, extra):
    """Adds one converted record (its `_convert_record` extra)."""
    n = extra["num_frames"]
    counts["num_frames"] += n
    counts["min_frames"] = n if counts["min_frames"] is None else min(
        counts["min_frames"], n)
    counts["max_frames"] = max(counts["max_frames"] or 0, n)
    counts["unlabelled_frames"] += extra["unlabelled_frames"]
    key = extra["label_text"] if extra["label_text"] is not None else ""
    counts["videos_per_class"][key] += 1
    entry = counts["phases_per_class"].setdefault(
        key, {"num_phases": 0, "phase_names": extra["phase_names"]})
    entry["num_phases"] = max(entry["num_phases"], extra["num_phases"])
    if extra["frame_size"] is not None:
        counts["frame_sizes"][extra["frame_size"]] += 1


def _finish(counts):
    return {"num_frames": counts["num_frames"],
            "min_frames": counts["min_frames"],
            "max_frames": counts["max_frames"],
            "unlabelled_frames": counts["unlabelled_frames"],
            "videos_per_class": dict(sorted(
                counts["videos_per_class"].items())),
            "phases_per_class": dict(sorted(
                counts["phases_per_class"].items())),
            "frame_sizes": dict(sorted(counts["frame_sizes"].items()))}


def _summary(items):
    by_error = collections.Counter(i["error"] for i in items)
    return {"count": len(items), "by_error": dict(sorted(by_error.items())),
            "items": list(items)}


def report_lines(info, options=None):
    """Human-readable summary of a TCC conversion (printed by the CLI).

    Args:
        info: the dataset_info dict `convert_tcc` returns.
        options: the format's flag values (`output_dir` is shown).

    Returns:
        Lines of text.

    Example:

    >>> report_lines({"num_records": 0, "subsets": {}, "layout": "pouring",
    ...               "stats": {}, "skipped": {"count": 0, "items": []},
    ...               "skipped_files": {"count": 0, "items": []}})[0]
    'wrote 0 video record(s) (layout pouring): no subset'
    """
    where = f" to {options['output_dir']}" if options else ""
    subsets = ", ".join(
        f"{name} {entry['num_records']} "
        f"({info['stats'][name]['num_frames']} frames)"
        for name, entry in info["subsets"].items())
    lines = [f"wrote {info['num_records']} video record(s){where} (layout "
             f"{info['layout']}): {subsets or 'no subset'}"]
    for key, what in (("skipped", "record(s)"),
                      ("skipped_files", "corrupt file tail(s)")):
        lines.append(f"skipped {info[key]['count']} {what}")
        for item in info[key]["items"][:20]:
            lines.append(f"  {item['message']}")
        if len(info[key]["items"]) > 20:
            lines.append(f"  ... ({len(info[key]['items']) - 20} more in "
                         "dataset_info.json)")
    return lines
