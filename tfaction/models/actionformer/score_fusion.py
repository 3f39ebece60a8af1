"""ActivityNet video-level score fusion of ActionFormer detections.

The released ActivityNet model has one (class-agnostic) output class; its
detections get their action labels from an external video classifier
(`test_cfg.ext_score_file: cuhk_val_simp_share.json`, the CUHK ActivityNet
2017 classifier). Port of `postprocess_results` in
`libs/utils/postprocessing.py` of happyharrycn/actionformer_release (spec
actionformer.md §6 step 6), per video:

1. sort the detections by score, highest first, and keep the first
   `topk_segments` (200);
2. take the `topk_classes` (2) highest external class scores;
3. emit every kept segment once per class, class-major (all segments with
   the best class, then all with the second), with score
   `sqrt(class_score * segment_score)` and the class index as label.

Videos are processed in sorted video-id order, as the reference's
`results_to_array`. Sorting uses NumPy's generic `argsort()[::-1]` order
(`tfaction.evaluation.numpy_sort`), so ties are ordered as in the
reference.

External score file (`load_external_scores`): a JSON object
`{"results": {video_id: [K floats]}, "class": [K names]}` (the CUHK file;
`"class"` optional), or directly `{video_id: [K floats]}` (the reference
also accepts that). Scores are in the dataset's class-index order. The
CUHK file keys bare YouTube ids (`"5n7NCViB5TU"`), as ActionFormer's
ActivityNet annotation ids; feature files carry a `v_` prefix
(`file_prefix: v_`). Lookups use the id as given, as the reference, and
fall back to the id with a leading `v_` removed or added.

Example:

```python
ext = load_external_scores("annotations/cuhk_val_simp_share.json")
fused = fuse_scores({"5n7NCViB5TU": {"segments": segs, "scores": scores}},
                    ext)
columns = fused_to_columns(fused)  # "video-id", "t-start", ... for mAP
```
"""

import dataclasses
import os
from collections.abc import Mapping

import numpy as np

from tfaction import errors
from tfaction.data.formats import common as formats_common
from tfaction.evaluation import numpy_sort

_PREFIX = "v_"


@dataclasses.dataclass(frozen=True)
class ExternalScores:
    """Video-level class scores of an external classifier.

    Attributes:
        scores: video id -> float64 `[num_classes]` scores.
        class_names: the file's `"class"` list, or None.
        path: the source file (for messages), or None.
    """

    scores: dict
    class_names: list = None
    path: str = None

    @property
    def num_classes(self):
        """Scores per video."""
        return len(next(iter(self.scores.values())))

    def lookup(self, video_id):
        """Scores of `video_id`; tolerates a `v_` prefix on either side.

        Args:
            video_id: the detection's video id.

        Returns:
            float64 `[num_classes]` array.

        Raises:
            MalformedFileError: no entry for the video (with or without
                `v_`); names the file and the video.
        """
        video_id = str(video_id)
        if video_id.startswith(_PREFIX):
            candidates = (video_id, video_id[len(_PREFIX):])
        else:
            candidates = (video_id, _PREFIX + video_id)
        for key in candidates:
            if key in self.scores:
                return self.scores[key]
        raise errors.MalformedFileError(
            "no external class scores for this video (also tried "
            f"{candidates[1]!r})", path=self.path, video_id=video_id,
            key="results")


def _as_scores(values, *, path, video_id, num_classes):
    """One video's class scores as a checked float64 array."""
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise errors.MalformedFileError(
            f"expected a list of {num_classes or 'K'} class scores, got "
            f"{type(values).__name__}", path=path, video_id=video_id,
            key="results")
    if any(isinstance(v, (bool, str)) or v is None for v in values):
        raise errors.MalformedFileError(
            "class scores must be numbers", path=path, video_id=video_id,
            key="results")
    try:
        scores = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        raise errors.MalformedFileError(
            "class scores must be numbers", path=path, video_id=video_id,
            key="results") from None
    if scores.ndim != 1 or scores.size == 0:
        raise errors.MalformedFileError(
            f"expected a flat list of class scores, got shape "
            f"{scores.shape}", path=path, video_id=video_id, key="results")
    if num_classes is not None and scores.size != num_classes:
        raise errors.MalformedFileError(
            f"{scores.size} class scores, expected {num_classes}", path=path,
            video_id=video_id, key="results")
    if not np.isfinite(scores).all() or (scores < 0).any():
        raise errors.MalformedFileError(
            "class scores must be finite and >= 0 (they enter a square "
            "root)", path=path, video_id=video_id, key="results")
    return scores


