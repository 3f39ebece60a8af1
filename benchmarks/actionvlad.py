"""Benchmarks of the ActionVLAD port; prints one JSON line per section.

Section `netvlad` (the default): forward + backward of the ActionVLAD
pooling layer at the reference's shape, input [B, T, H, W, D] =
[2, 25, 14, 14, 512] (VGG16 conv5_3 of 25 frames of 2 videos, `--shape`),
K = 64 clusters (`--clusters`), alpha = 1000. Compared:

* `layer`: tfaction's `NetVLAD` called inside a `tf.function`;
* `reference`: a straightforward plain-`tf` port of the ActionVLAD
  pooling formula written here (`tf.nn.l2_normalize`
  eps 1e-12 on the descriptors, 1x1 `tf.nn.conv2d` on the frames as a 2-D
  batch + bias, softmax over K, residual aggregation jointly over T*H*W as
  `einsum(a, x) - sum(a) * C`, intra-normalisation, K-major flatten, final
  L2 normalisation), on its own `tf.Variable`s holding the same values.

Each step computes the output `v` [B, K*D], the loss `sum(v * g)` for a
fixed random cotangent `g`, and the gradients of the loss w.r.t. the input
and the three variables (centres, assignment kernel, assignment bias); it
returns the loss and the global norm of the gradients (one scalar that
depends on every gradient, read back to synchronise). Both run with
`jit_compile` off and on. The centres are L2-normalised input descriptors
scaled by 0.8 (k-means-like: |c| < 1, near the data), set with
`NetVLAD.set_centers`, so the assignment kernel and bias follow the
ActionVLAD initialisation (W = 2 alpha C^T, b = -alpha |c|^2).

Measured:

* agreement: max abs difference layer vs reference (no XLA) of the output
  and of each gradient, and of the XLA layer vs the non-XLA reference;
  gradient differences are also given relative to the gradient's max abs
  value (alpha = 1000 makes the assignment gradients large);
* time: median of `--iterations` timed steps after `--warmup` untimed ones
  (the first of which traces and compiles; its time is reported as
  `first_call_s`). The four configurations alternate step by step in one
  process, so that load from other processes hits them alike; the ratios
  layer / reference (< 1 = the layer is faster) are within that one run;
* peak memory, each configuration in its own subprocess (a fresh process,
  nothing else built in it), after the warm-up: `step_mb` = the TF
  allocator's peak (`tf.config.experimental.get_memory_info` on the
  device, CPU:0 or GPU:0, after `reset_memory_stats`) over
  `--memory_steps` warm steps minus the bytes in use before them
  (`in_use_before_mb`: inputs, cotangent, variables), i.e. the memory the
  step's tensors need at most at once, XLA temporaries included (XLA
  allocates through the TF allocator). Buffers that bypass the TF
  allocator (e.g. oneDNN scratch) are not counted. For the process view,
  from `/proc/self/status`: `rss_first_mb` = VmHWM after the warm-up minus
  VmRSS before the first call (tracing and XLA compilation included) and
  `rss_step_mb` = VmHWM over the warm steps minus VmRSS before them (the
  high-water mark reset by writing 5 to `/proc/self/clear_refs`); the
  allocator keeps freed memory resident, so the latter is near 0 on a CPU.

Section `train`: end-to-end training throughput of an ActionVLAD recipe
(`--train_config`, default the synthetic flow recipe; `hmdb51_rgb` is the
VGG16 recipe at T = 25, 224x224, far too slow for a CPU but what to run on
a GPU): synthetic HMDB51-layout videos are generated and converted once
(`--train_videos`, to a temporary folder), then the `Trainer`'s compiled
step runs on the one-device strategy (or `--train_strategy=mirrored`) with
the recipe's own input pipeline (decode, crops, flips) feeding it.
After `--warmup` untimed steps (tracing), `--iterations` steps are timed
end to end, input included: `clips_per_s` = videos (clips of T frames)
per second, `frames_per_s` = clips/s x T, and `step_ms` (median).

Usage:
    python benchmarks/actionvlad.py --section train [--train_config
        synthetic_flow|synthetic_rgb|hmdb51_rgb] [--train_batch 8]
        [--iterations 20] [--warmup 3]
    python benchmarks/actionvlad.py [--section netvlad]
        [--shape 2,25,14,14,512] [--clusters 64] [--iterations 20]
        [--warmup 3] [--no_memory] [--output result.json]
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import timing  # noqa: E402

ALPHA = 1000.0
EPSILON = 1e-12
CONFIGS = (("layer", False), ("reference", False), ("layer", True),
           ("reference", True))


# ---------------------------------------------------------------- helpers
def _proc_status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_rss_peak():
    """Resets VmHWM to VmRSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _device_name():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU:0", (f"CPU ({os.cpu_count()} cores, "
                         f"{platform.machine()})")
    details = tf.config.experimental.get_device_details(gpus[0])
    return "GPU:0", f"GPU:0 {details.get('device_name', 'unknown')}"


