"""Benchmark of ActivityNet detection mAP; prints one JSON line.

ActivityNet 1.3 validation GT from the BSN files in `--real_data` (4,728
validation videos; every subset is written to an ActivityNet-layout GT file,
as the official `activity_net.v1-3.min.json`), 100 predictions per video
generated deterministically (seed 0: jittered copies of the GT with the
right or a random label, the rest random segments and labels; scores
rounded to 3 decimals, so with ties), 10 tIoU thresholds linspace(0.5,
0.95, 10). Both files are written to a temporary folder.

Figures:

* `cli_s`: `python -m experiments.evaluate --metric=activitynet_detection`
  on the two files, end to end in a subprocess as a user runs it (start-up,
  imports, reading both files, evaluation, printing), median of `--runs`
  (and `cli_cpu_s`, its CPU time, which load from other processes
  inflates less).
* With `--reference_repo` (a clone of activitynet/ActivityNet) and
  `--reference_python`: the official `Evaluation/eval_detection.py`
  (`ANETdetection`, run by `benchmarks/evaluation_official.py`) end to end
  in a subprocess, alternating with our CLI on the same files, and both
  mAPs. The official code visits predictions one by one with pandas (about
  a millisecond each), so `--reference_every K` gives both programs every
  K-th prediction of each video (472,800 / K; all videos and classes kept):
  the ratio is measured on those files, nothing is extrapolated.
* `ours_s`: `evaluate_detection` on the loaded GT and predictions (best of
  3), and a straightforward per-prediction Python loop written from the
  official algorithm on a subset of classes, extrapolated by prediction
  count to all classes. The loop uses nothing of tfaction's metric: it
  ranks predictions with NumPy's own `argsort()[::-1]`, as the official
  code does (its tie order may depend on the CPU's NumPy kernels, which
  tfaction's `numpy_sort` does not), and interpolates precision as the
  official `interpolated_prec_rec`; the JSON reports the largest AP
  difference from tfaction's, and the same for the loop ranked in NumPy's
  generic tie order (`common.official_score_order`, which tfaction follows
  on every CPU).

Usage:
    python benchmarks/evaluation.py --bench [--real_data ../shared/data/real]
        [--reference_repo ActivityNet --reference_python PY]
        [--output FILE]
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks import timing  # noqa: E402
from tfaction.evaluation import activitynet_detection as det  # noqa: E402
from tfaction.evaluation import common  # noqa: E402
from tfaction.evaluation import ground_truth as gt_lib  # noqa: E402

# `--bench`: what `make bench` runs (<= 5 minutes on 2 idle cores with the
# official code on every 10th prediction).
BENCH = {"runs": 3, "reference_runs": 1, "reference_every": 10,
         "loop_classes": 8}
TARGET_CLI_S = 3.0
TARGET_SPEEDUP = 30.0


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


def write_ground_truth(real, path):
    """ActivityNet-layout GT (every subset) of the BSN files; returns the
    validation `GroundTruth` read back from it."""
    from tfaction.data.formats import activitynet_annotations as anet

    videos, _ = anet.read_bsn_annotations(real / "anet_anno_action.json",
                                          real / "video_info_new.csv")
    data = json.loads(anet.ground_truth_json(
        {v.video_id: v for v in videos}))
    data["taxonomy"] = []  # required by the official loader, unused
    path.write_text(json.dumps(data))
    return gt_lib.load_ground_truth(path, "validation")


def write_predictions(preds, path, every=1):
    """The official submission layout of `preds` (every `every`-th entry of
    each video, in order); returns the number of entries written."""
    results = {v: [] for v in preds.video_ids}
    for i in range(preds.num_predictions):
        results[preds.video_ids[preds.video[i]]].append(
            {"label": preds.labels[i], "score": float(preds.scores[i]),
             "segment": [float(preds.segments[i, 0]),
                         float(preds.segments[i, 1])]})
    results = {v: e[::every] for v, e in results.items()}
    path.write_text(json.dumps({
        "version": "VERSION 1.3", "results": results,
        "external_data": {"used": False, "details": ""}}))
    return sum(map(len, results.values()))


def run_cli(gt_path, pred_path, out_json, cpu=None):
    """Our CLI end to end in a subprocess; returns (seconds, result dict).

    `cpu`: optional list receiving the process's CPU seconds (user +
    system), a figure other processes on the cores inflate less than the
    wall time.
    """
    cmd = [sys.executable, "-m", "experiments.evaluate",
           "--metric=activitynet_detection", f"--ground_truth={gt_path}",
           f"--predictions={pred_path}", f"--output_json={out_json}",
           "--noprogress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"CLI failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    if cpu is not None:
        cpu.append(after.ru_utime + after.ru_stime
                   - before.ru_utime - before.ru_stime)
    return seconds, json.loads(pathlib.Path(out_json).read_text())


def run_official(args, gt_path, pred_path):
    """The official code end to end in a subprocess (wall time, start-up
    included); returns (seconds, its RESULT dict)."""
    cmd = [args.reference_python, str(ROOT / "benchmarks" /
                                      "evaluation_official.py"),
           "--reference_repo", args.reference_repo,
           "--ground_truth", str(gt_path), "--predictions", str(pred_path),
           "--workers", str(os.cpu_count())]
    start = time.perf_counter()
    result = timing.child_result(cmd, "official ActivityNet evaluation")
    return time.perf_counter() - start, result


def map_difference(ours, official):
    """Largest |difference| of the average mAP, mAP per tIoU and AP per
    class (classes matched by name)."""
    diffs = [abs(ours["average_mAP"] - official["average_mAP"])]
    diffs += [abs(a - b) for a, b in zip(ours["mAP_per_tiou"],
                                         official["mAP_per_tiou"])]
    if set(ours["ap_per_class"]) != set(official["ap_per_class"]):
        return float("inf")
    for label, ap in official["ap_per_class"].items():
        diffs += [abs(a - b) for a, b in zip(ours["ap_per_class"][label],
                                             ap)]
    return max(diffs)


def in_process_figures(gt, preds, loop_classes):
    """`evaluate_detection` on loaded arrays and the loop port (see the
    module docstring)."""
    thresholds = np.linspace(0.5, 0.95, 10)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = det.evaluate_detection(gt, preds, tiou_thresholds=thresholds)
        times.append(time.perf_counter() - t0)
    ours = min(times)
    # Loop port on a subset of classes, extrapolated by prediction count.
    classes = result.classes
    pick = classes[:loop_classes]
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
    return {
        "classes": len(classes), "ours_s": round(ours, 3),
        "average_mAP": round(result.average_mAP, 6),
        "loop_port_measured_s": round(t_loop, 3),
        "loop_port_measured_predictions": n_loop,
        "loop_port_extrapolated_s": round(loop_est, 1),
        "speedup": round(loop_est / ours, 1),
        "loop_vs_ours_max_abs_diff": max_diff,
        "loop_generic_tie_order_vs_ours_max_abs_diff": max_diff_generic,
        "ours_under_5s": ours < 5.0}


def official_name(args, result):
    """The rows' `reference_name`: commit, Python, pandas, workers."""
    commit = timing.git_commit(args.reference_repo)
    return (f"official ActivityNet Evaluation/eval_detection.py "
            f"(ActivityNet @ {commit}, Python {result['python']}, pandas "
            f"{result['pandas']}, joblib {result['joblib']}, "
            f"{result['workers']} workers)")


