"""Mixed precision and XLA per family: training-step time; one JSON line.

For each family, the recipe's model and training step at a reduced size
(`FAMILIES` gives the shapes), timed under five runtime settings
(`SETTINGS`):

* `float32` without XLA (the baseline every ratio divides by), and with
  XLA (`tf.function(jit_compile=True)`);
* `mixed_bfloat16` without and with XLA;
* `mixed_float16` without XLA, with dynamic loss scaling as the recipes
  get it (`build_optimizer` wraps the optimizer in Keras'
  `LossScaleOptimizer` under that policy; `GlobalBatchOptimizer.minimize`
  scales the loss and skips a step whose gradients are not finite).

The step is the task's own `train_step` (`tfaction.tasks`: the recipe's
losses, `GlobalBatchOptimizer` with the recipe's clipping, the recipe's
optimizer and schedule, and the weight EMA when the recipe enables it), as
the `Trainer` runs it, but on one batch held in memory and one device (no
distribution strategy), inside one `tf.function` whose `jit_compile` is
the setting's. The dtype policy is set as a run sets it
(`configure_runtime` with `runtime.mixed_precision`) before anything is
built. The batch comes from the recipe's own input pipeline
(`task.build_inputs`) over a small synthetic dataset of the family's
layout, written once per run to a temporary folder at the sizes below, and
is handed to every setting's process unchanged (under XLA less its string
entries, the video ids: XLA compiles no string tensor; a step that reads
them, as the Action Transformer's sampling seeds do, then fails and is
reported). Weights are random (the
recipes' `train_from_scratch`): the cost of a step does not depend on them.

Each setting of each family runs in its own subprocess (fresh memory, its
own tracing and compilation); one that fails, or runs past `--timeout_s`
(XLA can compile a training step for minutes on a CPU), is reported with
its error instead of figures, and gives no row. Reported per setting:
`step_s` (median of `--iterations` timed steps after `--warmup` untimed
ones), `first_step_s` (the first call: tracing, and XLA compilation where
on), `peak_rss_mb` (`ru_maxrss` of the process, TensorFlow itself
included), `loss` (the first step's loss: the same initial weights and
inputs under every setting), `losses_finite` (every step's loss finite),
`loss_rel_diff` (|loss - float32 loss| / |float32 loss|, float32 without
XLA), the final `loss_scale` under `mixed_float16` and `skipped_steps`
(steps whose gradients were not finite, so not applied). Dropout and the
tasks' random sampling draw from the same seed in every process; where
XLA draws differently the loss difference says so (compare `float32_xla`
with `float32`).

Sizes (`--bench` and the default; the recipes' architectures, fewer
frames, pixels, proposals or steps):

* ActionFormer: THUMOS I3D recipe (2048-d features, embed 512, 4 heads,
  arch (2, 2, 5), window 19), batch 2, max_seq_len 576 (recipe 2304);
* ActionVLAD: HMDB51 RGB recipe, stage 2 (VGG16 trunk, NetVLAD K = 64;
  the classifier, NetVLAD and the last conv block trained), batch 2 x 3
  frames of 112 x 112 (recipe 16 x 25 frames of 224 x 224);
* Video Action Transformer: AVA Tx HighRes recipe (I3D to Mixed_4f, RPN,
  2 heads x 3 layers, D 128), batch 1 clip of 8 x 64 x 64 (recipe
  64 x 400 x 400), 32 proposals;
* CARL: Pouring recipe (ResNet-50 v1.5 trunk with layer4 trained, 2-layer
  transformer d 256), 1 video x 2 views x 4 frames of 64 x 64 (recipe
  240 frames of 224 x 224);
* AdaFocus V2: ActivityNet MobileNet-V2 / ResNet-50 recipe with 96 x 96
  patches, batch 2 x 2 frames of 128 x 128 (recipe 32 x 16 of 224 x 224).

These are small: `mixed_float16` is emulated on a CPU and runs tens of
times slower than float32 on the convolutional trunks, which bounds what
fits in the `make bench` budget.

On a CPU, `mixed_float16` is emulated (no float16 arithmetic units), and
`mixed_bfloat16` runs through oneDNN's bfloat16 kernels where the CPU has
them (AVX512_BF16 / AMX); what a GPU would show is not measured here.

Usage:
    python benchmarks/precision.py [--bench] [--families
        actionformer,actionvlad,action_transformer,carl,adafocus_v2]
        [--settings float32,float32_xla,...] [--iterations 3]
        [--warmup 1] [--timeout_s 0] [--output result.json]

`--bench` (the `make bench` preset): every family and setting, 2 timed
steps after 1 untimed, each setting stopped after 60 s.
"""