# ---------------------------------------------------------- netvlad section
def reference_netvlad(x, centers, kernel, bias, epsilon=EPSILON):
    """Plain-`tf` ActionVLAD pooling (the formula, written out)."""
    import tensorflow as tf

    b, t, h, w, d = x.shape
    k = centers.shape[0]
    frames = tf.reshape(x, (b * t, h, w, d))  # frames as a 2-D batch
    xh = tf.nn.l2_normalize(frames, axis=-1, epsilon=epsilon)
    logits = tf.nn.conv2d(xh, tf.reshape(kernel, (1, 1, d, k)), 1, "VALID")
    a = tf.nn.softmax(logits + bias, axis=-1)
    a = tf.reshape(a, (b, t * h * w, k))
    xh = tf.reshape(xh, (b, t * h * w, d))
    v = tf.einsum("bnk,bnd->bkd", a, xh) - \
        tf.reduce_sum(a, axis=1)[..., None] * centers[None]
    v = tf.nn.l2_normalize(v, axis=-1, epsilon=epsilon)
    v = tf.reshape(v, (b, k * d))
    return tf.nn.l2_normalize(v, axis=-1, epsilon=epsilon)


def _netvlad_setup(shape, clusters, seed=0):
    """Inputs, cotangent, the layer and the reference's variables."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tfaction.layers import NetVLAD

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    flat = x.reshape(-1, shape[-1])
    pick = rng.choice(flat.shape[0], clusters, replace=flat.shape[0] <
                      clusters)
    centers = flat[pick] / np.linalg.norm(flat[pick], axis=1, keepdims=True)
    centers = (0.8 * centers).astype(np.float32)
    layer = NetVLAD(num_clusters=clusters, alpha=ALPHA, epsilon=EPSILON)
    layer.build(tuple(shape))
    layer.set_centers(centers)
    ref_vars = [tf.Variable(np.asarray(var.numpy()), name=name)
                for var, name in ((layer.centers, "centers"),
                                  (layer.assignment_kernel, "kernel"),
                                  (layer.assignment_bias, "bias"))]
    cot = rng.standard_normal((shape[0], clusters * shape[-1]),
                              dtype=np.float32)
    return tf.constant(x), tf.constant(cot), layer, ref_vars


def _netvlad_steps(layer, ref_vars):
    """{(impl, jit): step}; a step returns (loss, grad global norm)."""
    import tensorflow as tf

    layer_vars = [layer.centers, layer.assignment_kernel,
                  layer.assignment_bias]

    def make(impl, jit, full=False):
        variables = layer_vars if impl == "layer" else ref_vars

        def forward(x):
            if impl == "layer":
                return layer(x)
            return reference_netvlad(x, *ref_vars)

        @tf.function(jit_compile=jit)
        def step(x, cot):
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = forward(x)
                loss = tf.reduce_sum(out * cot)
            grads = tape.gradient(loss, [x] + list(variables))
            if full:
                return out, grads
            return loss, tf.linalg.global_norm(grads)

        return step

    steps = {(impl, jit): make(impl, jit) for impl, jit in CONFIGS}
    full = {(impl, jit): make(impl, jit, full=True)
            for impl, jit in (("layer", False), ("reference", False),
                              ("layer", True))}
    return steps, full


def _agreement(full, ref_vars, x, cot):
    import numpy as np
    import tensorflow as tf

    names = ("input", "centers", "assignment_kernel", "assignment_bias")
    ref_out, ref_grads = full[("reference", False)](x, cot)
    ref_out = ref_out.numpy()
    ref_grads = [g.numpy() for g in ref_grads]
    result = {}
    for key, label in ((("layer", False), ""), (("layer", True), "xla_")):
        out, grads = full[key](x, cot)
        result[label + "max_abs_diff"] = float(
            np.abs(out.numpy() - ref_out).max())
        result[label + "grad_max_abs_diff"] = {
            n: float(np.abs(g.numpy() - r).max())
            for n, g, r in zip(names, grads, ref_grads)}
        result[label + "grad_max_rel_diff"] = {
            n: float(np.abs(g.numpy() - r).max()
                     / max(float(np.abs(r).max()), 1e-30))
            for n, g, r in zip(names, grads, ref_grads)}
    result["output_max_abs"] = float(np.abs(ref_out).max())
    result["grad_max_abs"] = {n: float(np.abs(r).max())
                              for n, r in zip(names, ref_grads)}
    # Fraction of descriptors whose largest soft assignment exceeds 0.99
    # (how hard alpha = 1000 makes the assignment at this init).
    d = x.shape[-1]
    xh = tf.nn.l2_normalize(tf.reshape(x, (-1, d)), -1, epsilon=EPSILON)
    a = tf.nn.softmax(xh @ ref_vars[1] + ref_vars[2], -1)
    result["hard_assignment_fraction"] = round(float(tf.reduce_mean(
        tf.cast(tf.reduce_max(a, -1) > 0.99, tf.float32))), 4)
    return result


def _netvlad_memory_child(args):
    """One configuration in a fresh process; prints 'RESULT {json}'."""
    import tensorflow as tf

    impl, jit = args.child_impl, bool(args.child_jit)
    device, _ = _device_name()
    x, cot, layer, ref_vars = _netvlad_setup(args.shape, args.clusters)
    step = _netvlad_steps(layer, ref_vars)[0][(impl, jit)]

    def run():
        float(step(x, cot)[1])

    result = {"impl": impl, "jit": jit}
    rss0 = _proc_status_kb("VmRSS")
    for _ in range(args.warmup):
        run()
    result["rss_first_mb"] = round(
        (_proc_status_kb("VmHWM") - rss0) / 1024, 1)
    try:
        before = tf.config.experimental.get_memory_info(device)["current"]
        tf.config.experimental.reset_memory_stats(device)
    except (ValueError, RuntimeError):  # no allocator statistics
        before = None
    reset = _reset_rss_peak()
    rss1 = _proc_status_kb("VmRSS")
    for _ in range(args.memory_steps):
        run()
    result["rss_step_mb"] = round(
        (_proc_status_kb("VmHWM") - rss1) / 1024, 1) if reset else None
    if before is not None:
        peak = tf.config.experimental.get_memory_info(device)["peak"]
        result["step_mb"] = round((peak - before) / 2**20, 2)
        result["in_use_before_mb"] = round(before / 2**20, 2)
    result["baseline_rss_mb"] = round(rss0 / 1024, 1)
    print("RESULT " + json.dumps(result))


def _run_memory_child(args, impl, jit):
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()),
           "--section", "netvlad", "--child_impl", impl,
           "--child_jit", str(int(jit)),
           "--shape", ",".join(map(str, args.shape)),
           "--clusters", str(args.clusters), "--warmup", str(args.warmup),
           "--memory_steps", str(args.memory_steps)]
    return timing.child_result(cmd, f"memory child {impl} jit={jit}")


def run_netvlad(args):
    """The `netvlad` section; returns the result dict."""
    if args.child_impl:
        return _netvlad_memory_child(args)
    import tensorflow as tf

    start = time.perf_counter()
    loads = [round(os.getloadavg()[0], 2)]
    device, device_label = _device_name()
    x, cot, layer, ref_vars = _netvlad_setup(args.shape, args.clusters)
    steps, full = _netvlad_steps(layer, ref_vars)
    agreement = _agreement(full, ref_vars, x, cot)

    def runner(step):
        def run():
            float(step(x, cot)[1])
        return run

    first = []
    times = timing.median_times([runner(steps[c]) for c in CONFIGS],
                                args.iterations, args.warmup, first)
    ms = {c: round(t * 1e3, 3) for c, t in zip(CONFIGS, times)}
    loads.append(round(os.getloadavg()[0], 2))

    peak = None
    if not args.no_memory:
        peak = {}
        for impl, jit in CONFIGS:
            child = _run_memory_child(args, impl, jit)
            name = impl + ("_xla" if jit else "")
            peak[name] = {k: v for k, v in child.items()
                          if k not in ("impl", "jit")}
        loads.append(round(os.getloadavg()[0], 2))

    result = {
        "benchmark": "actionvlad_netvlad",
        "shape": list(args.shape),
        "clusters": args.clusters,
        "alpha": ALPHA,
        "output_dim": args.clusters * args.shape[-1],
        "layer_ms": ms[("layer", False)],
        "reference_ms": ms[("reference", False)],
        "ratio": round(ms[("layer", False)] / ms[("reference", False)], 3),
        "layer_xla_ms": ms[("layer", True)],
        "reference_xla_ms": ms[("reference", True)],
        "ratio_xla": round(ms[("layer", True)] / ms[("reference", True)], 3),
        "first_call_s": {c[0] + ("_xla" if c[1] else ""): f
                         for c, f in zip(CONFIGS, first)},
        "peak_mb": peak,
        "max_abs_diff": agreement.pop("max_abs_diff"),
        "agreement": agreement,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "device": device_label,
    }
    result["rows"] = _netvlad_rows(result, args.shape, args.clusters)
    result.update(timing.run_facts(start, loads))
    return result


def _netvlad_rows(result, shape, clusters):
    """The `make bench` table's rows of the `netvlad` section."""
    what = (f"NetVLAD forward+backward, [{', '.join(map(str, shape))}], "
            f"K = {clusters}")
    reference = ("plain-`tf` formula of the same pooling, written in the "
                 "benchmark (same run)")

    def row(measure, ours, theirs, unit):
        return {"family": "ActionVLAD", "measure": measure, "ours": ours,
                "reference": theirs, "unit": unit,
                "ratio": round(ours / theirs, 2), "reference_name": reference,
                "target": None, "met": None}

    rows = [row(what + ", no XLA", result["layer_ms"],
                result["reference_ms"], "ms"),
            row(what + ", XLA", result["layer_xla_ms"],
                result["reference_xla_ms"], "ms")]
    peak = result["peak_mb"] or {}
    if all("step_mb" in peak.get(impl, {}) for impl in ("layer",
                                                         "reference")):
        rows.append(row(what + ", TF-allocator peak per step, no XLA",
                        result["peak_mb"]["layer"]["step_mb"],
                        result["peak_mb"]["reference"]["step_mb"], "MB"))
    return rows


