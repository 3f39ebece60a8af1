"""ActivityNet / THUMOS annotations + per-video features -> TFRecords.

Two annotation layouts are read:

* **ActivityNet layout** (`read_activitynet_json`), also used by THUMOS14
  ground truth and ActionFormer's JSON files::

    {"database": {"<video_id>": {"subset": "validation",
                                 "duration": 82.73,            # optional
                                 "fps": 30.0,                  # optional
                                 "annotations": [{"segment": [6.19, 77.73],
                                                  "label": "Ballet"}]}}}

  Segment bounds may be numbers or numeric strings (THUMOS's `thumos_gt.json`
  stores strings and has neither `duration` nor `fps`).

* **BSN layout** of ActivityNet 1.3 (`read_bsn_annotations`):
  `anet_anno_action.json` (keys `v_<id>`, `duration_second`,
  `duration_frame`, `feature_frame`, `annotations`) joined with
  `video_info_new.csv` (columns `video,numFrame,seconds,fps,rfps,subset,
  featureFrame`), which supplies the subset. The `v_` prefix is stripped from
  the video id (as in the official ActivityNet files and predictions) but is
  kept in the feature file name (`v_<id>.npy`). fps is the real frame rate
  `duration_frame / duration_second` (the CSV's `rfps`, `numFrame / seconds`,
  with the JSON's more precise duration), consistent with the duration; the
  CSV's nominal `fps` column is not used.

Class indices: `class_list` if given, else the annotations' `label_id`
(ActionFormer's files) when complete and one-to-one, else the sorted label
names of the whole file (`default_classes`).

Per video, `convert_activitynet_features` reads `<prefix><video_id>.npy`
(or `.npz` with key `feats`) of shape [T, C] and writes one
`tf.train.SequenceExample` (schema `schemas.feature_sequence_example`) with
the subset, fps, duration, feature stride/window, segments in seconds (also as
exact float64) and label indices.

Timing rules:

* fps: the annotation's `fps`, else the video-info CSV, else `fps=` (flag
  `--fps`); none of them -> `MalformedFileError` naming the video and `fps`.
* duration: the annotation's `duration`, else the video-info CSV, else derived
  from the features: `duration = ((T - 1) * feature_stride + feature_window)
  / fps`, the time spanned by T windows of `feature_window` frames taken every
  `feature_stride` frames. Derived durations are counted in dataset_info.json.
* segments: `0 <= start <= end <= duration + segment_tolerance`, finite.
  Zero-length segments (`start == end`) are valid annotations and are kept
  (counted). Ends past the duration by at most `segment_tolerance` seconds
  (default 1.0) are kept unchanged (counted and listed): ActivityNet 1.3's
  annotations were made on versions of the videos that differ slightly from
  the downloaded ones (215 segments end up to 0.848 s after `duration_second`
  in the BSN files), and the official evaluator scores against the unchanged
  values; ActionFormer clamps to the feature span at training time.

Videos listed in the annotations but without a feature file are not written
(ActionFormer's dataset skips them too) but are reported: count and ids in
dataset_info.json (`missing_features`) and a log line. They stay in
`ground_truth.json`, because the evaluator keeps them (they count as misses).

Example:

```python
info = convert_activitynet_features(
    "thumos_gt.json", "features/", "tfrecords/thumos",
    feature_stride=4, feature_window=16, fps=30.0)
print(info["subsets"]["test"]["num_records"])
```
"""

import csv
import dataclasses
import io
import json
import math

import numpy as np
from absl import logging

from tfaction import errors
from tfaction.data import schemas
from tfaction.data.formats import class_list as class_list_lib
from tfaction.data.formats import common
from tfaction.data.formats import feature_files
from tfaction.data.formats import output

LAYOUT_ACTIVITYNET = "activitynet"
LAYOUT_BSN = "bsn"
LAYOUTS = ("auto", LAYOUT_ACTIVITYNET, LAYOUT_BSN)
# Subset names found in public files (compared lower-cased; THUMOS files from
# ActionFormer use "Validation"/"Test"). Others must be named in `subsets`.
KNOWN_SUBSETS = ("training", "validation", "testing", "train", "val", "test")
GROUND_TRUTH_FILE = "ground_truth.json"
DURATION_FORMULA = "((T - 1) * feature_stride + feature_window) / fps"
BSN_CSV_COLUMNS = ("video", "numFrame", "seconds", "fps", "rfps", "subset",
                   "featureFrame")


