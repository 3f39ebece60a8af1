"""`--format=ego4d_mq`: official Ego4D MQ moments JSON -> per-clip records.

The expected values are worked out by hand from the clip fields (30 fps,
features every 16 frames over 32-frame windows), not with the module's code.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tfaction import errors
from tfaction.data.formats import ego4d_mq

from . import _builders as b

REPO = pathlib.Path(__file__).resolve().parents[3]
CLASSES = REPO / "data" / "ego4d_mq" / "classes.txt"
CUT = "cut_dough"
SWEEP = "clean_/_sweep_floor_with_broom"


def _label(name, start, end, primary=True):
    return {"label": name, "start_time": start - 1.0, "end_time": end - 1.0,
            "video_start_time": start, "video_end_time": end,
            "video_start_frame": int(start * 30),
            "video_end_frame": int(end * 30), "primary": primary}


def _clip(uid, first, last, annotators, fps=30.0):
    return {"clip_uid": uid, "video_start_sec": first / fps,
            "video_end_sec": last / fps, "video_start_frame": first,
            "video_end_frame": last,
            "annotations": [{"annotator_uid": f"a{i}", "labels": labels}
                            for i, labels in enumerate(annotators)]}


@pytest.fixture
def moments(tmp_path):
    """moments_train.json (3 clips) and moments_val.json (1 clip)."""
    train = {"version": "v1", "videos": [{
        "video_uid": "video_1", "split": "train", "clips": [
            # Frames 40..340: lead 40 % 16 = 8 frames, tail 12 frames;
            # 18 feature steps (grid windows 2..19).
            _clip("clip_a", 40, 340, [
                [_label(CUT, 2.0, 5.0), _label(SWEEP, 3.0, 4.0, False),
                 _label(SWEEP, 6.0, 6.1)],
                [_label(CUT, 2.0, 5.0), _label(SWEEP, 7.0, 9.5)]]),
            # Only a non-primary moment: not written.
            _clip("clip_b", 400, 700, [[_label(CUT, 14.0, 16.0, False)]]),
            # 30 frames over 10 s = 3 fps: left out.
            {"clip_uid": "clip_c", "video_start_sec": 30.0,
             "video_end_sec": 40.0, "video_start_frame": 900,
             "video_end_frame": 930,
             "annotations": [{"labels": [_label(CUT, 31.0, 33.0)]}]},
        ]}]}
    val = {"version": "v1", "videos": [{
        "video_uid": "video_2", "split": "val", "clips": [
            # Frames 0..300: no lead, tail 4 frames; 17 steps.
            _clip("clip_d", 0, 300, [[_label(SWEEP, 0.5, 9.0)]])]}]}
    paths = [b.write_json(tmp_path / "moments_train.json", train),
             b.write_json(tmp_path / "moments_val.json", val)]
    rng = np.random.RandomState(0)
    sets = {}
    for name, dim in (("omnivore", 3), ("egovlp", 2)):
        folder = tmp_path / name
        folder.mkdir()
        sets[name] = {}
        for clip, steps in (("clip_a", 18), ("clip_d", 17)):
            sets[name][clip] = rng.rand(steps, dim).astype(np.float32)
            np.save(folder / f"{clip}.npy", sets[name][clip])
    return {"paths": [str(p) for p in paths], "tmp": tmp_path, "sets": sets,
            "folders": [str(tmp_path / "omnivore"), str(tmp_path / "egovlp")]}


def _convert(m, **kwargs):
    kwargs.setdefault("features_dir", m["folders"])
    return ego4d_mq.convert_ego4d_mq(
        m["paths"], kwargs.pop("features_dir"), str(m["tmp"] / "out"),
        class_list=str(CLASSES), feature_stride=16, feature_window=32,
        fps=30.0, force_fps=True, **kwargs)


def test_clip_records_times_labels_and_features(moments):
    info = _convert(moments)
    assert info["format"] == "ego4d_mq" and info["feature_dim"] == 5
    assert info["num_classes"] == 110
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "training": 1, "validation": 1}
    report = info["ego4d_mq"]
    assert report["clips_bad_fps"] == ["clip_c"]
    assert report["clips_without_moments"] == ["clip_b"]
    assert report["moments_not_primary"] == 2
    assert report["moments_too_short"] == 1
    out = moments["tmp"] / "out"
    names = CLASSES.read_text().splitlines()
    (rec_a,) = b.read_feature_records(out, "training", feature_dim=5)
    assert rec_a["video/id"].decode() == "clip_a"
    np.testing.assert_array_equal(
        rec_a["features"], np.concatenate(
            [moments["sets"]["omnivore"]["clip_a"],
             moments["sets"]["egovlp"]["clip_a"]], axis=1))
    # Clip start 40/30 s; 8 lead frames = 0.2667 s; e.g. 2.0 s in the video
    # -> 2.0 - 1.3333 + 0.2667 = 0.9333 -> 0.93. Both annotators' copies of
    # the same moment are kept.
    gt = json.loads((out / "ground_truth.json").read_text())["database"]
    assert gt["clip_a"]["annotations"] == [
        {"segment": [0.93, 3.93], "label": CUT},
        {"segment": [0.93, 3.93], "label": CUT},
        {"segment": [5.93, 8.43], "label": SWEEP}]
    # 300 frames + 8 lead + 12 tail = 320 frames = 10.67 s.
    assert gt["clip_a"]["duration"] == 10.67 and gt["clip_a"]["fps"] == 30.0
    assert gt["clip_d"]["annotations"] == [
        {"segment": [0.5, 9.0], "label": SWEEP}]
    assert gt["clip_d"]["duration"] == 10.13
    assert sorted(gt) == ["clip_a", "clip_d"]
    np.testing.assert_allclose(rec_a["segments"],
                               [[0.93, 3.93], [0.93, 3.93], [5.93, 8.43]])
    labels = rec_a["segment/label/index"]
    assert [names[i] for i in labels] == [CUT, CUT, SWEEP]
    (rec_d,) = b.read_feature_records(out, "validation", feature_dim=5)
    assert names[int(rec_d["segment/label/index"][0])] == SWEEP


def test_feature_length_checks(moments):
    folder = moments["tmp"] / "egovlp"
    np.save(folder / "clip_a.npy", np.zeros((17, 2), np.float32))
    with pytest.raises(errors.FeatureShapeError, match="different lengths"):
        _convert(moments)
    for name, dim in (("omnivore", 3), ("egovlp", 2)):
        np.save(moments["tmp"] / name / "clip_a.npy",
                np.zeros((19, dim), np.float32))
    with pytest.raises(errors.FeatureShapeError,
                       match="19 feature steps, expected 18"):
        _convert(moments)
    info = _convert(moments, skip_corrupt=True)
    assert info["skipped"]["count"] == 1
    assert info["subsets"]["training"]["num_records"] == 0


def test_malformed_files_name_the_key(moments, tmp_path):
    data = json.loads(pathlib.Path(moments["paths"][1]).read_text())
    del data["videos"][0]["clips"][0]["video_end_frame"]
    bad = b.write_json(tmp_path / "bad.json", data)
    with pytest.raises(errors.MalformedFileError,
                       match=r"videos\[0\]\.clips\[0\]\.video_end_frame"):
        ego4d_mq.read_moments(str(bad), feature_stride=16, feature_window=32)
    data["videos"][0]["split"] = "holdout"
    bad = b.write_json(tmp_path / "bad.json", data)
    with pytest.raises(errors.MalformedFileError, match="unknown split"):
        ego4d_mq.read_moments(str(bad), feature_stride=16, feature_window=32)
    with pytest.raises(errors.MalformedFileError, match="seen twice"):
        ego4d_mq.read_moments([moments["paths"][0]] * 2, feature_stride=16,
                              feature_window=32)


def test_cli_defaults_to_the_shipped_class_list(moments):
    """No --class_list: the authors' label_id order from data/ego4d_mq."""
    out = moments["tmp"] / "cli_out"
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert", "--format=ego4d_mq",
         f"--input={','.join(moments['paths'])}",
         f"--features_dir={','.join(moments['folders'])}",
         "--feature_stride=16",
         "--feature_window=32", "--fps=30", "--force_fps",
         f"--output_dir={out}"], cwd=moments["tmp"], env=env,
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    info = json.loads((out / "dataset_info.json").read_text())
    assert ((out / info["class_list"]).read_text().split("\n")[:110]
            == CLASSES.read_text().split("\n")[:110])
    assert info["sources"]["annotations"] == moments["paths"]
    assert info["default_fps"] == 30.0 and info["force_fps"] is True


