"""Benchmark of the tf.data pipelines; prints one JSON line.

Demand (issue #16: the input pipeline must never bound training). For a
recipe, the examples/s its training pipeline delivers, run alone as the
task builds it (`task.build_inputs(training=True)`: the recipe's shapes,
augmentation, batch and AUTOTUNE parallelism, one epoch per pass as the
`Trainer` reads it), against the examples/s its training step consumes
(`Trainer._train_fn`: the recipe's model, loss, optimizer, clipping and
EMA, one-device strategy, on one batch held in memory: no pipeline).
Pipeline passes and steps alternate in one process (medians of
`--iterations` after `--warmup`), so load from other processes hits both
alike. Each pass builds a new epoch's dataset first, as the trainer does
once per epoch; that build (tracing the stage functions, amortised over a
real epoch's hundreds of videos) is timed apart (`pipeline_build_s`) and
not counted. Target: pipeline >= 3x the step. Consumers (`--consumers`):

* `actionformer`: `experiments/configs/actionformer_thumos_i3d.py` (B=2,
  T=2304, 2048-d features, 20 classes; random weights) on synthetic
  feature sequences (`tfaction.data.synthetic.temporal_localization`,
  converted by `convert_activitynet_features` with the CLI's default
  "floats" encoding, the slower to parse, in 4 shards) of 0.75 T to
  1.25 T steps, so both `random_truncate` paths (a window of a longer
  video; a ratio crop + padding of a shorter one) run;
* `adafocus_v2`: `experiments/configs/adafocus_v2_actnet.py:mbv2_p128`
  (16 TSN frames, resize 256, multi-scale crop 224, flip; batch 32) on
  synthetic ActivityNet-layout videos (`tfaction.data.synthetic.adafocus`,
  48 stored frames of 257 x 341, the shorter side near the resize; the
  train list grown to two batches by symlinked copies), converted by
  `convert_adafocus_lists`; the step runs `--step_batch` videos (default
  2: the same work per video, bounded time and memory);
* `actionvlad_rgb`: `experiments/configs/actionvlad_hmdb51_rgb.py:stage1`
  (25 frames, resize 256 x 340, multi-scale crop 224, VGG16; batch 16,
  step batch 1) on synthetic HMDB51-layout videos of 256 x 340. Its step
  consumes fewer videos/s than AdaFocus V2's (about 0.65x on a 2-core
  CPU, both in one run with `--consumers actionvlad_rgb,adafocus_v2`:
  VGG16 on 25 frames is ~14x AdaFocus V2's forward GFLOPs per video, 387
  vs 27, but stage 1 trains only the head while AdaFocus trains every
  layer in two passes), so AdaFocus V2 is the frames recipe with the
  highest demand: the one `--bench` runs.

Former comparisons (sections `frames_loop`, `features_encodings`):

(a) Frames: decoded frames/s of `frames_pipeline` (TFRecords → parse
    → sample → decode the chosen JPEGs → crop → normalise → batch) against
    a plain Python loop that decodes the same chosen JPEGs (already in
    memory) with `tf.io.decode_jpeg`. The ratio pipeline/loop must be >= 0.8.
(b) Feature sequences with THUMOS shapes (T=2304, C=2048, float32):
    videos/s of `features_pipeline` for both record encodings ("tensor":
    one serialized tensor; "floats": a float feature list) against `np.load`
    of the same arrays from `.npy` files, plus the parse cost alone (records
    in memory, one thread) of each encoding.

Each former measurement is the best of `--repeats` timed passes after one
warm-up pass (which also traces the tf.data functions). Each consumer runs
in its own subprocess. All data lives in temporary directories that are
removed at the end. The JSON's `rows` hold one line per figure (family
"Pipelines").

`--bench` (`make bench`): every section, consumers `actionformer` and
`adafocus_v2` (3 timed passes and steps after 1 untimed), the former
sections with 5 repeats of 2 epochs; about 210 s of CPU time and 7.4 GB
peak memory (the AdaFocus V2 step): 5.6 min wall at load 6 on 2 cores.

Usage:
    python benchmarks/data_pipeline.py --bench [--output result.json]
    python benchmarks/data_pipeline.py [--sections demand,frames_loop,
        features_encodings] [--consumers actionformer,adafocus_v2,
        actionvlad_rgb] [--iterations 3] [--warmup 1] [--quick]
"""