# ------------------------------------------------------------------ train
TRAIN_CONFIGS = ("synthetic_flow", "synthetic_rgb", "hmdb51_rgb")


def _train_config(args, records):
    import importlib

    module = importlib.import_module(
        f"experiments.configs.actionvlad_{args.train_config}")
    config = module.get_config()
    config.task.data_dir = str(records)
    # A speed measurement: random (frozen) weights on purpose.
    config.task.train_from_scratch = True
    config.trainer.global_batch_size = args.train_batch
    config.trainer.train_steps = args.warmup + args.iterations
    config.trainer.steps_per_epoch = 0
    config.runtime.strategy = args.train_strategy
    config.runtime.logical_cpus = 2 if args.train_strategy == "mirrored" \
        else 0
    return config


def run_train(args):
    """The `train` section; returns the result dict."""
    import tempfile

    import numpy as np
    import tensorflow as tf

    from tfaction import tasks
    from tfaction import training
    from tfaction.data.formats.hmdb51 import convert_hmdb51_frames
    from tfaction.data.synthetic.video_classification import (
        generate_video_classification)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        config = _train_config(args, tmp / "records")
        # Before any TF op: the mirrored CPU run splits the CPU.
        training.configure_runtime(config.runtime, config.trainer.seed)
        generate_video_classification(tmp / "raw",
                                      num_videos=args.train_videos)
        lists = tmp / "raw" / "train_test_lists"
        convert_hmdb51_frames(
            [lists / "train_split1.txt", lists / "test_split1.txt"],
            tmp / "raw" / "frames", tmp / "records",
            modalities=("rgb", "flow"),
            class_list=tmp / "raw" / "actions.txt")
        strategy = training.get_strategy(config.runtime.strategy)
        trainer = training.Trainer(tasks.build_task(config), config,
                                   tmp / "run", strategy)
        stop = tf.constant(0, tf.int32)
        times, epoch = [], 0
        iterator = iter(trainer._train_dataset(epoch))
        while len(times) < args.warmup + args.iterations:
            inputs = next(iterator, None)
            if inputs is None:  # next epoch
                epoch += 1
                iterator = iter(trainer._train_dataset(epoch))
                continue
            t0 = time.perf_counter()
            logs, _ = trainer._train_fn(inputs, stop)
            float(logs["loss"])
            times.append(time.perf_counter() - t0)
        trainer.close()
    timed = times[args.warmup:]
    # Input preparation overlaps the step (prefetch); the wall time of the
    # timed steps, including waiting for input, is what a user sees.
    step = float(np.median(timed))
    total = float(np.sum(timed))
    clips = args.train_batch * len(timed) / total
    frames = config.task.frames
    return {
        "benchmark": "actionvlad_train",
        "config": args.train_config,
        "strategy": args.train_strategy,
        "batch": args.train_batch,
        "frames_per_clip": frames.num_steps,
        "crop": list(frames.crop_size),
        "modality": frames.modality,
        "trunk": config.task.model.trunk,
        "trainable": list(config.task.trainable),
        "step_ms": round(step * 1e3, 1),
        "clips_per_s": round(clips, 2),
        "frames_per_s": round(clips * frames.num_steps, 1),
        "first_step_s": round(times[0], 2),
        "iterations": args.iterations,
        "warmup": args.warmup,
        "device": _device_name()[1],
        "tensorflow": tf.__version__,
        "load_average": round(os.getloadavg()[0], 2),
        "seconds": round(time.perf_counter() - start, 1),
    }