import argparse
import json
import math
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

# name -> (dtype policy, jit_compile)
SETTINGS = {"float32": ("float32", False),
            "float32_xla": ("float32", True),
            "mixed_bfloat16": ("mixed_bfloat16", False),
            "mixed_bfloat16_xla": ("mixed_bfloat16", True),
            "mixed_float16": ("mixed_float16", False)}
BASELINE = "float32"
# `--bench` leaves bfloat16 + XLA out to fit its time: XLA's CPU compile
# alone runs for minutes on the larger steps.
BENCH_SETTINGS = ("float32", "float32_xla", "mixed_bfloat16",
                  "mixed_float16")
FAMILY_NAMES = {"actionformer": "ActionFormer",
                "actionvlad": "ActionVLAD",
                "action_transformer": "Video Action Transformer",
                "carl": "CARL",
                "adafocus_v2": "AdaFocus"}
FAMILIES = tuple(FAMILY_NAMES)


# ------------------------------------------------------------- families
def family_config(family):
    """The reduced recipe of a family (the shapes of the module doc).

    Args:
        family: one of `FAMILIES`.

    Returns:
        An experiment `ml_collections.ConfigDict` (its `task.data_dir` is
        set by `write_dataset`).

    Example:

    >>> family_config("carl").task.views.num_frames
    4
    """
    if family == "actionformer":
        from experiments.configs import actionformer_thumos_i3d
        config = actionformer_thumos_i3d.get_config()
        config.task.max_seq_len = 576
        # The synthetic data's subsets (`write_dataset`).
        config.task.train_subset = "training"
        config.task.eval_subset = "validation"
    elif family == "actionvlad":
        from experiments.configs import actionvlad_hmdb51_rgb
        config = actionvlad_hmdb51_rgb.get_config("stage2")
        config.task.frames.num_steps = 3
        config.task.frames.resize = None
        config.task.frames.crop_size = (112, 112)
        config.task.frames.test_crop_offsets = None
        config.task.train_from_scratch = True
        config.trainer.global_batch_size = 2
    elif family == "action_transformer":
        from experiments.configs import action_transformer_ava_tx_highres
        config = action_transformer_ava_tx_highres.get_config()
        task = config.task
        task.clips.num_frames = 8
        task.clips.image_size = (64, 64)
        task.clips.crop = False
        task.model.num_proposals = 32
        task.train_from_scratch = True
        config.trainer.global_batch_size = 1
    elif family == "carl":
        from experiments.configs import carl_pouring
        config = carl_pouring.get_config()
        config.task.views.num_frames = 4
        config.task.views.image_size = (64, 64)
        config.task.train_from_scratch = True
        config.trainer.global_batch_size = 1
    elif family == "adafocus_v2":
        from experiments.configs import adafocus_v2_actnet
        config = adafocus_v2_actnet.get_config("mbv2_p96")
        frames = config.task.frames
        frames.num_steps = 2
        frames.resize = None
        frames.crop_size = (128, 128)
        config.task.train_from_scratch = True
        config.trainer.global_batch_size = 2
    else:
        raise ValueError(f"unknown family {family!r}; expected one of "
                         f"{FAMILIES}")
    # The recipe's schedule over its run (epochs-based recipes: of 1000
    # steps each); only its first steps are taken.
    config.trainer.steps_per_epoch = 1000
    if not int(config.trainer.train_steps):
        config.trainer.train_steps = int(config.trainer.epochs) * 1000
    config.runtime.strategy = "one_device"
    config.runtime.logical_cpus = 0
    config.runtime.deterministic = False
    return config