import argparse
import itertools
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import timing  # noqa: E402
from tfaction.data import features_pipeline  # noqa: E402
from tfaction.data import frames_pipeline  # noqa: E402
from tfaction.data import schemas  # noqa: E402
from tfaction.data import tfrecord_io  # noqa: E402

SECTIONS = ("demand", "frames_loop", "features_encodings")
TARGET_RATIO = 3.0
# The former frames comparison's bar (pipeline / Python loop).
LOOP_TARGET = 0.8
STEP_NAME = ("the recipe's training step alone (tfaction Trainer step on "
             "one in-memory batch, same process)")


# ------------------------------------------------------------ consumers
def _actionformer_recipe(tmp, args):
    """THUMOS recipe over synthetic feature sequences -> (config, facts)."""
    from experiments.configs import actionformer_thumos_i3d
    from tfaction.data.formats.activitynet_features import (
        convert_activitynet_features)
    from tfaction.data.synthetic.temporal_localization import (
        generate_temporal_localization)

    config = actionformer_thumos_i3d.get_config()
    dim, classes = 2048, 20
    if args.quick:  # small shapes: a smoke test of the script
        dim, classes = 64, 5
        model = config.task.model
        model.embed_dim = model.head_dim = 32
        model.window_size = (9,) * len(model.window_size)
        config.task.max_seq_len = 256
    length = int(config.task.max_seq_len)
    train = args.af_videos or 4 * int(config.trainer.global_batch_size)
    # One validation video (the generator wants both subsets).
    generate_temporal_localization(
        tmp / "raw", num_videos=train + 1, seed=0, num_classes=classes,
        feature_dim=dim, min_steps=int(0.75 * length),
        max_steps=int(1.25 * length), validation_fraction=1 / (train + 1))
    convert_activitynet_features(
        tmp / "raw" / "annotations.json", tmp / "raw" / "features",
        tmp / "records", feature_stride=4, feature_window=16, num_shards=4)
    config.task.data_dir = str(tmp / "records")
    config.task.train_subset, config.task.eval_subset = (
        "training", "validation")
    return config, {"videos": train, "feature_dim": dim,
                    "steps": [int(0.75 * length), int(1.25 * length)],
                    "max_seq_len": length}


def _replicate_videos(split_list, frames_root, count, sep=","):
    """Makes a split list exactly `count` rows long, with symlinked copies
    of its videos under new names (rendering frames is the slow part).

    Rows are `<video folder><sep>...`, the folder relative to
    `frames_root`."""
    rows = split_list.read_text().splitlines()
    out = []
    for k in range(count):
        video, *rest = rows[k % len(rows)].split(sep)
        name = video if k < len(rows) else f"{video}_copy{k}"
        if name != video:
            (frames_root / name).symlink_to(frames_root / video)
        out.append(sep.join([name, *rest]))
    split_list.write_text("\n".join(out) + "\n")


def _adafocus_v2_recipe(tmp, args):
    """ActivityNet recipe over synthetic videos -> (config, facts)."""
    from experiments.configs import adafocus_v2_actnet
    from experiments.configs import adafocus_v2_synthetic
    from tfaction.data.formats.adafocus_lists import convert_adafocus_lists
    from tfaction.data.synthetic.adafocus import generate_adafocus

    if args.quick:  # the CPU-sized recipe: small trunks, 97 x 97 frames
        config = adafocus_v2_synthetic.get_config()
        height = width = 97
    else:
        config = adafocus_v2_actnet.get_config("mbv2_p128")
        height, width = 257, 341
    raw = tmp / "raw"
    videos = args.frames_videos or 2 * int(config.trainer.global_batch_size)
    generate_adafocus(raw, num_videos=8, seed=0, num_classes=4,
                      height=height, width=width, min_frames=args.frames,
                      max_frames=args.frames, val_fraction=0.25)
    _replicate_videos(raw / "actnet_train_split.txt", raw / "frames",
                      videos)
    convert_adafocus_lists(
        [raw / "actnet_train_split.txt", raw / "actnet_val_split.txt"],
        raw / "frames", tmp / "records", dataset="actnet",
        class_list=raw / "classInd.txt", jpeg_check="header", num_shards=4)
    config.task.data_dir = str(tmp / "records")
    config.task.train_from_scratch = True  # random weights: a speed test
    return config, {"videos": videos, "stored_frames": args.frames,
                    "frame_size": [height, width]}


