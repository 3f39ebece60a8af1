"""Benchmark of CARL training steps; prints one JSON line.

The training step of the CARL task (`tfaction.tasks.carl.CARLTask.
train_step`) without its input pipeline and optimizer update: the two
views of every video folded into the batch and embedded
(`CARLTask.forward_views`, training mode: dropout on, batch statistics in
the trained batch norms), the per-video sequence contrastive loss with the
recipe's settings (`sequence_contrastive_loss`, `scope="video"`), the
coupled L2 term over every trainable variable (`coupled_l2_loss`), and the
gradients of every trainable variable (forward + backward), in one
`tf.function` without XLA. Cases, each a recipe's model and step shapes:

* `pouring`: `carl_config.experiment_config("pouring")`, the paper's
  Pouring shapes: one video per step, two views of T = 240 frames of
  224 x 224 (480 frames through the ResNet-50 v1.5 frame encoder, conv1
  ... layer3 frozen, layer4 trained), a 2-layer transformer (d 256, 8
  heads, FFN 1024), 128-d embeddings;
* `penn_action`: `experiment_config("penn_action")`: T = 80 (160 frames),
  3 transformer layers;
* `synthetic`: `experiments/configs/carl_synthetic.py`, the CPU-sized
  recipe of `make demo-carl`: 4 videos x 2 views x 16 frames of 64 x 64, the
  small conv trunk, a 2-layer transformer of width 64.

The views are CARL's `time_augment` draws (`samplers.carl_indices`) for a
video of T stored frames (72-76 % of the slots valid; every slot is
computed all the same); the frames are random (the step's cost does not
depend on them), and so are the frame encoder's weights (no checkpoint is
read). The authors embed frames in chunks of 40 to bound their memory;
this port runs the whole batch of frames at once.

Each case runs in its own subprocess (a fresh process: nothing else built
in it): the median of `--iterations` timed steps after `--warmup` untimed
ones (the first call traces; its time is `first_step_s`), the median
process CPU time of those steps (`train_step_cpu_s`, less sensitive to
other processes than wall time), and the peak resident memory of the
process (`resource.getrusage` `ru_maxrss`, TensorFlow itself included):
`peak_build_mb` after building the model and the inputs, `peak_train_mb`
after the steps. With a GPU visible, the case also reports the GPU
allocator's peak during the timed steps (`gpu_peak_mb`). Other processes on
the same cores slow every figure: read the times with `load_average` in
mind.

With `--reference_repo=PATH` (a clone of minghchen/CARL_code;
`--reference_python` a Python with torch, torchvision, PyYAML, easydict,
simplejson and iopath) the authors' step of `pouring` / `penn_action` is
timed right after ours by `benchmarks/carl_torch.py`: their
`TransformerModel` and `SCL.compute_loss` from their config of the dataset,
random weights, forward + `loss.backward()` without the optimizer update,
float32, as many torch threads as the CPUs TensorFlow uses, on the same
frames (same NumPy generator) and views (written to a temporary `.npz`).
Their figures go under `reference`. Differences that stay: they run
conv1 ... layer4 in chunks of 40 frames (`FRAMES_PER_BATCH`, so layer4's
batch statistics are per chunk) and apply their weight decay in the
optimizer (not timed), ours as the coupled L2 term of the loss (timed).

`rows` (the `make bench` table): per case, the step time and the peak
memory, ours against theirs (ratio ours / theirs; the step's target is
issue #16's <= 0.8x), or with `reference` null without `--reference_repo`.

`--dtype_policy=float32` (default) computes in float32; `recipe` uses the
recipe's `runtime.mixed_precision` (`mixed_float16` for the paper's recipes,
the loss in float32; on a CPU float16 is emulated and slow); the comparison
with the authors' code is float32 only.

Usage:
    python benchmarks/carl.py [--cases pouring,penn_action,synthetic]
        [--iterations 3] [--warmup 1] [--dtype_policy float32|recipe]
        [--quick | --bench]
        [--reference_repo PATH [--reference_python PYTHON]]
        [--output result.json]

`--quick` times one step of each case after one untimed step. `--bench`
(what `make bench` runs) is `--cases penn_action --iterations 2 --warmup
1`: the paper's PennAction shapes (T = 80, 160 frames a step), which fit
its time budget with the reference on 2 cores; Pouring's T = 240 would
triple every step.
"""

import argparse
import json
import os
import pathlib
import resource
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import timing  # noqa: E402

