"""AdaFocus' video-level mAP (`cal_map`) and top-k accuracy.

The AdaFocus and AdaFocus V2 papers report ActivityNet and FCVID results
as the mean average precision of the authors' `cal_map` over the
video-level predictions (the last step's logits of each validation
video), and Mini-Kinetics results as top-1 accuracy. `cal_map` is **not**
the ActivityNet detection mAP, nor scikit-learn's
`average_precision_score` on tied scores:

1. scores: `softmax` of the logits over classes (float32);
2. labels: an `[N, K]` int array of up to `K` labels per video, padded
   with -1 (ActivityNet: the first label only, `labels[:, :1]`; FCVID: all
   labels). Before anything else, the label ids are **relabelled by rank**:
   the `j`-th smallest distinct non-negative id present in `labels` becomes
   `j` (`get_multi_hot(..., assumes_starts_zero=False)`). This is the
   identity when every class occurs; otherwise positives move to other
   score columns (the quirk is reproduced, and reported by `relabelled`);
3. per class `k`: videos sorted by score, descending; AP = the sum of the
   precision at the rank of each positive / the number of positives
   (non-interpolated); a class with no positive has AP 0 and still counts;
4. mAP = mean AP over all `C` classes, x 100.

Ties: PyTorch's `torch.sort` leaves the order of equal scores unspecified;
this module ranks ties in input order (a stable descending sort). On
untied scores the result equals the reference's up to float32 rounding of
its sums (the reference accumulates precisions in float32, this module in
float64).

Top-k (`topk_accuracy`, the reference's `accuracy`): a video is correct
when its label (the first one, `labels[:, 0]`) is among the `k` largest
logits (ties by class index), in percent.

Example:

>>> import numpy as np
>>> logits = np.log(np.array([[0.7, 0.3], [0.6, 0.4], [0.4, 0.6]]))
>>> result = adafocus_map(logits, np.array([[1], [0], [1]]))
>>> round(result.map, 4), result.ap.round(4).tolist()
(66.6667, [50.0, 83.3333])
"""

import dataclasses

import numpy as np

from tfaction import errors

METRIC = "adafocus_map"


@dataclasses.dataclass(frozen=True)
class AdaFocusMAP:
    """Result of `adafocus_map`.

    Attributes:
        map: mean AP over the classes, in percent.
        ap: float64 `[C]` AP of every class, in percent (0 for classes
            without a positive).
        num_positives: int64 `[C]` positives per class after relabelling.
        relabelled: True when the rank relabelling changed some label (not
            every class id in `0 .. max` occurs in the labels).
    """

    map: float
    ap: np.ndarray
    num_positives: np.ndarray
    relabelled: bool


