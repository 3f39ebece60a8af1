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
computed all the same); the frames are random (the step's cost does not depend on them),
and so are the frame encoder's weights (no checkpoint is read). The
authors embed frames in chunks of 40 to bound their memory; this port
runs the whole batch of frames at once.

Each case runs in its own subprocess (a fresh process: nothing else built
in it): the median of `--iterations` timed steps after `--warmup` untimed
ones (the first call traces; its time is `first_step_s`), and the peak
resident memory of the process (`resource.getrusage` `ru_maxrss`, TensorFlow
itself included): `peak_build_mb` after building the model and the inputs,
`peak_train_mb` after the steps. With a GPU visible, the case also reports
the GPU allocator's peak during the timed steps (`gpu_peak_mb`). Other
processes on the same cores slow every figure: read the times with
`load_average` in mind.

`--dtype_policy=float32` (default) computes in float32; `recipe` uses the
recipe's `runtime.mixed_precision` (`mixed_float16` for the paper's recipes,
the loss in float32; on a CPU float16 is emulated and slow).

Usage:
    python benchmarks/carl.py [--cases pouring,penn_action,synthetic]
        [--iterations 3] [--warmup 1] [--dtype_policy float32|recipe]
        [--quick] [--output result.json]

`--quick` times one step of each case after one untimed step.
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

CASES = ("pouring", "penn_action", "synthetic")
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

    from tfaction.data import samplers
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
    indices, masks = [], []
    for b in range(batch):
        idx, mask = samplers.carl_indices(
            steps, steps, seed=[seed, b],
            sampling_region=float(task.views.sampling_region),
            consistent_offset=float(task.views.consistent_offset),
            block_from=task.views.block_from)
        indices.append(idx)
        masks.append(mask)
    rng = np.random.default_rng(seed)
    features = {
        "frames": tf.constant(rng.standard_normal(
            (batch, 2, steps, height, width, 3), dtype=np.float32)),
        "mask": tf.stack(masks)}
    labels = {"steps": tf.stack(indices), "masks": tf.stack(masks),
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
    seconds = timing.median_times([setup["step"]], args.iterations, 0)[0]
    result.update({
        "train_step_s": round(seconds, 3),
        "frames_per_s": round(setup["frames_per_step"] / seconds, 1),
        "peak_train_mb": _peak_rss_mb(),
        "loss": round(loss, 4), "grad_norm": round(grad_norm, 4)})
    if gpu:
        result["gpu_peak_mb"] = round(tf.config.experimental.get_memory_info(
            "GPU:0")["peak"] / 2**20, 1)
    print("RESULT " + json.dumps(result))


def run_cases(args, cases):
    """Every case in its own subprocess; dict case -> figures."""
    common = timing.flag_args(args, ("iterations", "warmup", "dtype_policy"))
    return {case: timing.case_row(__file__, ["--child_case", case, *common],
                                  f"case {case}") for case in cases}


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
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--child_case", choices=CASES,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.warmup = 1, 1
    if args.iterations < 1 or args.warmup < 1:
        parser.error("--iterations and --warmup must be >= 1")
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown or not cases:
        parser.error(f"unknown or no cases {unknown}; choose from {CASES}")

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if args.child_case:
        return _case_child(args)
    return timing.cases_result({"benchmark": "carl"},
                               lambda: run_cases(args, cases), args)


if __name__ == "__main__":
    main()
