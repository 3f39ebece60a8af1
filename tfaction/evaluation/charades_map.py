"""Charades v1 classification mAP, as the official `Charades_v1_classify.m`.

* GT: the Charades CSV (`Charades_v1_test.csv`), columns include `id` and
  `actions` = `c092 11.90 21.20;c147 0.00 12.60` (class `cNNN` -> NNN,
  0-based). Videos with an empty `actions` field are never registered: their
  scores stay -inf and they count as negatives for every class.
* Submission: one line per video, `id` then `num_classes` scores separated by
  spaces or tabs. Videos of the GT missing from the submission keep -inf
  scores (the official code warns; listed in `missing_videos`); submission ids
  not in the GT are ignored (counted).
* Per class: rank by `sort(-score)` with MATLAB's stable sort (ties in GT-file
  order); precision at every rank; AP = sum of precision at positive ranks /
  #positives (non-interpolated). mAP = plain mean over classes (NaN if a class
  has no positive, as in MATLAB); WAP = sum(AP * npos) / sum(npos).
  `mAP_nanmean` is the Python port's `nanmean` variant.

Example:

>>> import numpy as np
>>> ap, npos = per_class_ap(np.array([[0.9], [0.8], [0.1]]),
...                         np.array([[0], [1], [1]], bool))
>>> round(float(ap[0]), 6), int(npos[0])
(0.583333, 2)
"""

import csv
import io
import math

import numpy as np

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data.formats import charades_csv

METRIC = "charades_map"
# The CSV format is shared with the Charades frames converter.
NUM_CLASSES = charades_csv.NUM_CLASSES
parse_actions = charades_csv.parse_actions
iter_charades_rows = charades_csv.iter_charades_rows


def read_charades_csv(path, num_classes=NUM_CLASSES):
    """Reads the Charades annotation CSV.

    Args:
        path: CSV with a header containing `id` and `actions`.
        num_classes: number of classes (157).

    Returns:
        (video ids list in file order, bool labels [N, num_classes],
        bool mask [N] of videos with at least one action).

    Raises:
        MalformedFileError: missing columns, bad action token (line named),
            duplicated id.
        UnknownLabelError: class index >= num_classes.

    Example:

    >>> read_charades_csv("Charades_v1_test.csv")  # doctest: +SKIP
    (['YSKX3', ...], array(...), array(...))
    """
    ids, rows, cols = [], [], []
    try:
        f = io.StringIO(filesystems.read_text(path), newline="")
        for _, vid, actions, _ in iter_charades_rows(f, path, num_classes):
            for cls, _, _ in actions:
                rows.append(len(ids))
                cols.append(cls)
            ids.append(vid)
    except (OSError, csv.Error, UnicodeDecodeError) as e:
        raise errors.MalformedFileError(f"cannot read CSV: {e}",
                                        path=path) from None
    labels = np.zeros((len(ids), num_classes), dtype=bool)
    labels[rows, cols] = True
    return ids, labels, labels.any(axis=1)


def read_submission(path, num_classes=NUM_CLASSES):
    """Reads a submission: `id s_0 ... s_{C-1}` per line (spaces or tabs).

    Args:
        path: text file.
        num_classes: expected number of scores per line.

    Returns:
        dict video id -> float64 [num_classes].

    Raises:
        MalformedFileError: wrong score count, non-numeric or NaN score,
            duplicated id (file and line named).

    Example:

    >>> read_submission("submission.txt")  # doctest: +SKIP
    {'YSKX3': array([...]), ...}
    """
    try:
        text = filesystems.read_text(path)
    except (OSError, UnicodeDecodeError) as e:
        raise errors.MalformedFileError(f"cannot read submission: {e}",
                                        path=path) from None
    out = {}
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        vid = parts[0]
        if len(parts) != num_classes + 1:
            raise errors.MalformedFileError(
                f"expected an id and {num_classes} scores, got "
                f"{len(parts) - 1} scores", path=path, line=n, video_id=vid)
        try:
            vals = np.array(parts[1:], dtype=np.float64)
        except ValueError:
            raise errors.MalformedFileError("non-numeric score", path=path,
                                            line=n, video_id=vid) from None
        if np.isnan(vals).any():
            raise errors.MalformedFileError("NaN score", path=path, line=n,
                                            video_id=vid)
        if vid in out:
            raise errors.MalformedFileError("video id appears twice",
                                            path=path, line=n, video_id=vid)
        out[vid] = vals
    return out