def write_dataset(family, config, root):
    """Writes a small synthetic dataset of `family`'s layout under `root`
    and points `config.task.data_dir` at its records.

    Args:
        family: one of `FAMILIES`.
        config: the family's config (`family_config`), changed in place.
        root: an empty folder (a `pathlib.Path`).
    """
    raw, records = root / "raw", root / "records"
    task = config.task
    if family == "actionformer":
        from tfaction.data.formats.activitynet_features import (
            convert_activitynet_features)
        from tfaction.data.synthetic.temporal_localization import (
            generate_temporal_localization)
        generate_temporal_localization(
            raw, num_videos=4, seed=0, num_classes=20, feature_dim=2048,
            min_steps=task.max_seq_len - 64, max_steps=task.max_seq_len,
            validation_fraction=0.25)
        convert_activitynet_features(
            raw / "annotations.json", raw / "features", records,
            feature_stride=4, feature_window=16)
    elif family == "actionvlad":
        from tfaction.data.formats.hmdb51 import convert_hmdb51_frames
        from tfaction.data.synthetic.video_classification import (
            CLASSES, generate_video_classification)
        height, width = task.frames.crop_size
        generate_video_classification(raw, num_videos=6, seed=0,
                                      classes=CLASSES[:3],
                                      height=height, width=width,
                                      min_frames=8, max_frames=10)
        lists = raw / "train_test_lists"
        convert_hmdb51_frames(
            [lists / "train_split1.txt", lists / "test_split1.txt"],
            raw / "frames", records, modalities=("rgb",),
            class_list=raw / "actions.txt")
    elif family == "action_transformer":
        from tfaction.data.formats.ava import convert_ava
        from tfaction.data.synthetic.ava import generate_ava
        height, width = task.clips.image_size
        generate_ava(raw, num_videos=3, seed=0, height=height, width=width,
                     duration=3, val_every=3)
        convert_ava([raw / "ava_train_v2.1.csv", raw / "ava_val_v2.1.csv"],
                    raw / "videos", records,
                    label_map=raw / "ava_action_list_synthetic.pbtxt",
                    clip_frames=task.clips.num_frames)
    elif family == "carl":
        from tfaction.data.formats.tcc import convert_tcc
        from tfaction.data.synthetic.tcc import generate_tcc
        generate_tcc(raw, num_videos=4, seed=0,
                     size=task.views.image_size[0], min_frames=12,
                     max_frames=16, val_every=2)
        convert_tcc(str(raw / "*.tfrecord"), str(records))
    elif family == "adafocus_v2":
        from tfaction.data.formats.adafocus_lists import (
            convert_adafocus_lists)
        from tfaction.data.synthetic.adafocus import generate_adafocus
        # The generator draws on a lattice: sides of 4 k + 1 pixels.
        height, width = (side + 1 for side in task.frames.crop_size)
        generate_adafocus(raw, num_videos=8, seed=0, num_classes=4,
                          height=height, width=width, min_frames=6,
                          max_frames=8)
        convert_adafocus_lists(
            [raw / "actnet_train_split.txt", raw / "actnet_val_split.txt"],
            raw / "frames", records, dataset="actnet",
            class_list=raw / "classInd.txt")
    else:
        raise ValueError(f"unknown family {family!r}")
    task.data_dir = str(records)


def draw_batch(config):
    """One training batch of the recipe's input pipeline, as NumPy.

    Args:
        config: a family's config with its `data_dir` written.

    Returns:
        The batch's nested structure with NumPy arrays for tensors.
    """
    import tensorflow as tf

    from tfaction import tasks

    task = tasks.build_task(config)
    dataset = task.build_inputs(
        True, global_batch_size=int(config.trainer.global_batch_size),
        seed=int(config.trainer.seed))
    batch = next(iter(dataset))
    return tf.nest.map_structure(lambda t: t.numpy(), batch)


def save_batch(batch, path):
    """Saves `batch` (nested NumPy arrays) as a one-element `tf.data`
    dataset in folder `path`, which `tf.data.Dataset.load` reads back with
    its structure and dtypes."""
    import tensorflow as tf

    tf.data.Dataset.from_tensors(batch).save(str(path))


def numeric(batch):
    """`batch` without its string entries (video ids, timestamps), for an
    XLA step: XLA compiles no string tensor.
    """
    import tensorflow as tf

    if isinstance(batch, dict):
        return {k: numeric(v) for k, v in batch.items()
                if not (isinstance(v, tf.Tensor) and v.dtype == tf.string)}
    if isinstance(batch, (tuple, list)):
        return type(batch)(numeric(v) for v in batch)
    return batch