def parse_external_scores(data, *, path=None, num_classes=None):
    """Checks decoded external-score JSON and returns `ExternalScores`.

    Args:
        data: the decoded JSON value (see the module docstring).
        path: file name for messages.
        num_classes: expected scores per video; default: the `"class"`
            list's length if present, else the first video's count.

    Returns:
        `ExternalScores`.

    Raises:
        MalformedFileError: not an object, `"results"` not an object or
            empty, `"class"` not a list of strings, or a video whose scores
            are not `num_classes` finite numbers >= 0; names the key and the
            video.

    Example:

    >>> parse_external_scores({"results": {"a": [0.1, 0.9]},
    ...                        "class": ["x", "y"]}).lookup("v_a")
    array([0.1, 0.9])
    """
    path = None if path is None else os.fspath(path)
    if not isinstance(data, Mapping):
        raise errors.MalformedFileError(
            f"expected a JSON object, got {type(data).__name__}", path=path)
    class_names = None
    results = data
    if "results" in data:
        results = data["results"]
        if not isinstance(results, Mapping):
            raise errors.MalformedFileError(
                "expected an object {video_id: [class scores]}", path=path,
                key="results")
        if "class" in data:
            class_names = data["class"]
            if (not isinstance(class_names, list)
                    or not all(isinstance(c, str) for c in class_names)):
                raise errors.MalformedFileError(
                    "expected a list of class names", path=path, key="class")
            if num_classes is not None and len(class_names) != num_classes:
                raise errors.MalformedFileError(
                    f"{len(class_names)} class names, expected "
                    f"{num_classes}", path=path, key="class")
            num_classes = len(class_names)
    if not results:
        raise errors.MalformedFileError("no videos", path=path,
                                        key="results")
    scores = {}
    for video_id, values in results.items():
        scores[str(video_id)] = _as_scores(values, path=path,
                                           video_id=str(video_id),
                                           num_classes=num_classes)
        num_classes = scores[str(video_id)].size
    return ExternalScores(scores=scores, class_names=class_names, path=path)


def load_external_scores(path, num_classes=None):
    """Reads an external video-classifier score file (e.g. the CUHK one).

    Args:
        path: JSON file, `{"results": {video_id: [K floats]}, "class":
            [K names]}` or `{video_id: [K floats]}`.
        num_classes: expected `K` (ActivityNet: 200); default: inferred.

    Returns:
        `ExternalScores`.

    Raises:
        MalformedFileError: missing or invalid JSON, or a malformed entry
            (see `parse_external_scores`); names the file and the key.

    Example:

    >>> ext = load_external_scores("cuhk_val_simp_share.json", 200)
    ... # doctest: +SKIP
    >>> ext.lookup("5n7NCViB5TU").shape  # doctest: +SKIP
    (200,)
    """
    path = os.fspath(path)
    # Its scores are checked below, naming the video (NaN included).
    data = formats_common.read_json(path, what="external score file",
                                    strict_numbers=False)
    return parse_external_scores(data, path=path, num_classes=num_classes)


