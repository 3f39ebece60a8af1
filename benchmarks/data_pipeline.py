"""Benchmark of the tf.data pipelines; prints one JSON line.

(a) Frames: decoded frames/s of `frames_pipeline` (TFRecords → parse
    → sample → decode the chosen JPEGs → crop → normalise → batch) against
    a plain Python loop that decodes the same chosen JPEGs (already in
    memory) with `tf.io.decode_jpeg`. The ratio pipeline/loop must be >= 0.8.
(b) Feature sequences with THUMOS shapes (T=2304, C=2048, float32):
    videos/s of `features_pipeline` for both record encodings ("tensor":
    one serialized tensor; "floats": a float feature list) against `np.load`
    of the same arrays from `.npy` files, plus the parse cost alone (records
    in memory, one thread) of each encoding.

Each measurement is the best of `--repeats` timed passes after one warm-up
pass (which also traces the tf.data functions). All data lives in a
temporary directory that is removed at the end.

Usage:
    python benchmarks/data_pipeline.py [--output result.json] [--quick]
"""

import argparse
import os
import pathlib
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import timing  # noqa: E402
from tfaction.data import features_pipeline  # noqa: E402
from tfaction.data import frames_pipeline  # noqa: E402
from tfaction.data import schemas  # noqa: E402
from tfaction.data import tfrecord_io  # noqa: E402


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (smoke test of the script)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--videos", type=int, default=32)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=340)
    parser.add_argument("--feature_videos", type=int, default=6)
    parser.add_argument("--feature_steps", type=int, default=2304)
    parser.add_argument("--feature_dim", type=int, default=2048)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.videos, args.frames, args.steps = 1, 4, 8, 4
        args.epochs, args.feature_videos = 1, 2
        args.feature_steps, args.feature_dim = 64, 32
    start = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="tfaction_bench_"))
    try:
        frames = bench_frames(tmp, args)
        features = bench_features(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "benchmark": "data_pipeline",
        "tensorflow": tf.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        # Other processes on the same cores hurt the 2-thread pipeline more
        # than the 1-thread loop: read ratios with the load in mind.
        "load_average_before_after": [load_before,
                                      round(os.getloadavg()[0], 2)],
        "frames": frames,
        "features": features,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