def _actionvlad_rgb_recipe(tmp, args):
    """HMDB51 RGB recipe (stage 1) over synthetic videos."""
    from experiments.configs import actionvlad_hmdb51_rgb
    from experiments.configs import actionvlad_synthetic_rgb
    from tfaction.data.formats.hmdb51 import convert_hmdb51_frames
    from tfaction.data.synthetic.video_classification import CLASSES
    from tfaction.data.synthetic.video_classification import (
        generate_video_classification)

    if args.quick:  # the CPU-sized recipe: small trunk, 64 x 80 frames
        config = actionvlad_synthetic_rgb.get_config()
        height, width = 64, 80
    else:
        config = actionvlad_hmdb51_rgb.get_config("stage1")
        height, width = 256, 340
    raw = tmp / "raw"
    videos = args.frames_videos or 2 * int(config.trainer.global_batch_size)
    # Two classes of two videos: one trains, one tests (test_fraction).
    generate_video_classification(
        raw, num_videos=4, classes=CLASSES[:2], height=height, width=width,
        min_frames=args.frames, max_frames=args.frames)
    lists = raw / "train_test_lists"
    _replicate_videos(lists / "train_split1.txt", raw / "frames", videos,
                      sep=" ")
    convert_hmdb51_frames(
        [lists / "train_split1.txt", lists / "test_split1.txt"],
        raw / "frames", tmp / "records", modalities=("rgb",),
        class_list=raw / "actions.txt", jpeg_check="header", num_shards=4)
    config.task.data_dir = str(tmp / "records")
    config.task.train_from_scratch = True
    return config, {"videos": videos, "stored_frames": args.frames,
                    "frame_size": [height, width]}


# consumer -> (recipe builder, measure text, unit, default step batch)
CONSUMERS = {
    "actionformer": (
        _actionformer_recipe,
        "ActionFormer features pipeline / training step demand, THUMOS "
        "(B=2, T=2304, C=2048)", "videos/s", 0),
    "adafocus_v2": (
        _adafocus_v2_recipe,
        "AdaFocus V2 frames pipeline / training step demand, ActivityNet "
        "mbv2_p128 (16 frames 224, pipeline B=32)", "videos/s", 2),
    "actionvlad_rgb": (
        _actionvlad_rgb_recipe,
        "ActionVLAD RGB frames pipeline / training step demand, HMDB51 "
        "stage 1 (25 frames 224, VGG16, pipeline B=16)", "videos/s", 1),
}


def demand_child(args):
    """One consumer: pipeline vs training step examples/s (subprocess)."""
    from tfaction import tasks
    from tfaction import training

    tf.get_logger().setLevel("ERROR")
    recipe, _, _, default_batch = CONSUMERS[args.child]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tfaction_bench_") as tmp:
        tmp = pathlib.Path(tmp)
        config, facts = recipe(tmp, args)
        data_s = time.perf_counter() - start
        pipe_batch = int(config.trainer.global_batch_size)
        step_batch = min(args.step_batch or default_batch or pipe_batch,
                         pipe_batch)
        config.trainer.global_batch_size = step_batch
        config.trainer.steps_per_epoch = 1  # no counting pass
        config.trainer.train_steps = 10**6
        config.runtime.strategy = "one_device"
        config.runtime.logical_cpus = 0
        training.configure_runtime(config.runtime, config.trainer.seed)
        task = tasks.build_task(config)
        trainer = training.Trainer(task, config, tmp / "run",
                                   training.get_strategy("one_device"))
        batch = next(iter(trainer._train_dataset(0)))
        stop = tf.constant(0, tf.int32)

        def run_step():
            logs, _ = trainer._train_fn(batch, stop)
            float(logs["loss"])

        epochs = itertools.count(1)

        def build():
            return task.build_inputs(True, global_batch_size=pipe_batch,
                                     epoch=next(epochs), seed=trainer.seed)

        def drain(ds):
            return sum(int(tf.nest.flatten(b)[0].shape[0]) for b in ds)

        times = {"pipeline": [], "build": [], "step": []}
        yielded, first = [], []
        for rep in range(args.warmup + args.iterations):
            # Each epoch's dataset is built (traced) before its pass: the
            # trainer does it once per epoch, amortised over a real
            # dataset's hundreds of videos, not over this small one.
            t0 = time.perf_counter()
            ds = build()
            t1 = time.perf_counter()
            yielded.append(drain(ds))
            t2 = time.perf_counter()
            run_step()
            t3 = time.perf_counter()
            if rep >= args.warmup:
                times["build"].append(t1 - t0)
                times["pipeline"].append(t2 - t1)
                times["step"].append(t3 - t2)
            elif rep == 0:  # [first pass with its build, first step
                # with its tracing]
                first = [round(t2 - t0, 2), round(t3 - t2, 2)]
        t_pipe, t_step, t_build = (timing.median(times[k]) for k in
                                   ("pipeline", "step", "build"))
        trainer.close()
    if len(set(yielded)) != 1 or not yielded[0]:
        raise RuntimeError(f"pipeline passes yielded {yielded} examples")
    pipe_rate = yielded[0] / t_pipe
    step_rate = step_batch / t_step
    result = dict(facts, quick=bool(args.quick), pipeline_batch=pipe_batch,
                  step_batch=step_batch,
                  examples_per_pass=yielded[0],
                  pipeline_pass_s=round(t_pipe, 3),
                  pipeline_build_s=round(t_build, 3),
                  step_s=round(t_step, 3),
                  pipeline_examples_per_s=round(pipe_rate, 2),
                  step_examples_per_s=round(step_rate, 4),
                  ratio=round(pipe_rate / step_rate, 2),
                  first_call_s=first, data_s=round(data_s, 1),
                  load_average=timing.load_average(),
                  seconds=round(time.perf_counter() - start, 1))
    print("RESULT " + json.dumps(result))


