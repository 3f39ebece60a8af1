"""Temporal-localisation annotations in the ActivityNet and BSN layouts.

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
  `video_info_new.csv` (see `video_info`), which supplies the subset. The
  `v_` prefix is stripped from the video id (as in the official ActivityNet
  files and predictions) but is kept in the feature file name
  (`v_<id>.npy`). fps is the real frame rate `duration_frame /
  duration_second` (the CSV's `rfps`, `numFrame / seconds`, with the JSON's
  more precise duration), consistent with the duration; the CSV's nominal
  `fps` column is not used.

Both readers return `VideoAnnotation`s; `ground_truth_json` writes them back
in the ActivityNet layout (the file the official evaluator reads).

Example:

```python
videos = read_activitynet_json("thumos_gt.json")
print(videos[0].video_id, videos[0].segments, videos[0].labels)
```
"""

import dataclasses

import numpy as np

from tfaction import errors
from tfaction.data.formats import common
from tfaction.data.formats import video_info as video_info_lib

LAYOUT_ACTIVITYNET = "activitynet"
LAYOUT_BSN = "bsn"
LAYOUTS = ("auto", LAYOUT_ACTIVITYNET, LAYOUT_BSN)


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
        feature_steps: the number of feature steps T its feature files
            must have (checked by the converter), or None: any.
        feature_rows: `(start, stop)`: the rows of its feature files that
            belong to it (a clip of a video whose features are one file),
            or None: every row.
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
    feature_steps: int = None
    feature_rows: tuple = None


# --- Parsing helpers ----------------------------------------------------------
def _load_json(path):
    return common.read_json(path, what="annotation file")


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
        segments.append([common.parse_number(v, path=path, video_id=video_id,
                                             key=f"{key}.segment")
                         for v in seg])
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
def read_activitynet_json(path, *, data=None):
    """Reads an ActivityNet-layout annotation file (`{"database": ...}`).

    Args:
        path: JSON file (ActivityNet, THUMOS14 `thumos_gt.json`, ActionFormer).
        data: its already decoded (strictly read) JSON, or None to read it.

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
    if data is None:
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
                      common.parse_positive(entry["duration"],
                                            key="duration", **where)),
            fps=(None if entry.get("fps") is None else
                 common.parse_positive(entry["fps"], key="fps", **where)),
            path=path, label_ids=label_ids))
    return videos


def read_bsn_annotations(annotation_path, video_info_path, *,
                         strip_prefix="v_", data=None):
    """Reads ActivityNet 1.3 in the BSN layout and joins it with its CSV.

    Args:
        annotation_path: `anet_anno_action.json` (keys `v_<id>`).
        video_info_path: `video_info_new.csv` (subset per video).
        strip_prefix: prefix removed from keys to form video ids.
        data: the annotation file's already decoded (strictly read) JSON,
            or None to read it.

    Returns:
        `(videos, info_only)`: list of `VideoAnnotation` (feature file name =
        the original key) and the sorted ids present only in the CSV.

    Raises:
        MalformedFileError: malformed JSON/CSV, a missing field, or a video
            with no CSV row (it would have no subset).

    Example:

    >>> videos, info_only = read_bsn_annotations(
    ...     "anet_anno_action.json", "video_info_new.csv")  # doctest: +SKIP
    >>> videos[0].video_id, videos[0].feature_name  # doctest: +SKIP
    ('QOlSCBRmfWY', 'v_QOlSCBRmfWY')
    """
    annotation_path = str(annotation_path)
    if data is None:
        data = _load_json(annotation_path)
    if not isinstance(data, dict) or "database" in data:
        raise errors.MalformedFileError(
            "expected the BSN layout: an object of videos keyed 'v_<id>' with "
            "'duration_second' (this looks like the ActivityNet layout)",
            path=annotation_path)
    rows = video_info_lib.read_video_info_csv(
        video_info_path, required=video_info_lib.BSN_CSV_COLUMNS)
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
        duration = common.parse_positive(entry["duration_second"],
                                         key="duration_second", **where)
        fps, num_frames = row.fps, row.num_frames
        if entry.get("duration_frame") is not None:
            # Same frame count as the CSV, but the JSON's duration has full
            # precision (the CSV's `seconds` has two decimals).
            num_frames = int(common.parse_positive(
                entry["duration_frame"], key="duration_frame", **where))
            fps = num_frames / duration
        videos.append(VideoAnnotation(
            video_id=video_id, subset=row.subset, segments=segments,
            labels=labels, duration=duration, fps=fps,
            num_frames=num_frames, feature_name=key, path=annotation_path,
            label_ids=label_ids))
    info_only = sorted(set(rows) - set(data))
    return videos, info_only


def detect_layout(path, *, data=None):
    """'activitynet' if the JSON has a top-level `database`, else 'bsn'.

    Args:
        path: annotation JSON.
        data: its already decoded JSON, or None to read it.

    Returns:
        `LAYOUT_ACTIVITYNET` or `LAYOUT_BSN`.

    Example:

    >>> detect_layout("anet_anno_action.json")  # doctest: +SKIP
    'bsn'
    """
    if data is None:
        data = _load_json(str(path))
    return (LAYOUT_ACTIVITYNET if isinstance(data, dict) and "database" in data
            else LAYOUT_BSN)


# --- Writer -------------------------------------------------------------------
def ground_truth_json(videos):
    """ActivityNet-layout JSON text of annotated videos (for the evaluator).

    Args:
        videos: dict video id -> `VideoAnnotation`.

    Returns:
        Compact, deterministic JSON text: `{"version", "database"}` with the
        subset, segments, labels, and duration / fps where known.

    Example:

    >>> ground_truth_json({})
    '{"database":{},"version":"tfaction ground truth"}\\n'
    """
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
    # Imported here: `output` needs TensorFlow, and readers must not.
    from tfaction.data.formats import output

    return output.to_json({"version": "tfaction ground truth",
                           "database": database}, indent=None)
