"""Ego4D Moment Queries annotations + per-clip features -> TFRecords.

The `ego4d_mq` converter reads the official Ego4D MQ annotation files
(`moments_train.json`, `moments_val.json`)::

    {"videos": [{"video_uid": "...", "split": "train",
                 "clips": [{"clip_uid": "...",
                            "video_start_sec": 0.02, "video_end_sec": 480.0,
                            "video_start_frame": 1, "video_end_frame": 14400,
                            "annotations": [{"labels": [
                                {"label": "cut_dough",
                                 "video_start_time": 12.3,
                                 "video_end_time": 20.1,
                                 "primary": true}, ...]}, ...]}]}]}

and writes one record per **clip** (id `clip_uid`) with the clip's moments,
the way ActionFormer's authors prepare Ego4D: their features are cut per
clip on the feature grid of the full video (windows of `feature_window`
frames every `feature_stride` frames), so a clip's features start at the
grid line at or before its first frame. Per clip (frames and seconds of the
source video):

* `fps = (video_end_frame - video_start_frame) / (video_end_sec -
  video_start_sec)` (start values below 0 taken as 0); clips with fps
  outside [10, 100] are left out (listed in dataset_info.json
  `clips_bad_fps`);
* `lead = video_start_frame % feature_stride` frames are prepended, and
  frames are appended until the last window ends on the grid; `duration` is
  the padded span in seconds (rounded to 2 decimals);
* a moment's segment is `video_*_time - video_start_sec + lead / fps`
  (rounded to 2 decimals); only `primary` labels, and only moments at
  least `min_duration` seconds long (0.25) are kept; every annotator's
  moments are kept (duplicates included);
* features (`feature_scope`): "clip" reads `<clip_uid>.npy|.npz` in each
  features folder (clips already cut, as the authors' script writes them),
  which must have exactly `stop - start` steps; "video" cuts rows
  `[start, stop)` out of the whole video's `<video_uid>.npy|.npz` (the
  official download, once turned into numpy arrays), where `start =
  (first_frame - lead) // feature_stride` and `stop = (last_frame + append
  - feature_window) // feature_stride`. Several folders are concatenated
  along channels;
* clips with no kept moment are not written (counted as
  `clips_without_moments`).

Subsets: `train` -> training, `val` -> validation, `test` -> testing.
Class indices come from the class list (`data/ego4d_mq/classes.txt` holds
the authors' `label_id` order). Everything after the annotation reading
(subsets, feature lookup, checks, sharding, `ground_truth.json`) is that of
`activitynet_features.convert_feature_videos`.

Example:

```python
info = convert_ego4d_mq(
    ["moments_train.json", "moments_val.json"],
    ["omnivore_features", "egovlp_features"], "data/ego4d_omnivore_egovlp",
    class_list="data/ego4d_mq/classes.txt", feature_stride=16,
    feature_window=32, fps=30.0, force_fps=True)
```
"""

import numpy as np
from absl import logging

from tfaction import errors
from tfaction.data.formats import activitynet_annotations as annotations_lib
from tfaction.data.formats import activitynet_features
from tfaction.data.formats import common

SUBSETS = {"train": "training", "val": "validation", "test": "testing"}
FEATURE_SCOPES = ("clip", "video")
FPS_RANGE = (10.0, 100.0)
MIN_DURATION = 0.25
LAYOUT = "ego4d_mq"


def _key(where, key):
    """The JSON path of `key` inside the object at `where["key"]`."""
    return f"{where['key']}.{key}" if where["key"] else key


def _field(entry, key, where, kind):
    """`entry[key]` as a number ("number") or a non-empty string."""
    if not isinstance(entry, dict) or key not in entry:
        raise errors.MalformedFileError(
            f"missing field {key!r}", key=_key(where, key),
            path=where["path"], video_id=where.get("video_id"))
    value = entry[key]
    if kind == "number":
        return common.parse_number(value, path=where["path"],
                                   video_id=where.get("video_id"),
                                   key=_key(where, key))
    if not isinstance(value, str) or not value:
        raise errors.MalformedFileError(
            f"expected a non-empty string, got {value!r}",
            key=_key(where, key), path=where["path"],
            video_id=where.get("video_id"))
    return value


def _list(entry, key, where):
    """`entry[key]`, which must be a list."""
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, list):
        raise errors.MalformedFileError(
            f"expected a list under {key!r}, got {type(value).__name__}",
            key=_key(where, key), path=where["path"],
            video_id=where.get("video_id"))
    return value


