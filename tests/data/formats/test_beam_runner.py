"""The Beam DirectRunner path writes what the local path writes.

"Byte-identical" here means: the two output folders hold the same files
(every shard, classes.txt, dataset_info.json, ground_truth.json) with the same
bytes. The Beam path places each record in the shard and at the position the
local round-robin writer gives it, so no sorting or multiset comparison is
needed. Each comparison uses 2 shards and, where the converter has bad-input
handling, one corrupt video among good ones under --skip_corrupt, so the
placement after a skipped video and the skip report are covered too.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from tfaction import errors
from tfaction.data.formats import activitynet_features
from tfaction.data.formats import adafocus_lists
from tfaction.data.formats import ava
from tfaction.data.formats import charades
from tfaction.data.formats import ego4d_mq
from tfaction.data.formats import finegym
from tfaction.data.formats import hmdb51
from tfaction.data.formats import output
from tfaction.data.formats import registry
from tfaction.data.formats import runners
from tfaction.data.formats import tcc
from tfaction.data.formats import videos
from tfaction.data.synthetic import generate_adafocus
from tfaction.data.synthetic import generate_charades
from tfaction.data.synthetic import generate_temporal_localization
from tfaction.data.synthetic import generate_video_classification
from tfaction.data.synthetic.ava import write_mp4
from tfaction.testing.docstring_checks import check_docstring_examples

from . import _builders as b
from . import test_ego4d_mq as ego4d_inputs
from . import test_finegym as finegym_inputs
from .test_tcc import tcc_record
from .test_tcc import write_tfrecord

pytest.importorskip("apache_beam")

DIRECT = runners.Runner("DirectRunner")
REPO = pathlib.Path(__file__).resolve().parents[3]


def _both(tmp_path, convert, **kwargs):
    """Runs `convert` locally and on the DirectRunner; returns both
    snapshots and the local dataset_info."""
    local, beam = tmp_path / "local", tmp_path / "beam"
    info = convert(output_dir=str(local), runner=runners.LOCAL, **kwargs)
    convert(output_dir=str(beam), runner=DIRECT, **kwargs)
    return b.snapshot(local), b.snapshot(beam), info


def _assert_identical(tmp_path, convert, **kwargs):
    local, beam, info = _both(tmp_path, convert, **kwargs)
    assert sorted(beam) == sorted(local)
    for name in local:
        assert beam[name] == local[name], name
    return info


@pytest.fixture(scope="module")
def video_files(tmp_path_factory):
    """Three clips in class folders and an undecodable one."""
    root = tmp_path_factory.mktemp("videos")
    frames = b.moving_square_frames(6, size=32, square=8, step=3)
    os.makedirs(root / "right")
    os.makedirs(root / "left")
    b.write_video(root / "right" / "r1.mp4", frames, fps=10)
    b.write_video(root / "right" / "r2.mp4", frames[:4], fps=10)
    b.write_video(root / "left" / "l1.mp4", frames[::-1], fps=10)
    (root / "left" / "broken.mp4").write_bytes(b"not a video")
    return root


def test_videos_with_flow_identical_and_skip_counted(tmp_path, video_files):
    info = _assert_identical(
        tmp_path, videos.convert_videos, input=str(video_files), fps=5,
        flow="farneback", num_shards=2, skip_corrupt=True)
    assert info["skipped"]["count"] == 1
    assert info["skipped"]["items"][0]["video_id"] == "left/broken"
    written = output.read_dataset_info(tmp_path / "beam")
    assert written["skipped"]["count"] == 1
    assert [s["num_records"] for s in written["subsets"]["train"]["shards"]
            ] == [2, 1]


def test_failed_beam_run_leaves_previous_output_byte_identical(
        tmp_path, video_files):
    out = tmp_path / "out"
    good = tmp_path / "good"
    os.makedirs(good / "c")
    shutil.copy(video_files / "right" / "r1.mp4", good / "c" / "a.mp4")
    videos.convert_videos(str(good), str(out), num_shards=2, runner=DIRECT)
    before = b.snapshot(out)
    with pytest.raises(errors.VideoDecodeError, match="left/broken") as e:
        videos.convert_videos(str(video_files), str(out), num_shards=3,
                              runner=DIRECT)
    # the same error (type and text) as the local path raises
    with pytest.raises(errors.VideoDecodeError) as local:
        videos.convert_videos(str(video_files), str(tmp_path / "l"),
                              num_shards=3)
    assert str(e.value) == str(local.value)
    assert b.snapshot(out) == before


def test_hmdb51_frames_rgb_and_flow_identical(tmp_path):
    data = tmp_path / "vc"
    generate_video_classification(
        data, num_videos=5, classes=("yellow_tilt", "green_spin"),
        height=48, width=48, min_frames=8, max_frames=8, seed=1)
    lists = data / "train_test_lists"
    _assert_identical(
        tmp_path, hmdb51.convert_hmdb51_frames,
        split_lists=[str(lists / "train_split1.txt"),
                     str(lists / "test_split1.txt")],
        frames_root=str(data / "frames"), modalities=["rgb", "flow"],
        class_list=str(data / "actions.txt"), num_shards=2)


def test_charades_frames_identical_with_a_missing_video_skipped(tmp_path):
    data = tmp_path / "ch"
    summary = generate_charades(data, num_videos=6, seed=3, height=16,
                                width=16, min_frames=3, max_frames=4)
    train = [v for v in summary["videos"] if v["split"] == "train"]
    shutil.rmtree(data / "Charades_v1_rgb" / train[1]["id"])
    info = _assert_identical(
        tmp_path, charades.convert_charades_frames,
        csv_paths=[str(data / "Charades_v1_train.csv"),
                   str(data / "Charades_v1_test.csv")],
        frames_root=str(data / "Charades_v1_rgb"),
        class_list=str(data / "Charades_v1_classes.txt"), num_shards=2,
        skip_corrupt=True)
    assert info["skipped"]["count"] == 1
    assert info["skipped"]["items"][0]["video_id"] == train[1]["id"]


def test_adafocus_lists_identical(tmp_path):
    data = tmp_path / "af"
    generate_adafocus(data, num_videos=4, seed=4, num_classes=2, height=37,
                      width=37, min_frames=3, max_frames=4)
    lists = sorted(str(p) for p in data.glob("*_split.txt"))
    _assert_identical(
        tmp_path, adafocus_lists.convert_adafocus_lists,
        split_lists=lists, frames_root=str(data / "frames"),
        dataset="actnet", class_list=str(data / "classInd.txt"),
        min_frames=1, num_shards=2)


def test_activitynet_features_identical_with_derived_durations(tmp_path):
    data = tmp_path / "tal"
    generate_temporal_localization(data, num_videos=6, seed=2,
                                   num_classes=2, feature_dim=8)
    anno = json.loads((data / "annotations.json").read_text())
    first = sorted(anno["database"])[0]
    del anno["database"][first]["duration"]  # derived from the features
    second = sorted(anno["database"])[1]
    np.save(data / "features" / f"{second}.npy",
            np.full((4, 8), np.nan, np.float32))  # skipped: not finite
    b.write_json(data / "annotations.json", anno)
    info = _assert_identical(
        tmp_path, activitynet_features.convert_activitynet_features,
        annotations=str(data / "annotations.json"),
        features_dir=str(data / "features"), feature_stride=4,
        feature_window=16, num_shards=2, skip_corrupt=True)
    assert info["derived_durations"]["count"] == 1
    assert [i["video_id"] for i in info["skipped"]["items"]] == [second]


def test_ava_identical_with_skips_padding_and_ground_truth(tmp_path,
                                                          monkeypatch):
    # Each video's frames are spilled on the converting machine and read
    # back there; the ground truth CSV comes from what the videos reported.
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    folder = tmp_path / "videos"
    folder.mkdir()
    for vid, count in (("vidA", 30), ("vidB", 20)):
        write_mp4(folder / f"{vid}.mp4",
                  [np.full((24, 32, 3), 20 + 7 * i, np.uint8)
                   for i in range(count)], 10)
    rows = ["vidA,0001,0.1,0.2,0.5,0.9,12,0",
            "vidA,0001,0.5,0.2,0.9,0.9,14,1",
            "vidA,0000,0.3,0.3,0.6,0.7,80,2",  # padded before
            "vidC,0001,0.1,0.2,0.5,0.9,12,0",  # no such video: skipped
            "vidB,1.8,0.2,0.2,0.6,0.8,11,3",  # padded after
            "vidB,0007,0.1,0.2,0.5,0.9,12,0",  # after the end: skipped
            "vidA,0002,0.1,0.2,0.5,0.9,80,0"]
    csv_path = b.write_text(tmp_path / "ava_train_v2.1.csv",
                            "".join(r + "\n" for r in rows))
    info = _assert_identical(
        tmp_path, ava.convert_ava, csv_paths=csv_path,
        videos_root=str(folder), fps=10, clip_frames=8, num_shards=2,
        skip_corrupt=True)
    assert info["num_keyframes"] == {"train": 4}
    assert info["padded_keyframes"] == {"train": 2}
    assert [i["video_id"] for i in info["skipped"]["items"]] == ["vidC"]
    assert [i["line"] for i in info["skipped_keyframes"]["items"]] == [6]
    written = (tmp_path / "beam" / "ground_truth_train.csv").read_text()
    assert written.splitlines() == rows[:3] + [rows[4], rows[6]]
    # No spill file is left behind (the DirectRunner runs in this process;
    # Beam keeps its own files there too).
    assert not list(spill.rglob("tfaction-ava-*"))


def test_tcc_identical_with_order_checks_and_a_corrupt_tail(tmp_path):
    # The checks against earlier records (a name repeated, also across
    # subsets; a label named two ways) reject the same records on Beam.
    src = tmp_path / "src"
    src.mkdir()
    write_tfrecord(src / "mine_train-0.tfrecord", [
        tcc_record("x", 3, label=1, label_string="jump"),
        tcc_record("bad", 3, length=9),  # skipped: len disagrees
        tcc_record("y", 4, label=1, label_string="run"),  # skipped: clash
        tcc_record("z", 2),  # no action
        tcc_record("x", 3, label=1, label_string="jump")])  # skipped: name
    cut = write_tfrecord(src / "mine_val-0.tfrecord", [
        tcc_record("w", 3, label=0, label_string="sit"),
        tcc_record("z", 3, label=0, label_string="sit"),  # skipped: name
        tcc_record("v", 5, label=0, label_string="sit"),
        tcc_record("u", 3)])
    data = open(cut, "rb").read()
    open(cut, "wb").write(data[:-30])  # "u" is cut short
    pattern = str(src / "*.tfrecord")
    info = _assert_identical(tmp_path, tcc.convert_tcc, inputs=pattern,
                             fps=30.0, num_shards=2, skip_corrupt=True)
    assert info["layout"] == "generic"
    assert [(i["video_id"], i["subset"]) for i in info["skipped"]["items"]
            ] == [("bad", "train"), ("y", "train"), ("x", "train"),
                  ("z", "val")]
    assert "label 1 is named 'run'" in info["skipped"]["items"][1]["message"]
    assert info["skipped_files"]["items"][0]["records_kept"] == 3
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "train": 2, "val": 2}
    assert (tmp_path / "beam" / "classes.txt").read_text() == "sit\njump\n"
    # Without skipping, the first bad record in input order stops both.
    raised = []
    for runner in (runners.LOCAL, DIRECT):
        with pytest.raises(errors.FrameCountMismatchError) as e:
            tcc.convert_tcc(pattern, str(tmp_path / "stop"), runner=runner)
        raised.append(str(e.value))
    assert raised[0] == raised[1] and "record 1" in raised[0]


def test_ego4d_mq_identical_with_a_bad_feature_file(tmp_path):
    clips = [ego4d_inputs._clip(uid, 0, 300, [[ego4d_inputs._label(
        ego4d_inputs.CUT, 0.5, 6.0 + i)]]) for i, uid in enumerate(
            ("clip_a", "clip_b", "clip_c"))]
    moments = b.write_json(tmp_path / "moments_train.json", {
        "version": "v1", "videos": [{"video_uid": "video_1",
                                     "split": "train", "clips": clips}]})
    features = tmp_path / "features"
    features.mkdir()
    rng = np.random.RandomState(0)
    for uid in ("clip_a", "clip_c"):
        np.save(features / f"{uid}.npy", rng.rand(17, 3).astype(np.float32))
    np.save(features / "clip_b.npy", np.full((17, 3), np.nan, np.float32))
    info = _assert_identical(
        tmp_path, ego4d_mq.convert_ego4d_mq, annotations=str(moments),
        features_dir=str(features), class_list=str(ego4d_inputs.CLASSES),
        feature_stride=16, feature_window=32, fps=30.0, force_fps=True,
        num_shards=2, skip_corrupt=True)
    assert [i["video_id"] for i in info["skipped"]["items"]] == ["clip_b"]
    assert info["num_records"] == 2


def test_finegym_identical_with_skipped_events(tmp_path):
    fg = finegym_inputs
    folder = tmp_path / "videos"
    folder.mkdir()
    b.write_video(folder / f"{fg.VIDEO_A}.mp4", fg.coded_frames(range(180)),
                  fps=30)
    b.write_video(folder / f"{fg.VIDEO_B}.mkv", fg.coded_frames(range(100)),
                  fps=25)
    anno, lists = fg.write_inputs(tmp_path / "in")
    info = _assert_identical(
        tmp_path, finegym.convert_finegym, annotations=anno,
        element_lists=lists, videos_root=str(folder), width=fg.W,
        height=fg.H,
        num_shards=2, skip_corrupt=True)
    assert {i["video_id"] for i in info["skipped"]["items"]} == {
        fg.E_LOST, fg.E_PAST}
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "train": 2, "val": 1}


def test_runner_flags():
    check_docstring_examples(runners)
    assert runners.from_flags(None) == runners.LOCAL
    runner = runners.from_flags(
        "DirectRunner", "--direct_num_workers=2 "
        "--direct_running_mode=multi_processing")
    assert runner.beam_args == ("--direct_num_workers=2",
                                "--direct_running_mode=multi_processing")
    with pytest.raises(errors.ConfigError, match="needs a Beam --runner"):
        runners.from_flags("local", "--direct_num_workers=2")
    with pytest.raises(errors.ConfigError, match="must not set --runner"):
        runners.from_flags("DirectRunner", "--runner=FlinkRunner")
    options = {"output_dir": "o", "num_shards": 1, "skip_corrupt": False,
               "verify": True, "num_workers": 1, "runner": "SparkRunner",
               "beam_options": None}
    assert registry.writer_options(options)["runner"] == runners.Runner(
        "SparkRunner")


def test_missing_beam_names_the_extra(tmp_path, video_files, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "apache_beam", None)
    with pytest.raises(errors.MissingDependencyError,
                       match=r"pip install 'tfaction\[beam\]'"):
        videos.convert_videos(str(video_files / "right"),
                              str(tmp_path / "o"), runner=DIRECT)
    assert not (tmp_path / "o" / "dataset_info.json").exists()


def test_local_threads_are_refused_with_a_beam_runner(tmp_path, video_files):
    with pytest.raises(errors.ConfigError, match="--direct_num_workers"):
        videos.convert_videos(str(video_files / "right"),
                              str(tmp_path / "o"), num_workers=2,
                              runner=DIRECT)


def test_command_line_runner_flags(tmp_path, video_files):
    # --runner / --beam_options reach the converter; the summary is the
    # local path's (the flags' errors are checked in test_runner_flags).
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert", "--format=videos",
         f"--input={video_files}", "--skip_corrupt", "--num_shards=2",
         f"--output_dir={out}", "--noprogress", "--runner=DirectRunner",
         "--beam_options=--direct_num_workers=1"],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote 3 record(s)" in done.stdout
    assert "skipped 1 corrupt video(s)" in done.stdout
    assert output.verify_output(out) == {"train": 3}
