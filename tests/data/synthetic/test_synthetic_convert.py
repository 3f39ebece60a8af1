"""The synthetic datasets go through `python -m tfaction.data.convert`.

This is the real-data path: if the synthetic layouts drifted from the public
ones, the converter would reject them.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tfaction.data import schemas
from tfaction.data.synthetic import generate_temporal_localization
from tfaction.data.synthetic import generate_video_classification

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


def _convert(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert", *args],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _records(folder, subset):
    files = sorted(str(p) for p in folder.glob(f"{subset}-*.tfrecord"))
    return [r.numpy() for r in tf.data.TFRecordDataset(files)]


def test_temporal_localization_converts(tmp_path):
    data, out = tmp_path / "tal", tmp_path / "tal_tfrecords"
    generate_temporal_localization(data, num_videos=6, seed=2)
    _convert("--format=activitynet_features",
             f"--input={data / 'annotations.json'}",
             f"--features_dir={data / 'features'}", "--feature_stride=4",
             "--feature_window=16", f"--output_dir={out}")
    database = json.loads((data / "annotations.json").read_text())["database"]
    seen = set()
    for subset in ("training", "validation"):
        for record in _records(out, subset):
            parsed = schemas.parse_feature_sequence(record, feature_dim=32)
            vid = parsed[schemas.VIDEO_ID].numpy().decode()
            video = database[vid]
            assert video["subset"] == subset
            np.testing.assert_array_equal(
                parsed["features"].numpy(),
                np.load(data / "features" / f"{vid}.npy"))
            np.testing.assert_array_equal(
                parsed["segments"].numpy(),
                [a["segment"] for a in video["annotations"]])
            np.testing.assert_array_equal(
                parsed[schemas.SEGMENT_LABEL_INDEX].numpy(),
                [a["label_id"] for a in video["annotations"]])
            assert [s.decode() for s in
                    parsed[schemas.SEGMENT_LABEL_STRING].numpy()] == [
                a["label"] for a in video["annotations"]]
            assert parsed[schemas.FEATURE_STRIDE].numpy() == 4.0
            assert parsed[schemas.FEATURE_WINDOW].numpy() == 16.0
            seen.add(vid)
    assert seen == set(database)


def test_video_classification_converts(tmp_path):
    data, out = tmp_path / "vc", tmp_path / "vc_tfrecords"
    summary = generate_video_classification(
        data, num_videos=8, classes=("yellow_tilt", "green_spin"), height=48,
        width=56, min_frames=8, max_frames=12, seed=2)
    lists = data / "train_test_lists"
    _convert("--format=hmdb51_frames",
             f"--input={lists / 'train_split1.txt'},"
             f"{lists / 'test_split1.txt'}",
             f"--frames_root={data / 'frames'}", "--modalities=rgb,flow",
             f"--class_list={data / 'actions.txt'}", f"--output_dir={out}")
    expected = {v["path"]: v for v in summary["videos"]}
    seen = 0
    for subset in ("train", "test"):
        for record in _records(out, subset):
            parsed = schemas.parse_frames(record, modalities=("rgb", "flow"))
            n = int(parsed[schemas.VIDEO_NUM_FRAMES])
            labels = parsed[schemas.CLIP_LABEL_INDEX].numpy().tolist()
            matches = [v for v in expected.values()
                       if v["num_frames"] == n and [v["class_id"]] == labels
                       and v["split"] == subset]
            assert matches, (subset, n, labels)
            assert len(parsed[schemas.IMAGE_ENCODED]) == n
            assert len(parsed[schemas.FLOW_X_ENCODED]) == n - 1
            assert len(parsed[schemas.FLOW_Y_ENCODED]) == n - 1
            first = tf.io.decode_jpeg(parsed[schemas.IMAGE_ENCODED][0])
            assert tuple(first.shape) == (48, 56, 3)
            seen += 1
    assert seen == len(expected)