# ----------------------------------------------------------------- child
def _peak_rss_mb():
    """The process's peak resident memory so far (MB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                 1)


def train_step_setup(config, jit_compile):
    """The task's training step of `config`, ready to call.

    The dtype policy must already be set (`configure_runtime`).

    Args:
        config: an experiment config (its records written).
        jit_compile: the step's `tf.function(jit_compile=...)`.

    Returns:
        Dict `step` (`step(batch)` -> the step's logs, a `tf.function`),
        `model`, `optimizer` (the Keras optimizer, a `LossScaleOptimizer`
        under `mixed_float16`).

    Example:

    ```python
    setup = train_step_setup(config, jit_compile=False)
    logs = setup["step"](batch)
    ```
    """
    import tensorflow as tf

    from tfaction import tasks
    from tfaction.training import ema as ema_lib
    from tfaction.training import optimizers
    from tfaction.training.global_batch_optimizer import (
        GlobalBatchOptimizer)

    task = tasks.build_task(config)
    model = task.build_model()
    trainer = config.trainer
    optimizer = optimizers.build_optimizer(
        config.optimizer, int(trainer.train_steps),
        exclude_variables=task.weight_decay_exclusions(model),
        steps_per_epoch=int(trainer.steps_per_epoch))
    optimizer.build(model.trainable_variables)
    updater = GlobalBatchOptimizer(
        optimizer, int(trainer.global_batch_size),
        clip_norm=config.optimizer.clip_norm,
        clip_norm_per_variable=config.optimizer.get(
            "clip_norm_per_variable", 0.0), num_replicas=1)
    ema = (ema_lib.ModelEMA(model, config.ema.decay)
           if config.ema.enabled else None)
    metrics = list(task.build_metrics(training=True))

    @tf.function(jit_compile=jit_compile)
    def step(batch):
        logs = task.train_step(batch, model, updater, metrics)
        if ema is not None:
            ema.update()
        return logs

    return {"step": step, "model": model, "optimizer": optimizer}


def _child(args):
    """One setting of one family in this (fresh) process; prints
    'RESULT {json}'."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tfaction import training

    policy, jit = SETTINGS[args.child_setting]
    config = family_config(args.child_family)
    config.task.data_dir = args.records
    config.runtime.mixed_precision = policy
    training.configure_runtime(config.runtime, int(config.trainer.seed))
    # The parent's batch, saved as a one-element dataset (no pickle).
    batch = next(iter(tf.data.Dataset.load(args.batch_file)))
    if jit:
        batch = numeric(batch)
    setup = train_step_setup(config, jit)
    model, optimizer = setup["model"], setup["optimizer"]
    result = {"policy": policy, "jit_compile": jit,
              "params": int(model.count_params()),
              "trainable_params": int(sum(np.prod(v.shape) for v in
                                          model.trainable_variables)),
              "peak_build_mb": _peak_rss_mb()}
    losses = []

    def run():
        logs = setup["step"](batch)
        losses.append(float(logs["loss"]))

    first = []
    seconds = timing.median_times([run], args.iterations, args.warmup,
                                  first)[0]
    result.update({
        "step_s": round(seconds, 4), "first_step_s": first[0],
        "peak_rss_mb": _peak_rss_mb(), "loss": losses[0],
        "losses_finite": all(math.isfinite(v) for v in losses),
        "steps": len(losses)})
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        result["loss_scale"] = float(optimizer.dynamic_scale)
        result["skipped_steps"] = len(losses) - int(
            optimizer.inner_optimizer.iterations)
    print("RESULT " + json.dumps(result))


# ---------------------------------------------------------------- parent
SETTING_LABELS = {"float32": "float32",
                  "float32_xla": "float32 + XLA",
                  "mixed_bfloat16": "mixed_bfloat16",
                  "mixed_bfloat16_xla": "mixed_bfloat16 + XLA",
                  "mixed_float16": "mixed_float16 (loss scaling)"}
SHAPES = {"actionformer": "B=2, T=576",
          "actionvlad": "VGG16 stage 2, B=2 x 3 frames, 112 x 112",
          "action_transformer": "I3D + Tx HighRes, 1 x 8 x 64 x 64, R=32",
          "carl": "ResNet-50, 1 x 2 views x 4 frames, 64 x 64",
          "adafocus_v2": "MobileNet-V2 + ResNet-50 P=96, B=2 x 2 frames, "
                         "128 x 128"}
REFERENCE_NAME = "float32 without XLA, same run"


def _setting_row(child_args, timeout_s, what):
    """One setting's figures from its own subprocess, or `{"error": ...}`.

    A setting that fails (a family that cannot run under a policy), or
    that runs longer than `timeout_s` seconds (XLA compiling for minutes
    on a CPU), is reported with its error text instead of its figures.
    """
    import subprocess

    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()),
           *child_args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              check=False, timeout=timeout_s or None)
    except subprocess.TimeoutExpired:
        return {"error": f"{what}: stopped after {timeout_s} s "
                         f"(--timeout_s)", "timed_out": True}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"error": f"{what} failed (exit {proc.returncode}): "
                     f"{proc.stderr[-1500:]}"}