def fuse_video_scores(segments, scores, class_scores, topk_classes=2,
                      topk_segments=200):
    """Fuses one video's detections with its video-level class scores.

    Args:
        segments: float `[N, 2]` (start, end), e.g. seconds.
        scores: float `[N]` detection scores (>= 0).
        class_scores: float `[K]` external class scores (>= 0).
        topk_classes: classes kept per video (`topk`, 2).
        topk_segments: detections kept per video (`num_pred`, 200).

    Returns:
        `(segments [M, 2], scores [M], labels [M])` float64, float64,
        int64 with `M = topk_classes * min(N, topk_segments)`: the kept
        detections (highest score first) repeated for each kept class
        (best class first), scores `sqrt(class_score * score)`, labels the
        class indices.

    Raises:
        ValueError: mismatched shapes, negative or non-finite scores, or
            `topk_classes` larger than `K`.

    Example:

    >>> segs, s, labels = fuse_video_scores(
    ...     [[0.0, 1.0], [2.0, 3.0]], [0.25, 0.81], [0.01, 0.0, 0.81])
    >>> labels, s.round(6)
    (array([2, 2, 0, 0]), array([0.81, 0.45, 0.09, 0.05]))
    >>> segs[:, 0]
    array([2., 0., 2., 0.])
    """
    segments = np.asarray(segments, np.float64).reshape(-1, 2)
    scores = np.asarray(scores, np.float64).reshape(-1)
    class_scores = np.asarray(class_scores, np.float64).reshape(-1)
    if segments.shape[0] != scores.shape[0]:
        raise ValueError(f"fuse_video_scores: {segments.shape[0]} segments "
                         f"but {scores.shape[0]} scores")
    for name, values in (("scores", scores), ("class_scores", class_scores)):
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError(f"fuse_video_scores: {name} must be finite and "
                             f">= 0")
    topk_classes = int(topk_classes)
    topk_segments = int(topk_segments)
    if not 1 <= topk_classes <= class_scores.size:
        raise ValueError(f"fuse_video_scores: topk_classes {topk_classes} "
                         f"must be in [1, {class_scores.size}] (the number "
                         f"of class scores)")
    if topk_segments < 1:
        raise ValueError(f"fuse_video_scores: topk_segments must be >= 1, "
                         f"got {topk_segments}")
    # Reference: `np.argsort(x)[::-1][:k]` for both rankings.
    keep = numpy_sort.argsort_desc(scores)[:topk_segments]
    segments, scores = segments[keep], scores[keep]
    classes = numpy_sort.argsort_desc(class_scores)[:topk_classes]
    # Class-major: row c of the outer product = every segment with class c.
    fused = np.sqrt(np.outer(class_scores[classes], scores)).reshape(-1)
    return (np.tile(segments, (topk_classes, 1)), fused,
            np.repeat(classes.astype(np.int64), scores.shape[0]))


def _group_columns(columns):
    """Reference column layout -> {video_id: (segments, scores)}."""
    for key in ("video-id", "t-start", "t-end", "score"):
        if key not in columns:
            raise ValueError(f"fuse_scores: detections lack column {key!r}")
    ids = [str(v) for v in columns["video-id"]]
    starts = np.asarray(columns["t-start"], np.float64).reshape(-1)
    ends = np.asarray(columns["t-end"], np.float64).reshape(-1)
    scores = np.asarray(columns["score"], np.float64).reshape(-1)
    if not len(ids) == starts.size == ends.size == scores.size:
        raise ValueError(
            f"fuse_scores: detection columns differ in length (video-id "
            f"{len(ids)}, t-start {starts.size}, t-end {ends.size}, score "
            f"{scores.size})")
    rows = {}
    for i, video_id in enumerate(ids):
        rows.setdefault(video_id, []).append(i)
    return {v: (np.stack([starts[r], ends[r]], axis=1), scores[r])
            for v, r in ((v, np.asarray(r)) for v, r in rows.items())}


