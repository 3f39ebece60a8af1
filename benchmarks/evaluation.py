"""Benchmark of ActivityNet detection mAP; prints one JSON line.

ActivityNet 1.3 validation GT from the BSN files (4,728 videos), 100
predictions per video generated deterministically (seed 0: jittered copies of
the GT with the right or a random label, the rest random segments and
labels), 10 tIoU thresholds linspace(0.5, 0.95, 10). Times
`evaluate_detection` on the loaded GT and predictions (best of 3), and a
straightforward per-prediction Python loop written from the official
algorithm on a subset of classes, extrapolated by prediction count to all
classes. The loop uses nothing of tfaction's metric: it ranks predictions
with NumPy's own `argsort()[::-1]`, as the official code does (its tie order
may depend on the CPU's NumPy kernels, which tfaction's `numpy_sort` does
not), and interpolates precision as the official `interpolated_prec_rec`;
the JSON reports the largest AP difference from tfaction's, and the same
for the loop ranked in NumPy's generic tie order (`common.
official_score_order`, which tfaction follows on every CPU).

Usage:
    python benchmarks/evaluation.py [--real_data ../shared/data/real]
"""

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tfaction.evaluation import activitynet_detection as det  # noqa: E402
from tfaction.evaluation import common  # noqa: E402
from tfaction.evaluation import ground_truth as gt_lib  # noqa: E402


def make_predictions(gt, per_video=100, seed=0):
    """Deterministic predictions: ~ half near GT, the rest random."""
    rng = np.random.default_rng(seed)
    classes = gt.classes()
    vids, segs, scores, labels = [], [], [], []
    for v in range(len(gt.video_ids)):
        idx = np.flatnonzero(gt.video == v)
        dur = max(float(gt.segments[idx].max()) if idx.size else 100.0, 1.0)
        n_near = per_video // 2
        src = rng.choice(idx, n_near) if idx.size else np.array([], int)
        for i in src:
            s, e = gt.segments[i]
            jit = (e - s + 1.0) * 0.15
            a, b = s + rng.normal(0, jit), e + rng.normal(0, jit)
            segs.append([min(a, b), max(a, b)])
            labels.append(gt.labels[i] if rng.random() < 0.8 else
                          classes[rng.integers(len(classes))])
        for _ in range(per_video - len(src)):
            a, b = np.sort(rng.uniform(0, dur, 2))
            segs.append([a, b])
            labels.append(classes[rng.integers(len(classes))])
        vids.extend([v] * per_video)
        scores.extend(np.round(rng.random(per_video), 3))  # some ties
    return common.make_predictions(gt.video_ids, vids, segs, scores, labels,
                                   path="<synthetic>")


def loop_ap(gt_vid, gt_seg, p_vid, p_seg, p_score, thresholds,
            order=None):
    """Per-prediction Python loop of the official algorithm (independent).

    `order`: the ranking of the predictions; default NumPy's own
    `argsort()[::-1]` on this machine, as the official code.
    """
    if order is None:
        order = np.asarray(p_score).argsort()[::-1]
    npos = len(gt_vid)
    by_video = {}
    for j, v in enumerate(gt_vid):
        by_video.setdefault(v, []).append(j)
    lock = -np.ones((len(thresholds), npos))
    tp = np.zeros((len(thresholds), len(order)))
    fp = np.zeros((len(thresholds), len(order)))
    for idx, i in enumerate(order):
        js = by_video.get(p_vid[i])
        if js is None:
            fp[:, idx] = 1
            continue
        tiou = np.array([_iou(p_seg[i], gt_seg[j]) for j in js])
        srt = tiou.argsort()[::-1]
        for t, thr in enumerate(thresholds):
            for k in srt:
                if tiou[k] < thr:
                    fp[t, idx] = 1
                    break
                if lock[t, js[k]] >= 0:
                    continue
                tp[t, idx] = 1
                lock[t, js[k]] = idx
                break
            if fp[t, idx] == 0 and tp[t, idx] == 0:
                fp[t, idx] = 1
    tpc, fpc = np.cumsum(tp, 1), np.cumsum(fp, 1)
    precision, recall = tpc / (tpc + fpc), tpc / npos
    return np.array([_interpolated_prec_rec(precision[t], recall[t])
                     for t in range(len(thresholds))])


def _interpolated_prec_rec(prec, rec):
    """The official VOC-style interpolation, element by element."""
    mprec = [0.0] + list(prec) + [0.0]
    mrec = [0.0] + list(rec) + [1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    return float(sum((mrec[i] - mrec[i - 1]) * mprec[i]
                     for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]))


def _iou(p, g):
    inter = max(0.0, min(p[1], g[1]) - max(p[0], g[0]))
    union = (g[1] - g[0]) + (p[1] - p[0]) - inter
    return inter / union if union else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--real_data", default=str(
        pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
        / "real"))
    parser.add_argument("--loop_classes", type=int, default=8)
    args = parser.parse_args()
    real = pathlib.Path(args.real_data)
    t0 = time.perf_counter()
    gt = gt_lib.load_ground_truth(real / "anet_anno_action.json",
                                  "validation",
                                  video_info=real / "video_info_new.csv")
    t_load = time.perf_counter() - t0
    preds = make_predictions(gt)
    thresholds = np.linspace(0.5, 0.95, 10)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = det.evaluate_detection(gt, preds, tiou_thresholds=thresholds)
        times.append(time.perf_counter() - t0)
    ours = min(times)
    # Loop port on a subset of classes, extrapolated by prediction count.
    classes = result.classes
    pick = classes[:args.loop_classes]
    labels = np.array(preds.labels, object)
    g_labels = np.array(gt.labels, object)
    t_loop, n_loop, max_diff, max_diff_generic = 0.0, 0, 0.0, 0.0
    for i, c in enumerate(pick):
        pm, gm = labels == c, g_labels == c
        args_ = (gt.video[gm], gt.segments[gm], preds.video[pm],
                 preds.segments[pm], preds.scores[pm], thresholds)
        t0 = time.perf_counter()
        ap = loop_ap(*args_)
        t_loop += time.perf_counter() - t0
        n_loop += int(pm.sum())
        max_diff = max(max_diff, float(np.abs(ap - result.ap[:, i]).max()))
        # The same loop ranking ties in NumPy's generic (non-SIMD) order, the
        # one tfaction reproduces on every CPU: isolates the tie order.
        ap = loop_ap(*args_, order=common.official_score_order(
            preds.scores[pm]))
        max_diff_generic = max(max_diff_generic,
                               float(np.abs(ap - result.ap[:, i]).max()))
    loop_est = t_loop * preds.num_predictions / max(n_loop, 1)
    print(json.dumps({
        "benchmark": "activitynet_detection_map",
        "videos": len(gt.video_ids), "gt_instances": gt.num_instances,
        "predictions": preds.num_predictions, "classes": len(classes),
        "tiou_thresholds": 10, "cpu_count": os.cpu_count(),
        "ours_s": round(ours, 3), "gt_load_s": round(t_load, 3),
        "average_mAP": round(result.average_mAP, 6),
        "loop_port_measured_s": round(t_loop, 3),
        "loop_port_measured_predictions": n_loop,
        "loop_port_extrapolated_s": round(loop_est, 1),
        "speedup": round(loop_est / ours, 1),
        "loop_vs_ours_max_abs_diff": max_diff,
        "loop_generic_tie_order_vs_ours_max_abs_diff": max_diff_generic,
        "date": time.strftime("%Y-%m-%d"),
        "ours_under_5s": ours < 5.0}))


if __name__ == "__main__":
    main()
