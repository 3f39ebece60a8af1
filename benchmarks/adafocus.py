"""Benchmark of AdaFocus inference against the full frame; one JSON line.

Per-video latency and GFLOPs of AdaFocus' inference path (batch norms in
inference mode, dropout off, the policy's own patches) at each patch
size, against the baseline it saves compute over: its focus network, a
ResNet-50, on the whole frames. Every case sees `T` = 16 frames of
224 x 224 per video (`--num_frames`, `--frame_size`) and 200 classes
(ActivityNet, `--num_classes`). Cases (`--cases`, comma-separated):

* `full_frame` (the baseline, always run): ResNet-50 v1.5 (torchvision
  layout, the focus trunk's) on every whole frame -> average pool ->
  Dense head -> logits averaged over the frames;
* `v2_<glance>_p<P>`: `AdaFocusV2` as the recipe builds it
  (`adafocus_config.experiment_config("actnet", glance, P)`; the
  variant is a recipe's, `adafocus_config.parse_variant`): the glance
  (`mbv2`: MobileNet-V2 on the full frame; `res50`: ResNet-50 on a
  96 x 96 bilinear downsample) -> `PolicySTN` -> bilinear `P x P` crop
  -> ResNet-50 focus on the patch -> `PoolingClassifier`, plus the two
  auxiliary heads the model computes. Defaults: `mbv2` at P = 96, 128,
  160, 192 (per-frame GFLOPs 1.101 / 1.685 / 2.436 / 3.353 in the
  authors' `ops/early_exit.py`) and `res50` at 128;
* `v1_mbv2_p<P>`: `AdaFocusV1` with its published settings (MobileNet-V2
  glance on the full frame, the `ActorCritic` policy's argmax patch on
  the 7 x 7 grid, integer crop, ResNet-50 focus, GRU classifier);
  default P = 128 (26.6 GFLOPs per video in the paper).

GFLOPs are multiply-accumulates, as the AdaFocus papers count them
(`tfaction.models.adafocus.flops`: `adafocus_v2_gflops`,
`adafocus_v1_gflops`, and `frame_classifier_gflops` for the baseline),
per video and per frame, with each part. Weights are random (no
checkpoint is read; the cost does not depend on them), and so are the
frames.

Each case runs in its own subprocess (a fresh process: nothing else built
in it before these figures): the model's forward in one `tf.function`
without XLA, on a batch of `--batch_size` videos (1), every output
fetched; the median of `--iterations` timed calls after `--warmup`
untimed ones (the first call traces; its time is `first_call_s`).
`latency_s` is the median call divided by the batch size (per video).
Peak resident memory of the process (`resource.getrusage` `ru_maxrss`,
TensorFlow itself included): `peak_build_mb` after building the model and
the inputs, `peak_mb` after the calls; with a GPU visible, the GPU
allocator's peak during the timed calls (`gpu_peak_mb`).

Against the baseline: `gflops_ratio` is the case's GFLOPs over the
baseline's (`1 / gflops_ratio` is the speed-up the GFLOPs predict), and
`speedup` the baseline's latency over the case's, both timed in the
case's own process after the figures above, their calls alternating
(`paired_latency_s`, `paired_baseline_latency_s`): load from other
processes on the same cores then slows both alike, where cases timed one
after the other see different loads. Every case records the load average
when it ends (`load_average`), the whole run at its start and end.

Usage:
    python benchmarks/adafocus.py
        [--cases full_frame,v2_mbv2_p96,v2_mbv2_p128,v1_mbv2_p128,...]
        [--batch_size 1] [--iterations 3] [--warmup 1] [--num_frames 16]
        [--frame_size 224] [--num_classes 200] [--quick]
        [--output result.json]

`--quick` times one call of each case after one untimed call.
"""

import argparse
import json
import os
import pathlib
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import timing  # noqa: E402

BASELINE = "full_frame"
CASES = (BASELINE, "v2_mbv2_p96", "v2_mbv2_p128", "v2_mbv2_p160",
         "v2_mbv2_p192", "v2_res50_p128", "v1_mbv2_p128")
VERSIONS = ("v1", "v2")
# ActivityNet v1.3, the dataset of the papers' headline numbers.
NUM_CLASSES = 200


