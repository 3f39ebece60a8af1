"""AVA frame-AP@0.5 IoU, number for number with the official evaluators.

Reproduces `activitynet/ActivityNet` `Evaluation/get_ava_performance.py` (2020
version, 2-column "evaluated key-frame without actions" rows) with its vendored
TF Object Detection API code (PascalDetectionEvaluator), and, with
`variant="slowfast"`, `facebookresearch/SlowFast` `ava_eval_helper.py`
(GT without 2-column rows plus an exclusion list); the file formats are
described in `tfaction.evaluation.ava_io`.

Semantics (both variants unless noted):

* rows whose action id is not in the label map are dropped (their key-frame
  still counts as annotated);
* official: only the top 50 (box, action) rows per key-frame are kept, chosen
  by the reference min-heap (a row replaces the heap minimum only if its score
  is strictly greater); key-frames are then ordered by descending score.
  SlowFast: no cap, file order;
* official: detections on key-frames absent from the GT CSV are ignored;
  SlowFast: they are false positives (unless excluded);
* detection boxes with x2 <= x1 or y2 <= y1 are removed after the cap (not
  FPs; counted in `details["n_invalid_boxes_removed"]`);
* per key-frame and class, detections in order look only at their argmax-IoU
  GT box (first on ties): IoU >= 0.5 and that GT not yet matched -> TP, else FP
  (a duplicate never falls through to another GT);
* per class, key-frames in order of first appearance in the detection CSV are
  concatenated, ranked like `argsort(scores)[::-1]` (ties: reverse
  concatenation order, which is what NumPy gives for small arrays; for large
  tied arrays the reference order is implementation-defined) and scored by
  VOC all-point interpolated AP;
* classes without GT have AP NaN and are excluded from the mean (`nanmean`).

Invalid input (wrong column count, non-numeric or non-finite values, NaN
scores, inverted GT boxes, unknown variant) raises `tfaction.errors` errors.

Example:

>>> import numpy as np
>>> ap = voc_average_precision(np.array([.9, .85, .7, .6, .95]),
...                            np.array([1, 0, 1, 0, 0], bool), 3)
>>> round(ap, 6)
0.333333
"""

import heapq
import math

import numpy as np

from tfaction import errors
from tfaction.evaluation import ava_io
from tfaction.ops import boxes as box_ops

METRIC = "ava_frame_ap"
IOU_THRESHOLD = 0.5
OFFICIAL_CAPACITY = 50


def reference_descending_order(scores):
    """Indices sorting `scores` like `np.argsort(scores)[::-1]` (small input).

    Descending scores, ties in reverse input order (deterministic for any size).

    Args:
        scores: float array [N].

    Returns:
        int64 array [N].

    Example:

    >>> reference_descending_order(np.array([0.5, 0.9, 0.5]))
    array([1, 2, 0])
    """
    s = np.asarray(scores, dtype=np.float64)
    n = s.shape[0]
    return (n - 1 - np.argsort(-s[::-1], kind="stable")).astype(np.int64)


def voc_average_precision(scores, tp, num_gt):
    """VOC all-point interpolated AP as the TF OD API `metrics` module.

    Args:
        scores: float array [N] of detection scores.
        tp: bool array [N], True for true positives.
        num_gt: number of GT instances of the class.

    Returns:
        AP as a float; NaN when `num_gt == 0`; 0.0 with no detections.

    Example:

    >>> voc_average_precision(np.array([0.9]), np.array([True]), 2)
    0.5
    """
    scores = np.asarray(scores, dtype=np.float64)
    tp = np.asarray(tp, dtype=bool)
    if num_gt == 0:
        return math.nan
    if int(tp.sum()) > num_gt:
        raise ValueError("more true positives than GT instances")
    if scores.size == 0:
        return 0.0
    labels = tp[reference_descending_order(scores)].astype(np.int64)
    cum_tp = np.cumsum(labels)
    cum_fp = np.cumsum(1 - labels)
    precision = cum_tp.astype(np.float64) / (cum_tp + cum_fp)
    recall = cum_tp.astype(np.float64) / num_gt
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))


