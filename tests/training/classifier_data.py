"""Writes the tiny dataset of the training tests, through the converter.

`write_dataset` is the one place the test data comes from: per-video `.npy`
features [T, C] with a class-dependent temporal pattern (a cosine whose
frequency is the class) plus noise, an ActivityNet-layout annotation JSON
(one segment per video, labelled with its class), converted by
`python -m tfaction.data.convert --format=activitynet_features`.
"""

import json
import pathlib
import subprocess
import sys

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
NUM_CLASSES, NUM_STEPS, FEATURE_DIM = 3, 8, 4


def _features(label, rng):
    t = np.arange(NUM_STEPS)[:, None]
    c = np.arange(FEATURE_DIM)[None]
    pattern = np.cos(2 * np.pi * (label + 1) * t / NUM_STEPS + c)
    return (pattern + 0.3 * rng.randn(NUM_STEPS, FEATURE_DIM)).astype(
        np.float32)


def write_dataset(root, num_train=48, num_eval=12, seed=0):
    """Writes train/eval TFRecords under `root`.

    Args:
        root: a folder (pathlib.Path).
        num_train: training videos.
        num_eval: evaluation videos.
        seed: seed of the feature noise.

    Returns:
        Dict with the `train` and `eval` TFRecord file patterns.
    """
    rng = np.random.RandomState(seed)
    features_dir = root / "features"
    features_dir.mkdir(parents=True)
    database = {}
    for i in range(num_train + num_eval):
        video_id, label = f"video_{i:03d}", i % NUM_CLASSES
        np.save(features_dir / f"{video_id}.npy", _features(label, rng))
        database[video_id] = {
            "subset": "training" if i < num_train else "validation",
            "duration": float(NUM_STEPS), "fps": 1.0,
            "annotations": [{"segment": [0.0, float(NUM_STEPS)],
                             "label": f"class_{label}"}]}
    annotations = root / "annotations.json"
    annotations.write_text(json.dumps({"database": database}))
    output = root / "records"
    done = subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert",
         "--format=activitynet_features", f"--input={annotations}",
         f"--features_dir={features_dir}", "--feature_stride=1",
         "--feature_window=1", f"--output_dir={output}", "--num_shards=2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"converter failed:\n{done.stderr[-3000:]}")
    return {"train": str(output / "training-*.tfrecord"),
            "eval": str(output / "validation-*.tfrecord")}
