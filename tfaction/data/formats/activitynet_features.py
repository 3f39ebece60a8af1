"""ActivityNet / THUMOS annotations + per-video features -> TFRecords.

The `activitynet_features` converter. Annotations are read in the ActivityNet
layout (also THUMOS14 and ActionFormer's JSON files) or the BSN layout of
ActivityNet 1.3 with its `video_info_new.csv` (see
`activitynet_annotations`); a video-info CSV may also fill in missing
durations and frame rates (see `video_info`).

Class indices: `class_list` if given, else the annotations' `label_id`
(ActionFormer's files) when complete and one-to-one, else the sorted label
names of the whole file (`annotation_checks.default_classes`).

Per video, `convert_activitynet_features` reads `<prefix><video_id>.npy`
(or `.npz` with key `feats`) of shape [T, C] (from each of several feature
folders, concatenated along C, when given a list) and writes one
`tf.train.SequenceExample` (schema `schemas.feature_sequence_example`) with
the subset, fps, duration, feature stride/window, segments in seconds (also as
exact float64) and label indices.

Timing rules:

* fps: `fps=` (flag `--fps`) for every video with `force_fps` (ActionFormer's
  `default_fps`); otherwise the annotation's `fps`, else the video-info CSV,
  else `fps=`; none of them -> `MalformedFileError` naming the video and
  `fps`.
* duration: the annotation's `duration`, else the video-info CSV, else derived
  from the features: `duration = ((T - 1) * feature_stride + feature_window)
  / fps`, the time spanned by T windows of `feature_window` frames taken every
  `feature_stride` frames. Derived durations are counted in dataset_info.json.
* segments: `0 <= start <= end <= duration + segment_tolerance`, finite
  (`annotation_checks.check_segments`). Zero-length segments are kept
  (counted); ends past the duration by at most `segment_tolerance` seconds
  (default 1.0) are kept unchanged (counted and listed).

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

import dataclasses
import os

import numpy as np
from absl import logging

from tfaction import errors
from tfaction.data import schemas
from tfaction.data.formats import activitynet_annotations as annotations_lib
from tfaction.data.formats import annotation_checks
from tfaction.data.formats import class_list as class_list_lib
from tfaction.data.formats import common
from tfaction.data.formats import feature_files
from tfaction.data.formats import output
from tfaction.data.formats import runners
from tfaction.data.formats import video_info as video_info_lib

GROUND_TRUTH_FILE = "ground_truth.json"
DURATION_FORMULA = "((T - 1) * feature_stride + feature_window) / fps"


@dataclasses.dataclass
class _Settings:
    stride: float
    window: float
    default_fps: float
    force_fps: bool
    feature_dim: int
    encoding: str
    dtype: type
    tolerance: float
    npz_key: str


@dataclasses.dataclass
class _Plan:
    """What the annotation pass found, before any feature file is read.

    Attributes:
        todo: subset -> list of `(video, feature path, label indices)`.
        missing: subset -> ids of videos without a feature file.
        ground_truth: video id -> `VideoAnnotation` for ground_truth.json.
        past: segments ending past the annotated duration (kept).
        zero: zero-length segments (kept).
    """

    todo: dict
    missing: dict
    ground_truth: dict
    past: list
    zero: list


def convert_activitynet_features(
        annotations, features_dir, output_dir, *, feature_stride,
        feature_window, layout="auto", video_info=None, fps=None,
        force_fps=False, feature_prefix=None, feature_ext="auto", npz_key="feats",
        feature_dim=None, subsets=None, class_list=None, num_shards=1,
        encoding=schemas.FEATURE_ENCODING_FLOATS, dtype="float32",
        segment_tolerance=1.0, skip_corrupt=False, require_features=False,
        verify=True, num_workers=1, runner=None):
    """Converts ActivityNet/THUMOS-style annotations + features to TFRecords.

    Args:
        annotations: annotation JSON (ActivityNet or BSN layout).
        features_dir: folder of `<prefix><video_id>.npy|.npz` files [T, C],
            or a list of folders holding one feature set each (e.g.
            SlowFast, Omnivore, EgoVLP for Ego4D): a video's arrays are
            concatenated along C in the order of the list, and a video
            missing from any folder counts as missing its features.
        output_dir: output folder (see `output` for the layout).
        feature_stride: frames between consecutive feature steps.
        feature_window: frames covered by one feature step.
        layout: "auto", "activitynet" or "bsn".
        video_info: CSV with per-video info; required for "bsn" (subset),
            optional otherwise (fills missing duration/fps/num_frames).
        fps: frame rate for videos whose annotations give none.
        force_fps: use `fps` for every video, also where the annotations
            give one (ActionFormer's `default_fps`, e.g. 15 for ActivityNet
            TSP features, 30 for Ego4D).
        feature_prefix: file-name prefix before the video id; default "" for
            the ActivityNet layout, the original `v_` key for BSN.
        feature_ext: ".npy", ".npz" or "auto".
        npz_key: array name inside `.npz` files.
        feature_dim: required C; default the most common C among the files.
        subsets: subsets to convert (comma string or list); default all.
            Lower-cased; names outside `annotation_checks.KNOWN_SUBSETS`
            must be listed here.
        class_list: class list file imposing the label order; default the
            annotations' `label_id` order when complete, else the sorted
            labels of the whole annotation file (see
            `annotation_checks.default_classes`).
        num_shards: shards per subset.
        encoding: "floats" (float list, the default) or "tensor" (one
            serialized tensor; see `tfaction.data.schemas`).
        dtype: "float32" or "float16" storage for the tensor encoding
            (the floats encoding always stores float32).
        segment_tolerance: seconds an end may exceed the duration (kept and
            reported); beyond it -> SegmentError.
        skip_corrupt: skip (and report) bad videos instead of raising.
        require_features: treat a missing feature file as an error.
        verify: read every written shard back before committing.
        num_workers: threads loading feature files.
        runner: a `runners.Runner` (None: this process); a Beam runner
            writes the same records.

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
    if layout not in annotations_lib.LAYOUTS:
        raise ValueError(f"layout must be one of {annotations_lib.LAYOUTS}, "
                         f"got {layout!r}")
    _check_storage(encoding, dtype, feature_stride, feature_window)
    layout, videos, info_only = _read_annotations(annotations, layout,
                                                  video_info)
    return convert_feature_videos(
        videos, features_dir, output_dir, source=annotations,
        format_name="activitynet_features", layout=layout,
        videos_without_annotations=info_only,
        sources={"video_info": video_info},
        feature_stride=feature_stride, feature_window=feature_window,
        fps=fps, force_fps=force_fps, feature_prefix=feature_prefix,
        feature_ext=feature_ext, npz_key=npz_key, feature_dim=feature_dim,
        subsets=subsets, class_list=class_list, num_shards=num_shards,
        encoding=encoding, dtype=dtype, segment_tolerance=segment_tolerance,
        skip_corrupt=skip_corrupt, require_features=require_features,
        verify=verify, num_workers=num_workers, runner=runner)


