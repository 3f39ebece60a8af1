"""ActivityNet-style temporal detection mAP, number for number with the
official `Evaluation/eval_detection.py` (and ActionFormer's copy).

Algorithm: per class and tIoU threshold, predictions
are visited in `score.argsort()[::-1]` order, ties exactly as NumPy's
generic introsort leaves them (reverse input order for at most 16
predictions; `numpy_sort` otherwise, so results do not depend on AVX-512);
GT of a video are tried in `tiou.argsort()[::-1]` order likewise; each is
matched greedily to the best-tIoU GT of its video,
falling through to the next-best **unmatched** GT while tIoU >= threshold
(NaN tIoU of two zero-length segments counts as a match, as officially). AP
is the VOC2011 all-point interpolated AP; mAP is the mean over the GT classes
of the subset (a class without predictions scores 0); the average mAP is the
mean over thresholds.

Matching is vectorised: (class, video) groups are independent, so all groups
advance one prediction at a time in lock-step, with per-threshold GT locks.

Variants (`variant=`):

* "activitynet" (default): class set = labels of the subset's GT, in order
  of first appearance; labels are names.
* "actionformer" (`libs/utils/metrics.py`): integer `label_id`s (the label
  names when the GT has none: the class order changes neither the mAP nor
  the class-mean recall), classes = sorted GT ids; GT shorter than 1e-3 s
  or duplicated (same id, |ds|, |de| <= 1e-3) removed; also Recall@kx (top
  k x n_gt predictions by score, tIoU >= threshold, averaged over classes).
* "epic" (EPIC-Kitchens 100, `C2-Action-Detection`
  `evaluate_detection_json_ek100.py`): integer classes of one task
  (`epic_task`: verb, noun, or action = verb * 300 + noun), classes =
  sorted GT classes, every GT kept. GT: the annotations CSV
  (`EPIC_100_validation.csv`, see `epic_io`) or an ActivityNet-layout file
  with `label_id`s (ActionFormer's `epic_kitchens_100_{verb,noun}.json`);
  predictions: the submission layout (`verb`, `noun`, `action: "v,n"`
  entries) or `label` / `label_id` entries.

Deliberate differences from the official code, all reported: a predicted
label that is not a GT class raises `UnknownLabelError` (official: KeyError,
or silent aliasing in ActionFormer) unless `skip_unknown_labels=True`, which
drops and counts them; NaN/inf scores or segments raise errors. Reversed
predicted segments (end < start) are scored with the official arithmetic
(they overlap nothing) and counted in `counts["num_reversed_segments"]`.
Predictions in videos outside the evaluated GT are false positives
(official) and counted in the result.

Example:

```python
result = evaluate_detection("gt.json", "preds.json", subset="validation")
print(result.average_mAP, result.mAP_per_tiou)
```
"""

import dataclasses
import itertools

import numpy as np

from tfaction import errors
from tfaction.evaluation import common
from tfaction.evaluation import epic_io
from tfaction.evaluation import numpy_sort
from tfaction.evaluation import ground_truth as gt_lib
from tfaction.ops import segment_iou as siou

ANET_THRESHOLDS = common.BENCHMARK_THRESHOLDS["activitynet"]
THUMOS_THRESHOLDS = common.BENCHMARK_THRESHOLDS["thumos14"]
VARIANTS = ("activitynet", "actionformer", "epic")
# The one class of class-agnostic evaluation (`class_agnostic=True`).
AGNOSTIC_LABEL = "action"


@dataclasses.dataclass
class DetectionResult:
    """Detection mAP and its parts.

    Attributes:
        tiou_thresholds: float64 [T].
        classes: C class labels (names, or int ids for ActionFormer).
        ap: float64 [T, C] AP per threshold and class (official layout).
        mAP_per_tiou: float64 [T].
        average_mAP: float.
        recall: float64 [T, K] mean Recall@kx (ActionFormer) or None.
        top_k: the k values of `recall`.
        counts: diagnostics (predictions, skipped unknown labels,
            predictions/videos outside the GT subset, negative starts).
        variant: "activitynet", "actionformer" or "epic".
    """

    tiou_thresholds: np.ndarray
    classes: list
    ap: np.ndarray
    mAP_per_tiou: np.ndarray
    average_mAP: float
    recall: np.ndarray = None
    top_k: tuple = ()
    counts: dict = dataclasses.field(default_factory=dict)
    variant: str = "activitynet"

    def ap_per_class(self):
        """Dict label -> list of T APs."""
        return {c: self.ap[:, i].tolist() for i, c in enumerate(self.classes)}

    def to_dict(self):
        """JSON-serialisable dict (the `--output_json` layout)."""
        out = {"metric": "activitynet_detection", "variant": self.variant,
               "tiou_thresholds": self.tiou_thresholds.tolist(),
               "mAP_per_tiou": self.mAP_per_tiou.tolist(),
               "average_mAP": float(self.average_mAP),
               "ap_per_class": {str(k): v
                                for k, v in self.ap_per_class().items()}}
        if self.recall is not None:
            out["recall_at_kx"] = {f"{k}x": self.recall[:, j].tolist()
                                   for j, k in enumerate(self.top_k)}
        out.update(self.counts)
        return out


