"""Ego4D Moment Queries Recall@kx at tIoU.

* ``variant="official"`` (`EGO4D/episodic-memory`
  `MQ/Evaluation/ego4d/get_retrieval_performance.py`): GT
  `{video_id: {"subset", "clip_id", "annotations": [{"label", "start_time",
  "end_time"}]}}` keyed by `clip_id`; a clip is evaluated when its `subset`
  string occurs **within** the requested one (Python's `in` on strings, so
  the official CLI's `validation` selects the clips of subset `val`); tIoU
  {0.3, 0.5, 0.7}, k in 1..5. For
  each (clip, class) with n GT, the **first k n predictions of that class in
  file order** (not sorted) are used; a GT is recalled if any has tIoU
  **> θ** (strict), tIoU = intersection / hull length. Recall = mean over all
  GT instances. A GT clip missing from the predictions is an error (official
  KeyError), unless `skip_missing_clips=True` counts its GT as misses
  (reported). Checked against the official code's output on the cases of
  `tests/anchors/ego4d_recall/`.
* ``variant="actionformer"`` (ActionFormer `libs/utils/metrics.py`): GT
  deduplicated like ActionFormer (< 1e-3 s or same label and bounds within
  1e-3 removed), predictions **sorted by score** per (video, class)
  (`argsort()[::-1]`, ties as NumPy's generic introsort, `numpy_sort`), tIoU
  (union) >= θ, thresholds linspace(0.1, 0.5, 5), k in (1, 5), recall per
  class then averaged over classes.

Predicted labels absent from the GT are ignored by both official codes (they
are counted in the result).

Example:

```python
r = evaluate_recall("clip_annotations.json", "preds.json", subset="val")
print(r.recall)  # [T, K]
```
"""

import dataclasses

import numpy as np

from tfaction import errors
from tfaction.evaluation import activitynet_detection as det
from tfaction.evaluation import common
from tfaction.evaluation import numpy_sort

OFFICIAL_THRESHOLDS = np.array([0.3, 0.5, 0.7])
OFFICIAL_TOP_K = (1, 2, 3, 4, 5)
ACTIONFORMER_THRESHOLDS = np.linspace(0.1, 0.5, 5)
ACTIONFORMER_TOP_K = (1, 5)
VARIANTS = ("official", "actionformer")


@dataclasses.dataclass
class RecallResult:
    """Recall@kx.

    Attributes:
        tiou_thresholds: float64 [T].
        top_k: K values of k.
        recall: float64 [T, K].
        variant: "official" or "actionformer".
        counts: diagnostics.
    """

    tiou_thresholds: np.ndarray
    top_k: tuple
    recall: np.ndarray
    variant: str
    counts: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        """JSON layout: recall[f"R@{k}x"] = list over thresholds."""
        out = {"metric": "ego4d_recall", "variant": self.variant,
               "tiou_thresholds": self.tiou_thresholds.tolist(),
               "top_k": list(self.top_k),
               "recall": {f"R@{k}x": self.recall[:, j].tolist()
                          for j, k in enumerate(self.top_k)}}
        out.update(self.counts)
        return out