def _check_storage(encoding, dtype, feature_stride, feature_window):
    """Rejects bad storage / grid arguments before anything is read."""
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', got "
                         f"{dtype!r}")
    if encoding not in schemas.FEATURE_ENCODINGS:
        raise ValueError(f"encoding must be one of {schemas.FEATURE_ENCODINGS}"
                         f", got {encoding!r}")
    if encoding == schemas.FEATURE_ENCODING_FLOATS and dtype != "float32":
        raise ValueError(f"{dtype} storage needs the 'tensor' encoding "
                         "(--feature_encoding=tensor): float lists hold "
                         "float32 only")
    if not (feature_stride > 0 and feature_window > 0):
        raise ValueError(f"feature_stride and feature_window must be > 0, "
                         f"got {feature_stride} and {feature_window}")


def convert_feature_videos(
        videos, features_dir, output_dir, *, source, format_name, layout,
        feature_stride, feature_window, videos_without_annotations=(),
        sources=None, extra_info=None, fps=None, force_fps=False,
        feature_prefix=None,
        feature_ext="auto", npz_key="feats", feature_dim=None, subsets=None,
        class_list=None, num_shards=1,
        encoding=schemas.FEATURE_ENCODING_FLOATS, dtype="float32",
        segment_tolerance=1.0, skip_corrupt=False, require_features=False,
        verify=True, num_workers=1, runner=None):
    """Writes already-read annotations + their feature files as records.

    The conversion of `convert_activitynet_features` after its annotation
    reader, for formats that read another annotation layout into
    `VideoAnnotation`s (e.g. `ego4d_mq`). A video whose `feature_rows` is
    set takes those rows of its feature files (a clip cut from a whole
    video's features); one whose `feature_steps` is set must have exactly
    that many feature steps T.

    Args:
        videos: every `activitynet_annotations.VideoAnnotation` of the
            source (all subsets: the default class order uses them all).
        features_dir: folder, or list of folders, as for
            `convert_activitynet_features`.
        output_dir: output folder.
        source: the annotation file(s) (a path or list, for messages and
            dataset_info.json `sources.annotations`).
        format_name: dataset_info.json `format`.
        layout: dataset_info.json `layout`.
        feature_stride, feature_window: see `convert_activitynet_features`.
        videos_without_annotations: ids listed in dataset_info.json.
        sources: further `name -> path` entries of `sources`.
        extra_info: further dataset_info.json entries of the format.
        fps, force_fps, feature_prefix, feature_ext, npz_key, feature_dim,
        subsets, class_list, num_shards, encoding, dtype,
        segment_tolerance, skip_corrupt, require_features, verify,
        num_workers, runner: see `convert_activitynet_features`.

    Returns:
        The dataset_info dict.

    Raises:
        The errors of `convert_activitynet_features`; FeatureShapeError also
        for a video whose T differs from its `feature_steps`.

    Example:

    ```python
    videos = activitynet_annotations.read_activitynet_json("gt.json")
    info = convert_feature_videos(
        videos, "features/", "out", source="gt.json",
        format_name="activitynet_features", layout="activitynet",
        feature_stride=4, feature_window=16, fps=30.0)
    ```
    """
    _check_storage(encoding, dtype, feature_stride, feature_window)
    annotations = (str(source) if isinstance(source, (str, os.PathLike))
                   else ", ".join(str(p) for p in source))
    info_only = list(videos_without_annotations)
    selected = annotation_checks.select_subsets(videos, subsets, annotations)
    if class_list is not None:
        classes = class_list_lib.read_class_list(class_list)
        class_order = "class_list"
    else:
        classes, class_order = annotation_checks.default_classes(videos)
    if force_fps and fps is None:
        raise ValueError("force_fps needs fps (--fps)")
    skipper = common.Skipper(skip_corrupt)
    folders = ([features_dir] if isinstance(features_dir, (str, os.PathLike))
               else list(features_dir))
    if not folders:
        raise ValueError("features_dir: no folder given")
    index = [feature_files.FeatureIndex(d, feature_ext) for d in folders]
    plan = _plan(videos, selected, classes, index, skipper, fps=fps,
                 feature_prefix=feature_prefix,
                 segment_tolerance=segment_tolerance,
                 require_features=require_features)
    num_missing = sum(len(v) for v in plan.missing.values())
    if num_missing:
        logging.warning(
            "%d annotated video(s) have no feature file in %s and are not "
            "converted (listed in dataset_info.json 'missing_features'): %s",
            num_missing, ", ".join(i.features_dir for i in index),
            ", ".join(v for ids in plan.missing.values() for v in ids[:20]))

    if feature_dim is None:
        dims = [feature_files.guess_feature_dim(
            [(v.video_id, paths[k]) for items in plan.todo.values()
             for v, paths, _ in items], npz_key) for k in range(len(index))]
        feature_dim = None if None in dims else sum(dims)
    settings = _Settings(stride=float(feature_stride),
                         window=float(feature_window), default_fps=fps,
                         force_fps=bool(force_fps),
                         feature_dim=feature_dim, encoding=encoding,
                         dtype=np.dtype(dtype).type,
                         tolerance=float(segment_tolerance), npz_key=npz_key)

    def forget_invalid(item, error):
        if isinstance(error, errors.SegmentError):
            # Invalid annotations are not ground truth.
            plan.ground_truth.pop(item[0].video_id, None)

    derived = 0
    num_segments = {}
    past = plan.past
    with output.StagedOutput(output_dir, verify=verify) as out:
        for subset in selected:
            num_segments[subset] = 0
            for (video, _, _), result in runners.write_subset(
                    out, subset, lambda item: _convert_one(*item, settings),
                    plan.todo[subset], skipper, num_shards=num_shards,
                    num_workers=num_workers, runner=runner,
                    on_skip=forget_invalid):
                num_segments[subset] += len(video.segments)
                past += result["past"]
                if result["derived"]:
                    derived += 1
                    plan.ground_truth[video.video_id] = (
                        dataclasses.replace(video,
                                            duration=result["duration"]))
        out.add_text(GROUND_TRUTH_FILE,
                     annotations_lib.ground_truth_json(plan.ground_truth))
        info = {
            "format": format_name,
            "schema": "feature_sequence",
            "layout": layout,
            "sources": output.source_paths(
                annotations=source,
                features_dir=folders[0] if len(folders) == 1 else folders,
                class_list=class_list, **(sources or {})),
            "class_order": class_order,
            "feature_dim": feature_dim,
            "feature_encoding": encoding,
            "feature_dtype": dtype,
            "feature_stride": settings.stride,
            "feature_window": settings.window,
            "default_fps": fps,
            "force_fps": bool(force_fps),
            "num_segments": num_segments,
            "ground_truth": GROUND_TRUTH_FILE,
            "missing_features": {"count": num_missing,
                                 "video_ids": plan.missing},
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
            "zero_length_segments": {"count": len(plan.zero),
                                     "items": plan.zero},
            "derived_durations": {"count": derived,
                                  "formula": DURATION_FORMULA},
            "videos_without_annotations": {"count": len(info_only),
                                           "video_ids": info_only},
        }
        info.update(extra_info or {})
        info = out.commit(info, classes)
    _log_summary(info)
    return info