# ------------------------------------------------------------------ main
# New sections: add a `run_<name>(args) -> dict` and an entry here (plus
# any section-specific flags in `main`).
SECTIONS = {"netvlad": run_netvlad, "train": run_train}


def _shape(text):
    dims = tuple(int(v) for v in text.split(","))
    if len(dims) != 5 or min(dims) < 1:
        raise argparse.ArgumentTypeError(
            f"--shape: five positive sizes B,T,H,W,D expected, got {text}")
    return dims


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=sorted(SECTIONS),
                        default="netvlad")
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--iterations", type=int, default=20,
                        help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps per configuration")
    # netvlad section
    parser.add_argument("--shape", type=_shape, default=(2, 25, 14, 14, 512),
                        help="netvlad input B,T,H,W,D")
    parser.add_argument("--clusters", type=int, default=64,
                        help="netvlad K")
    parser.add_argument("--memory_steps", type=int, default=3,
                        help="warm steps over which peak memory is taken")
    parser.add_argument("--no_memory", action="store_true",
                        help="skip the peak-memory subprocesses")
    # train section
    parser.add_argument("--train_config", choices=TRAIN_CONFIGS,
                        default="synthetic_flow")
    parser.add_argument("--train_batch", type=int, default=8,
                        help="global batch (videos per step)")
    parser.add_argument("--train_videos", type=int, default=48,
                        help="synthetic videos generated for the run")
    parser.add_argument("--train_strategy", default="one_device",
                        choices=("one_device", "mirrored"))
    parser.add_argument("--bench", action="store_true",
                        help="the `make bench` preset: the netvlad "
                             "section with the defaults above")
    parser.add_argument("--child_impl", choices=("layer", "reference"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--child_jit", type=int, default=0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import tensorflow as tf

    # Each step is its own tf.function traced once: silence the retracing
    # heuristic's warning.
    tf.get_logger().setLevel("ERROR")
    result = SECTIONS[args.section](args)
    if result is None:  # a child process printed its own result
        return None
    return timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