def read_ego4d_ground_truth(path, subset, *, subset_match="exact"):
    """Reads the Ego4D MQ clip annotation file (one subset).

    Args:
        path: `clip_annotations*.json`.
        subset: "val", "test", ...
        subset_match: "exact" (a clip's `subset` equals `subset`) or
            "substring" (the official retrieval loader's `clip_subset in
            subset`, so `subset="validation"` selects clips of "val").

    Returns:
        (clip_ids, clip index [M], segments [M, 2], labels [M]).

    Raises:
        MalformedFileError (also for a non-string `subset` field),
        UnknownSubsetError, SegmentError, ConfigError.

    Example:

    >>> read_ego4d_ground_truth("clips.json", "val")  # doctest: +SKIP
    """
    if subset_match not in ("exact", "substring"):
        raise errors.ConfigError("subset_match must be 'exact' or "
                                 f"'substring', got {subset_match!r}")
    path = str(path)
    data = common.load_json(path, what="Ego4D ground truth")
    if not isinstance(data, dict):
        raise errors.MalformedFileError("expected an object of videos",
                                        path=path)
    clips, video, segs, labels, subsets = {}, [], [], [], set()
    for vid, v in data.items():
        if not isinstance(v, dict) or "subset" not in v:
            raise errors.MalformedFileError("expected an object with "
                                            "'subset'", path=path,
                                            video_id=vid, key="subset")
        if not isinstance(v["subset"], str):
            raise errors.MalformedFileError(
                f"expected a string, got {v['subset']!r}", path=path,
                video_id=vid, key="subset")
        subsets.add(v["subset"])
        if not (v["subset"] in subset if subset_match == "substring"
                else v["subset"] == subset):
            continue
        for key in ("clip_id", "annotations"):
            if key not in v:
                raise errors.MalformedFileError("missing field", path=path,
                                                video_id=vid, key=key)
        clip = str(v["clip_id"])
        if clip in clips:
            raise errors.MalformedFileError(
                "clip id repeats (the official code would keep only the "
                "last entry)", path=path, video_id=clip, key="clip_id")
        clips[clip] = len(clips)
        for i, ann in enumerate(v["annotations"] or []):
            where = dict(path=path, video_id=clip)
            if not isinstance(ann, dict):
                raise errors.MalformedFileError(
                    "expected an object", key=f"annotations[{i}]", **where)
            for key in ("label", "start_time", "end_time"):
                if key not in ann:
                    raise errors.MalformedFileError(
                        "missing field", key=f"annotations[{i}].{key}",
                        **where)
            segs.append([common.number(ann[k], key=f"annotations[{i}].{k}",
                                       **where)
                         for k in ("start_time", "end_time")])
            labels.append(ann["label"])
            video.append(clips[clip])
    if not clips:
        rule = ("contained in" if subset_match == "substring"
                else "equal to")
        raise errors.UnknownSubsetError(
            f"no clip whose subset is {rule} {subset!r}; subsets in the file: "
            f"{sorted(subsets)}", path=path, key="subset")
    segs = np.asarray(segs, np.float64).reshape(-1, 2)
    common.check_segments(segs, path=path, video_ids=list(clips),
                          video=np.asarray(video, np.int64))
    return list(clips), np.asarray(video, np.int64), segs, labels


def evaluate_recall(ground_truth, predictions, *, subset="val",
                    variant="official", tiou_thresholds=None, top_k=None,
                    skip_missing_clips=False):
    """Ego4D MQ Recall@kx.

    Args:
        ground_truth: Ego4D clip annotation JSON.
        predictions: `{"results": {clip_id: [{segment, label, score}]}}`.
        subset: GT subset ("val" / "test"); the official variant selects
            the clips whose subset string occurs within it ("validation"
            selects "val"), the ActionFormer variant requires equality.
        variant: "official" or "actionformer".
        tiou_thresholds: [T] (default: the variant's).
        top_k: k values (default: the variant's).
        skip_missing_clips: count GT of clips without predictions as misses
            instead of raising.

    Returns:
        `RecallResult`.

    Raises:
        MalformedFileError (a GT clip missing from the predictions names it),
        UnknownSubsetError, SegmentError, ConfigError.

    Example:

    >>> evaluate_recall("gt.json", "preds.json").recall  # doctest: +SKIP
    """
    if variant not in VARIANTS:
        raise errors.ConfigError(
            f"variant must be one of {VARIANTS}, got {variant!r}")
    official = variant == "official"
    thresholds = np.asarray(
        (OFFICIAL_THRESHOLDS if official else ACTIONFORMER_THRESHOLDS)
        if tiou_thresholds is None else tiou_thresholds, np.float64)
    top_k = tuple(int(k) for k in (
        (OFFICIAL_TOP_K if official else ACTIONFORMER_TOP_K)
        if top_k is None else top_k))
    clips, g_vid, g_seg, g_lab = read_ego4d_ground_truth(
        ground_truth, subset,
        subset_match="substring" if official else "exact")
    preds = common.read_detection_predictions(predictions)
    missing = [c for c in clips if c not in set(preds.video_ids)]
    if missing and not skip_missing_clips:
        raise errors.MalformedFileError(
            f"{len(missing)} ground-truth clips have no entry in the "
            "predictions (the official code raises KeyError); use "
            "--skip_missing_clips to count them as misses",
            path=preds.path, video_id=missing[0], key="results")
    if not official:
        keep = _dedupe(g_vid, g_seg, g_lab)
        g_vid, g_seg = g_vid[keep], g_seg[keep]
        g_lab = [x for x, k in zip(g_lab, keep) if k]
    classes = {c: i for i, c in enumerate(dict.fromkeys(g_lab))}
    g_cls = np.array([classes[x] for x in g_lab], np.int64)
    clip_index = {c: i for i, c in enumerate(clips)}
    p_clip = np.array([clip_index.get(v, -1) for v in preds.video_ids],
                      np.int64)[preds.video]
    p_cls = np.array([classes.get(x, -1) for x in preds.labels], np.int64)
    ok = (p_clip >= 0) & (p_cls >= 0)
    idx = np.flatnonzero(ok)
    n_c = max(len(clips), 1)
    if not official:
        # ActionFormer: per (class, video) `score.argsort()[::-1]`.
        idx = idx[numpy_sort.grouped_argsort_desc(
            p_cls[idx] * n_c + p_clip[idx], preds.scores[idx])]
    g_key = g_cls * n_c + g_vid
    rank = det.first_hit_rank(g_key, g_seg, p_cls[idx] * n_c + p_clip[idx],
                              preds.segments[idx], thresholds,
                              union="hull" if official else "union",
                              strict=official)
    _, inv, n_g = np.unique(g_key, return_inverse=True, return_counts=True)
    per_gt = n_g[inv].astype(np.float64)
    recall = np.zeros((len(thresholds), len(top_k)))
    for j, k in enumerate(top_k):
        hit = rank < (k * per_gt)[:, None]  # [M, T]
        if official:
            recall[:, j] = hit.mean(axis=0) if hit.size else np.nan
        else:
            n_cls = len(classes)
            npos = np.bincount(g_cls, minlength=n_cls)
            per_class = np.stack([np.bincount(g_cls, weights=hit[:, t],
                                              minlength=n_cls) / npos
                                  for t in range(len(thresholds))])
            recall[:, j] = per_class.mean(axis=1)
    counts = {"num_ground_truth": int(g_vid.shape[0]),
              "num_predictions": preds.num_predictions,
              "num_predictions_ignored": int((~ok).sum()),
              "num_missing_clips": len(missing),
              "num_reversed_segments": preds.num_reversed}
    return RecallResult(tiou_thresholds=thresholds, top_k=top_k,
                        recall=recall, variant=variant, counts=counts)