def _read_annotations(path, layout, video_info):
    """Reads the annotations; returns `(layout, videos, info_only ids)`."""
    if layout == "auto":
        layout = annotations_lib.detect_layout(path)
    if layout == annotations_lib.LAYOUT_BSN:
        if video_info is None:
            raise errors.MalformedFileError(
                "the BSN layout needs its video info CSV (video_info_new.csv) "
                "for the subsets; pass --video_info", path=path)
        videos, info_only = annotations_lib.read_bsn_annotations(path,
                                                                 video_info)
        return layout, videos, info_only
    videos = annotations_lib.read_activitynet_json(path)
    if video_info is not None:
        video_info_lib.fill_from_video_info(
            videos, video_info_lib.read_video_info_csv(video_info))
    return layout, videos, []


def _plan(videos, selected, classes, index, skipper, *, fps, feature_prefix,
          segment_tolerance, require_features):
    """Checks the annotations of every selected video; finds its features.

    Videos with bad annotations are skipped (or raise) here, before any
    feature file is read.
    """
    plan = _Plan(todo={s: [] for s in selected},
                 missing={s: [] for s in selected}, ground_truth={}, past=[],
                 zero=[])
    for video in sorted(videos, key=lambda v: (v.subset, v.video_id)):
        if video.subset not in plan.todo:
            continue
        try:
            labels = [classes.index(label, path=video.path,
                                    video_id=video.video_id,
                                    key=f"annotations[{i}].label")
                      for i, label in enumerate(video.labels)]
            video_past = annotation_checks.check_segments(
                video, video.duration, segment_tolerance)
            if video.fps is None and fps is None:
                raise errors.MalformedFileError(
                    "no fps for this video in the annotations or video info; "
                    "pass --fps", path=video.path, video_id=video.video_id,
                    key="fps")
        except errors.DataError as e:
            skipper.skip_or_raise(e, video.subset)
            continue
        plan.past += video_past
        plan.zero += [{"video_id": video.video_id, "subset": video.subset,
                       "index": i, "time": float(s)}
                      for i, (s, e) in enumerate(video.segments) if s == e]
        plan.ground_truth[video.video_id] = video
        name = (video.feature_name if feature_prefix is None
                and video.feature_name is not None
                else (feature_prefix or "") + video.video_id)
        paths = tuple(i.path_for(name) for i in index)
        if None in paths:
            folder = index[paths.index(None)]
            if require_features:
                raise errors.MalformedFileError(
                    f"no feature file {name}{'|'.join(folder.extensions)} in "
                    "the features folder (--require_features is set)",
                    path=folder.features_dir,
                    video_id=video.video_id)
            plan.missing[video.subset].append(video.video_id)
        else:
            plan.todo[video.subset].append((video, paths, labels))
    return plan