def test_video_scope_cuts_each_clip_out_of_its_video(moments):
    """clip_a takes rows [2, 20) of video_1 (frames 40..340), clip_d rows
    [0, 17) of video_2 (frames 0..300)."""
    rng = np.random.RandomState(1)
    folders, videos = [], {}
    for name, dim in (("slowfast_video", 4), ("omnivore_video", 3)):
        folder = moments["tmp"] / name
        folder.mkdir()
        folders.append(str(folder))
        # The sets' lengths differ (as the official ones may); each is
        # cut on its own.
        for video, steps in (("video_1", 25 + dim), ("video_2", 17)):
            videos[name, video] = rng.rand(steps, dim).astype(np.float32)
            np.save(folder / f"{video}.npy", videos[name, video])
    info = _convert(moments, features_dir=folders, feature_scope="video")
    assert info["ego4d_mq"]["feature_scope"] == "video"
    out = moments["tmp"] / "out"
    (rec_a,) = b.read_feature_records(out, "training", feature_dim=7)
    assert rec_a["video/id"].decode() == "clip_a"
    np.testing.assert_array_equal(rec_a["features"], np.concatenate(
        [videos["slowfast_video", "video_1"][2:20],
         videos["omnivore_video", "video_1"][2:20]], axis=1))
    (rec_d,) = b.read_feature_records(out, "validation", feature_dim=7)
    np.testing.assert_array_equal(rec_d["features"], np.concatenate(
        [videos["slowfast_video", "video_2"],
         videos["omnivore_video", "video_2"]], axis=1))
    # A video too short for its clip's rows.
    np.save(pathlib.Path(folders[1]) / "video_2.npy",
            np.zeros((16, 3), np.float32))
    with pytest.raises(errors.FeatureShapeError,
                       match=r"this clip takes rows \[0, 17\)"):
        _convert(moments, features_dir=folders, feature_scope="video")