def demand_row(consumer, result):
    """The `rows` entry of one consumer's result."""
    _, measure, unit, _ = CONSUMERS[consumer]
    ours = result["pipeline_examples_per_s"]
    reference = result["step_examples_per_s"]
    ratio = round(ours / reference, 2)
    if result.get("quick"):
        measure += " [--quick: small shapes]"
    return {"family": "Pipelines", "measure": measure, "ours": ours,
            "reference": reference, "unit": unit, "ratio": ratio,
            "reference_name": STEP_NAME, "target": f">= {TARGET_RATIO:g}x",
            "met": ratio >= TARGET_RATIO}


def bench_demand(args):
    """Every consumer in its own subprocess -> {consumer: result}."""
    out = {}
    for consumer in args.consumers:
        child = ["--child", consumer, *timing.flag_args(
            args, ("iterations", "warmup", "step_batch", "af_videos",
                   "frames_videos", "frames"))]
        if args.quick:
            child.append("--quick")
        out[consumer] = timing.case_row(__file__, child,
                                        f"consumer {consumer}", drop=())
        # Progress (the JSON line comes at the end).
        print(json.dumps({consumer: out[consumer]}), file=sys.stderr,
              flush=True)
    return out


# ------------------------------------------------------ former sections
def _best_times(fns, repeats):
    """Best wall time of each function; runs alternate so that load from
    other processes hits all of them alike."""
    for fn in fns:
        fn()  # warm-up: tracing, file cache
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def _frame_pool(num, height, width, seed=0):
    """Distinct natural-ish JPEGs (smooth gradients + noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    pool = []
    for i in range(num):
        base = (np.sin(xx / (9.0 + i)) + np.cos(yy / (7.0 + i))) * 60 + 128
        img = base[..., None] + rng.normal(0, 12, (height, width, 3))
        img = np.clip(img, 0, 255).astype(np.uint8)
        pool.append(tf.io.encode_jpeg(img, quality=90).numpy())
    return pool


def bench_frames(tmp, args):
    """Frames pipeline vs a Python decode loop (same chosen frames)."""
    n_videos, n_frames, steps = args.videos, args.frames, args.steps
    pool = _frame_pool(n_frames, args.height, args.width)
    videos = []
    with tfrecord_io.ShardedTFRecordWriter(tmp / "frames", "bench",
                                           num_shards=4) as writer:
        for v in range(n_videos):
            # Rotate the pool so videos differ.
            images = pool[v % n_frames:] + pool[:v % n_frames]
            videos.append(images)
            writer.write(schemas.frames_example(
                f"video{v:03d}", num_frames=n_frames, label_index=[v % 5],
                images=images).SerializeToString())
    config = frames_pipeline.FramesConfig(
        sampler="tsn", num_steps=steps, crop_size=(224, 224),
        test_crop="center", mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375), batch_size=4, num_classes=5)
    pattern = str(tmp / "frames" / "bench-*")
    epochs = args.epochs
    # The loop decodes exactly the frames the pipeline chooses.
    chosen = [int(i) for i in frames_pipeline.samplers.tsn_indices(
        n_frames, steps, training=False).numpy()]
    work = [videos[v][i] for v in range(n_videos) for i in chosen]
    total = len(work) * epochs

    # Built once, as in training; each pass makes a new iterator.
    ds = frames_pipeline.make_frames_dataset(
        pattern, config, training=False, num_epochs=epochs)

    def run_pipeline():
        count = 0
        for batch in ds:
            count += int(batch["frames"].shape[0]) * steps
        assert count == total, (count, total)

    def run_loop():
        for _ in range(epochs):
            for data in work:
                tf.io.decode_jpeg(data, channels=3,
                                  dct_method="INTEGER_ACCURATE")

    t_pipe, t_loop = _best_times([run_pipeline, run_loop], args.repeats)
    return {
        "videos": n_videos, "frames_per_video": n_frames,
        "decoded_per_video": steps, "frame_size": [args.height, args.width],
        "jpeg_kb": round(float(np.mean([len(b) for b in pool])) / 1024, 1),
        "decoded_frames": total,
        "pipeline_frames_per_s": round(total / t_pipe, 1),
        "python_loop_frames_per_s": round(total / t_loop, 1),
        "ratio_pipeline_over_loop": round(t_loop / t_pipe, 3),
    }


def _parse_only(folder, dim, encoding, n):
    """Parse cost alone: records already in memory, one thread."""
    records = [r for f in sorted(folder.iterdir())
               for r in tf.data.TFRecordDataset(str(f)).as_numpy_iterator()]
    ds = tf.data.Dataset.from_tensor_slices(records).map(
        lambda r: schemas.parse_feature_sequence(
            r, feature_dim=dim, encoding=encoding)["features"])
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    ds = ds.with_options(options)

    def run():
        assert sum(1 for _ in ds) == n
    return run


def bench_features(tmp, args):
    """Feature pipeline ("tensor" / "floats") vs np.load of .npy files."""
    t_len, dim, n = args.feature_steps, args.feature_dim, args.feature_videos
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((t_len, dim), np.float32)
              for _ in range(n)]
    npy_paths = []
    for i, arr in enumerate(arrays):
        path = tmp / "npy" / f"video{i}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, arr)
        npy_paths.append(path)
    results = {"videos": n, "shape": [t_len, dim],
               "mb_per_video": round(arrays[0].nbytes / 2**20, 1)}
    runs, parse_runs = [], []
    for enc in schemas.FEATURE_ENCODINGS:
        with tfrecord_io.ShardedTFRecordWriter(tmp / enc, "bench",
                                               num_shards=2) as writer:
            for i, arr in enumerate(arrays):
                writer.write(schemas.feature_sequence_example(
                    f"video{i}", arr, fps=30.0, duration=t_len * 4 / 30.0,
                    stride=4, window=16, segments=[[1.0, 2.0]],
                    label_index=[0], encoding=enc).SerializeToString())
        config = features_pipeline.FeaturesConfig(
            feature_dim=dim, encoding=enc, max_length=t_len, batch_size=1)
        pattern = str(tmp / enc / "bench-*")

        ds = features_pipeline.make_features_dataset(
            pattern, config, training=False)

        def run(ds=ds):
            count = sum(int(b["features"].shape[0]) for b in ds)
            assert count == n

        runs.append(run)
        parse_runs.append(_parse_only(tmp / enc, dim, enc, n))
        results[f"{enc}_record_mb"] = round(
            sum(f.stat().st_size for f in (tmp / enc).iterdir()) / n / 2**20,
            1)

    def run_npy():
        for path in npy_paths:
            np.load(path)

    secs = _best_times(runs + [run_npy], args.repeats)
    for enc, sec in zip(schemas.FEATURE_ENCODINGS, secs):
        results[f"{enc}_videos_per_s"] = round(n / sec, 2)
    results["npy_load_videos_per_s"] = round(n / secs[-1], 2)
    secs = _best_times(parse_runs, args.repeats)
    for enc, sec in zip(schemas.FEATURE_ENCODINGS, secs):
        results[f"{enc}_parse_ms_per_video_1thread"] = round(
            1000 * sec / n, 2)
    for enc in schemas.FEATURE_ENCODINGS:
        results[f"{enc}_over_npy"] = round(
            results[f"{enc}_videos_per_s"]
            / results["npy_load_videos_per_s"], 3)
    results["tensor_over_floats"] = round(
        results["tensor_videos_per_s"] / results["floats_videos_per_s"], 3)
    results["faster_encoding"] = max(
        schemas.FEATURE_ENCODINGS, key=lambda e: results[f"{e}_videos_per_s"])
    return results


def former_rows(frames, features):
    """`rows` entries of the former comparisons (either may be None)."""
    rows = []
    if frames:
        ratio = frames["ratio_pipeline_over_loop"]
        rows.append({
            "family": "Pipelines",
            "measure": "frames pipeline (TSN {} of {} frames, {}x{} JPEGs, "
                       "centre crop 224, B=4) / Python decode loop".format(
                           frames["decoded_per_video"],
                           frames["frames_per_video"],
                           *frames["frame_size"]),
            "ours": frames["pipeline_frames_per_s"],
            "reference": frames["python_loop_frames_per_s"],
            "unit": "frames/s", "ratio": round(ratio, 2),
            "reference_name": "plain Python loop of tf.io.decode_jpeg over "
                              "the same chosen JPEGs (in memory)",
            "target": f">= {LOOP_TARGET:g}x", "met": ratio >= LOOP_TARGET})
    if features:
        shape = "x".join(str(v) for v in features["shape"])
        for enc in ("tensor", "floats"):
            rows.append({
                "family": "Pipelines",
                "measure": f"features pipeline, '{enc}' records "
                           f"({shape} float32, B=1) / np.load of .npy",
                "ours": features[f"{enc}_videos_per_s"],
                "reference": features["npy_load_videos_per_s"],
                "unit": "videos/s",
                "ratio": round(features[f"{enc}_over_npy"], 2),
                "reference_name": "np.load of the same arrays from .npy "
                                  "files",
                "target": None, "met": None})
    return rows


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--bench", action="store_true",
                        help="the `make bench` preset (< 5 min on 2 cores)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (smoke test of the script)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma list of {SECTIONS}")
    parser.add_argument("--consumers", default="actionformer,adafocus_v2",
                        help=f"comma list of {tuple(CONSUMERS)}")
    parser.add_argument("--iterations", type=int, default=3,
                        help="demand: timed pipeline passes and steps")
    parser.add_argument("--warmup", type=int, default=1,
                        help="demand: untimed passes and steps first")
    parser.add_argument("--step_batch", type=int, default=0,
                        help="demand: videos per timed step (0: the "
                             "consumer's default, at most the recipe's)")
    parser.add_argument("--af_videos", type=int, default=0,
                        help="demand: ActionFormer training videos (0: 4 "
                             "batches)")
    parser.add_argument("--frames_videos", type=int, default=0,
                        help="demand: frames training videos (0: 2 "
                             "batches)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--videos", type=int, default=32)
    parser.add_argument("--frames", type=int, default=48,
                        help="stored frames per video")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=340)
    parser.add_argument("--feature_videos", type=int, default=6)
    parser.add_argument("--feature_steps", type=int, default=2304)
    parser.add_argument("--feature_dim", type=int, default=2048)
    parser.add_argument("--child", choices=tuple(CONSUMERS),
                        help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.child:
        return demand_child(args)
    if args.bench:  # the defaults, with shorter former passes
        args.repeats, args.epochs = 5, 2
    if args.quick:
        args.repeats, args.videos, args.frames, args.steps = 1, 4, 8, 4
        args.epochs, args.feature_videos = 1, 2
        args.feature_steps, args.feature_dim = 64, 32
        args.iterations, args.warmup = 1, 1
    sections = [s for s in args.sections.split(",") if s]
    args.consumers = [c for c in args.consumers.split(",") if c]
    if not sections or set(sections) - set(SECTIONS):
        parser.error(f"--sections: some of {SECTIONS}, got {args.sections}")
    if set(args.consumers) - set(CONSUMERS):
        parser.error(f"--consumers: some of {tuple(CONSUMERS)}, got "
                     f"{args.consumers}")
    start = time.perf_counter()
    loads = [timing.load_average()]
    result = {"benchmark": "data_pipeline"}
    rows = []
    if "demand" in sections:
        demand = bench_demand(args)
        loads.append(timing.load_average())
        result["demand"] = demand
        rows += [demand_row(c, r) for c, r in demand.items()]
    frames = features = None
    if {"frames_loop", "features_encodings"} & set(sections):
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="tfaction_bench_"))
        try:
            if "frames_loop" in sections:
                frames = result["frames"] = bench_frames(tmp, args)
            if "features_encodings" in sections:
                features = result["features"] = bench_features(tmp, args)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        loads.append(timing.load_average())
    result["rows"] = rows + former_rows(frames, features)
    # Other processes on the same cores hurt the pipelines (AUTOTUNE
    # threads) more than a 1-thread loop: read the ratios with the load.
    result.update(timing.run_facts(start, loads))
    return timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