@dataclasses.dataclass
class VideoAnnotation:
    """One annotated video, whatever the layout it was read from.

    Attributes:
        video_id: id used in the records and ground truth.
        subset: lower-cased subset name.
        segments: float64 array [S, 2] of (start, end) seconds, as in the file.
        labels: S class names.
        duration: seconds, or None when the file has none.
        fps: frames per second, or None.
        num_frames: frames of the video, or None.
        feature_name: feature file base name (without extension), or None to
            use `<prefix><video_id>`.
        path: annotation file (for error messages).
        label_ids: S integer `label_id`s (ActionFormer's JSON files), or
            None when an annotation has none.
    """

    video_id: str
    subset: str
    segments: np.ndarray
    labels: list
    duration: float = None
    fps: float = None
    num_frames: int = None
    feature_name: str = None
    path: str = None
    label_ids: list = None


# --- Parsing helpers ----------------------------------------------------------
def _no_duplicate_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _load_json(path):
    text = common.read_text(path, what="annotation file")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise errors.MalformedFileError(f"invalid JSON: {e.msg}", path=path,
                                        line=e.lineno) from e
    except ValueError as e:  # duplicate key
        raise errors.MalformedFileError(f"invalid JSON: {e}",
                                        path=path) from e


def _number(value, *, path, video_id, key, line=None):
    """A JSON number or numeric string as float (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise errors.MalformedFileError(
            f"expected a number or numeric string, got {value!r}", path=path,
            line=line, video_id=video_id, key=key)
    try:
        return float(value)
    except ValueError:
        raise errors.MalformedFileError(
            f"expected a number or numeric string, got {value!r}", path=path,
            line=line, video_id=video_id, key=key) from None


def _positive(value, **where):
    number = _number(value, **where)
    if not (math.isfinite(number) and number > 0):
        raise errors.MalformedFileError(
            f"expected a positive finite number, got {value!r}", **where)
    return number


def _parse_annotations(entry, *, path, video_id):
    annotations = entry.get("annotations")
    if not isinstance(annotations, list):
        raise errors.MalformedFileError(
            f"expected a list of {{'segment', 'label'}} objects, got "
            f"{type(annotations).__name__}", path=path, video_id=video_id,
            key="annotations")
    segments, labels, label_ids = [], [], []
    for i, ann in enumerate(annotations):
        key = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise errors.MalformedFileError("expected an object", path=path,
                                            video_id=video_id, key=key)
        seg = ann.get("segment")
        if not isinstance(seg, (list, tuple)) or len(seg) != 2:
            raise errors.MalformedFileError(
                f"expected 'segment': [start, end], got {seg!r}", path=path,
                video_id=video_id, key=f"{key}.segment")
        segments.append([_number(v, path=path, video_id=video_id,
                                 key=f"{key}.segment") for v in seg])
        label = ann.get("label")
        if not isinstance(label, str) or not label.strip():
            raise errors.MalformedFileError(
                f"expected a class name string, got {label!r}", path=path,
                video_id=video_id, key=f"{key}.label")
        labels.append(label)
        label_id = ann.get("label_id")
        label_ids.append(label_id if isinstance(label_id, int)
                         and not isinstance(label_id, bool) else None)
    if None in label_ids:
        label_ids = None
    return (np.asarray(segments, np.float64).reshape(-1, 2), labels,
            label_ids)


def _subset(entry, *, path, video_id):
    subset = entry.get("subset")
    if not isinstance(subset, str) or not subset:
        raise errors.MalformedFileError(
            f"expected a subset name, got {subset!r}", path=path,
            video_id=video_id, key="subset")
    return subset.lower()


# --- Readers ------------------------------------------------------------------
def read_activitynet_json(path):
    """Reads an ActivityNet-layout annotation file (`{"database": ...}`).

    Args:
        path: JSON file (ActivityNet, THUMOS14 `thumos_gt.json`, ActionFormer).

    Returns:
        List of `VideoAnnotation`, in file order.

    Raises:
        MalformedFileError: invalid JSON, no `database`, or an entry lacking
            `subset`/`annotations` or with a malformed segment/label/number.

    Example:

    >>> videos = read_activitynet_json("thumos_gt.json")  # doctest: +SKIP
    >>> videos[0].segments[0]  # doctest: +SKIP
    array([18.6, 24.8])
    """
    path = str(path)
    data = _load_json(path)
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise errors.MalformedFileError(
            "expected a top-level object with a 'database' object of videos "
            "(ActivityNet layout)", path=path, key="database")
    videos = []
    for video_id, entry in database.items():
        if not isinstance(entry, dict):
            raise errors.MalformedFileError("expected an object", path=path,
                                            video_id=video_id)
        segments, labels, label_ids = _parse_annotations(
            entry, path=path, video_id=video_id)
        where = dict(path=path, video_id=video_id)
        videos.append(VideoAnnotation(
            video_id=video_id,
            subset=_subset(entry, **where),
            segments=segments, labels=labels,
            duration=(None if entry.get("duration") is None else
                      _positive(entry["duration"], key="duration", **where)),
            fps=(None if entry.get("fps") is None else
                 _positive(entry["fps"], key="fps", **where)),
            path=path, label_ids=label_ids))
    return videos


@dataclasses.dataclass
class VideoInfo:
    """One row of a video-info CSV (all fields optional but `video`)."""

    video: str
    line: int
    subset: str = None
    duration: float = None
    fps: float = None
    num_frames: int = None
    feature_frames: int = None


def read_video_info_csv(path, *, required=("video",)):
    """Reads a per-video info CSV (BSN's `video_info_new.csv` or similar).

    Recognised columns: `video` (id), `subset`, `seconds` or `duration`,
    `numFrame` or `num_frames`, `fps` (used only when the frame count and
    duration are absent), `featureFrame`. fps is `numFrame / seconds` when both
    are present (BSN's `rfps`: the real rate, consistent with the duration).

    Args:
        path: CSV file with a header row.
        required: columns that must exist.

    Returns:
        Dict video id (as in the file) -> `VideoInfo`.

    Raises:
        MalformedFileError: missing column, bad number or repeated video
            (naming file and line).
    """
    path = str(path)
    text = common.read_text(path, what="video info CSV")
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    for column in required:
        if column not in columns:
            raise errors.MalformedFileError(
                f"missing column {column!r} (columns: {columns})", path=path,
                line=1, key=column)
    rows = {}
    for line, row in enumerate(reader, 2):
        video = (row.get("video") or "").strip()
        if not video or None in row or None in row.values():
            raise errors.MalformedFileError(
                f"expected {len(columns)} comma-separated fields "
                f"{columns}, got {row}", path=path, line=line)
        if video in rows:
            raise errors.MalformedFileError(
                f"video {video!r} repeats line {rows[video].line}",
                path=path, line=line, key="video")
        where = dict(path=path, line=line, video_id=video)

        def field(*names, kind=float):
            for name in names:
                if row.get(name, "").strip():
                    value = _positive(row[name], key=name, **where)
                    if kind is int:
                        if value != int(value):
                            raise errors.MalformedFileError(
                                f"expected an integer, got {row[name]!r}",
                                key=name, **where)
                        return int(value)
                    return value
            return None

        info = VideoInfo(video=video, line=line,
                         subset=(row.get("subset") or "").strip().lower()
                         or None,
                         duration=field("seconds", "duration"),
                         num_frames=field("numFrame", "num_frames",
                                          kind=int),
                         feature_frames=field("featureFrame", kind=int))
        if info.num_frames is not None and info.duration is not None:
            info.fps = info.num_frames / info.duration
        else:
            info.fps = field("fps")
        rows[video] = info
    return rows


def read_bsn_annotations(annotation_path, video_info_path, *,
                         strip_prefix="v_"):
    """Reads ActivityNet 1.3 in the BSN layout and joins it with its CSV.

    Args:
        annotation_path: `anet_anno_action.json` (keys `v_<id>`).
        video_info_path: `video_info_new.csv` (subset per video).
        strip_prefix: prefix removed from keys to form video ids.

    Returns:
        `(videos, info_only)`: list of `VideoAnnotation` (feature file name =
        the original key) and the sorted ids present only in the CSV.

    Raises:
        MalformedFileError: malformed JSON/CSV, a missing field, or a video
            with no CSV row (it would have no subset).
    """
    annotation_path = str(annotation_path)
    data = _load_json(annotation_path)
    if not isinstance(data, dict) or "database" in data:
        raise errors.MalformedFileError(
            "expected the BSN layout: an object of videos keyed 'v_<id>' with "
            "'duration_second' (this looks like the ActivityNet layout)",
            path=annotation_path)
    rows = read_video_info_csv(video_info_path, required=BSN_CSV_COLUMNS)
    videos = []
    for key, entry in data.items():
        where = dict(path=annotation_path, video_id=key)
        if not isinstance(entry, dict):
            raise errors.MalformedFileError("expected an object", **where)
        if "duration_second" not in entry:
            raise errors.MalformedFileError("missing field",
                                            key="duration_second", **where)
        row = rows.get(key)
        if row is None:
            raise errors.MalformedFileError(
                "video has no row in the video info CSV (its subset is "
                "unknown)", path=str(video_info_path), video_id=key,
                key="video")
        segments, labels, label_ids = _parse_annotations(entry, **where)
        video_id = (key[len(strip_prefix):]
                    if strip_prefix and key.startswith(strip_prefix) else key)
        duration = _positive(entry["duration_second"], key="duration_second",
                             **where)
        fps, num_frames = row.fps, row.num_frames
        if entry.get("duration_frame") is not None:
            # Same frame count as the CSV, but the JSON's duration has full
            # precision (the CSV's `seconds` has two decimals).
            num_frames = int(_positive(entry["duration_frame"],
                                       key="duration_frame", **where))
            fps = num_frames / duration
        videos.append(VideoAnnotation(
            video_id=video_id, subset=row.subset, segments=segments,
            labels=labels, duration=duration, fps=fps,
            num_frames=num_frames, feature_name=key, path=annotation_path,
            label_ids=label_ids))
    info_only = sorted(set(rows) - set(data))
    return videos, info_only


def detect_layout(path):
    """'activitynet' if the JSON has a top-level `database`, else 'bsn'."""
    data = _load_json(str(path))
    return (LAYOUT_ACTIVITYNET if isinstance(data, dict) and "database" in data
            else LAYOUT_BSN)


# --- Checks -------------------------------------------------------------------
def check_segments(video, duration, tolerance):
    """Validates a video's segments against [0, duration].

    Args:
        video: a `VideoAnnotation`.
        duration: seconds, or None to check only order and sign.
        tolerance: allowed overrun of `end` past `duration` (seconds).

    Returns:
        List of dicts for segments ending in (duration, duration + tolerance]
        (kept unchanged; reported).

    Raises:
        SegmentError: non-finite bound, start < 0, end < start, or end >
            duration + tolerance (naming video and annotation index).
    """
    past = []
    for i, (start, end) in enumerate(video.segments):
        where = dict(path=video.path, video_id=video.video_id,
                     key=f"annotations[{i}].segment")
        if not (math.isfinite(start) and math.isfinite(end)):
            raise errors.SegmentError(
                f"segment [{start}, {end}] is not finite", **where)
        if start < 0:
            raise errors.SegmentError(
                f"segment [{start}, {end}] starts before 0", **where)
        if end < start:
            raise errors.SegmentError(
                f"segment [{start}, {end}] ends before it starts; expected "
                "start <= end", **where)
        if duration is not None and end > duration:
            if end > duration + tolerance:
                raise errors.SegmentError(
                    f"segment [{start}, {end}] ends after the video "
                    f"(duration {duration} s, tolerance {tolerance} s); "
                    "expected 0 <= start <= end <= duration", **where)
            past.append({"video_id": video.video_id, "subset": video.subset,
                         "index": i, "start": float(start),
                         "end": float(end), "duration": float(duration)})
    return past


def default_classes(videos):
    """The class order when no class list is given, and how it was chosen.

    ActionFormer's JSON files give each annotation a `label_id`, which its
    data loader uses as the class index: when every annotation of the file
    has one, the ids map one-to-one to names and cover 0..K-1, that order is
    kept ("label_id"). Otherwise the sorted names are used ("sorted"), over
    the whole file so indices do not depend on the subsets converted.

    Returns:
        `(ClassList, order)` with order "label_id" or "sorted".
    """
    names = sorted({label for v in videos for label in v.labels})
    if videos and all(v.label_ids is not None for v in videos):
        by_id = {}
        consistent = True
        for video in videos:
            for label, label_id in zip(video.labels, video.label_ids):
                consistent &= by_id.setdefault(label_id, label) == label
        if (consistent and len(by_id) == len(names)
                and sorted(by_id) == list(range(len(by_id)))):
            return (class_list_lib.ClassList([by_id[i]
                                              for i in range(len(by_id))]),
                    "label_id")
        logging.warning(
            "the annotations' label_id values are not a one-to-one map of "
            "the labels onto 0..K-1; using the sorted label names instead "
            "(pass --class_list to impose an order)")
    return class_list_lib.ClassList(names), "sorted"


def _select_subsets(videos, subsets, path):
    selected = [s.lower() for s in common.parse_list_flag(subsets)]
    known = set(KNOWN_SUBSETS) | set(selected)
    present = set()
    for video in videos:
        if video.subset not in known:
            raise errors.UnknownSubsetError(
                f"subset {video.subset!r} is not a known subset "
                f"{sorted(known)}; name it in --subsets to convert it",
                path=video.path or path, video_id=video.video_id,
                key="subset")
        present.add(video.subset)
    for subset in selected:
        if subset not in present:
            raise errors.UnknownSubsetError(
                f"no video has subset {subset!r}; the annotations have "
                f"{sorted(present)}", path=path, key="subset")
    return sorted(selected or present)


# --- Conversion ---------------------------------------------------------------
@dataclasses.dataclass
class _Settings:
    stride: float
    window: float
    default_fps: float
    feature_dim: int
    encoding: str
    dtype: type
    tolerance: float
    npz_key: str


def _convert_one(video, path, classes, label_index, settings):
    """Loads, checks and serializes one video (runs in a worker thread)."""
    features = feature_files.load_features(path, video_id=video.video_id,
                                           npz_key=settings.npz_key)
    features = feature_files.check_features(
        features, path=path, video_id=video.video_id,
        feature_dim=settings.feature_dim, dtype=settings.dtype)
    fps = video.fps if video.fps is not None else settings.default_fps
    duration, past, derived = video.duration, [], False
    if duration is None:
        # Time spanned by T windows: ActionFormer's feature grid (§2.2).
        duration = ((features.shape[0] - 1) * settings.stride
                    + settings.window) / fps
        derived = True
        past = check_segments(video, duration, settings.tolerance)
    example = schemas.feature_sequence_example(
        video.video_id, features, fps=fps, duration=duration,
        stride=settings.stride, window=settings.window,
        segments=video.segments, label_index=label_index,
        label_string=video.labels, subset=video.subset,
        num_frames=-1 if video.num_frames is None else video.num_frames,
        encoding=settings.encoding, dtype=settings.dtype)
    return {"record": example.SerializeToString(deterministic=True),
            "duration": duration, "derived": derived, "past": past}


def _guess_feature_dim(items, npz_key):
    """C of most `.npy` headers, else of the first loadable rank-2 file."""
    dim = feature_files.majority_dim(path for _, path in items)
    if dim is not None:
        return dim
    for video, path in items:  # e.g. .npz files: no cheap header
        try:
            array = feature_files.load_features(path, video_id=video.video_id,
                                                npz_key=npz_key)
        except errors.DataError:
            continue  # reported when the video itself is converted
        if array.ndim == 2:
            return array.shape[1]
    return None


def _fill_from_info(videos, info_rows):
    """Fills missing duration/fps/num_frames from a video-info CSV."""
    for video in videos:
        row = info_rows.get(video.video_id) or info_rows.get(
            "v_" + video.video_id)
        if row is None:
            continue
        if video.duration is None:
            video.duration = row.duration
        if video.fps is None:
            video.fps = row.fps
        if video.num_frames is None:
            video.num_frames = row.num_frames


def convert_activitynet_features(
        annotations, features_dir, output_dir, *, feature_stride,
        feature_window, layout="auto", video_info=None, fps=None,
        feature_prefix=None, feature_ext="auto", npz_key="feats",
        feature_dim=None, subsets=None, class_list=None, num_shards=1,
        encoding=schemas.FEATURE_ENCODING_TENSOR, dtype="float32",
        segment_tolerance=1.0, skip_corrupt=False, require_features=False,
        verify=True, num_workers=1):
    """Converts ActivityNet/THUMOS-style annotations + features to TFRecords.

    Args:
        annotations: annotation JSON (ActivityNet or BSN layout).
        features_dir: folder of `<prefix><video_id>.npy|.npz` files [T, C].
        output_dir: output folder (see `output` for the layout).
        feature_stride: frames between consecutive feature steps.
        feature_window: frames covered by one feature step.
        layout: "auto", "activitynet" or "bsn".
        video_info: CSV with per-video info; required for "bsn" (subset),
            optional otherwise (fills missing duration/fps/num_frames).
        fps: frame rate for videos whose annotations give none.
        feature_prefix: file-name prefix before the video id; default "" for
            the ActivityNet layout, the original `v_` key for BSN.
        feature_ext: ".npy", ".npz" or "auto".
        npz_key: array name inside `.npz` files.
        feature_dim: required C; default the most common C among the files.
        subsets: subsets to convert (comma string or list); default all.
            Lower-cased; names outside `KNOWN_SUBSETS` must be listed here.
        class_list: class list file imposing the label order; default the
            annotations' `label_id` order when complete, else the sorted
            labels of the whole annotation file (see `default_classes`).
        num_shards: shards per subset.
        encoding: "tensor" (serialized tensor) or "floats" (float list).
        dtype: "float32" or "float16" storage for the tensor encoding
            (the floats encoding always stores float32).
        segment_tolerance: seconds an end may exceed the duration (kept and
            reported); beyond it -> SegmentError.
        skip_corrupt: skip (and report) bad videos instead of raising.
        require_features: treat a missing feature file as an error.
        verify: read every written shard back before committing.
        num_workers: threads loading feature files.

    Returns:
        The dataset_info dict (also written to `dataset_info.json`).

    Raises:
        MalformedFileError, SegmentError, UnknownLabelError,
        UnknownSubsetError, FeatureShapeError, NonFiniteFeatureError,
        CorruptRecordError: see the module docstring; nothing is written.

    Example:

    ```python
    info = convert_activitynet_features(
        "anet_anno_action.json", "tsp_features", "tfrecords/anet",
        video_info="video_info_new.csv", feature_stride=16,
        feature_window=16, subsets="training,validation", num_shards=8)
    print(info["missing_features"]["count"], info["skipped"]["count"])
    ```
    """
    annotations = str(annotations)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', got "
                         f"{dtype!r}")
    if encoding == schemas.FEATURE_ENCODING_FLOATS:
        dtype = "float32"  # float lists hold float32 only
    if not (feature_stride > 0 and feature_window > 0):
        raise ValueError("feature_stride and feature_window must be > 0")
    if layout == "auto":
        layout = detect_layout(annotations)
    info_only = []
    if layout == LAYOUT_BSN:
        if video_info is None:
            raise errors.MalformedFileError(
                "the BSN layout needs its video info CSV (video_info_new.csv) "
                "for the subsets; pass --video_info", path=annotations)
        videos, info_only = read_bsn_annotations(annotations, video_info)
    else:
        videos = read_activitynet_json(annotations)
        if video_info is not None:
            _fill_from_info(videos, read_video_info_csv(video_info))
    selected = _select_subsets(videos, subsets, annotations)
    if class_list is not None:
        classes = class_list_lib.read_class_list(class_list)
        class_order = "class_list"
    else:
        classes, class_order = default_classes(videos)
    skipper = common.Skipper(skip_corrupt)
    index = feature_files.FeatureIndex(features_dir, feature_prefix or "",
                                       feature_ext)

    # Pass 1: annotations of every selected video, and feature file lookup.
    todo = {s: [] for s in selected}
    missing = {s: [] for s in selected}
    ground_truth, past, zero = {}, [], []
    for video in sorted(videos, key=lambda v: (v.subset, v.video_id)):
        if video.subset not in todo:
            continue
        try:
            labels = [classes.index(label, path=video.path,
                                    video_id=video.video_id,
                                    key=f"annotations[{i}].label")
                      for i, label in enumerate(video.labels)]
            video_past = check_segments(video, video.duration,
                                        segment_tolerance)
            if video.fps is None and fps is None:
                raise errors.MalformedFileError(
                    "no fps for this video in the annotations or video info; "
                    "pass --fps", path=video.path, video_id=video.video_id,
                    key="fps")
        except errors.DataError as e:
            skipper.skip_or_raise(e, video.subset)
            continue
        past += video_past
        zero += [{"video_id": video.video_id, "subset": video.subset,
                  "index": i, "time": float(s)}
                 for i, (s, e) in enumerate(video.segments) if s == e]
        ground_truth[video.video_id] = video
        name = (video.feature_name if feature_prefix is None
                and video.feature_name is not None
                else (feature_prefix or "") + video.video_id)
        path = index.path_for(name)
        if path is None:
            if require_features:
                raise errors.MalformedFileError(
                    f"no feature file {name}{'|'.join(index.extensions)}",
                    path=index.features_dir, video_id=video.video_id)
            missing[video.subset].append(video.video_id)
        else:
            todo[video.subset].append((video, path, labels))
    num_missing = sum(len(v) for v in missing.values())
    if num_missing:
        logging.warning(
            "%d annotated video(s) have no feature file in %s and are not "
            "converted (listed in dataset_info.json 'missing_features'): %s",
            num_missing, index.features_dir,
            ", ".join(v for ids in missing.values() for v in ids[:20]))

    if feature_dim is None:
        feature_dim = _guess_feature_dim(
            [(v, p) for items in todo.values() for v, p, _ in items], npz_key)
    settings = _Settings(stride=float(feature_stride),
                         window=float(feature_window), default_fps=fps,
                         feature_dim=feature_dim, encoding=encoding,
                         dtype=np.dtype(dtype).type,
                         tolerance=float(segment_tolerance), npz_key=npz_key)

    derived = 0
    num_segments = {}
    with output.StagedOutput(output_dir, verify=verify) as out:
        for subset in selected:
            num_segments[subset] = 0
            with out.shard_writer(subset, num_shards) as writer:
                results = common.ordered_map(
                    lambda item: _convert_one(item[0], item[1], classes,
                                              item[2], settings),
                    todo[subset], num_workers)
                for (video, _, _), result, error in results:
                    if error is not None:
                        if not isinstance(error, errors.DataError):
                            raise error
                        skipper.skip_or_raise(error, subset)
                        if isinstance(error, errors.SegmentError):
                            # Invalid annotations are not ground truth.
                            ground_truth.pop(video.video_id, None)
                        continue
                    writer.write(result["record"])
                    num_segments[subset] += len(video.segments)
                    past += result["past"]
                    if result["derived"]:
                        derived += 1
                        ground_truth[video.video_id] = dataclasses.replace(
                            video, duration=result["duration"])
        out.add_text(GROUND_TRUTH_FILE, _ground_truth_json(ground_truth))
        info = {
            "format": "activitynet_features",
            "schema": "feature_sequence",
            "layout": layout,
            "sources": {"annotations": annotations,
                        "features_dir": str(features_dir),
                        "video_info": (None if video_info is None
                                       else str(video_info)),
                        "class_list": (None if class_list is None
                                       else str(class_list))},
            "class_order": class_order,
            "feature_dim": feature_dim,
            "feature_encoding": encoding,
            "feature_dtype": dtype,
            "feature_stride": settings.stride,
            "feature_window": settings.window,
            "default_fps": fps,
            "num_segments": num_segments,
            "ground_truth": GROUND_TRUTH_FILE,
            "missing_features": {"count": num_missing,
                                 "video_ids": missing},
            "skipped": skipper.summary(),
            "segment_tolerance": settings.tolerance,
            "segments_past_duration": {
                "count": len(past),
                "max_overrun": max((p["end"] - p["duration"] for p in past),
                                   default=0.0),
                "handling": "kept unchanged (within segment_tolerance)",
                "items": sorted(past, key=lambda p: (p["subset"],
                                                     p["video_id"],
                                                     p["index"]))},
            "zero_length_segments": {"count": len(zero), "items": zero},
            "derived_durations": {"count": derived,
                                  "formula": DURATION_FORMULA},
            "videos_without_annotations": {"count": len(info_only),
                                           "video_ids": info_only},
        }
        info = out.commit(info, classes)
    _log_summary(info)
    return info


def _ground_truth_json(videos):
    database = {}
    for video_id, video in videos.items():
        entry = {"subset": video.subset,
                 "annotations": [{"segment": [float(s), float(e)],
                                  "label": label}
                                 for (s, e), label in zip(video.segments,
                                                          video.labels)]}
        if video.duration is not None:
            entry["duration"] = float(video.duration)
        if video.fps is not None:
            entry["fps"] = float(video.fps)
        database[video_id] = entry
    return output.to_json({"version": "tfaction ground truth",
                           "database": database}, indent=None)


def _log_summary(info):
    logging.info(
        "wrote %d record(s) (%s); %d skipped as corrupt, %d without features, "
        "%d segment(s) past the duration kept",
        info["num_records"],
        ", ".join(f"{k}: {v['num_records']}"
                  for k, v in info["subsets"].items()),
        info["skipped"]["count"], info["missing_features"]["count"],
        info["segments_past_duration"]["count"])