def run_family(args, family, settings):
    """Writes a family's data, draws its batch, then runs every setting in
    its own subprocess; dict setting -> figures (or `error`)."""
    with tempfile.TemporaryDirectory(prefix=f"precision_{family}_") as tmp:
        tmp = pathlib.Path(tmp)
        config = family_config(family)
        write_dataset(family, config, tmp)
        batch_file = tmp / "batch"
        save_batch(draw_batch(config), batch_file)
        common = ["--child_family", family, "--records",
                  config.task.data_dir, "--batch_file", str(batch_file),
                  *timing.flag_args(args, ("iterations", "warmup"))]
        out = {}
        for setting in settings:
            out[setting] = _setting_row(
                [*common, "--child_setting", setting], args.timeout_s,
                f"{family} {setting}")
            out[setting]["load_average"] = timing.load_average()
    base = out.get(BASELINE, {}).get("loss")
    for row in out.values():
        if base is not None and "loss" in row:
            row["loss_rel_diff"] = round(
                abs(row["loss"] - base) / max(abs(base), 1e-12), 6)
    return out


def make_rows(cases):
    """The `make bench` rows: each setting's step time against float32
    without XLA, per family.

    Args:
        cases: `{family: {setting: figures}}` (`run_family`).

    Returns:
        List of row dicts (`family`, `measure`, `ours`, `reference`,
        `unit`, `ratio`, `reference_name`, `target`, `met`); a setting
        that failed, or a family whose baseline failed, gives no row.

    Example:

    >>> make_rows({"carl": {"float32": {"step_s": 2.0},
    ...                     "mixed_bfloat16": {"step_s": 1.5}}})[0]["ratio"]
    0.75
    """
    rows = []
    for family, settings in cases.items():
        base = settings.get(BASELINE, {}).get("step_s")
        if base is None:
            continue
        for setting, figures in settings.items():
            if setting == BASELINE or "step_s" not in figures:
                continue
            rows.append({
                "family": FAMILY_NAMES[family],
                "measure": (f"training step, {SETTING_LABELS[setting]} / "
                            f"float32 ({SHAPES[family]})"),
                "ours": figures["step_s"], "reference": base, "unit": "s",
                "ratio": round(figures["step_s"] / base, 2),
                "reference_name": REFERENCE_NAME,
                "target": None, "met": None})
    return rows


def _names(text, allowed, parser, flag):
    names = [n for n in text.split(",") if n]
    unknown = sorted(set(names) - set(allowed))
    if unknown or not names:
        parser.error(f"{flag}: unknown or none {unknown}; choose from "
                     f"{','.join(allowed)}")
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated subset of "
                             f"{','.join(FAMILIES)}")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help="comma-separated subset of "
                             f"{','.join(SETTINGS)}")
    parser.add_argument("--iterations", type=int, default=3,
                        help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed steps per setting (the first traces "
                             "and compiles)")
    parser.add_argument("--timeout_s", type=float, default=0,
                        help="stop a setting's process after this many "
                             "seconds and report it as timed out (0: "
                             "never)")
    parser.add_argument("--bench", action="store_true",
                        help="the `make bench` preset: every family under "
                             f"{', '.join(BENCH_SETTINGS)}, 2 timed steps "
                             "after 1 untimed, settings stopped after 45 s")
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--child_family", choices=FAMILIES,
                        help=argparse.SUPPRESS)
    parser.add_argument("--child_setting", choices=tuple(SETTINGS),
                        help=argparse.SUPPRESS)
    parser.add_argument("--records", help=argparse.SUPPRESS)
    parser.add_argument("--batch_file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bench:
        args.families = ",".join(FAMILIES)
        args.settings = ",".join(BENCH_SETTINGS)
        args.iterations, args.warmup, args.timeout_s = 2, 1, 45
    if args.iterations < 1 or args.warmup < 1:
        parser.error("--iterations and --warmup must be >= 1")
    families = _names(args.families, FAMILIES, parser, "--families")
    settings = _names(args.settings, SETTINGS, parser, "--settings")

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if args.child_family:
        return _child(args)
    if BASELINE not in settings:
        settings.insert(0, BASELINE)  # every ratio divides by it
    start = time.perf_counter()
    loads = [timing.load_average()]
    cases = {}
    for family in families:
        cases[family] = run_family(args, family, settings)
        loads.append(timing.load_average())
    result = {"benchmark": "precision", "shapes": SHAPES,
              "settings": {k: list(v) for k, v in SETTINGS.items()},
              "cases": cases, "iterations": args.iterations,
              "warmup": args.warmup, "rows": make_rows(cases)}
    result.update(timing.run_facts(start, loads))
    return timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
