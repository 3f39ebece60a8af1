"""Top-k video accuracy on an HMDB51/UCF101-style split list.

Inputs:

* split list: lines `video_path num_frames class_id` (e.g. `brush_hair/1 409
  0`), as ActionVLAD's `test_split{1,2,3}.txt`; every listed video is scored;
* scores: `.npz` with `video_ids` [N] (str) and `scores` [N, K] (logits or
  probabilities; multi-crop outputs must already be combined), or a CSV
  `video_id,score_0,...,score_{K-1}` (an optional header row whose first field
  is `video_id`). Extra videos in the scores file are ignored (counted).

Top-1 is the argmax with the first index on ties (`np.argmax`); top-k counts a
video correct when its label ranks < k with ties broken by class index, so
top-1 agrees with the argmax. Per-class accuracy is top-1 over the videos of a
class; `mean_class_accuracy` averages it over classes present in the list.

Example:

>>> import numpy as np
>>> topk_correct(np.array([[0.1, 0.9], [0.5, 0.5]]), np.array([1, 1]), 1)
array([ True, False])
"""

import csv
import io
import os

import numpy as np

from tfaction import errors
from tfaction.data import filesystems

METRIC = "video_accuracy"


def read_split_list(path):
    """Reads `video_path num_frames class_id` lines.

    Args:
        path: split list file.

    Returns:
        (video ids list, labels int64 [N]).

    Raises:
        MalformedFileError: wrong field count, non-integer field, duplicate id.

    Example:

    >>> read_split_list("test_split1.txt")  # doctest: +SKIP
    (['brush_hair/1', ...], array([0, ...]))
    """
    ids, labels = [], []
    seen = {}
    try:
        text = filesystems.read_text(path)
    except (OSError, UnicodeDecodeError) as e:
        raise errors.MalformedFileError(f"cannot read split list: {e}",
                                        path=path) from None
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise errors.MalformedFileError(
                "expected 'video_path num_frames class_id'", path=path, line=n)
        try:
            int(parts[1])
            label = int(parts[2])
        except ValueError:
            raise errors.MalformedFileError(
                "num_frames and class_id must be integers", path=path,
                line=n, video_id=parts[0]) from None
        if label < 0:
            raise errors.UnknownLabelError("negative class id", path=path,
                                           line=n, video_id=parts[0])
        if parts[0] in seen:
            raise errors.MalformedFileError(
                f"video listed twice (first on line {seen[parts[0]]})",
                path=path, line=n, video_id=parts[0])
        seen[parts[0]] = n
        ids.append(parts[0])
        labels.append(label)
    if not ids:
        raise errors.MalformedFileError("split list has no videos", path=path)
    return ids, np.array(labels, dtype=np.int64)


def read_scores(path):
    """Reads a scores file (`.npz` with `video_ids`/`scores`, or CSV).

    Args:
        path: `.npz` or `.csv` file.

    Returns:
        (video ids list, float64 scores [N, K]).

    Raises:
        MalformedFileError: missing keys, ragged rows, non-numeric values,
            duplicated video ids.
        NonFiniteFeatureError: NaN or infinite scores.

    Example:

    >>> read_scores("scores.npz")  # doctest: +SKIP
    (['brush_hair/1', ...], array([[...]]))
    """
    path = os.fspath(path)
    if path.endswith(".npz"):
        try:
            with filesystems.load_numpy(path) as z:
                missing = {"video_ids", "scores"} - set(z.files)
                if missing:
                    raise errors.MalformedFileError(
                        f"npz lacks {sorted(missing)}", path=path,
                        key=sorted(missing)[0])
                ids = [str(v) for v in z["video_ids"].tolist()]
                scores = np.asarray(z["scores"], dtype=np.float64)
        except (OSError, ValueError) as e:
            raise errors.MalformedFileError(f"cannot read npz: {e}",
                                            path=path) from None
        if scores.ndim != 2 or scores.shape[0] != len(ids):
            raise errors.MalformedFileError(
                f"scores must be [N, K] with N = len(video_ids) = {len(ids)},"
                f" got {scores.shape}", path=path, key="scores")
        lines = None
    else:
        try:
            f = io.StringIO(filesystems.read_text(path), newline="")
            rows = [(n, r) for n, r in enumerate(csv.reader(f), start=1)
                    if r and any(c.strip() for c in r)]
        except (OSError, csv.Error, UnicodeDecodeError) as e:
            raise errors.MalformedFileError(f"cannot read CSV: {e}",
                                            path=path) from None
        if rows and rows[0][1][0].strip() == "video_id":
            rows = rows[1:]
        if not rows:
            raise errors.MalformedFileError("no score rows", path=path)
        width = len(rows[0][1])
        for n, r in rows:
            if len(r) != width or width < 2:
                raise errors.MalformedFileError(
                    f"expected {width} columns (video_id + scores), got "
                    f"{len(r)}", path=path, line=n)
        ids = [r[0].strip() for _, r in rows]
        lines = [n for n, _ in rows]
        try:
            scores = np.array([r[1:] for _, r in rows]).astype(np.float64)
        except ValueError:
            for n, r in rows:
                try:
                    [float(v) for v in r[1:]]
                except ValueError:
                    raise errors.MalformedFileError(
                        "non-numeric score", path=path, line=n,
                        video_id=r[0]) from None
            raise
    bad = ~np.isfinite(scores).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise errors.NonFiniteFeatureError(
            "score is NaN or infinite", path=path, video_id=ids[i],
            line=None if lines is None else lines[i])
    first = {}
    for i, v in enumerate(ids):
        if v in first:
            raise errors.MalformedFileError(
                "video id appears twice", path=path, video_id=v,
                line=None if lines is None else lines[i])
        first[v] = i
    return ids, scores