# --- Core ---------------------------------------------------------------------
def _groups(keys):
    """Stable grouping: (order, unique keys, starts, counts) of int keys."""
    order = np.argsort(keys, kind="stable")
    uniq, start, count = np.unique(keys[order], return_index=True,
                                   return_counts=True)
    return order, uniq, start, count


def greedy_match(gt_key, gt_seg, pred_key, pred_seg, thresholds):
    """Official greedy fall-through matching, vectorised over groups.

    Predictions must be given in visiting order; a prediction can only match
    GT with the same key (key = class x video).

    Args:
        gt_key: int64 [M] group key of each GT.
        gt_seg: float64 [M, 2].
        pred_key: int64 [N] group key of each prediction.
        pred_seg: float64 [N, 2].
        thresholds: float64 [T].

    Returns:
        bool [N, T]: true positive per prediction and threshold.

    Example:

    >>> greedy_match(np.array([0]), np.array([[0., 10.]]), np.array([0, 0]),
    ...              np.array([[0., 10.], [0., 9.]]), np.array([0.5]))
    array([[ True],
           [False]])
    """
    thresholds = np.asarray(thresholds, np.float64)
    n, t = pred_key.shape[0], thresholds.shape[0]
    tp = np.zeros((n, t), bool)
    if n == 0 or gt_key.shape[0] == 0:
        return tp
    g_order, g_uniq, g_start, g_count = _groups(gt_key)
    pos = np.minimum(np.searchsorted(g_uniq, pred_key), len(g_uniq) - 1)
    with_gt = np.flatnonzero(g_uniq[pos] == pred_key)
    if with_gt.size == 0:
        return tp
    grp = pos[with_gt]
    s = np.argsort(grp, kind="stable")  # keeps the visiting order per group
    pred_ids, grp = with_gt[s], grp[s]
    p_groups, p_start, p_count = np.unique(grp, return_index=True,
                                           return_counts=True)
    sizes = g_count[p_groups]
    for size in np.unique(sizes):
        sel = np.flatnonzero(sizes == size)
        sel = sel[np.argsort(-p_count[sel], kind="stable")]
        _match_bucket(tp, int(size), p_count[sel], p_start[sel], pred_ids,
                      g_order[g_start[p_groups[sel]][:, None]
                              + np.arange(size)],
                      gt_seg, pred_seg, thresholds)
    return tp


def _match_bucket(tp, size, counts, starts, pred_ids, gt_mat, gt_seg,
                  pred_seg, thresholds):
    """Greedy matching of groups that all have `size` GT (counts desc)."""
    nb, rmax, t = counts.shape[0], int(counts[0]), thresholds.shape[0]
    cols = np.arange(rmax)
    valid = cols[None, :] < counts[:, None]
    pm = np.where(valid, starts[:, None] + cols[None, :], 0)
    pm = np.where(valid, pred_ids[np.minimum(pm, pred_ids.size - 1)], -1)
    iou = siou.aligned_segment_iou(pred_seg[pm][:, :, None, :],
                                   gt_seg[gt_mat][:, None, :, :])
    key = np.where(np.isnan(iou), np.inf, iou)  # NaN is visited first
    # Visiting order of GT: decreasing tIoU, ties by decreasing GT index
    # (the official `tiou.argsort()[::-1]`).
    order = size - 1 - np.argsort(-key[..., ::-1], axis=-1, kind="stable")
    if size > numpy_sort.SMALL_QUICKSORT + 1 and t:
        _exact_gt_order(order, key, pm >= 0, thresholds.min())
    skey = np.take_along_axis(key, order, axis=-1)
    locked = np.zeros((nb, t, size), bool)
    n_active = np.searchsorted(-counts, -cols, side="left")  # counts > r
    for r in range(rmax):
        na = int(n_active[r])
        ordr = order[:na, r]
        passes = skey[:na, r, None, :] >= thresholds[None, :, None]
        lk = np.take_along_axis(locked[:na],
                                np.broadcast_to(ordr[:, None, :],
                                                (na, t, size)), axis=-1)
        avail = passes & ~lk
        b, k = np.nonzero(avail.any(-1))
        if b.size:
            first = avail[b, k].argmax(-1)
            locked[b, k, ordr[b, first]] = True
            tp[pm[b, r], k] = True