CASES = ("pouring", "penn_action", "synthetic")
# Cases with an authors' config (`benchmarks/carl_torch.py`).
REFERENCE_CASES = ("pouring", "penn_action")
CASE_NAMES = {"pouring": "Pouring", "penn_action": "PennAction",
              "synthetic": "synthetic recipe"}
# Issue #16: our step at most 0.8 x the authors' time.
STEP_TARGET_RATIO = 0.8
STEP_TARGET = f"<= {STEP_TARGET_RATIO}x"
# `make bench`: PennAction's step (the paper's shapes that fit the time
# budget with the reference on 2 cores).
BENCH = {"cases": "penn_action", "iterations": 2, "warmup": 1}
DTYPE_POLICIES = ("float32", "recipe")


def case_config(case):
    """The experiment config of a benchmark case.

    Args:
        case: one of `CASES`.

    Returns:
        An `ml_collections.ConfigDict` (the recipe's).

    Raises:
        ValueError: an unknown case.

    Example:

    >>> case_config("penn_action").task.views.num_frames
    80
    """
    from tfaction.tasks import carl_config

    if case == "synthetic":
        from experiments.configs import carl_synthetic
        return carl_synthetic.get_config()
    if case in ("pouring", "penn_action"):
        return carl_config.experiment_config(case)
    raise ValueError(f"unknown case {case!r}; expected one of {CASES}")


def step_views(config, seed=0):
    """The two views of every video of a step, as NumPy arrays.

    CARL's `time_augment` draws (`samplers.carl_indices`) for videos of
    `T = num_frames` stored frames, video `b` seeded `[seed, b]`; the
    authors' step (`benchmarks/carl_torch.py`) reads the same arrays.

    Args:
        config: an experiment config (`case_config`).
        seed: the seed of the draws.

    Returns:
        `(steps, masks)`: int32 `[B, 2, T]` frame indices and bool
        `[B, 2, T]` valid slots.

    Example:

    >>> steps, masks = step_views(case_config("penn_action"))
    >>> steps.shape, masks.dtype
    ((1, 2, 80), dtype('bool'))
    """
    import numpy as np

    from tfaction.data import samplers

    task = config.task
    steps = int(task.views.num_frames)
    indices, masks = [], []
    for b in range(int(config.trainer.global_batch_size)):
        idx, mask = samplers.carl_indices(
            steps, steps, seed=[seed, b],
            sampling_region=float(task.views.sampling_region),
            consistent_offset=float(task.views.consistent_offset),
            block_from=task.views.block_from)
        indices.append(idx.numpy())
        masks.append(mask.numpy())
    return np.stack(indices), np.stack(masks)


def step_setup(config, seed=0):
    """The model and a zero-argument training step of a recipe.

    Args:
        config: an experiment config (`case_config`).
        seed: the seed of the weights, views and frames.

    Returns:
        Dict with `step` (a callable returning `(loss, gradient global
        norm)` as floats), `model`, `frames_per_step` (B x 2 x T),
        `batch` (videos per step) and `valid_fraction` (of the view slots).

    Example:

    ```python
    setup = step_setup(case_config("synthetic"))
    loss, grad_norm = setup["step"]()
    ```
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from tfaction.losses.sequence_contrastive_loss import (
        sequence_contrastive_loss)
    from tfaction.models.carl import model as model_lib
    from tfaction.tasks import carl as carl_task
    from tfaction.tasks import carl_config

    task = config.task
    keras.utils.set_random_seed(seed)
    # The task's model (its batch norms synchronised over replicas or not:
    # on one device the statistics are the same).
    model = model_lib.CARL(**carl_config.model_values(task))
    batch = int(config.trainer.global_batch_size)
    steps = int(task.views.num_frames)
    height, width = (int(v) for v in task.views.image_size)
    indices, masks = step_views(config, seed)
    rng = np.random.default_rng(seed)
    features = {
        "frames": tf.constant(rng.standard_normal(
            (batch, 2, steps, height, width, 3), dtype=np.float32)),
        "mask": tf.constant(masks)}
    labels = {"steps": tf.constant(indices), "masks": tf.constant(masks),
              "seq_lens": tf.fill([batch, 2], steps)}
    losses = task.losses
    loss_kwargs = dict(
        temperature=float(losses.temperature),
        label_variance=float(losses.label_variance),
        positive_type=losses.positive_type,
        negative_type=losses.negative_type,
        positive_window=float(losses.positive_window),
        masked_negative_weight=float(losses.masked_negative_weight),
        scope="video", reduction="none")
    weight_decay = float(task.l2_weight_decay)
    variables = model.trainable_variables

    @tf.function(jit_compile=False)
    def train_step(features, labels):
        with tf.GradientTape() as tape:
            projections = carl_task.CARLTask.forward_views(
                model, features, training=True)
            per_video = sequence_contrastive_loss(
                projections, labels["steps"], labels["seq_lens"],
                labels["masks"], **loss_kwargs)
            loss = tf.reduce_mean(per_video) + carl_task.coupled_l2_loss(
                variables, weight_decay)
        grads = tape.gradient(loss, variables)
        return loss, tf.linalg.global_norm(grads)

    def step():
        loss, norm = train_step(features, labels)
        return float(loss), float(norm)

    valid = float(tf.reduce_mean(tf.cast(labels["masks"], tf.float32)))
    return {"step": step, "model": model, "batch": batch,
            "frames_per_step": batch * 2 * steps, "valid_fraction": valid}


def _peak_rss_mb():
    """The process's peak resident memory so far (MB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                 1)