def fuse_scores(detections, video_scores, topk_classes=2, topk_segments=200):
    """ActionFormer's ActivityNet score fusion over many videos.

    Args:
        detections: `{video_id: {"segments": [N, 2], "scores": [N]}}`
            (other keys, e.g. `"labels"`, are ignored), or the reference's
            column layout `{"video-id": [...], "t-start": [...], "t-end":
            [...], "score": [...]}` (`"label"` ignored).
        video_scores: `ExternalScores`, a path to the score file, or a
            mapping `{video_id: [K scores]}`.
        topk_classes: classes kept per video (2).
        topk_segments: detections kept per video (200).

    Returns:
        dict `{video_id: {"segments", "scores", "labels"}}` in sorted
        video-id order (see `fuse_video_scores`); videos without
        detections are left out, as in the reference. `fused_to_columns`
        flattens it to the reference's output columns.

    Raises:
        MalformedFileError: a video has no external scores, or the score
            file is malformed (names the file, key and video).
        ValueError: malformed detections or top-k arguments.

    Example:

    >>> fused = fuse_scores(
    ...     {"b": {"segments": [[0.0, 2.0]], "scores": [0.64]}},
    ...     {"b": [0.25, 0.75, 0.0]})
    >>> fused["b"]["labels"], fused["b"]["scores"]
    (array([1, 0]), array([0.69282032, 0.4       ]))
    """
    if isinstance(video_scores, (str, os.PathLike)):
        video_scores = load_external_scores(video_scores)
    elif not isinstance(video_scores, ExternalScores):
        video_scores = parse_external_scores(video_scores)
    if not isinstance(detections, Mapping):
        raise ValueError(f"fuse_scores: detections must be a mapping, got "
                         f"{type(detections).__name__}")
    if "video-id" in detections:
        grouped = _group_columns(detections)
    else:
        grouped = {}
        for video_id, det in detections.items():
            if not isinstance(det, Mapping) or not {"segments",
                                                    "scores"} <= set(det):
                raise ValueError(f"fuse_scores: video {video_id!r}: expected "
                                 f"a mapping with 'segments' and 'scores'")
            grouped[str(video_id)] = (det["segments"], det["scores"])
    fused = {}
    for video_id in sorted(grouped):
        segments, scores = grouped[video_id]
        if np.asarray(scores).size == 0:
            continue  # the reference never sees videos without detections
        try:
            segs, fused_scores, labels = fuse_video_scores(
                segments, scores, video_scores.lookup(video_id),
                topk_classes=topk_classes, topk_segments=topk_segments)
        except ValueError as e:
            if isinstance(e, errors.TfactionError):
                raise
            raise ValueError(f"video {video_id!r}: {e}") from None
        fused[video_id] = {"segments": segs, "scores": fused_scores,
                           "labels": labels}
    return fused


def fused_to_columns(fused):
    """`fuse_scores` output -> the reference's `processed_results` columns.

    Args:
        fused: `{video_id: {"segments", "scores", "labels"}}`.

    Returns:
        dict with `"video-id"` (list of str) and numpy `"t-start"`,
        `"t-end"`, `"label"` (int64), `"score"`, concatenated in the
        mapping's order (ActivityNet evaluation input, e.g.
        `tfaction.evaluation.activitynet_detection.read_column_predictions`).

    Example:

    >>> fused_to_columns({"a": {"segments": np.array([[0.0, 1.0]]),
    ...                         "scores": np.array([0.5]),
    ...                         "labels": np.array([3])}})["label"]
    array([3])
    """
    video_ids, starts, ends, labels, scores = [], [], [], [], []
    for video_id, det in fused.items():
        segments = np.asarray(det["segments"], np.float64).reshape(-1, 2)
        video_ids.extend([video_id] * segments.shape[0])
        starts.append(segments[:, 0])
        ends.append(segments[:, 1])
        labels.append(np.asarray(det["labels"], np.int64).reshape(-1))
        scores.append(np.asarray(det["scores"], np.float64).reshape(-1))

    def cat(parts, dtype):
        return (np.concatenate(parts) if parts
                else np.zeros((0,), dtype)).astype(dtype)

    return {"video-id": video_ids, "t-start": cat(starts, np.float64),
            "t-end": cat(ends, np.float64), "label": cat(labels, np.int64),
            "score": cat(scores, np.float64)}