def _exact_gt_order(order, key, valid, lowest):
    """Rows (more than 16 GT) whose tied tIoU can be matched: use NumPy's
    generic introsort order, as the official `tiou.argsort()[::-1]` does.
    Ties below every threshold never matter (visiting stops there)."""
    skey = np.take_along_axis(key, order, axis=-1)
    tie = (skey[..., 1:] == skey[..., :-1]) & (skey[..., 1:] >= lowest)
    for b, r in zip(*np.nonzero(tie.any(-1) & valid)):
        order[b, r] = numpy_sort.argsort_desc(key[b, r])


def ap_from_tp(tp, pred_cls, npos):
    """Interpolated AP per class from true-positive flags.

    Args:
        tp: bool [N, T], predictions sorted by class, then visiting order.
        pred_cls: int64 [N] class index (sorted).
        npos: int [C] GT count per class.

    Returns:
        float64 [T, C]; 0 for a class without predictions.

    Example:

    >>> ap_from_tp(np.array([[True], [False]]), np.array([0, 0]), [1])
    array([[1.]])
    """
    c_n = len(npos)
    ap = np.zeros((tp.shape[1], c_n))
    bounds = np.searchsorted(pred_cls, np.arange(c_n + 1))
    for c in range(c_n):
        s, e = bounds[c], bounds[c + 1]
        if e == s:
            continue
        hits = tp[s:e].T.astype(np.float64)
        tpc = np.cumsum(hits, axis=1)
        fpc = np.cumsum(1.0 - hits, axis=1)
        ap[:, c] = common.interpolated_ap(tpc / (tpc + fpc),
                                          tpc / float(npos[c]))
    return ap


def _evaluate_arrays(g_cls, g_vid, g_seg, p_cls, p_vid, p_seg, p_score,
                     n_classes, n_videos, thresholds):
    """[T, C] AP of flat arrays (videos as ints, classes as indices)."""
    order = numpy_sort.grouped_argsort_desc(p_cls, p_score)
    p_cls, p_vid, p_seg = p_cls[order], p_vid[order], p_seg[order]
    tp = greedy_match(g_cls * n_videos + g_vid, g_seg,
                      p_cls * n_videos + p_vid, p_seg, thresholds)
    npos = np.bincount(g_cls, minlength=n_classes)
    return ap_from_tp(tp, p_cls, npos), order


def average_precision_detection(gt_video_ids, gt_segments, pred_video_ids,
                                pred_segments, pred_scores,
                                tiou_thresholds=ANET_THRESHOLDS):
    """AP of one class (official `compute_average_precision_detection`).

    Args:
        gt_video_ids: M video ids of the GT instances.
        gt_segments: [M, 2].
        pred_video_ids: N video ids of the predictions.
        pred_segments: [N, 2].
        pred_scores: [N].
        tiou_thresholds: [T].

    Returns:
        float64 [T].

    Example:

    >>> average_precision_detection(["v"], [[0, 10]], ["v", "w"],
    ...                              [[0, 10], [0, 10]], [0.9, 0.95], [0.5])
    array([0.5])
    """
    ids = {v: i for i, v in enumerate(dict.fromkeys(list(gt_video_ids)
                                                    + list(pred_video_ids)))}
    g_vid = np.array([ids[v] for v in gt_video_ids], np.int64)
    p_vid = np.array([ids[v] for v in pred_video_ids], np.int64)
    ap, _ = _evaluate_arrays(
        np.zeros_like(g_vid), g_vid,
        np.asarray(gt_segments, np.float64).reshape(-1, 2),
        np.zeros_like(p_vid), p_vid,
        np.asarray(pred_segments, np.float64).reshape(-1, 2),
        np.asarray(pred_scores, np.float64), 1, max(len(ids), 1),
        np.asarray(tiou_thresholds, np.float64))
    return ap[:, 0]