def _load_sets(video, paths, npz_key):
    """The video's feature sets (its `feature_rows` of each file, when set),
    concatenated along C (one path: as is)."""
    arrays = [feature_files.load_features(p, video_id=video.video_id,
                                          npz_key=npz_key) for p in paths]
    if video.feature_rows is not None:
        start, stop = video.feature_rows
        for path, array in zip(paths, arrays):
            if array.ndim < 1 or array.shape[0] < stop:
                raise errors.FeatureShapeError(
                    f"features have shape {array.shape}; this clip takes "
                    f"rows [{start}, {stop}) of them", path=path,
                    video_id=video.video_id)
        arrays = [a[start:stop] for a in arrays]
    if len(arrays) == 1:
        return arrays[0]
    for path, array in zip(paths, arrays):
        if array.ndim != 2:
            raise errors.FeatureShapeError(
                f"features have shape {array.shape}; expected rank 2 "
                "[T, C]", path=path, video_id=video.video_id)
    lengths = [a.shape[0] for a in arrays]
    if len(set(lengths)) != 1:
        raise errors.FeatureShapeError(
            f"the feature sets of this video have different lengths T "
            f"{lengths}; concatenating along C needs equal T",
            path=", ".join(str(p) for p in paths), video_id=video.video_id)
    return np.concatenate(arrays, axis=1)