def _heap_order(scores, labels, boxes, rows, capacity):
    """Exact reference reader for one key-frame: kept rows, in output order."""
    heap = []
    for r in rows:
        item = (scores[r], labels[r]) + tuple(boxes[r])
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, item)
        elif item[0] > heap[0][0]:
            heapq.heapreplace(heap, item)
    pool = {}
    for r in rows:  # identical tuples are interchangeable rows
        pool.setdefault((scores[r], labels[r]) + tuple(boxes[r]), []).append(r)
    ordered = sorted(heap, key=lambda t: -t[0])
    return [pool[t].pop() for t in ordered]


def _official_order(key_idx, scores, labels, boxes, capacity):
    """Rows kept by the official reader and their rank within the key-frame.

    Vectorised; key-frames where ties make the heap's choices matter (a tie at
    the capacity boundary, or two kept rows of one class with equal scores)
    are replayed exactly with `heapq`.

    Returns:
        (kept row indices, within-key-frame rank of each kept row).
    """
    n = key_idx.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((np.arange(n), -scores, key_idx))
    k_sorted = key_idx[order]
    starts = np.flatnonzero(np.r_[True, k_sorted[1:] != k_sorted[:-1]])
    pos = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    counts = np.diff(np.r_[starts, n])
    s_sorted = scores[order]
    replay = np.zeros(n, dtype=bool)  # per sorted row: its key needs replay
    if capacity > 0:
        keep = pos < capacity
        over = np.flatnonzero(counts > capacity)
        boundary = s_sorted[starts[over] + capacity - 1]
        tie = s_sorted[starts[over] + capacity] == boundary
        for k in over[tie]:
            replay[starts[k]:starts[k] + counts[k]] = True
    else:
        keep = np.ones(n, dtype=bool)
    kept = order[keep]
    code = np.lexsort((scores[kept], labels[kept], key_idx[kept]))
    same = ((np.diff(key_idx[kept][code]) == 0)
            & (np.diff(labels[kept][code]) == 0)
            & (np.diff(scores[kept][code]) == 0))
    tied_keys = np.unique(key_idx[kept][code][1:][same])
    replay |= np.isin(k_sorted, tied_keys)
    rank = np.full(n, -1, dtype=np.int64)
    plain = keep & ~replay
    rank[order[plain]] = pos[plain]
    for k in np.flatnonzero(np.add.reduceat(replay, starts) > 0):
        rows = np.sort(order[starts[k]:starts[k] + counts[k]])
        chosen = _heap_order(scores, labels, boxes, rows, capacity)
        rank[chosen] = np.arange(len(chosen))
    kept = np.flatnonzero(rank >= 0)
    return kept, rank[kept]


def _match(det_key, det_cls, det_box, gt_key, gt_cls, gt_box, n_cls_code):
    """TP flags for detections already in processing order (argmax-IoU GT)."""
    d_code = det_key * n_cls_code + det_cls
    g_code = gt_key * n_cls_code + gt_cls
    lo = np.searchsorted(g_code, d_code, side="left")
    hi = np.searchsorted(g_code, d_code, side="right")
    cnt = hi - lo
    tp = np.zeros(det_key.shape[0], dtype=bool)
    has = np.flatnonzero(cnt > 0)
    if has.size == 0:
        return tp
    c = cnt[has]
    pair_det = np.repeat(has, c)
    seg_start = np.cumsum(np.r_[0, c[:-1]])
    within = np.arange(pair_det.shape[0]) - np.repeat(seg_start, c)
    pair_gt = np.repeat(lo[has], c) + within
    iou = box_ops.paired_box_iou(det_box[pair_det], gt_box[pair_gt])
    iou_max = np.maximum.reduceat(iou, seg_start)
    is_max = iou == np.repeat(iou_max, c)
    big = np.iinfo(np.int64).max
    first = np.minimum.reduceat(np.where(is_max, within, big),
                                seg_start)
    best_gt = lo[has] + first
    cand = iou_max >= IOU_THRESHOLD
    _, first_det = np.unique(best_gt[cand], return_index=True)
    tp[has[np.flatnonzero(cand)[first_det]]] = True
    return tp


