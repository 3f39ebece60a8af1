"""Benchmark of ActionFormer (THUMOS config) on CPU; prints one JSON line.

Shapes as the reference's THUMOS14 I3D config: 2048-d features, 20 classes,
embed/head 512, 4 heads, arch (2, 2, 5) (6 levels), window 19,
max_seq_len 2304, drop path 0.1, random weights. Measured, each with
`jit_compile` off and on:

* training, batch 2, T = 2304 (one video padded, 8 GT segments each):
  (a) forward + backward of the full loss: `assign_point_labels`,
  `sigmoid_focal_loss` + `ctr_diou_loss_1d` divided by the loss
  normaliser (EMA of the positive count, updated before use);
  (b) the full optimiser step: (a) + global-norm clip 1.0 + AdamW
  (weight decay 0.05 on kernels only, warm-up/cosine learning rate) + a
  weight EMA (0.999) update;
* inference, batch 1, T = 2304: (c) network only; (d) network +
  post-processing (`decode_candidates` in a `tf.function` without XLA,
  host Soft-NMS multiclass Gaussian sigma 0.5, max_seg_num 200, and
  `grid_to_seconds`); post-processing always stays outside XLA;
* parameter count (checked against 29,251,612 for the THUMOS config);
* peak memory: each configuration (train / inference x jit off / on) runs
  in its own subprocess, which reports `resource.getrusage` `ru_maxrss`.

Times are the median of `--iterations` timed iterations after `--warmup`
untimed ones (which also trace and compile); (a) and (b), like (c) and
(d), run alternately in the same process so that load from other
processes hits both alike.

With `--reference_repo=PATH` (a clone of happyharrycn/actionformer_release
with its NMS extension built; `--reference_python` a Python with PyTorch,
default this one) the authors' code is timed in the same run by
`benchmarks/actionformer_torch.py`, on the same inputs, each of its
subprocesses right after ours (train, then inference), and the JSON holds
its figures under `reference` and the ratios ours / reference (< 1 =
faster / smaller) for the configuration without XLA. Without it, no
comparison is printed.

Usage:
    python benchmarks/actionformer.py [--iterations 5] [--quick]
        [--attention auto|dense] [--configs no_jit,jit]
        [--reference_repo PATH [--reference_python PYTHON]]
        [--output result.json]
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import timing  # noqa: E402

# Figures compared with the authors' code (ours / theirs).
COMPARED = ("train_fwd_bwd_s", "train_full_step_s", "infer_network_s",
            "infer_with_postprocess_s", "train_peak_rss_gb",
            "infer_peak_rss_gb")
THUMOS_PARAMS = 29251612

THUMOS = dict(input_dim=2048, num_classes=20, embed_dim=512, num_heads=4,
              arch=(2, 2, 5), window_size=19, head_dim=512,
              max_seq_len=2304, drop_path_rate=0.1)
QUICK = dict(input_dim=64, num_classes=5, embed_dim=32, num_heads=4,
             arch=(2, 2, 5), window_size=9, head_dim=32, max_seq_len=256,
             drop_path_rate=0.1)


# ----------------------------------------------------------------- child
def _build_model(model_kwargs, attention):
    from tfaction.layers.local_self_attention import LocalSelfAttention
    from tfaction.models.actionformer.model import ActionFormer

    model = ActionFormer(**model_kwargs)
    if attention == "dense":  # the former dense band attention, for A/B
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, LocalSelfAttention):
                layer.block_size = 0
    return model


def _train_child(args, model_kwargs):
    import keras
    import numpy as np
    import tensorflow as tf

    from tfaction.losses.ctr_diou_loss_1d import ctr_diou_loss_1d
    from tfaction.losses.sigmoid_focal_loss import sigmoid_focal_loss
    from tfaction.ops.label_assignment import assign_point_labels
    from tfaction.training.ema import ModelEMA

    keras.utils.set_random_seed(0)
    model = _build_model(model_kwargs, args.attention)
    num_classes = model.num_classes
    batch, length = 2, model.max_seq_len
    rng = np.random.default_rng(0)
    lengths = [length, int(length * 0.78)]
    feats = rng.standard_normal((batch, length, model.input_dim),
                                dtype=np.float32)
    mask = np.arange(length)[None] < np.array(lengths)[:, None]
    feats *= mask[..., None]
    num_gt = 8
    starts = np.stack([np.sort(rng.uniform(0, n * 0.9, num_gt))
                       for n in lengths])
    ends = starts + rng.uniform(2.0, length / 16, (batch, num_gt))
    ends = np.minimum(ends, np.array(lengths)[:, None] - 1.0)
    segments = np.stack([starts, ends], -1).astype(np.float32)
    labels = rng.integers(0, num_classes, (batch, num_gt)).astype(np.int32)
    gt_valid = np.ones((batch, num_gt), bool)
    gt_valid[1, -2:] = False  # padded GT rows
    inputs = [tf.constant(x) for x in (feats, mask, segments, labels,
                                        gt_valid)]

    normaliser = tf.Variable(100.0, trainable=False)  # init_loss_norm

    def compute_loss(features, valid, segs, labs, gvalid):
        out = model({"features": features, "mask": valid}, training=True)
        cls_t, reg_t = assign_point_labels(
            out["points"][0], segs, labs, num_classes, gt_valid=gvalid)
        point_mask = out["mask"]
        positive = tf.logical_and(point_mask,
                                  tf.reduce_sum(cls_t, -1) > 0)
        num_pos = tf.reduce_sum(tf.cast(positive, tf.float32))
        normaliser.assign(0.9 * normaliser
                          + 0.1 * tf.maximum(num_pos, 1.0))
        cls_loss = sigmoid_focal_loss(cls_t, out["cls_logits"],
                                      mask=point_mask) / normaliser
        reg_loss = ctr_diou_loss_1d(reg_t, out["offsets"],
                                    mask=positive) / normaliser
        return cls_loss + reg_loss

    weights = model.trainable_variables

    @tf.function(jit_compile=args.jit)
    def fwd_bwd(*batch_inputs):
        with tf.GradientTape() as tape:
            loss = compute_loss(*batch_inputs)
        grads = tape.gradient(loss, weights)
        return loss, tf.linalg.global_norm(grads)

    decayed = set()
    for layer in model._flatten_layers(include_self=False):
        for name in ("kernel", "depthwise_kernel"):
            var = getattr(layer, name, None)
            if isinstance(var, keras.Variable):
                decayed.add(id(var))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=3000, alpha=1e-4, warmup_target=1e-4,
        warmup_steps=500)
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=0.05, beta_1=0.9, beta_2=0.999,
        epsilon=1e-8)
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in weights if id(v) not in decayed])
    optimizer.build(weights)
    ema = ModelEMA(model, decay=0.999)

    @tf.function(jit_compile=args.jit)
    def full_step(*batch_inputs):
        with tf.GradientTape() as tape:
            loss = compute_loss(*batch_inputs)
        grads = tape.gradient(loss, weights)
        grads, norm = tf.clip_by_global_norm(grads, 1.0)
        optimizer.apply_gradients(zip(grads, weights))
        ema.update()
        return loss, norm

    def run_fwd_bwd():
        loss, norm = fwd_bwd(*inputs)
        float(loss), float(norm)

    def run_full():
        loss, norm = full_step(*inputs)
        float(loss), float(norm)

    first = []
    t_fb, t_full = timing.median_times([run_fwd_bwd, run_full],
                                       args.iterations, args.warmup, first,
                                       digits=2)
    loss = float(fwd_bwd(*inputs)[0])
    return {"train_fwd_bwd_s": round(t_fb, 4),
            "train_full_step_s": round(t_full, 4),
            "train_loss": round(loss, 4),
            "first_call_s": first,
            "params": int(model.count_params())}


def _infer_child(args, model_kwargs):
    import keras
    import numpy as np
    import tensorflow as tf

    from tfaction.models.actionformer import decoding
    from tfaction.ops.soft_nms import soft_nms

    keras.utils.set_random_seed(0)
    model = _build_model(model_kwargs, args.attention)
    length = model.max_seq_len
    rng = np.random.default_rng(1)
    feats = tf.constant(rng.standard_normal(
        (1, length, model.input_dim), dtype=np.float32))
    mask = tf.ones((1, length), bool)
    strides = model.fpn_strides

    @tf.function(jit_compile=args.jit)
    def network(features, valid):
        out = model({"features": features, "mask": valid}, training=False)
        return out["cls_logits"][0], out["offsets"][0], out["mask"][0]

    @tf.function(jit_compile=False)  # data-dependent shapes: no XLA
    def decode(logits, offsets, valid):
        return decoding.decode_candidates(
            model.split_levels(logits, axis=0),
            model.split_levels(offsets, axis=0), strides,
            model.split_levels(valid, axis=0), pre_nms_thresh=0.001,
            pre_nms_topk=2000, duration_thresh=0.05)

    fps, feat_stride, num_frames = 30.0, 4, 16
    duration = length * feat_stride / fps
    counts = {}

    def run_network():
        out = network(feats, mask)
        out[0].numpy()

    def run_with_post():
        logits, offsets, valid = network(feats, mask)
        segs, scores, labels = decode(logits, offsets, valid)
        counts["candidates"] = int(scores.shape[0])
        segs, scores, labels = soft_nms(
            segs.numpy(), scores.numpy(), labels.numpy(), iou_threshold=0.1,
            min_score=0.001, max_seg_num=200, method="gaussian",
            multiclass=True, sigma=0.5)
        seconds = decoding.grid_to_seconds(segs, fps, feat_stride,
                                           num_frames, duration)
        counts["detections"] = int(np.asarray(seconds).shape[0])

    first = []
    t_net, t_post = timing.median_times([run_network, run_with_post],
                                        args.iterations, args.warmup, first,
                                        digits=2)
    return {"infer_network_s": round(t_net, 4),
            "infer_with_postprocess_s": round(t_post, 4),
            "candidates": counts["candidates"],
            "detections": counts["detections"],
            "first_call_s": first,
            "params": int(model.count_params())}


def _child(args):
    import tensorflow as tf

    model_kwargs = QUICK if args.quick else THUMOS
    start = time.perf_counter()
    result = (_train_child if args.child == "train" else _infer_child)(
        args, model_kwargs)
    result["seconds"] = round(time.perf_counter() - start, 1)
    # Linux: kilobytes. GB = 1e9 bytes.
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_rss_gb"] = round(rss_kb * 1024 / 1e9, 3)
    result["tensorflow"] = tf.__version__
    print("RESULT " + json.dumps(result))


# ---------------------------------------------------------------- parent
def _run_child(args, kind, jit):
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()),
           "--child", kind, "--jit", str(int(jit)),
           "--iterations", str(args.iterations), "--warmup",
           str(args.warmup), "--attention", args.attention]
    if args.quick:
        cmd.append("--quick")
    return timing.child_result(cmd, f"{kind} jit={jit}")


def _run_reference(args, kind):
    """The authors' code, timed by benchmarks/actionformer_torch.py."""
    cmd = [args.reference_python,
           str(pathlib.Path(__file__).resolve().with_name(
               "actionformer_torch.py")),
           "--repo", args.reference_repo, "--child", kind,
           "--iterations", str(args.iterations), "--warmup",
           str(args.warmup)]
    if args.quick:
        cmd.append("--quick")
    return timing.child_result(cmd, f"reference {kind}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes (smoke test of the script)")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--attention", choices=("auto", "dense"),
                        default="auto",
                        help="'dense': force the dense T x T band attention "
                             "(the former implementation) for comparison")
    parser.add_argument("--configs", default="no_jit,jit",
                        help="comma list of no_jit / jit (jit compiles for "
                             "minutes on CPU)")
    parser.add_argument("--reference_repo",
                        help="clone of happyharrycn/actionformer_release: "
                             "time the authors' code in the same run")
    parser.add_argument("--reference_python", default=sys.executable,
                        help="Python with PyTorch for --reference_repo")
    parser.add_argument("--child", choices=("train", "infer"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--jit", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.jit = bool(args.jit)
        return _child(args)
    if args.quick:
        args.iterations, args.warmup = min(args.iterations, 2), 1

    names = [n for n in args.configs.split(",") if n]
    if not names or set(names) - {"no_jit", "jit"}:
        parser.error(f"--configs: no_jit and/or jit, got {args.configs!r}")
    start = time.perf_counter()
    loads = [round(os.getloadavg()[0], 2)]
    configs = {}
    reference = {}
    for name in names:
        jit = name == "jit"
        train = _run_child(args, "train", jit)
        loads.append(round(os.getloadavg()[0], 2))
        if args.reference_repo and not jit and not reference:
            reference["train"] = _run_reference(args, "train")
            loads.append(round(os.getloadavg()[0], 2))
        infer = _run_child(args, "infer", jit)
        loads.append(round(os.getloadavg()[0], 2))
        if args.reference_repo and not jit and "infer" not in reference:
            reference["infer"] = _run_reference(args, "infer")
            loads.append(round(os.getloadavg()[0], 2))
        params = infer["params"]
        if train["params"] != params:
            raise RuntimeError("train and inference models differ")
        row = {
            "train_fwd_bwd_s": train["train_fwd_bwd_s"],
            "train_full_step_s": train["train_full_step_s"],
            "infer_network_s": infer["infer_network_s"],
            "infer_with_postprocess_s": infer["infer_with_postprocess_s"],
            "params": params,
            "train_peak_rss_gb": train["peak_rss_gb"],
            "infer_peak_rss_gb": infer["peak_rss_gb"],
        }
        row["details"] = {
            "train_loss": train["train_loss"],
            "candidates_before_nms": infer["candidates"],
            "detections": infer["detections"],
            # tracing + compilation: [fwd_bwd, full_step, network,
            # network_with_postprocess]
            "first_call_s": train["first_call_s"] + infer["first_call_s"],
            "child_seconds": [train["seconds"], infer["seconds"]],
        }
        configs[name] = row
    params = configs[names[0]]["params"]
    ref_row = None
    if reference:
        ref_train, ref_infer = reference["train"], reference["infer"]
        ref_row = {
            "train_fwd_bwd_s": ref_train["train_fwd_bwd_s"],
            "train_full_step_s": ref_train["train_full_step_s"],
            "infer_network_s": ref_infer["infer_network_s"],
            "infer_with_postprocess_s":
                ref_infer["infer_with_postprocess_s"],
            "params": ref_train["params"],
            "train_peak_rss_gb": ref_train["peak_rss_gb"],
            "infer_peak_rss_gb": ref_infer["peak_rss_gb"],
            "detections": ref_infer["detections"],
            "torch": ref_train["torch"],
            "torch_threads": ref_train["torch_threads"],
            "repo": args.reference_repo,
        }
        if ref_row["params"] != params:
            raise RuntimeError(f"the authors' model has {ref_row['params']} "
                               f"parameters, ours {params}: not the same "
                               f"network")
        ours = configs["no_jit"]
        ours["ratio_to_reference"] = {
            key: round(ours[key] / ref_row[key], 3) for key in COMPARED}
    if not args.quick and params != THUMOS_PARAMS:
        raise RuntimeError(f"THUMOS parameter count {params} != "
                           f"{THUMOS_PARAMS}")
    import tensorflow as tf  # noqa: E402 (only for the version)

    result = {
        "benchmark": "actionformer",
        "config": "quick" if args.quick else "thumos_i3d",
        "shapes": {"train_batch": 2, "infer_batch": 1,
                   "length": (QUICK if args.quick else THUMOS)["max_seq_len"],
                   "model": {k: list(v) if isinstance(v, tuple) else v
                             for k, v in (QUICK if args.quick
                                          else THUMOS).items()}},
        "attention": args.attention,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "tensorflow": tf.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "cpu": timing.cpu_model(),
        "date": time.strftime("%Y-%m-%d"),
        # Other processes on the same cores slow every figure: read the
        # times with the load in mind.
        "load_average": loads,
        "params": params,
        "params_match_thumos": params == THUMOS_PARAMS,
        # the authors' code, measured in this run (--reference_repo)
        "reference": ref_row,
        **configs,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