def _dedupe(video, segments, labels, tol=1e-3):
    """ActionFormer's removal of short / duplicated GT (per video)."""
    keep = np.zeros(video.shape[0], bool)
    for v in np.unique(video):
        kept = []
        for i in np.flatnonzero(video == v):
            s, e = segments[i]
            if (e - s) >= tol and not any(
                    abs(s - segments[j, 0]) <= tol
                    and abs(e - segments[j, 1]) <= tol
                    and labels[i] == labels[j] for j in kept):
                kept.append(i)
                keep[i] = True
    return keep


def run_cli(ground_truth, predictions, options):
    """`experiments.evaluate` entry point.

    Args:
        ground_truth: Ego4D clip annotation JSON.
        predictions: prediction JSON.
        options: CLI flags (`subset`, `variant`, `tiou_thresholds`,
            `top_k`, `skip_missing_clips`).

    Returns:
        `RecallResult.to_dict()`.

    Example:

    >>> run_cli("gt.json", "p.json", {"subset": "val"})  # doctest: +SKIP
    """
    variant = options.get("variant") or "official"
    thresholds = options.get("tiou_thresholds")
    if thresholds is not None:
        thresholds = common.parse_thresholds(thresholds, None)
    top_k = options.get("top_k")
    if isinstance(top_k, int):
        top_k = (top_k,)
    return evaluate_recall(
        ground_truth, predictions, subset=options.get("subset") or "val",
        variant=variant, tiou_thresholds=thresholds, top_k=top_k,
        skip_missing_clips=bool(options.get("skip_missing_clips"))).to_dict()


def format_table(result):
    """Readable Recall@kx table.

    Args:
        result: dict returned by `run_cli`.

    Returns:
        str.

    Example:

    >>> print(format_table({"tiou_thresholds": [0.5],
    ...                     "recall": {"R@1x": [0.25]}}))
    tIoU    R@1x
    0.5000  0.2500
    """
    cols = list(result["recall"])
    rows = [[float(t)] + [float(result["recall"][c][i]) for c in cols]
            for i, t in enumerate(result["tiou_thresholds"])]
    return common.format_rows(["tIoU"] + cols, rows)