def _convert_one(video, paths, label_index, settings):
    """Loads, checks and serializes one video (runs in a worker thread)."""
    features = _load_sets(video, paths, settings.npz_key)
    if (video.feature_steps is not None
            and features.shape[0] != video.feature_steps):
        raise errors.FeatureShapeError(
            f"{features.shape[0]} feature steps, expected "
            f"{video.feature_steps} for this clip's span of the feature grid",
            path=", ".join(str(p) for p in paths), video_id=video.video_id)
    features = feature_files.check_features(
        features, path=", ".join(str(p) for p in paths),
        video_id=video.video_id, feature_dim=settings.feature_dim,
        dtype=settings.dtype)
    fps = (settings.default_fps if settings.force_fps or video.fps is None
           else video.fps)
    duration, past, derived = video.duration, [], False
    if duration is None:
        # Time spanned by T windows: ActionFormer's feature grid (§2.2).
        duration = ((features.shape[0] - 1) * settings.stride
                    + settings.window) / fps
        derived = True
        past = annotation_checks.check_segments(video, duration,
                                                settings.tolerance)
    example = schemas.feature_sequence_example(
        video.video_id, features, fps=fps, duration=duration,
        stride=settings.stride, window=settings.window,
        segments=video.segments, label_index=label_index,
        label_string=video.labels, subset=video.subset,
        num_frames=-1 if video.num_frames is None else video.num_frames,
        encoding=settings.encoding, dtype=settings.dtype)
    return runners.one_record(
        example.SerializeToString(deterministic=True),
        {"duration": duration, "derived": derived, "past": past})


def _log_summary(info):
    logging.info(
        "wrote %d record(s) (%s); %d skipped as corrupt, %d without features, "
        "%d segment(s) past the duration kept",
        info["num_records"],
        ", ".join(f"{k}: {v['num_records']}"
                  for k, v in info["subsets"].items()),
        info["skipped"]["count"], info["missing_features"]["count"],
        info["segments_past_duration"]["count"])