def evaluate(groundtruth, detections, label_map, excluded_timestamps=None,
             variant="official"):
    """Frame-AP@0.5 IoU of an AVA detection CSV against a GT CSV.

    Args:
        groundtruth: GT CSV path.
        detections: detection CSV path.
        label_map: label map path (pbtxt or JSON list), or a list of
            `(id, name)` pairs.
        excluded_timestamps: optional CSV of `video_id,timestamp` key-frames
            removed from GT and detections (SlowFast; also honoured in the
            official variant, as the pre-2020 official script did).
        variant: "official" (ActivityNet 2020) or "slowfast".

    Returns:
        dict: `mAP` (nanmean over classes), `ap_per_class` {name: AP or NaN},
        `num_gt_per_class` {name: int}, `variant`, `details` (counts of
        dropped/ignored rows).

    Raises:
        tfaction.errors.DataError: malformed files, inverted GT boxes.
        tfaction.errors.ConfigError: unknown variant.

    Example:

    >>> r = evaluate("gt.csv", "det.csv", "labels.pbtxt")  # doctest: +SKIP
    >>> r["mAP"]  # doctest: +SKIP
    0.6666666666666666
    """
    ava_io._check_variant(variant)
    classes = (ava_io.read_label_map(label_map)
               if not isinstance(label_map, (list, tuple)) else list(label_map))
    class_ids = np.array([c for c, _ in classes], dtype=np.int64)
    gt = ava_io.read_box_csv(groundtruth, "groundtruth", variant)
    det = ava_io.read_box_csv(detections, "detections", variant)
    excluded = ava_io.read_exclusions(excluded_timestamps, variant)

    inverted = ~((gt.boxes[:, 0] <= gt.boxes[:, 2])
                 & (gt.boxes[:, 1] <= gt.boxes[:, 3]))
    if inverted.any():
        i = int(np.flatnonzero(inverted)[0])
        raise errors.MalformedFileError(
            "ground-truth box has x2 < x1 or y2 < y1", path=groundtruth,
            line=int(gt.lines[i]), video_id=gt.keys[i].rsplit(",", 1)[0])

    details = {"n_gt_rows": int(gt.labels.size),
               "n_detection_rows": int(det.labels.size)}
    gt_in_map = np.isin(gt.labels, class_ids)
    det_in_map = np.isin(det.labels, class_ids)
    details["n_gt_rows_not_in_label_map"] = int((~gt_in_map).sum())
    details["n_detection_rows_not_in_label_map"] = int((~det_in_map).sum())

    gt_keys_all = [k for k in gt.all_keys if k not in excluded]
    universe = {k: i for i, k in enumerate(gt_keys_all)}
    for k in dict.fromkeys(det.keys[det_in_map].tolist()):  # first appearance
        if k not in universe:
            universe[k] = len(universe)
    key_of = np.vectorize(universe.get, otypes=[np.int64])

    def is_excluded(keys):
        return np.fromiter((k in excluded for k in keys), dtype=bool,
                           count=len(keys))

    g_sel = gt_in_map & ~is_excluded(gt.keys)
    g_key = key_of(gt.keys[g_sel]) if g_sel.any() else np.zeros(0, np.int64)
    g_cls, g_box, g_score = gt.labels[g_sel], gt.boxes[g_sel], gt.scores[g_sel]

    d_excl = det_in_map & is_excluded(det.keys)
    details["n_detection_rows_excluded"] = int(d_excl.sum())
    d_idx = np.flatnonzero(det_in_map & ~d_excl)
    d_key = key_of(det.keys[d_idx]) if d_idx.size else np.zeros(0, np.int64)
    # Key-frames are processed in order of their first (in-map) detection row.
    first_seen = {k: i for i, k in enumerate(dict.fromkeys(d_key.tolist()))}
    d_pos = np.array([first_seen[k] for k in d_key.tolist()], dtype=np.int64)
    if variant == "official":
        in_gt = d_key < len(gt_keys_all)
        details["n_detection_rows_ignored_not_in_gt"] = int((~in_gt).sum())
        details["n_keyframes_ignored_not_in_gt"] = int(
            np.unique(d_key[~in_gt]).size)
        d_idx, d_key, d_pos = d_idx[in_gt], d_key[in_gt], d_pos[in_gt]
        kept, rank = _official_order(d_key, det.scores[d_idx],
                                     det.labels[d_idx], det.boxes[d_idx],
                                     OFFICIAL_CAPACITY)
        details["n_detection_rows_over_top50"] = int(d_idx.size - kept.size)
        d_idx, d_key, d_pos = d_idx[kept], d_key[kept], d_pos[kept]
        g_kept, g_rank = _official_order(g_key, g_score, g_cls, g_box, 0)
    else:
        rank = np.arange(d_idx.size)
        g_kept, g_rank = np.arange(g_key.size), np.arange(g_key.size)

    valid = box_ops.valid_box_mask(det.boxes[d_idx])
    details["n_invalid_boxes_removed"] = int((~valid).sum())
    proc = np.lexsort((rank[valid], d_pos[valid]))
    d_idx, d_key = d_idx[valid][proc], d_key[valid][proc]

    n_code = int(max(class_ids.max(), gt.labels.max(initial=0),
                     det.labels.max(initial=0))) + 1
    g_order = np.lexsort((g_rank, g_cls[g_kept], g_key[g_kept]))
    g_sorted = g_kept[g_order]
    tp = _match(d_key, det.labels[d_idx], det.boxes[d_idx], g_key[g_sorted],
                g_cls[g_sorted], g_box[g_sorted], n_code)

    d_cls, d_score = det.labels[d_idx], det.scores[d_idx]
    ap_per_class, num_gt = {}, {}
    for cid, name in classes:
        n_gt = int((g_cls == cid).sum())
        m = d_cls == cid
        num_gt[name] = n_gt
        ap_per_class[name] = voc_average_precision(d_score[m], tp[m], n_gt)
    aps = np.array(list(ap_per_class.values()), dtype=np.float64)
    m_ap = float(np.nanmean(aps)) if np.isfinite(aps).any() else math.nan
    details["n_keyframes_gt"] = len(gt_keys_all)
    details["n_classes_with_gt"] = int(np.isfinite(aps).sum())
    return {"mAP": m_ap, "ap_per_class": ap_per_class,
            "num_gt_per_class": num_gt, "variant": variant,
            "details": details}