def per_class_ap(scores, labels):
    """Non-interpolated AP per class (THUMOSeventclspr), stable ranking.

    Args:
        scores: float [N, C] (-inf allowed).
        labels: bool [N, C].

    Returns:
        (AP float64 [C] with NaN where a class has no positive,
        npos int64 [C]).

    Example:

    >>> per_class_ap(np.array([[1.0], [1.0]]), np.array([[0], [1]], bool))[0]
    array([0.5])
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    order = np.argsort(-scores, axis=0, kind="stable")
    tp = np.take_along_axis(labels, order, axis=0)
    cum_tp = np.cumsum(tp, axis=0)
    prec = cum_tp / np.arange(1, scores.shape[0] + 1)[:, None]
    npos = labels.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(tp, prec, 0.0).sum(axis=0) / npos
    return ap, npos.astype(np.int64)


def evaluate(groundtruth, submission, num_classes=NUM_CLASSES):
    """Charades mAP / WAP of a submission file.

    Args:
        groundtruth: Charades CSV (`id`, `actions` columns).
        submission: submission text file.
        num_classes: number of classes (157).

    Returns:
        dict: `mAP`, `WAP`, `mAP_nanmean`, `ap_per_class` {"cNNN": AP},
        `num_videos`, `num_videos_without_actions`, `missing_videos` (list),
        `num_ignored_predictions`.

    Example:

    >>> evaluate("Charades_v1_test.csv", "sub.txt")["mAP"]  # doctest: +SKIP
    0.1766
    """
    ids, labels, registered = read_charades_csv(groundtruth, num_classes)
    preds = read_submission(submission, num_classes)
    scores = np.full((len(ids), num_classes), -np.inf)
    missing = []
    for i, vid in enumerate(ids):
        if not registered[i]:
            continue
        if vid in preds:
            scores[i] = preds[vid]
        else:
            missing.append(vid)
    ap, npos = per_class_ap(scores, labels)
    m_ap = float(np.mean(ap))
    with np.errstate(invalid="ignore"):
        wap = float(np.sum(ap * npos) / np.sum(npos))
    gt_ids = set(ids)
    return {"mAP": m_ap, "WAP": wap,
            "mAP_nanmean": (float(np.nanmean(ap)) if np.isfinite(ap).any()
                            else math.nan),
            "ap_per_class": {f"c{c:03d}": float(ap[c])
                             for c in range(num_classes)},
            "num_videos": len(ids),
            "num_videos_without_actions": int((~registered).sum()),
            "missing_videos": missing,
            "num_ignored_predictions": sum(v not in gt_ids for v in preds)}


def _json(x):
    return None if not math.isfinite(x) else x


def run_cli(ground_truth, predictions, options):
    """CLI contract used by `experiments/evaluate.py`.

    Args:
        ground_truth: Charades CSV.
        predictions: submission text file.
        options: dict; uses `num_classes` (default 157); ignores the rest.

    Returns:
        JSON-serialisable dict, `metric` = "charades_map" plus the `evaluate`
        fields (NaN written as null).

    Example:

    >>> run_cli("Charades_v1_test.csv", "sub.txt", {})["mAP"]  # doctest: +SKIP
    0.1766
    """
    res = evaluate(ground_truth, predictions,
                   int(options.get("num_classes") or NUM_CLASSES))
    for k in ("mAP", "WAP", "mAP_nanmean"):
        res[k] = _json(res[k])
    res["ap_per_class"] = {k: _json(v) for k, v in res["ap_per_class"].items()}
    return {"metric": METRIC, **res}


def format_table(result):
    """Readable summary: mAP, WAP, coverage, then AP per class.

    Args:
        result: dict from `run_cli` or `evaluate`.

    Returns:
        str.

    Example:

    >>> print(format_table({"mAP": 0.5, "WAP": 0.25,
    ...                     "ap_per_class": {"c000": 0.5}}))
    mAP     0.5000
    WAP     0.2500
    c000    0.5000
    """
    def fmt(v):
        return "   n/a" if v is None or not math.isfinite(v) else f"{v:.4f}"

    lines = [f"{'mAP':<8}{fmt(result['mAP'])}",
             f"{'WAP':<8}{fmt(result['WAP'])}"]
    if result.get("missing_videos"):
        lines.append(f"missing videos: {len(result['missing_videos'])}")
    lines += [f"{k:<8}{fmt(v)}" for k, v in result["ap_per_class"].items()]
    return "\n".join(lines)