# --- ActionFormer specifics -----------------------------------------------------
def _actionformer_gt_keep(gt, labels, tol=1e-3):
    """Mask of GT kept by ActionFormer's `remove_duplicate_annotations`."""
    keep = np.zeros(gt.num_instances, bool)
    for v in np.unique(gt.video):
        kept = []
        for i in np.flatnonzero(gt.video == v):
            s, e = gt.segments[i]
            lab = labels[i]
            ok = (e - s) >= tol and not any(
                abs(s - gt.segments[j, 0]) <= tol
                and abs(e - gt.segments[j, 1]) <= tol
                and lab == labels[j] for j in kept)
            if ok:
                kept.append(i)
                keep[i] = True
    return keep


def first_hit_rank(g_key, g_seg, p_key, p_seg, thresholds, *, union="union",
                   strict=False):
    """Rank (within its group, in the given order) of the first prediction
    reaching each threshold, for each GT.

    Args:
        g_key: int64 [M] group keys of GT.
        g_seg: [M, 2].
        p_key: int64 [N] group keys of predictions, in visiting order.
        p_seg: [N, 2].
        thresholds: [T].
        union: "union" or "hull" tIoU.
        strict: tIoU > threshold instead of >=.

    Returns:
        float64 [M, T] ranks (inf: never reached; NaN tIoU never counts).

    Example:

    >>> first_hit_rank(np.array([0]), np.array([[0., 10.]]), np.array([0, 0]),
    ...                np.array([[50., 60.], [0., 10.]]), np.array([0.5]))
    array([[1.]])
    """
    thresholds = np.asarray(thresholds, np.float64)
    out = np.full((g_key.shape[0], thresholds.shape[0]), np.inf)
    p_order, p_uniq, p_start, p_count = _groups(p_key)
    g_order, g_uniq, g_start, g_count = _groups(g_key)
    pos = np.minimum(np.searchsorted(p_uniq, g_uniq), max(len(p_uniq) - 1, 0))
    for i in range(len(g_uniq)):
        if not len(p_uniq) or p_uniq[pos[i]] != g_uniq[i]:
            continue
        gi = g_order[g_start[i]:g_start[i] + g_count[i]]
        pi = p_order[p_start[pos[i]]:p_start[pos[i]] + p_count[pos[i]]]
        iou = siou.pairwise_segment_iou(p_seg[pi], g_seg[gi], union=union)
        with np.errstate(invalid="ignore"):
            hit = (iou[None] > thresholds[:, None, None] if strict else
                   iou[None] >= thresholds[:, None, None])  # [T, P, G]
        rank = np.where(hit.any(1), hit.argmax(1), np.inf)  # [T, G]
        out[gi] = rank.T
    return out


# --- Public API -----------------------------------------------------------------
def _resolve_labels(preds, class_index, skip_unknown, name_to_id=None):
    """Class index per prediction; unknown labels raise or are dropped."""
    labels = preds.labels
    if name_to_id is not None:
        labels = [name_to_id.get(x, x) if isinstance(x, str) else x
                  for x in labels]
    idx = np.fromiter(map(class_index.get, labels, itertools.repeat(-1)),
                      np.int64, len(labels))
    unknown = idx < 0
    if unknown.any() and not skip_unknown:
        i = int(np.flatnonzero(unknown)[0])
        raise errors.UnknownLabelError(
            f"predicted label {labels[i]!r} is not a ground-truth class of "
            f"the evaluated subset ({int(unknown.sum())} such predictions; "
            "the official code raises KeyError). Use skip_unknown_labels / "
            "--skip_unknown_labels to drop and count them",
            path=preds.path, video_id=preds.video_ids[preds.video[i]],
            key="label")
    return idx, unknown