def _json_float(x):
    return None if x is None or not math.isfinite(x) else float(x)


def run_cli(ground_truth, predictions, options):
    """CLI contract used by `experiments/evaluate.py`.

    Args:
        ground_truth: GT CSV path.
        predictions: detection CSV path.
        options: dict; uses `label_map` (required), `excluded_timestamps`,
            `variant` ("official" default, or "slowfast"); ignores the rest.

    Returns:
        JSON-serialisable dict `{"metric": "ava_frame_ap", "mAP",
        "ap_per_class", "num_gt_per_class", "variant", "details"}`; classes
        without GT (NaN) are written as null.

    Raises:
        tfaction.errors.ConfigError: `label_map` missing.

    Example:

    >>> opts = {"label_map": "lm.pbtxt"}
    >>> run_cli("gt.csv", "det.csv", opts)  # doctest: +SKIP
    {'metric': 'ava_frame_ap', 'mAP': 0.666..., ...}
    """
    if not options.get("label_map"):
        raise errors.ConfigError("ava_frame_ap needs options['label_map'] "
                                 "(the AVA label map pbtxt)")
    res = evaluate(ground_truth, predictions, options["label_map"],
                   options.get("excluded_timestamps"),
                   options.get("variant") or "official")
    return {"metric": METRIC, "mAP": _json_float(res["mAP"]),
            "ap_per_class": {k: _json_float(v)
                             for k, v in res["ap_per_class"].items()},
            "num_gt_per_class": res["num_gt_per_class"],
            "variant": res["variant"], "details": res["details"]}


def format_table(result):
    """Readable table of a `run_cli` (or `evaluate`) result.

    Args:
        result: dict with `mAP`, `ap_per_class` and optionally
            `num_gt_per_class`.

    Returns:
        str: one line per class (classes without GT shown as "n/a") and the mAP.

    Example:

    >>> print(format_table({"mAP": 0.5, "ap_per_class": {"sit": 0.5}}))
    class  #gt      AP
    sit      -  0.5000
    mAP         0.5000
    """
    aps = result["ap_per_class"]
    ngt = result.get("num_gt_per_class", {})
    width = max([len("class"), len("mAP")] + [len(k) for k in aps])
    lines = [f"{'class':<{width}}  #gt      AP"]
    for name, ap in aps.items():
        val = _json_float(ap)
        shown = "     n/a" if val is None else f"{val:8.4f}"
        lines.append(f"{name:<{width}}  {str(ngt.get(name, '-')):>3}{shown}")
    m = _json_float(result["mAP"])
    lines.append(f"{'mAP':<{width}}     " + ("     n/a" if m is None
                                             else f"{m:8.4f}"))
    return "\n".join(lines)