def topk_correct(scores, labels, k):
    """Whether each label ranks in the top k (ties: lower class index first).

    Args:
        scores: float [N, K].
        labels: int [N] in [0, K).
        k: positive int <= K.

    Returns:
        bool [N].

    Example:

    >>> topk_correct(np.array([[3.0, 1.0, 2.0]]), np.array([2]), 2)
    array([ True])
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    s_lab = scores[np.arange(labels.shape[0]), labels][:, None]
    cls = np.arange(scores.shape[1])[None, :]
    rank = ((scores > s_lab) | ((scores == s_lab) & (cls < labels[:, None])))
    return rank.sum(axis=1) < k


def evaluate(split_list, scores_path, top_k=(1, 5)):
    """Video accuracy of a scores file on the videos of a split list.

    Args:
        split_list: `video_path num_frames class_id` list (the test split).
        scores_path: `.npz` or `.csv` scores file.
        top_k: int or sequence of ints (each <= number of classes).

    Returns:
        dict: `top{k}` for each k, `per_class_accuracy` {class_id: top-1},
        `mean_class_accuracy`, `num_videos`, `num_classes`,
        `num_extra_predictions` (scored videos not in the list, ignored).

    Raises:
        DataError: a listed video has no scores (named), a label >= K.
        ConfigError: a k outside [1, K].

    Example:

    >>> evaluate("test_split1.txt", "scores.npz")["top1"]  # doctest: +SKIP
    0.665
    """
    ids, labels = read_split_list(split_list)
    p_ids, scores = read_scores(scores_path)
    index = {v: i for i, v in enumerate(p_ids)}
    missing = [v for v in ids if v not in index]
    if missing:
        raise errors.DataError(
            f"no scores for {len(missing)} listed video(s), first "
            f"{missing[:3]}", path=scores_path, video_id=missing[0])
    num_classes = scores.shape[1]
    too_big = labels >= num_classes
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        raise errors.UnknownLabelError(
            f"class id {labels[i]} but scores have {num_classes} classes",
            path=split_list, video_id=ids[i])
    rows = np.array([index[v] for v in ids], dtype=np.int64)
    result = accuracies(scores[rows], labels, top_k)
    result.update(num_videos=len(ids), num_classes=int(num_classes),
                  num_extra_predictions=len(p_ids) - len(ids))
    return result


def accuracies(scores, labels, top_k=(1, 5)):
    """Top-k, per-class and mean class accuracy of aligned scores.

    Args:
        scores: [N, K] scores of the N videos.
        labels: int [N] class ids (< K).
        top_k: int or sequence of ints in [1, K].

    Returns:
        dict: `top{k}` for each k, `per_class_accuracy` {class_id: top-1}
        over the classes present, `mean_class_accuracy`.

    Raises:
        ConfigError: a k outside [1, K].

    Example:

    >>> accuracies(np.eye(2), np.array([0, 0]), top_k=1)["top1"]
    0.5
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels, np.int64)
    num_classes = scores.shape[1]
    ks = (top_k,) if np.isscalar(top_k) else tuple(top_k)
    for k in ks:
        if not 1 <= int(k) <= num_classes:
            raise errors.ConfigError(
                f"top_k {k} outside [1, {num_classes}] classes")
    result = {f"top{int(k)}": float(topk_correct(scores, labels,
                                                 int(k)).mean())
              for k in ks}
    top1 = np.argmax(scores, axis=1) == labels
    present = np.unique(labels)
    per_class = (np.bincount(labels, weights=top1, minlength=num_classes)
                 / np.maximum(np.bincount(labels, minlength=num_classes), 1))
    result["per_class_accuracy"] = {int(c): float(per_class[c])
                                    for c in present}
    result["mean_class_accuracy"] = float(per_class[present].mean())
    return result


def run_cli(ground_truth, predictions, options):
    """CLI contract used by `experiments/evaluate.py`.

    Args:
        ground_truth: split list (`video_path num_frames class_id`); if
            `options["split_list"]` is given it is used instead.
        predictions: `.npz` or `.csv` scores file.
        options: dict; uses `split_list`, `top_k` (int or list, default
            [1, 5]); ignores the rest.

    Returns:
        JSON-serialisable dict with `metric` = "video_accuracy" and the
        `evaluate` fields (per-class keys as strings).

    Example:

    >>> run_cli("test_split1.txt", "s.npz", {})["top1"]  # doctest: +SKIP
    0.665
    """
    split = options.get("split_list") or ground_truth
    top_k = options.get("top_k") or (1, 5)
    res = evaluate(split, predictions, top_k)
    res["per_class_accuracy"] = {str(k): v for k, v in
                                 res["per_class_accuracy"].items()}
    return {"metric": METRIC, **res}


def format_table(result):
    """Readable summary of a `run_cli` result.

    Args:
        result: dict from `run_cli` or `evaluate`.

    Returns:
        str table: top-k rows, mean class accuracy, then per-class accuracy.

    Example:

    >>> print(format_table({"top1": 0.5, "mean_class_accuracy": 0.5,
    ...                     "per_class_accuracy": {"0": 0.5}}))
    metric                 value
    top1                  0.5000
    mean_class_accuracy   0.5000
    class 0               0.5000
    """
    rows = [(k, v) for k, v in result.items()
            if k.startswith("top") and isinstance(v, float)]
    rows.append(("mean_class_accuracy", result["mean_class_accuracy"]))
    rows += [(f"class {c}", v)
             for c, v in result.get("per_class_accuracy", {}).items()]
    lines = [f"{'metric':<20} {'value':>7}"]
    lines += [f"{k:<20} {v:7.4f}" for k, v in rows]
    return "\n".join(lines)