def _load(ground_truth, predictions, subset, video_info, variant,
          epic_task):
    if isinstance(ground_truth, gt_lib.GroundTruth):
        gt = ground_truth
    elif variant == "epic" and str(ground_truth).lower().endswith(".csv"):
        gt = epic_io.read_epic_ground_truth(ground_truth, task=epic_task)
    else:
        gt = gt_lib.load_ground_truth(ground_truth, subset,
                                      video_info=video_info)
    if isinstance(predictions, common.Predictions):
        return gt, predictions
    if isinstance(predictions, dict) and "video-id" in predictions:
        return gt, read_column_predictions("<dict>", predictions)
    path = str(predictions)
    # Decoded once with the C parser; the duplicate-key check counts keys
    # during the column-wise read (`common.read_detection_predictions`).
    text = common.read_json_text(path, what="prediction file")
    data = common.parse_json(text, path=path)
    if isinstance(data, dict) and "video-id" in data:
        common.check_unique_keys(text, common.count_keys(data), path=path,
                                 data=data)
        return gt, read_column_predictions(path, data)
    # EPIC submissions give the task's class under its name.
    epic_entries = variant == "epic" and _has_key(data, epic_task,
                                                  default=False)
    label_key = ("label" if variant == "activitynet" or _has_key(data, "label")
                 else "label_id")
    preds = common.read_detection_predictions(
        path, data=data, text=text,
        label_key=epic_task if epic_entries else label_key)
    if epic_entries:
        preds = dataclasses.replace(preds, labels=[
            epic_io.epic_label({epic_task: x}, epic_task, path=path,
                               video_id=preds.video_ids[v], key=epic_task)
            for x, v in zip(preds.labels, preds.video)])
    return gt, preds


def _one_class(instances):
    """GT or predictions with every label replaced by `AGNOSTIC_LABEL`."""
    count = len(instances.labels)
    changes = {"labels": [AGNOSTIC_LABEL] * count}
    if getattr(instances, "label_ids", None) is not None:
        changes["label_ids"] = [0] * count
    return dataclasses.replace(instances, **changes)


def _has_key(data, key, default=True):
    """Whether the first prediction entry has `key` (`default`: none)."""
    for entries in (data.get("results") or {}).values():
        for e in entries or []:
            return isinstance(e, dict) and key in e
    return default


def read_column_predictions(path, data):
    """Predictions as column lists (ActionFormer's in-memory layout).

    Args:
        path: file name for messages.
        data: dict with lists `video-id`, `t-start`, `t-end`, `label`,
            `score` of equal length.

    Returns:
        `common.Predictions`.

    Raises:
        MalformedFileError: a missing column or unequal lengths.

    Example:

    >>> read_column_predictions("x", {"video-id": ["v"], "t-start": [0],
    ...     "t-end": [1], "label": [2], "score": [0.5]}).labels
    [2]
    """
    cols = ("video-id", "t-start", "t-end", "label", "score")
    for c in cols:
        if c not in data:
            raise errors.MalformedFileError("missing column", path=path,
                                            key=c)
    lists = [list(np.asarray(data[c]).tolist()) if not isinstance(
        data[c], list) else data[c] for c in cols]
    n = len(lists[0])
    for c, v in zip(cols, lists):
        if len(v) != n:
            raise errors.MalformedFileError(
                f"column has {len(v)} values, 'video-id' has {n}", path=path,
                key=c)
    ids = {}
    video = [ids.setdefault(str(v), len(ids)) for v in lists[0]]
    try:
        segs = np.array([lists[1], lists[2]], np.float64).T.reshape(-1, 2)
        scores = np.array(lists[4], np.float64)
    except (TypeError, ValueError) as e:
        raise errors.MalformedFileError(f"non-numeric value ({e})",
                                        path=path) from None
    labels = [int(x) if isinstance(x, float) and x == int(x) else x
              for x in lists[3]]
    return common.make_predictions(list(ids), video, segs, scores, labels,
                                   path=path)