def clip_grid(clip, *, feature_stride, feature_window, path, key):
    """A clip's place on the feature grid of its video.

    Args:
        clip: one `clips[j]` object of the annotation file.
        feature_stride: frames between feature steps.
        feature_window: frames per feature step.
        path, key: where the clip is, for errors.

    Returns:
        dict: `start_sec` (clip start in the video), `fps`, `lead_sec`
        (seconds prepended to reach the grid), `duration` (padded span,
        seconds), `num_frames` (padded span, frames), `first_step` (the
        video's feature row of the clip's first window), `feature_steps`.

    Raises:
        MalformedFileError: a missing or non-numeric field, or an empty
            clip (end <= start).

    Example:

    >>> clip_grid({"video_start_sec": 0.0, "video_end_sec": 10.0,
    ...            "video_start_frame": 0, "video_end_frame": 300},
    ...           feature_stride=16, feature_window=32, path="m.json",
    ...           key="clips[0]")["feature_steps"]
    17
    """
    where = {"path": path, "key": key,
             "video_id": clip.get("clip_uid") if isinstance(clip, dict)
             else None}
    start_sec = max(_field(clip, "video_start_sec", where, "number"), 0.0)
    end_sec = _field(clip, "video_end_sec", where, "number")
    first = max(int(_field(clip, "video_start_frame", where, "number")), 0)
    last = int(_field(clip, "video_end_frame", where, "number"))
    if not (end_sec > start_sec and last > first):
        raise errors.MalformedFileError(
            f"empty clip: seconds [{start_sec}, {end_sec}], frames "
            f"[{first}, {last}]", key=key, path=path,
            video_id=where["video_id"])
    stride, window = int(feature_stride), int(feature_window)
    fps = (last - first) / (end_sec - start_sec)
    lead = first % stride
    frames = last - first + lead
    tail = (stride - (frames - window) % stride) % stride
    frames += tail
    first_step = (first - lead) // stride
    return {"start_sec": start_sec, "fps": fps, "lead_sec": lead / fps,
            "duration": (end_sec - start_sec) + lead / fps + tail / fps,
            "num_frames": frames, "first_step": first_step,
            "feature_steps": (last + tail - window) // stride - first_step}


def read_moments(paths, *, feature_stride, feature_window,
                 min_duration=MIN_DURATION, feature_scope="clip"):
    """Reads Ego4D MQ moment files into one `VideoAnnotation` per clip.

    Args:
        paths: a moments JSON path or a list of them (train and val).
        feature_stride: frames between feature steps (integer).
        feature_window: frames per feature step (integer).
        min_duration: shortest moment kept, seconds.
        feature_scope: "clip" (feature files per clip) or "video" (per
            video: each clip takes its rows, `feature_rows`).

    Returns:
        `(clips, report)`: `VideoAnnotation`s of the clips with at least one
        kept moment (`feature_steps` set), and a dict of what was left out:
        `clips_bad_fps`, `clips_without_moments` (id lists),
        `moments_not_primary`, `moments_too_short` (counts).

    Raises:
        MalformedFileError: a missing field, a non-numeric time, an unknown
            split, or a clip id seen twice (naming file and key).

    Example:

    >>> clips, report = read_moments("moments_val.json", feature_stride=16,
    ...                              feature_window=32)  # doctest: +SKIP
    """
    if feature_stride != int(feature_stride) or feature_stride <= 0 or (
            feature_window != int(feature_window) or feature_window <= 0):
        raise ValueError("feature_stride and feature_window must be positive "
                         f"whole frame counts, got {feature_stride} and "
                         f"{feature_window}")
    if feature_scope not in FEATURE_SCOPES:
        raise ValueError(f"feature_scope must be one of {FEATURE_SCOPES}, "
                         f"got {feature_scope!r}")
    paths = [paths] if isinstance(paths, str) else list(paths)
    clips, seen = [], {}
    report = {"clips_bad_fps": [], "clips_without_moments": [],
              "moments_not_primary": 0, "moments_too_short": 0}
    for path in paths:
        path = str(path)
        data = common.read_json(path, what="Ego4D moments file")
        videos = _list(data, "videos", {"path": path, "key": ""})
        for i, video in enumerate(videos):
            where = {"path": path, "key": f"videos[{i}]"}
            video_uid = _field(video, "video_uid", where, "string")
            split = _field(video, "split", where, "string")
            if split not in SUBSETS:
                raise errors.MalformedFileError(
                    f"unknown split {split!r}; expected one of "
                    f"{sorted(SUBSETS)}", path=path, video_id=video_uid,
                    key=f"videos[{i}].split")
            for j, clip in enumerate(_list(video, "clips", where)):
                key = f"videos[{i}].clips[{j}]"
                clip_uid = _field(clip, "clip_uid", {"path": path,
                                                     "key": key}, "string")
                if clip_uid in seen:
                    raise errors.MalformedFileError(
                        f"clip id seen twice (first at {seen[clip_uid]})",
                        path=path, video_id=clip_uid, key=f"{key}.clip_uid")
                seen[clip_uid] = f"{path}: {key}"
                grid = clip_grid(clip, feature_stride=feature_stride,
                                 feature_window=feature_window, path=path,
                                 key=key)
                if not FPS_RANGE[0] <= grid["fps"] <= FPS_RANGE[1]:
                    report["clips_bad_fps"].append(clip_uid)
                    continue
                clip_where = {"path": path, "key": key, "video_id": clip_uid}
                segments, labels = _moments(clip, grid, clip_where,
                                            min_duration, report)
                if not labels:
                    report["clips_without_moments"].append(clip_uid)
                    continue
                clips.append(annotations_lib.VideoAnnotation(
                    video_id=clip_uid, subset=SUBSETS[split],
                    segments=np.asarray(segments, np.float64),
                    labels=labels, duration=round(grid["duration"], 2),
                    fps=round(grid["fps"], 2),
                    num_frames=grid["num_frames"], path=path,
                    feature_steps=grid["feature_steps"],
                    **(_video_rows(video_uid, grid)
                       if feature_scope == "video" else {})))
    return clips, report


def _video_rows(video_uid, grid):
    """Fields of a clip cut from its video's feature files."""
    start = grid["first_step"]
    return {"feature_name": video_uid,
            "feature_rows": (start, start + grid["feature_steps"])}


def _moments(clip, grid, where, min_duration, report):
    """The kept moments of one clip: (segments, labels)."""
    segments, labels = [], []
    for a, annotator in enumerate(_list(clip, "annotations", where)):
        a_where = dict(where, key=f"{where['key']}.annotations[{a}]")
        for m, item in enumerate(_list(annotator, "labels", a_where)):
            m_where = dict(a_where, key=f"{a_where['key']}.labels[{m}]")
            primary = item.get("primary") if isinstance(item, dict) else None
            if not isinstance(primary, bool):
                raise errors.MalformedFileError(
                    f"expected an object with 'primary': true|false, got "
                    f"{item!r}", path=where["path"],
                    video_id=where["video_id"], key=m_where["key"])
            if not primary:
                report["moments_not_primary"] += 1
                continue
            # (time - clip start) + lead: the authors' order of operations,
            # so that the rounding below gives their values.
            start = (_field(item, "video_start_time", m_where, "number")
                     - grid["start_sec"]) + grid["lead_sec"]
            end = (_field(item, "video_end_time", m_where, "number")
                   - grid["start_sec"]) + grid["lead_sec"]
            if end - start < min_duration:
                report["moments_too_short"] += 1
                continue
            segments.append([round(start, 2), round(end, 2)])
            labels.append(_field(item, "label", m_where, "string"))
    return segments, labels


def convert_ego4d_mq(annotations, features_dir, output_dir, *, class_list,
                     feature_stride, feature_window, min_duration=MIN_DURATION,
                     feature_scope="clip", **options):
    """Converts Ego4D MQ moment files + per-clip features to TFRecords.

    Args:
        annotations: moments JSON path(s) (`moments_train.json`,
            `moments_val.json`), a list or a comma-separated string.
        features_dir: folder(s) of `<clip_uid>.npy|.npz` [T, C] files (of
            `<video_uid>.npy|.npz` with `feature_scope="video"`); a list is
            concatenated along C in its order.
        output_dir: output folder.
        class_list: class list file; `data/ego4d_mq/classes.txt` is the
            authors' `label_id` order.
        feature_stride: frames between feature steps (16 for the released
            features).
        feature_window: frames per feature step (32; 16 for EgoVLP alone).
        min_duration: shortest moment kept, seconds.
        feature_scope: "clip" or "video" (see the module docstring).
        **options: further keywords of
            `activitynet_features.convert_feature_videos` (`fps`,
            `force_fps`, `subsets`, `num_shards`, `feature_ext`, ...).

    Returns:
        The dataset_info dict (also `dataset_info.json`), with the
        `ego4d_mq` entries of `read_moments`' report.

    Raises:
        MalformedFileError, SegmentError, UnknownLabelError,
        FeatureShapeError (a clip's feature sets of different lengths, or
        not the expected number of steps), ...: nothing is written.

    Example:

    ```python
    info = convert_ego4d_mq("moments_val.json", "omnivore_features", "out",
                            class_list="data/ego4d_mq/classes.txt",
                            feature_stride=16, feature_window=32, fps=30.0,
                            force_fps=True)
    print(info["subsets"]["validation"]["num_records"])
    ```
    """
    paths = common.parse_list_flag(annotations)
    if not paths:
        raise ValueError("annotations: no moments file given")
    clips, report = read_moments(paths, feature_stride=feature_stride,
                                 feature_window=feature_window,
                                 min_duration=min_duration,
                                 feature_scope=feature_scope)
    if report["clips_bad_fps"] or report["clips_without_moments"]:
        logging.info(
            "ego4d_mq: %d clip(s) left out for fps outside %s, %d without a "
            "primary moment of at least %g s (listed in dataset_info.json)",
            len(report["clips_bad_fps"]), list(FPS_RANGE),
            len(report["clips_without_moments"]), min_duration)
    return activitynet_features.convert_feature_videos(
        clips, features_dir, output_dir,
        source=paths[0] if len(paths) == 1 else paths, format_name="ego4d_mq",
        layout=LAYOUT, class_list=class_list, feature_stride=feature_stride,
        feature_window=feature_window,
        extra_info={"ego4d_mq": dict(report, min_duration=min_duration,
                                     fps_range=list(FPS_RANGE),
                                     feature_scope=feature_scope)},
        **options)