def _check_inputs(logits, labels):
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 1:
        raise errors.FeatureShapeError(
            f"logits must be [num_videos, num_classes], got shape "
            f"{logits.shape}")
    if not np.issubdtype(logits.dtype, np.floating):
        logits = logits.astype(np.float32)
    if not np.isfinite(logits).all():
        raise errors.NonFiniteFeatureError("logits contain NaN or inf")
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] != logits.shape[0] or \
            labels.shape[1] < 1:
        raise errors.FeatureShapeError(
            f"labels must be [num_videos] or [num_videos, K] with "
            f"num_videos = {logits.shape[0]}, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind != "f" or not np.array_equal(
                labels, np.round(labels)):
            raise errors.UnknownLabelError(
                f"labels must be integer class ids (-1 = padding), got "
                f"dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    labels = labels.astype(np.int64)
    num_classes = logits.shape[1]
    bad = (labels < -1) | (labels >= num_classes)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise errors.UnknownLabelError(
            f"label {labels[row, col]} of video {row} is outside [-1, "
            f"{num_classes}) (-1 pads, ids index the logits' columns)")
    return logits, labels


def relabel_by_rank(labels):
    """The reference's relabelling: the j-th smallest present id -> j.

    Args:
        labels: int `[N, K]`, -1 = padding.

    Returns:
        A new int64 array of the same shape (-1 kept).

    Example:

    >>> relabel_by_rank(np.array([[-1, 4], [4, 7], [3, -1]])).tolist()
    [[-1, 1], [1, 2], [0, -1]]
    """
    labels = np.asarray(labels, dtype=np.int64)
    present = np.unique(labels[labels >= 0])
    out = labels.copy()
    valid = labels >= 0
    out[valid] = np.searchsorted(present, labels[valid])
    return out


def multi_hot(labels, num_classes):
    """Bool `[N, C]` ground truth of rank-relabelled `[N, K]` labels."""
    gt = np.zeros((labels.shape[0], num_classes), dtype=bool)
    rows, cols = np.nonzero(labels >= 0)
    gt[rows, labels[rows, cols]] = True
    return gt


def softmax(logits):
    """Float32 softmax over the last axis (as the reference computes it)."""
    x = np.asarray(logits, dtype=np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def adafocus_map(logits, labels):
    """AdaFocus' `cal_map`: non-interpolated mAP of softmax scores.

    Args:
        logits: float `[N, C]` video-level logits (AdaFocus: the last
            step's). The softmax is taken here.
        labels: int `[N]` or `[N, K]` class ids, -1 = padding
            (ActivityNet: `labels[:, :1]`; FCVID: every label).

    Returns:
        An `AdaFocusMAP` (`map` in percent, per-class `ap` in percent).

    Raises:
        FeatureShapeError: logits not `[N, C]`, labels of another length.
        NonFiniteFeatureError: NaN or inf logits.
        UnknownLabelError: a label outside `[-1, C)` or not an integer.

    Example:

    >>> adafocus_map(np.zeros((2, 3)), np.array([0, 1])).map  # ties
    50.0
    """
    logits, labels = _check_inputs(logits, labels)
    num_videos, num_classes = logits.shape
    relabelled = relabel_by_rank(labels)
    gt = multi_hot(relabelled, num_classes)
    scores = softmax(logits)
    # Stable descending order: ties keep their input order.
    order = np.argsort(-scores, axis=0, kind="stable")
    truth = np.take_along_axis(gt, order, axis=0)
    precision = np.cumsum(truth, axis=0) / np.arange(
        1, num_videos + 1)[:, None]
    positives = truth.sum(axis=0)
    ap = (precision * truth).sum(axis=0) / np.maximum(positives, 1) * 100.0
    return AdaFocusMAP(map=float(ap.mean()), ap=ap,
                       num_positives=positives.astype(np.int64),
                       relabelled=bool(np.any(relabelled != labels)))


def topk_accuracy(logits, labels, topk=(1,)):
    """Top-k accuracy in percent, on the first label of every video.

    Args:
        logits: float `[N, C]` video-level logits.
        labels: int `[N]` or `[N, K]` (only the first column is used, as
            the reference's training and Mini-Kinetics evaluation do; it
            must not be -1).
        topk: the k values.

    Returns:
        A tuple of floats, one per k (percent).

    Raises:
        FeatureShapeError, NonFiniteFeatureError, UnknownLabelError: as
            `adafocus_map`; also a first label of -1 or a k outside
            `[1, C]`.

    Example:

    >>> topk_accuracy(np.array([[0.1, 0.9, 0.0], [0.5, 0.2, 0.3]]),
    ...               np.array([1, 2]), topk=(1, 2))
    (50.0, 100.0)
    """
    logits, labels = _check_inputs(logits, labels)
    first = labels[:, 0]
    if (first < 0).any():
        raise errors.UnknownLabelError(
            f"video {int(np.argmax(first < 0))} has no label (-1) in the "
            f"first column")
    num_classes = logits.shape[1]
    # Rank of the label's logit: classes scoring higher, plus equal
    # classes with a smaller index (ties by class index).
    mine = np.take_along_axis(logits, first[:, None], axis=1)
    ahead = (logits > mine) | ((logits == mine) & (
        np.arange(num_classes)[None, :] < first[:, None]))
    rank = ahead.sum(axis=1)
    results = []
    for k in topk:
        k = int(k)
        if not 1 <= k <= num_classes:
            raise errors.FeatureShapeError(
                f"top-k needs 1 <= k <= {num_classes} classes, got {k}")
        results.append(float((rank < k).mean() * 100.0))
    return tuple(results)


# The split-list syntax and the labels `cal_map` scores, per --variant.
VARIANTS = {"actnet": "first", "fcvid": "all", "minik": "first"}


def evaluate(split_list, scores_path, variant="actnet", top_k=None,
             min_frames=3):
    """mAP and top-k of a scores file on the videos of an AdaFocus list.

    Args:
        split_list: the validation list (`actnet` / `fcvid`:
            `path,num_frames,label[,label...]`; `minik`: `path num_frames
            label`). Videos with fewer than `min_frames` frames are left
            out, as the authors' loader (and the converter) leave them out.
        scores_path: `.npz` (`video_ids`, `scores` = last-step logits) or
            CSV scores file (`tfaction.evaluation.video_accuracy.
            read_scores`).
        variant: "actnet" (mAP on each video's first label), "fcvid" (on
            all labels) or "minik" (first label; its headline is top-1).
        top_k: k values of the top-k accuracy (first label); None: 1 and
            5 (at most the number of classes).
        min_frames: as the converter's `--min_frames`.

    Returns:
        Dict: `mAP`, `top{k}` (percent), `num_videos`, `num_classes`,
        `relabelled`, `num_short_videos` (left out),
        `num_extra_predictions` (scored videos not in the list).

    Raises:
        ConfigError: unknown variant.
        DataError: a listed video without scores, a label outside the
            scores' classes (named), a malformed list or scores file.

    Example:

    ```python
    evaluate("actnet_val_split.txt", "runs/x/predictions.npz")["mAP"]
    ```
    """
    from tfaction.data.formats import adafocus_lists
    from tfaction.evaluation import video_accuracy

    if variant not in VARIANTS:
        raise errors.ConfigError(f"unknown adafocus_map variant "
                                 f"{variant!r}; expected one of "
                                 f"{sorted(VARIANTS)}")
    entries = adafocus_lists.read_split_list(split_list, variant)
    kept = [e for e in entries if e.num_frames >= min_frames]
    ids, scores = video_accuracy.read_scores(scores_path)
    index = {v: i for i, v in enumerate(ids)}
    missing = [e for e in kept if e.video_path not in index]
    if missing:
        raise errors.DataError(
            f"no scores for {len(missing)} listed video(s), first "
            f"{[e.video_path for e in missing[:3]]}", path=scores_path,
            video_id=missing[0].video_path)
    labels = np.full((len(kept), 3), -1, np.int64)
    for row, entry in enumerate(kept):
        labels[row, :len(entry.labels)] = entry.labels
        if max(entry.labels) >= scores.shape[1]:
            raise errors.UnknownLabelError(
                f"label {max(entry.labels)} but the scores have "
                f"{scores.shape[1]} classes", path=entry.path,
                line=entry.line, video_id=entry.video_path)
    logits = scores[[index[e.video_path] for e in kept]]
    gt = labels if VARIANTS[variant] == "all" else labels[:, :1]
    result = adafocus_map(logits, gt)
    if top_k is None:
        top_k = sorted({1, min(5, scores.shape[1])})
    ks = (top_k,) if np.isscalar(top_k) else tuple(top_k)
    accuracies = topk_accuracy(logits, labels, ks)
    out = {"mAP": result.map}
    out.update({f"top{int(k)}": a for k, a in zip(ks, accuracies)})
    out.update(num_videos=len(kept), num_classes=int(scores.shape[1]),
               relabelled=result.relabelled,
               num_short_videos=len(entries) - len(kept),
               num_extra_predictions=len(ids) - len(kept))
    return out


def run_cli(ground_truth, predictions, options):
    """CLI contract used by `experiments/evaluate.py`.

    Args:
        ground_truth: the AdaFocus validation list (`options["split_list"]`
            wins when given).
        predictions: `.npz` or `.csv` scores file.
        options: dict; uses `split_list`, `variant` ("actnet" default,
            "fcvid", "minik") and `top_k` (int or list, default 1 and 5);
            ignores the rest.

    Returns:
        JSON-serialisable dict with `metric` = "adafocus_map", `variant`
        and the `evaluate` fields.

    Example:

    ```python
    run_cli("actnet_val_split.txt", "predictions.npz", {})["mAP"]
    ```
    """
    variant = options.get("variant") or "actnet"
    result = evaluate(options.get("split_list") or ground_truth, predictions,
                      variant, options.get("top_k"))
    return {"metric": METRIC, "variant": variant, **result}


def format_table(result):
    """Readable summary of a `run_cli` result.

    Args:
        result: dict from `run_cli` or `evaluate`.

    Returns:
        str table: mAP, then the top-k rows, then the number of videos.

    Example:

    >>> print(format_table({"mAP": 75.0, "top1": 70.5, "num_videos": 4}))
    metric          value
    mAP           75.0000
    top1          70.5000
    videos              4
    """
    rows = [("mAP", result["mAP"])]
    rows += [(k, v) for k, v in result.items()
             if k.startswith("top") and isinstance(v, float)]
    lines = [f"{'metric':<10} {'value':>10}"]
    lines += [f"{k:<10} {v:10.4f}" for k, v in rows]
    lines.append(f"{'videos':<10} {int(result['num_videos']):10d}")
    return "\n".join(lines)