def evaluate_detection(ground_truth, predictions, *, subset="validation",
                       tiou_thresholds=ANET_THRESHOLDS, variant="activitynet",
                       skip_unknown_labels=False, top_k=(1, 5),
                       video_info=None, class_agnostic=False,
                       epic_task="action"):
    """Temporal detection mAP (official ActivityNet or ActionFormer).

    Args:
        ground_truth: GT file (ActivityNet or BSN layout) or `GroundTruth`.
        predictions: prediction file (`{"results": ...}` or column lists),
            `common.Predictions`, or a dict of columns (`video-id`,
            `t-start`, `t-end`, `label`, `score`).
        subset: evaluated subset.
        tiou_thresholds: [T] thresholds (used as given, e.g. linspace floats).
        variant: "activitynet", "actionformer" or "epic".
        skip_unknown_labels: drop (and count) predictions whose label is not
            a GT class instead of raising.
        top_k: k values of Recall@kx (ActionFormer variant only).
        video_info: BSN video info CSV for BSN-layout GT.
        class_agnostic: score every GT instance and prediction as one
            class (`AGNOSTIC_LABEL`), whatever its label: the mAP of a
            class-agnostic detector that has no class scores.
        epic_task: the "epic" variant's task, "verb", "noun" or "action"
            (which class a CSV row or a submission entry gives).

    Returns:
        `DetectionResult`.

    Raises:
        UnknownLabelError, MalformedFileError, SegmentError,
        UnknownSubsetError, ConfigError.

    Example:

    >>> r = evaluate_detection("gt.json", "preds.json")  # doctest: +SKIP
    >>> round(r.average_mAP, 6)  # doctest: +SKIP
    0.448611
    """
    if variant not in VARIANTS:
        raise errors.ConfigError(
            f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == "epic" and epic_task not in epic_io.TASKS:
        raise errors.ConfigError(
            f"epic_task must be one of {epic_io.TASKS}, got {epic_task!r}")
    thresholds = np.asarray(tiou_thresholds, np.float64).reshape(-1)
    with common.without_gc():  # resumed once the decoded files are freed
        gt, preds = _load(ground_truth, predictions, subset, video_info,
                          variant, epic_task)
    if class_agnostic:
        gt, preds = _one_class(gt), _one_class(preds)
    name_to_id = None
    keep = np.ones(gt.num_instances, bool)
    if variant == "activitynet":
        classes = gt.classes()
        g_labels = gt.labels
    else:
        # Sorted GT classes: the label_ids where the file has them (names
        # of predictions are mapped onto them), else the names.
        g_labels = gt.labels
        if gt.label_ids is not None:
            g_labels = gt.label_ids
            name_to_id = dict(zip(gt.labels, gt.label_ids))
        elif variant == "epic":
            raise errors.MalformedFileError(
                "the epic variant needs integer classes: the EPIC annotations "
                "CSV or an integer 'label_id' in every annotation",
                path=gt.path, key="label_id")
        if variant == "actionformer":
            keep = _actionformer_gt_keep(gt, g_labels)
        g_labels = [x for x, k in zip(g_labels, keep) if k]
        classes = sorted(set(g_labels))
    g_vid_all, g_seg = gt.video[keep], gt.segments[keep]
    class_index = {c: i for i, c in enumerate(classes)}
    g_cls = np.array([class_index[x] for x in g_labels], np.int64)

    p_cls, unknown = _resolve_labels(preds, class_index, skip_unknown_labels,
                                     name_to_id)
    known = ~unknown
    # Prediction videos -> GT video index (or new ids: no GT, all FP).
    gt_index = {v: i for i, v in enumerate(gt.video_ids)}
    n_gt_videos = len(gt.video_ids)
    extra = {}
    vmap = np.array([gt_index.get(v, None) if v in gt_index else
                     n_gt_videos + extra.setdefault(v, len(extra))
                     for v in preds.video_ids], np.int64)
    p_vid = vmap[preds.video] if preds.num_predictions else preds.video
    outside = p_vid >= n_gt_videos
    n_videos = n_gt_videos + len(extra)
    ap, order = _evaluate_arrays(
        g_cls, g_vid_all, g_seg, p_cls[known], p_vid[known],
        preds.segments[known], preds.scores[known], len(classes),
        max(n_videos, 1), thresholds)
    mAP = ap.mean(axis=1)
    counts = {
        "num_classes": len(classes),
        "num_ground_truth": int(g_cls.shape[0]),
        "num_predictions": preds.num_predictions,
        "num_skipped_unknown_labels": int(unknown.sum()),
        "num_predictions_outside_ground_truth": int((outside & known).sum()),
        "num_videos_outside_ground_truth": len(
            {int(v) for v in p_vid[outside & known]}),
        "num_negative_start": preds.num_negative,
        "num_reversed_segments": preds.num_reversed,
    }
    recall = None
    if variant == "actionformer":
        recall = _actionformer_recall(
            g_cls, g_vid_all, g_seg, p_cls[known][order],
            p_vid[known][order], preds.segments[known][order],
            len(classes), max(n_videos, 1), thresholds, tuple(top_k))
    return DetectionResult(tiou_thresholds=thresholds, classes=classes, ap=ap,
                           mAP_per_tiou=mAP, average_mAP=float(mAP.mean()),
                           recall=recall, top_k=tuple(top_k), counts=counts,
                           variant=variant)


def _actionformer_recall(g_cls, g_vid, g_seg, p_cls, p_vid, p_seg, n_classes,
                         n_videos, thresholds, top_k):
    """[T, K] ActionFormer Recall@kx (per class, then mean over classes)."""
    g_key = g_cls * n_videos + g_vid
    rank = first_hit_rank(g_key, g_seg, p_cls * n_videos + p_vid, p_seg,
                          thresholds)
    _, inv, n_g = np.unique(g_key, return_inverse=True, return_counts=True)
    per_gt = n_g[inv].astype(np.float64)
    recall = np.zeros((len(thresholds), len(top_k), n_classes))
    npos = np.bincount(g_cls, minlength=n_classes).astype(np.float64)
    has_pred = np.bincount(p_cls, minlength=n_classes) > 0
    for j, k in enumerate(top_k):
        hit = rank < (k * per_gt)[:, None]  # [M, T]
        for t in range(len(thresholds)):
            tp = np.bincount(g_cls, weights=hit[:, t], minlength=n_classes)
            recall[t, j] = np.where(has_pred, tp / npos, 0.0)
    return recall.mean(axis=2)


# --- CLI contract ---------------------------------------------------------------
def run_cli(ground_truth, predictions, options):
    """`experiments.evaluate` entry point (see that module for flags).

    Args:
        ground_truth: GT path.
        predictions: prediction path.
        options: dict of CLI flag values.

    Returns:
        JSON-serialisable dict (`DetectionResult.to_dict()`).

    Example:

    >>> run_cli("gt.json", "p.json", {"subset": "validation"})  # doctest: +SKIP
    >>> run_cli("EPIC_100_validation.csv", "submission.json",
    ...         {"variant": "epic", "epic_task": "noun"})  # doctest: +SKIP
    """
    variant = options.get("variant") or "activitynet"
    default = (common.BENCHMARK_THRESHOLDS["epic_ego4d"] if variant == "epic"
               else ANET_THRESHOLDS)
    thresholds = common.parse_thresholds(options.get("tiou_thresholds"),
                                         default)
    top_k = options.get("top_k") or (1, 5)
    if isinstance(top_k, int):
        top_k = (top_k,)
    result = evaluate_detection(
        ground_truth, predictions, subset=options.get("subset") or "validation",
        tiou_thresholds=thresholds, variant=variant,
        skip_unknown_labels=bool(options.get("skip_unknown_labels")),
        top_k=tuple(int(k) for k in top_k),
        video_info=options.get("video_info"),
        class_agnostic=bool(options.get("class_agnostic")),
        epic_task=options.get("epic_task") or "action")
    out = result.to_dict()
    if variant == "epic":
        out["epic_task"] = options.get("epic_task") or "action"
    return out


def format_table(result):
    """Readable table of a `run_cli` result.

    Args:
        result: dict returned by `run_cli`.

    Returns:
        str.

    Example:

    >>> print(format_table({"tiou_thresholds": [0.5], "mAP_per_tiou": [0.25],
    ...                     "average_mAP": 0.25}))
    tIoU    mAP
    0.5000  0.2500
    average mAP: 0.2500
    """
    header = ["tIoU", "mAP"]
    recall = result.get("recall_at_kx") or {}
    header += [f"R@{k}" for k in recall]
    rows = [[float(t), float(m)] + [float(v[i]) for v in recall.values()]
            for i, (t, m) in enumerate(zip(result["tiou_thresholds"],
                                           result["mAP_per_tiou"]))]
    lines = [common.format_rows(header, rows),
             f"average mAP: {result['average_mAP']:.4f}"]
    skipped = result.get("num_skipped_unknown_labels")
    if skipped:
        lines.append(f"skipped predictions with unknown labels: {skipped}")
    if result.get("num_reversed_segments"):
        lines.append("predictions with end < start (scored as officially): "
                     f"{result['num_reversed_segments']}")
    outside = result.get("num_predictions_outside_ground_truth")
    if outside:
        lines.append(f"predictions in videos outside the ground truth "
                     f"(false positives): {outside} in "
                     f"{result['num_videos_outside_ground_truth']} videos")
    return "\n".join(lines)