def parse_case(case, frame_size=224):
    """The model a case name describes.

    Args:
        case: `"full_frame"`, `"v2_<glance>_p<P>"` (glance "mbv2" or
            "res50") or `"v1_mbv2_p<P>"`.
        frame_size: the frames' side, which `P` may not exceed.

    Returns:
        `(version, glance, patch_size)`: `("full_frame", None, None)` for
        the baseline, else e.g. `("v2", "mbv2", 128)`.

    Raises:
        ValueError: naming the case and what was expected.

    Example:

    >>> parse_case("v2_res50_p96")
    ('v2', 'res50', 96)
    """
    from tfaction import errors
    from tfaction.tasks import adafocus_config

    if case == BASELINE:
        return BASELINE, None, None
    version, _, variant = case.partition("_")
    expected = (f"expected {BASELINE!r}, 'v2_<glance>_p<patch size>' "
                "(glance mbv2 or res50) or 'v1_mbv2_p<patch size>'")
    if version not in VERSIONS or not variant:
        raise ValueError(f"unknown AdaFocus benchmark case {case!r}; "
                         f"{expected}")
    try:
        glance, patch_size = adafocus_config.parse_variant(variant)
    except errors.ConfigError as e:
        raise ValueError(f"unknown AdaFocus benchmark case {case!r}: "
                         f"{e}") from None
    if version == "v1" and glance != "mbv2":
        raise ValueError(f"case {case!r}: AdaFocus V1 is published with the "
                         "MobileNet-V2 glance only; expected "
                         f"'v1_mbv2_p{patch_size}'")
    if patch_size > frame_size:
        raise ValueError(f"case {case!r}: patch size {patch_size} exceeds "
                         f"the frame size {frame_size}")
    return version, glance, patch_size


def full_frame_model(num_frames, frame_size, num_classes):
    """The baseline: ResNet-50 on every whole frame, logits averaged.

    Args:
        num_frames: frames per video `T`.
        frame_size: the frames' side.
        num_classes: classes of the Dense head.

    Returns:
        `(model, trunk, head)`: a functional `keras.Model`
        `{"frames": [B, T, H, W, 3]}` -> `{"logits": [B, num_classes]}`,
        its ResNet-50 trunk (the AdaFocus focus trunk, `focus_arch
        "resnet50"`) and its `Dense` head (PyTorch's initialisation).

    Example:

    ```python
    model, trunk, head = full_frame_model(16, 224, 200)
    ```
    """
    import keras

    from tfaction.layers.box_axis import BoxAxis
    from tfaction.models.adafocus import common

    frames = common.frames_input(num_frames, (frame_size, frame_size))
    trunk = common.build_trunk("resnet50", name="focus", dtype=None)
    channels = common.trunk_output(trunk, (frame_size, frame_size),
                                   "focus")[-1]
    head = common.dense(num_classes, channels, "focus_head", None)
    maps = trunk(BoxAxis("merge", name="fold_frames")(frames))
    features = keras.layers.GlobalAveragePooling2D(name="focus_pool")(maps)
    frame_logits = BoxAxis("split", name="unfold_frames")(
        [head(features), frames])
    logits = keras.layers.GlobalAveragePooling1D(name="frame_average")(
        frame_logits)
    model = keras.Model({"frames": frames}, {"logits": logits},
                        name="resnet50_full_frame")
    return model, trunk, head


def build_case(case, num_frames=16, frame_size=224,
               num_classes=NUM_CLASSES, seed=0):
    """The model of a case and its GFLOPs, with random weights.

    Args:
        case: a case name (`parse_case`).
        num_frames: frames per video `T`.
        frame_size: the frames' side.
        num_classes: number of classes.
        seed: the seed of the weights.

    Returns:
        Dict with `model` (`{"frames": [B, T, H, W, 3]}` -> a dict of
        outputs), `gflops` (the `flops` function's dict: parts per frame,
        `per_frame`, `per_video`) and `description` (JSON-ready: the model
        class, glance trunk and input size, focus trunk and input size).

    Raises:
        ValueError: an unknown case.

    Example:

    ```python
    built = build_case("v2_mbv2_p128")
    built["gflops"]["per_video"]   # 26.96
    ```
    """
    import keras

    from tfaction.models.adafocus import flops
    from tfaction.models.adafocus.v1 import AdaFocusV1
    from tfaction.models.adafocus.v2 import AdaFocusV2
    from tfaction.tasks import adafocus_config

    version, glance, patch_size = parse_case(case, frame_size)
    keras.utils.set_random_seed(seed)
    if version == BASELINE:
        model, trunk, head = full_frame_model(num_frames, frame_size,
                                              num_classes)
        return {"model": model,
                "gflops": flops.frame_classifier_gflops(
                    trunk, head, (frame_size, frame_size), num_frames),
                "description": {
                    "model": "ResNet-50 on full frames", "glance": None,
                    "glance_input": None, "focus": "resnet50",
                    "focus_input": [frame_size, frame_size]}}
    if version == "v2":
        task = adafocus_config.experiment_config("actnet", glance,
                                                 patch_size).task
        task.frames.num_steps = num_frames
        task.frames.crop_size = (frame_size, frame_size)
        model = AdaFocusV2(num_classes,
                           **adafocus_config.model_values(task))
        gflops = flops.adafocus_v2_gflops(model)
    else:
        model = AdaFocusV1(num_classes, num_frames=num_frames,
                           frame_size=frame_size, patch_size=patch_size)
        gflops = flops.adafocus_v1_gflops(model)
    return {"model": model, "gflops": gflops,
            "description": {
                "model": type(model).__name__, "glance": model.glance_arch,
                "glance_input": list(model.glance_size),
                "focus": model.focus_arch,
                "focus_input": [patch_size, patch_size]}}