def table_rows(out, args, ref):
    """The `rows` of the result (family "Evaluation")."""
    scale = (f"{out['videos']:,} videos, {out['predictions']:,} "
             "predictions, 10 tIoU")
    rows = [{
        "family": "Evaluation",
        "measure": f"detection mAP CLI end to end, ActivityNet val scale "
                   f"({scale})",
        "ours": out["cli_s"], "reference": None, "unit": "s",
        "ratio": None, "reference_name": None,
        "target": f"<= {TARGET_CLI_S:g} s",
        "met": out["cli_s"] <= TARGET_CLI_S}]
    if ref is not None:
        n = out["side_by_side_predictions"]
        ratio = out["side_by_side_cli_s"] / out["official_s"]
        name = official_name(args, ref)
        rows.append({
            "family": "Evaluation",
            "measure": f"detection mAP end to end vs the official code, "
                       f"same files ({n:,} predictions = every "
                       f"{args.reference_every}th of {out['predictions']:,})"
                       if args.reference_every > 1 else
                       f"detection mAP end to end vs the official code, "
                       f"same files ({scale})",
            "ours": out["side_by_side_cli_s"],
            "reference": out["official_s"], "unit": "s",
            "ratio": round(ratio, 2 if ratio >= 0.01 else 4),
            "reference_name": name,
            "target": f">= {TARGET_SPEEDUP:g}x faster (ratio <= "
                      f"{1 / TARGET_SPEEDUP:.3f})",
            "met": ratio <= 1 / TARGET_SPEEDUP})
        rows.append({
            "family": "Evaluation",
            "measure": "detection mAP, largest |ours - official| (average "
                       "mAP, mAP per tIoU, AP per class; same files)",
            "ours": out["official_max_abs_diff"], "reference": None,
            "unit": "abs. difference", "ratio": None,
            "reference_name": name, "target": "<= 1e-9",
            "met": out["official_max_abs_diff"] <= 1e-9})
    rows.append({
        "family": "Evaluation",
        "measure": f"evaluate_detection on loaded arrays ({scale})",
        "ours": out["ours_s"], "reference": None, "unit": "s",
        "ratio": None, "reference_name": None, "target": "<= 5 s",
        "met": out["ours_s"] <= 5.0})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--real_data", default=str(
        ROOT.parent / "shared" / "data" / "real"))
    parser.add_argument("--bench", action="store_true",
                        help=f"the `make bench` preset: {BENCH}")
    parser.add_argument("--per_video", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5,
                        help="timed CLI runs (median)")
    parser.add_argument("--reference_runs", type=int, default=1)
    parser.add_argument("--reference_every", type=int, default=1,
                        help="side by side on every K-th prediction")
    parser.add_argument("--loop_classes", type=int, default=8)
    parser.add_argument("--reference_repo", default=None)
    parser.add_argument("--reference_python", default=None)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.bench:
        for key, value in BENCH.items():
            setattr(args, key, value)
    if (args.reference_repo is None) != (args.reference_python is None):
        parser.error("--reference_repo and --reference_python go together")
    start = time.perf_counter()
    loads = [timing.load_average()]
    real = pathlib.Path(args.real_data)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        gt_path, pred_path = tmp / "gt.json", tmp / "predictions.json"
        t0 = time.perf_counter()
        gt = write_ground_truth(real, gt_path)
        t_load = time.perf_counter() - t0
        preds = make_predictions(gt, per_video=args.per_video)
        write_predictions(preds, pred_path)
        out = {"benchmark": "activitynet_detection_map",
               "videos": len(gt.video_ids), "gt_instances": gt.num_instances,
               "predictions": preds.num_predictions, "tiou_thresholds": 10,
               "gt_load_s": round(t_load, 3),
               "gt_file_mb": round(gt_path.stat().st_size / 2**20, 1),
               "predictions_file_mb": round(pred_path.stat().st_size
                                            / 2**20, 1)}
        out.update(in_process_figures(gt, preds, args.loop_classes))
        side = pred_path
        if args.reference_repo and args.reference_every > 1:
            side = tmp / "predictions_subset.json"
            out["side_by_side_predictions"] = write_predictions(
                preds, side, args.reference_every)
        elif args.reference_repo:
            out["side_by_side_predictions"] = preds.num_predictions
        cli, cli_cpu, cli_side, official, ref = [], [], [], [], None
        run_cli(gt_path, pred_path, tmp / "warm.json")  # file cache
        for i in range(max(args.runs, args.reference_runs
                           if args.reference_repo else 0)):
            # Alternating: load from other processes hits both alike.
            if i < args.runs:
                seconds, ours = run_cli(gt_path, pred_path, tmp / "o.json",
                                        cli_cpu)
                cli.append(seconds)
            if args.reference_repo and i < args.reference_runs:
                if side != pred_path:
                    seconds, ours_side = run_cli(gt_path, side,
                                                 tmp / "s.json")
                    cli_side.append(seconds)
                else:
                    ours_side = ours
                    cli_side.append(cli[-1])
                seconds, ref = run_official(args, gt_path, side)
                official.append(seconds)
        out.update({"cli_runs": len(cli),
                    "cli_s": round(timing.median(cli), 3),
                    "cli_cpu_s": round(timing.median(cli_cpu), 3),
                    "cli_average_mAP": ours["average_mAP"]})
        if ref is not None:
            out.update({
                "side_by_side_cli_s": round(timing.median(cli_side), 3),
                "official_s": round(timing.median(official), 3),
                "official_runs": len(official),
                "official_inner_s": round(ref["seconds"], 3),
                "side_by_side_average_mAP": ours_side["average_mAP"],
                "official_average_mAP": ref["average_mAP"],
                "official_max_abs_diff": map_difference(ours_side, ref),
                "official_python": ref["python"],
                "official_numpy": ref["numpy"],
                "official_pandas": ref["pandas"],
                "official_workers": ref["workers"]})
            out["speedup_vs_official"] = round(
                out["official_s"] / out["side_by_side_cli_s"], 1)
    loads.append(timing.load_average())
    out["rows"] = table_rows(out, args, ref)
    out.update(timing.run_facts(start, loads, devices=False))
    return timing.write_result(out, args.output)


if __name__ == "__main__":
    main()