def _case_child(args):
    """One case in this (fresh) process; prints 'RESULT {json}'."""
    import keras
    import numpy as np
    import tensorflow as tf

    config = case_config(args.child_case)
    policy = ("float32" if args.dtype_policy == "float32"
              else config.runtime.mixed_precision)
    keras.config.set_dtype_policy(policy)
    setup = step_setup(config)
    model = setup["model"]
    task = config.task
    result = {
        "case": args.child_case, "dtype_policy": policy,
        "trunk": task.model.trunk, "batch": setup["batch"],
        "num_frames": int(task.views.num_frames),
        "image_size": [int(v) for v in task.views.image_size],
        "num_layers": int(task.model.num_layers),
        "frames_per_step": setup["frames_per_step"],
        "valid_fraction": round(setup["valid_fraction"], 3),
        "trainable_params": int(sum(np.prod(v.shape)
                                    for v in model.trainable_variables)),
        "params": int(model.count_params()),
        "peak_build_mb": _peak_rss_mb()}
    gpu = bool(tf.config.list_physical_devices("GPU"))
    start = time.perf_counter()
    loss, grad_norm = setup["step"]()
    result["first_step_s"] = round(time.perf_counter() - start, 3)
    for _ in range(args.warmup - 1):
        setup["step"]()
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    cpu = []

    def timed_step():
        # CPU seconds of the whole process too: less sensitive than wall
        # time to other processes on the same cores.
        start_cpu = time.process_time()
        setup["step"]()
        cpu.append(time.process_time() - start_cpu)

    seconds = timing.median_times([timed_step], args.iterations, 0)[0]
    result.update({
        "train_step_s": round(seconds, 3),
        "train_step_cpu_s": round(timing.median(cpu), 3),
        "frames_per_s": round(setup["frames_per_step"] / seconds, 1),
        "peak_train_mb": _peak_rss_mb(),
        "loss": round(loss, 4), "grad_norm": round(grad_norm, 4)})
    if gpu:
        result["gpu_peak_mb"] = round(tf.config.experimental.get_memory_info(
            "GPU:0")["peak"] / 2**20, 1)
    print("RESULT " + json.dumps(result))


def reference_threads():
    """Threads given to PyTorch: as many as TensorFlow uses by default (the
    CPUs this process may run on)."""
    return len(os.sched_getaffinity(0)) if hasattr(
        os, "sched_getaffinity") else os.cpu_count()


def run_reference(args, case):
    """The authors' step of a case (`benchmarks/carl_torch.py`), on this
    benchmark's frames (same NumPy generator) and views (written to a
    temporary `.npz`); returns its `RESULT` dict."""
    import numpy as np

    steps, masks = step_views(case_config(case))
    with tempfile.TemporaryDirectory() as tmp:
        views = os.path.join(tmp, "views.npz")
        np.savez(views, steps=steps, masks=masks)
        cmd = [args.reference_python, str(ROOT / "benchmarks" /
                                          "carl_torch.py"),
               "--repo", args.reference_repo, "--case", case,
               "--views", views, "--threads", str(reference_threads()),
               *timing.flag_args(args, ("iterations", "warmup"))]
        return timing.child_result(cmd, f"reference {case}")