def test_random_clips_round_as_the_authors_arithmetic(tmp_path):
    """Times are (t - clip start) + lead / fps, durations ((end - start) +
    lead / fps) + tail / fps, then rounded to 2 decimals: the order of the
    authors' operations, which decides ties of the rounding."""
    rng = np.random.default_rng(0)
    clips, expected = [], {}
    for i in range(200):
        first = int(rng.integers(0, 5000))
        last = first + int(rng.integers(100, 3000))
        start_sec, end_sec = first / 29.97, last / 29.97
        t0 = start_sec + float(rng.uniform(0, 2))
        t1 = t0 + float(rng.uniform(0.3, 5))
        clip = _clip(f"c{i}", first, last, [[_label(CUT, t0, t1)]],
                     fps=29.97)
        clip["video_start_sec"], clip["video_end_sec"] = start_sec, end_sec
        clips.append(clip)
        fps = (last - first) / (end_sec - start_sec)
        lead = first % 16
        frames = last - first + lead
        tail = 0
        if (frames - 32) % 16:
            tail = 16 - (frames - 32) % 16
        duration = end_sec - start_sec
        duration += lead / fps
        duration += tail / fps
        expected[f"c{i}"] = (
            [round(t0 - start_sec + lead / fps, 2),
             round(t1 - start_sec + lead / fps, 2)], round(duration, 2))
    path = b.write_json(tmp_path / "m.json", {"videos": [
        {"video_uid": "v", "split": "val", "clips": clips}]})
    got, _ = ego4d_mq.read_moments(str(path), feature_stride=16,
                                   feature_window=32)
    assert len(got) == 200
    for clip in got:
        segment, duration = expected[clip.video_id]
        assert clip.segments.tolist() == [segment]
        assert clip.duration == duration
