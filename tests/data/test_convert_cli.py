"""`python -m tfaction.data.convert`: exit codes, printed summaries, errors.

One case runs the real `python -m` command. The others run in a single child
process that calls `convert.main` once per command line (re-parsing the absl
flags each time), so TensorFlow is imported once; absl flags are global, so
the CLI is never run inside the pytest process itself.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")

# Runs steps in one process: ["cli", argv] -> {code, stdout, stderr};
# ["truncate", path, n] cuts n bytes off a file.
_DRIVER = textwrap.dedent("""
    import contextlib, io, json, sys
    from absl import flags
    from tfaction.data import convert
    results = []
    for step in json.load(open(sys.argv[1])):
        if step[0] == "truncate":
            data = open(step[1], "rb").read()
            open(step[1], "wb").write(data[:-step[2]])
            results.append(None)
            continue
        flags.FLAGS.unparse_flags()
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            flags.FLAGS(["convert"] + step[1])
            code = convert.main(["convert"])
        results.append({"code": code, "stdout": out.getvalue(),
                        "stderr": err.getvalue()})
    print(json.dumps(results))
""")


def _run_module(*args):
    return subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert", *args], cwd=REPO,
        env=ENV, capture_output=True, text=True, timeout=300)


def _write_thumos_like(root):
    database = {
        "video_test_1": {"subset": "Test", "annotations": [
            {"segment": ["1.5", "2.5"], "label": "Dive"}]},
        "video_validation_2": {"subset": "Validation", "annotations": [
            {"segment": ["0.2", "0.9"], "label": "Jump"}]},
        "video_test_3": {"subset": "Test", "annotations": [
            {"segment": ["0.1", "0.4"], "label": "Jump"}]},
    }
    gt = root / "gt.json"
    gt.write_text(json.dumps({"database": database}))
    features = root / "features"
    features.mkdir()
    for i, vid in enumerate(database):
        if vid != "video_test_3":  # annotated, no features: reported
            np.save(features / f"{vid}.npy", np.full((20, 2), i, np.float32))
    return ["--format=activitynet_features", f"--input={gt}",
            f"--features_dir={features}", "--feature_stride=4",
            "--feature_window=16"]


def _write_hmdb_like(root):
    frames = root / "frames"
    image = np.full((8, 8, 3), 100, np.uint8)
    for video in ("run/1", "run/2"):
        (frames / video).mkdir(parents=True)
        for i in range(1, 4):
            cv2.imwrite(str(frames / video / f"image_{i:05d}.jpg"), image)
    (frames / "run/2/image_00002.jpg").write_bytes(b"\xff\xd8\xff broken")
    split = root / "train_split1.txt"
    split.write_text("run/1 3 0\nrun/2 3 0\n")
    return ["--format=hmdb51_frames", f"--input={split}",
            f"--frames_root={frames}"]


def _write_video(root):
    import av
    (root / "v" / "wave").mkdir(parents=True)
    path = root / "v" / "wave" / "a.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for t in range(6):
            image = np.full((32, 32, 3), 80, np.uint8)
            image[8:20, 2 + 2 * t:14 + 2 * t] = 200
            for packet in stream.encode(
                    av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return root / "v"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    thumos = _write_thumos_like(root)
    hmdb = _write_hmdb_like(root)
    videos_dir = _write_video(root)
    out = {name: root / name for name in ("nofps", "hmdb", "hmdb_skip",
                                          "videos", "two_sets")}
    # the same folder twice: two feature sets, concatenated along C
    features = next(a for a in thumos if a.startswith("--features_dir="))
    two_sets = [a for a in thumos if a != features] + [
        f"{features},{features.split('=', 1)[1]}", "--fps=12",
        "--force_fps", f"--output_dir={out['two_sets']}"]
    steps = {
        "no_fps": thumos + [f"--output_dir={out['nofps']}"],
        "two_sets": two_sets,
        "missing_flag": ["--format=hmdb51_frames", "--input=x.txt",
                         f"--output_dir={root / 'x'}"],
        "unknown_format": ["--format=hmdb51", "--input=x.txt"],
        "foreign_flag": hmdb + ["--feature_stride=4",
                                f"--output_dir={root / 'x'}"],
        "hmdb_error": hmdb + [f"--output_dir={out['hmdb']}"],
        "hmdb_skip": hmdb + [f"--output_dir={out['hmdb_skip']}",
                             "--skip_corrupt"],
        "verify_good": ["--format=verify", f"--input={out['hmdb_skip']}"],
        "truncate": None,
        "verify_bad": ["--format=verify", f"--input={out['hmdb_skip']}"],
        "videos": ["--format=videos", f"--input={videos_dir}", "--fps=5",
                   "--flow=farneback", "--short_side=16",
                   f"--output_dir={out['videos']}"],
    }
    shard = out["hmdb_skip"] / "train-00000-of-00001.tfrecord"
    plan = [["truncate", str(shard), 5] if argv is None else ["cli", argv]
            for argv in steps.values()]
    (root / "plan.json").write_text(json.dumps(plan))
    proc = subprocess.run([sys.executable, "-c", _DRIVER,
                           str(root / "plan.json")], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"results": dict(zip(steps, results)), "out": out,
            "shard": shard, "root": root, "thumos": thumos}


def test_python_m_activitynet_features(runs):
    out = runs["root"] / "thumos_out"
    result = _run_module(*runs["thumos"], f"--output_dir={out}", "--fps=30",
                         "--num_shards=2", "--subsets=test,validation")
    assert result.returncode == 0, result.stderr
    assert f"wrote 2 record(s) to {out}: test 1, validation 1" in result.stdout
    assert "skipped 0 corrupt video(s)" in result.stdout
    assert "1 annotated video(s) without a feature file" in result.stdout
    assert "video_test_3" in result.stderr  # the warning log line
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["missing_features"]["video_ids"]["test"] == ["video_test_3"]
    assert (out / "test-00001-of-00002.tfrecord").exists()


def test_feature_folder_list_and_force_fps(runs):
    result = runs["results"]["two_sets"]
    assert result["code"] == 0, result["stderr"]
    info = json.loads((runs["out"]["two_sets"] / "dataset_info.json")
                      .read_text())
    assert info["feature_dim"] == 4  # 2 + 2 channels
    assert len(info["sources"]["features_dir"]) == 2
    assert info["force_fps"] is True and info["default_fps"] == 12.0


def test_error_exit_and_nothing_written(runs):
    result = runs["results"]["no_fps"]
    assert result["code"] == 1
    assert "MalformedFileError" in result["stderr"]
    assert "video 'video_test_1': key 'fps'" in result["stderr"]
    assert not runs["out"]["nofps"].exists()
    result = runs["results"]["hmdb_error"]
    assert result["code"] == 1
    assert "MissingFrameError" in result["stderr"]
    assert "image_00002.jpg: video 'run/2'" in result["stderr"]
    assert os.listdir(runs["out"]["hmdb"]) == []


def test_missing_flag(runs):
    result = runs["results"]["missing_flag"]
    assert result["code"] == 1
    assert "--frames_root is required" in result["stderr"]


def test_unknown_format_and_flag_of_another_format(runs):
    result = runs["results"]["unknown_format"]
    assert result["code"] == 1
    assert ("unknown --format=hmdb51; registered formats: "
            "activitynet_features, actnet_frames, ava, charades_frames, "
            "ego4d_mq, fcvid_frames, finegym, hmdb51_frames, minik_frames, "
            "tcc, verify, videos") in result["stderr"]
    result = runs["results"]["foreign_flag"]
    assert result["code"] == 1
    assert ("--feature_stride is not a flag of --format=hmdb51_frames (it "
            "belongs to activitynet_features, ego4d_mq)") in result["stderr"]
    assert not (runs["root"] / "x").exists()


def test_help_lists_each_formats_flags():
    result = _run_module("--help")
    assert ("--feature_stride: [activitynet_features, ego4d_mq] Frames "
            "between") in result.stdout
    assert ("--frames_root: [actnet_frames, fcvid_frames, minik_frames, "
            "charades_frames,\n    hmdb51_frames] Root") in result.stdout
    assert "--flow: <tvl1|farneback|none>: [videos]" in result.stdout
    assert "--[no]progress" in result.stdout


def test_skip_corrupt_is_printed_and_recorded(runs):
    result = runs["results"]["hmdb_skip"]
    assert result["code"] == 0, result["stderr"]
    assert "wrote 1 record(s)" in result["stdout"]
    assert "skipped 1 corrupt video(s)" in result["stdout"]
    assert "skipped run/2:" in result["stdout"]
    info = json.loads((runs["out"]["hmdb_skip"] / "dataset_info.json")
                      .read_text())
    assert info["skipped"]["count"] == 1


def test_verify(runs):
    result = runs["results"]["verify_good"]
    assert result["code"] == 0 and "verified train: 1 record(s)" in result[
        "stdout"]
    result = runs["results"]["verify_bad"]
    assert result["code"] == 1
    assert "CorruptRecordError" in result["stderr"]
    assert str(runs["shard"]) in result["stderr"]


def test_videos_with_flow(runs):
    result = runs["results"]["videos"]
    assert result["code"] == 0, result["stderr"]
    assert "wrote 1 record(s)" in result["stdout"]
    out = runs["out"]["videos"]
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["modalities"] == ["rgb", "flow"] and info["fps"] == 5
    assert (out / "classes.txt").read_text() == "wave\n"