def reference_name(repo, result):
    """The row's `reference_name`: repository commit, torch, threads."""
    commit = (timing.git_commit(repo) if repo
              else "unknown commit (not a git work tree)")
    return (f"authors' PyTorch code (CARL_code @ {commit}, torch "
            f"{result['torch']}, {result['threads']} threads)")


def table_rows(cases, reference, repo):
    """The `rows` of the result: per case, step time and peak memory.

    Args:
        cases: dict case -> our figures.
        reference: dict case -> the authors' figures (cases they ran).
        repo: the authors' clone (for `reference_name`), or None.

    Returns:
        List of row dicts (`family` "CARL", `measure`, `ours`,
        `reference`, `unit`, `ratio`, `reference_name`, `target`, `met`).

    Example:

    >>> table_rows({"synthetic": ours}, {}, None)[0]["reference"] is None
    True
    """
    rows = []
    for case, ours in cases.items():
        theirs = reference.get(case)
        name = reference_name(repo, theirs) if theirs else None
        shape = (f"{CASE_NAMES[case]} shapes (B={ours['batch']}, 2 x "
                 f"{ours['num_frames']} frames of "
                 f"{'x'.join(str(v) for v in ours['image_size'])}, "
                 f"{ours['dtype_policy']})")
        for measure, key, unit, scale, target in (
                ("training step (forward + backward)", "train_step_s", "s",
                 1.0, STEP_TARGET if case in REFERENCE_CASES else None),
                ("peak memory (process RSS) of the training step",
                 "peak_train_mb", "GB", 1 / 1024, None)):
            value = round(ours[key] * scale, 3)
            ref = round(theirs[key] * scale, 3) if theirs else None
            ratio = round(value / ref, 2) if ref else None
            met = (ratio <= STEP_TARGET_RATIO if target and ratio is not None
                   else None)
            rows.append({
                "family": "CARL", "measure": f"{measure}, {shape}",
                "ours": value, "reference": ref, "unit": unit,
                "ratio": ratio, "reference_name": name,
                "target": target, "met": met})
    return rows


def run_cases(args, cases):
    """Every case in its own subprocess (then the authors', if asked);
    dicts case -> our figures and case -> theirs."""
    common = timing.flag_args(args, ("iterations", "warmup", "dtype_policy"))
    ours, theirs = {}, {}
    for case in cases:
        ours[case] = timing.case_row(
            __file__, ["--child_case", case, *common], f"case {case}")
        if args.reference_repo and case in REFERENCE_CASES:
            theirs[case] = run_reference(args, case)
    return ours, theirs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--iterations", type=int, default=3,
                        help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed steps per case (the first traces)")
    parser.add_argument("--dtype_policy", default="float32",
                        choices=DTYPE_POLICIES,
                        help="float32, or the recipe's mixed precision")
    parser.add_argument("--quick", action="store_true",
                        help="one untimed and one timed step per case")
    parser.add_argument("--bench", action="store_true",
                        help="the `make bench` preset: " + ", ".join(
                            f"--{k}={v}" for k, v in BENCH.items()))
    parser.add_argument("--reference_repo",
                        help="clone of minghchen/CARL_code: time the "
                             "authors' step too (pouring, penn_action)")
    parser.add_argument("--reference_python", default=sys.executable,
                        help="Python with torch + torchvision for "
                             "--reference_repo")
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--child_case", choices=CASES,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bench:
        for key, value in BENCH.items():
            setattr(args, key, value)
    if args.quick:
        args.iterations, args.warmup = 1, 1
    if args.iterations < 1 or args.warmup < 1:
        parser.error("--iterations and --warmup must be >= 1")
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown or not cases:
        parser.error(f"unknown or no cases {unknown}; choose from {CASES}")
    if args.reference_repo and args.dtype_policy != "float32":
        parser.error("--reference_repo compares float32 steps (the "
                     "authors' AMP is CUDA-only): use --dtype_policy "
                     "float32")

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if args.child_case:
        return _case_child(args)
    start = time.perf_counter()
    loads = [timing.load_average()]
    ours, theirs = run_cases(args, cases)
    loads.append(timing.load_average())
    result = {"benchmark": "carl", "cases": ours,
              "iterations": args.iterations, "warmup": args.warmup}
    if theirs:
        # The authors' code, measured in this run (--reference_repo).
        result["reference"] = theirs
    result["rows"] = table_rows(ours, theirs, args.reference_repo)
    result.update(timing.run_facts(start, loads))
    return timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
