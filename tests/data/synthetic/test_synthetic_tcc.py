"""The synthetic phase dataset: TCC layout, monotone phases, varied speeds."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfaction.data import frame_sequence_pipeline as fsp
from tfaction.data.formats import tcc as tcc_format
from tfaction.data.synthetic import tcc

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
NUM_VIDEOS = 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tcc") / "synth"
    return root, tcc.generate_tcc(root, num_videos=NUM_VIDEOS, seed=1)


def _read(root, summary):
    """Parses every record with the TCC reader's own feature spec."""
    context = {"name": tf.io.FixedLenFeature([], tf.string),
               "len": tf.io.FixedLenFeature([], tf.int64),
               "label": tf.io.FixedLenFeature([], tf.int64),
               "label_string": tf.io.FixedLenFeature([], tf.string),
               "framelabels_string": tf.io.FixedLenFeature([], tf.string)}
    sequence = {"video": tf.io.FixedLenSequenceFeature([], tf.string),
                "frame_labels": tf.io.FixedLenSequenceFeature([], tf.int64)}
    out = {}
    for split, files in summary["files"].items():
        for name in files:
            for record in tf.data.TFRecordDataset(str(root / name)):
                ctx, seq = tf.io.parse_single_sequence_example(
                    record, context_features=context,
                    sequence_features=sequence)
                out[ctx["name"].numpy().decode()] = (split, ctx, seq)
    return out


def test_layout_is_tcc(dataset):
    root, summary = dataset
    assert sorted(os.listdir(root)) == [
        "README.md", "synthetic_phases_train-0-of-2.tfrecord",
        "synthetic_phases_train-1-of-2.tfrecord",
        "synthetic_phases_val-0-of-1.tfrecord"]
    assert (summary["num_train"], summary["num_val"]) == (10, 2)
    records = _read(root, summary)
    assert len(records) == NUM_VIDEOS
    for video in summary["videos"]:
        split, ctx, seq = records[video["name"]]
        action, phases = summary["actions"][video["action"]]
        assert split == video["split"]
        assert video["name"].endswith("_" + action)
        assert int(ctx["label"]) == video["action"]
        assert ctx["label_string"].numpy().decode() == action
        assert ctx["framelabels_string"].numpy().decode().split(",") == \
            phases
        n = int(ctx["len"])
        assert n == video["num_frames"] == len(seq["video"])
        assert 20 <= n <= 60
        assert seq["frame_labels"].numpy().tolist() == video["frame_labels"]
        image = tf.io.decode_jpeg(seq["video"][0]).numpy()
        assert image.shape == (64, 64, 3)


def test_phases_are_monotone_and_complete(dataset):
    _, summary = dataset
    for video in summary["videos"]:
        labels = np.array(video["frame_labels"])
        k = len(summary["actions"][video["action"]][1])
        assert (np.diff(labels) >= 0).all() and (np.diff(labels) <= 1).all()
        assert labels[0] == 0 and labels[-1] == k - 1
        assert np.bincount(labels).tolist() == video["phase_lengths"]
        assert min(video["phase_lengths"]) >= tcc.MIN_PHASE_FRAMES


def test_speeds_and_appearance_differ(dataset):
    root, summary = dataset
    for action in range(len(summary["actions"])):
        videos = [v for v in summary["videos"] if v["action"] == action]
        shares = np.array([np.array(v["phase_lengths"]) / v["num_frames"]
                           for v in videos])
        # Each phase takes a different share of its video (speed).
        assert (shares.std(axis=0) > 0.03).all()
        assert len({v["num_frames"] for v in videos}) > len(videos) // 2
        gammas = np.array([v["phase_gammas"] for v in videos])
        assert gammas.min() < 0.9 and gammas.max() > 1.1
    records = _read(root, summary)
    corners = np.array([
        tf.io.decode_jpeg(seq["video"][0]).numpy()[0, 0]
        for _, _, seq in records.values()], np.float64)
    assert corners.std(axis=0).min() > 20  # background colours vary
    # The tool moves between the first and the last frame.
    _, _, seq = records[summary["videos"][0]["name"]]
    first, last = (tf.io.decode_jpeg(seq["video"][i]).numpy()
                   .astype(float) for i in (0, -1))
    assert np.abs(first - last).mean() > 2


def test_deterministic(dataset, tmp_path):
    root, _ = dataset
    again = tcc.generate_tcc(tmp_path / "again", num_videos=NUM_VIDEOS,
                             seed=1)
    for files in again["files"].values():
        for name in files:
            assert (tmp_path / "again" / name).read_bytes() == \
                (root / name).read_bytes()
    other = tcc.generate_tcc(tmp_path / "other", num_videos=NUM_VIDEOS,
                             seed=2)
    assert [v["num_frames"] for v in other["videos"]] != [
        v["num_frames"] for v in again["videos"]]
    with pytest.raises(ValueError, match="min_frames"):
        tcc.generate_tcc(tmp_path / "bad", min_frames=5)


def test_converts_and_feeds_the_pipeline(dataset, tmp_path):
    root, summary = dataset
    out = tmp_path / "records"
    info = tcc_format.convert_tcc(str(root / "synthetic_phases_*.tfrecord"),
                                  out)
    assert info["layout"] == "generic"
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "train": summary["num_train"], "val": summary["num_val"]}
    assert (out / "classes.txt").read_text() == "pour\nspin_slide\n"
    assert info["stats"]["train"]["phases_per_class"]["pour"][
        "num_phases"] == 4
    config = fsp.FrameSequenceConfig(image_size=(32, 32), batch_size=2)
    (batch,) = list(fsp.make_frame_sequence_dataset(
        str(out / "val-*.tfrecord"), config, training=False))
    val = [v for v in summary["videos"] if v["split"] == "val"]
    for i, video in enumerate(val):
        n = video["num_frames"]
        assert batch["video_id"][i].numpy().decode() == video["name"]
        assert batch["frame_labels"][i, :n].numpy().tolist() == \
            video["frame_labels"]
        assert int(batch["label"][i]) == video["action"]


def test_cli_generates_then_converts(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")

    def run(*args):
        return subprocess.run([sys.executable, "-m", *args],
                              capture_output=True, text=True, env=env,
                              cwd=REPO_ROOT, timeout=120)

    data = tmp_path / "synth"
    result = run("tfaction.data.synthetic", "--kind=tcc",
                 f"--out_dir={data}", "--num_videos=4", "--seed=3")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["num_videos"] == 4 and "videos" not in summary
    result = run("tfaction.data.convert", "--format=tcc",
                 f"--input={data}/synthetic_phases_*.tfrecord",
                 f"--output_dir={tmp_path / 'out'}", "--noprogress")
    assert result.returncode == 0, result.stderr
    assert "wrote 4 video record(s)" in result.stdout