def _peak_rss_mb():
    """The process's peak resident memory so far (MB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                 1)


def _forward_call(model, frames):
    """A zero-argument call of `model`'s forward (inference mode, one
    `tf.function` without XLA) on `frames`; returns every output."""
    import tensorflow as tf

    @tf.function(jit_compile=False)
    def forward(frames):
        return model({"frames": frames}, training=False)

    def call():
        # Fetching every output waits for the device.
        return {k: v.numpy() for k, v in forward(frames).items()}

    return call


def _case_child(args):
    """One case in this (fresh) process; prints 'RESULT {json}'."""
    import numpy as np
    import tensorflow as tf

    sizes = (args.num_frames, args.frame_size, args.num_classes)
    built = build_case(args.child_case, *sizes)
    model = built["model"]
    # Drawn on the default device (the GPU when there is one), so the
    # timed calls copy nothing from the host.
    frames = tf.random.stateless_normal(
        (args.batch_size, args.num_frames, args.frame_size, args.frame_size,
         3), seed=[0, 0])
    call = _forward_call(model, frames)
    gflops = built["gflops"]
    result = {
        "case": args.child_case, **built["description"],
        "params": int(model.count_params()),
        "gflops_per_video": round(gflops["per_video"], 6),
        "gflops_per_frame": round(gflops["per_frame"], 6),
        "gflops_parts": {k: round(v, 6) for k, v in gflops.items()
                         if k not in ("per_frame", "per_video")},
        "peak_build_mb": _peak_rss_mb()}
    gpu = bool(tf.config.list_physical_devices("GPU"))
    start = time.perf_counter()
    outputs = call()
    result["first_call_s"] = round(time.perf_counter() - start, 3)
    for _ in range(args.warmup - 1):
        call()
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    seconds = timing.median_times([call], args.iterations, 0)[0]
    result.update({
        "batch_s": round(seconds, 4),
        "latency_s": round(seconds / args.batch_size, 4),
        "videos_per_s": round(args.batch_size / seconds, 2),
        "peak_mb": _peak_rss_mb(),
        "outputs_finite": bool(all(np.isfinite(v).all()
                                   for v in outputs.values()))})
    if gpu:
        result["gpu_peak_mb"] = round(tf.config.experimental.get_memory_info(
            "GPU:0")["peak"] / 2**20, 1)
    if args.child_case == BASELINE:
        result.update(speedup=1.0, gflops_ratio=1.0)
    else:
        # The baseline again, here, its calls alternating with the case's:
        # load from other processes then slows both alike.
        base = build_case(BASELINE, *sizes)
        base_call = _forward_call(base["model"], frames)
        for _ in range(args.warmup):
            base_call()
        paired, paired_base = timing.median_times(
            [call, base_call], args.iterations, 0)
        result.update({
            "paired_latency_s": round(paired / args.batch_size, 4),
            "paired_baseline_latency_s": round(
                paired_base / args.batch_size, 4),
            "speedup": round(paired_base / paired, 3),
            "gflops_ratio": round(
                gflops["per_video"] / base["gflops"]["per_video"], 3)})
    result["load_average"] = timing.load_average()
    print("RESULT " + json.dumps(result))


def run_cases(args, cases):
    """Every case in its own subprocess; dict case -> figures."""
    common = timing.flag_args(args, ("iterations", "warmup", "batch_size",
                                     "num_frames", "frame_size",
                                     "num_classes"))
    return {case: timing.case_row(__file__, ["--child_case", case, *common],
                                  f"case {case}") for case in cases}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated cases (default "
                             f"{','.join(CASES)}); {BASELINE} always runs")
    parser.add_argument("--batch_size", type=int, default=1,
                        help="videos per call")
    parser.add_argument("--iterations", type=int, default=3,
                        help="timed calls per case")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed calls per case (the first traces)")
    parser.add_argument("--num_frames", type=int, default=16,
                        help="frames per video")
    parser.add_argument("--frame_size", type=int, default=224,
                        help="side of the square frames")
    parser.add_argument("--num_classes", type=int, default=NUM_CLASSES)
    parser.add_argument("--quick", action="store_true",
                        help="one untimed and one timed call per case")
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--child_case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.warmup = 1, 1
    for flag in ("iterations", "warmup", "batch_size", "num_frames",
                 "frame_size", "num_classes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    # The baseline first: every other case is compared with it.
    cases = ([args.child_case] if args.child_case else list(dict.fromkeys(
        [BASELINE] + [c for c in args.cases.split(",") if c])))
    for case in cases:
        try:
            parse_case(case, args.frame_size)
        except ValueError as e:
            parser.error(str(e))

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if args.child_case:
        return _case_child(args)
    header = {"benchmark": "adafocus", "baseline": BASELINE,
              "batch_size": args.batch_size, "num_frames": args.num_frames,
              "frame_size": [args.frame_size, args.frame_size],
              "num_classes": args.num_classes}
    return timing.cases_result(header, lambda: run_cases(args, cases), args)


if __name__ == "__main__":
    main()
