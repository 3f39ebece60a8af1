"""Charades v1 CSVs + RGB frame folders -> multi-label frames TFRecords."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tfaction import errors
from tfaction.data import frames_pipeline
from tfaction.data.formats import charades
from tfaction.data.formats import output
from tfaction.data.synthetic import charades as synthetic_charades
from tfaction.evaluation import charades_map

from . import _builders as b

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
NUM_CLASSES = 6


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The synthetic Charades layout (12 videos, 2 without actions)."""
    root = tmp_path_factory.mktemp("charades") / "Charades"
    summary = synthetic_charades.generate_charades(root, num_videos=12,
                                                   seed=3)
    return root, summary


@pytest.fixture
def layout(dataset, tmp_path):
    """A private copy of the layout (tests may damage it)."""
    import shutil
    root = tmp_path / "Charades"
    shutil.copytree(dataset[0], root)
    return {"root": root, "train": str(root / "Charades_v1_train.csv"),
            "test": str(root / "Charades_v1_test.csv"),
            "classes": str(root / "Charades_v1_classes.txt"),
            "frames": str(root / "Charades_v1_rgb"),
            "out": str(tmp_path / "out"), "summary": dataset[1]}


def _convert(layout, csvs=None, **kwargs):
    kwargs.setdefault("class_list", layout["classes"])
    return charades.convert_charades_frames(
        csvs or [layout["train"], layout["test"]], layout["frames"],
        kwargs.pop("output_dir", layout["out"]), **kwargs)


def _rows(path):
    """Header and rows of a CSV as lists (for editing)."""
    import csv
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _write_rows(path, header, rows):
    import csv
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def test_round_trip_multi_label(layout):
    info = _convert(layout, num_workers=3, num_shards=2)
    summary = layout["summary"]
    videos = {v["id"]: v for v in summary["videos"]}
    assert info["format"] == "charades_frames"
    assert info["schema"] == "frames"
    assert info["modalities"] == ["rgb"]
    assert info["multi_label"] is True
    assert info["num_classes"] == NUM_CLASSES
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "train": summary["num_train"], "test": summary["num_test"]}
    assert info["videos_without_actions"] == {"train": 1, "test": 1}
    assert open(os.path.join(layout["out"], "classes.txt")).read() == "".join(
        n + "\n" for n in synthetic_charades.class_names(NUM_CLASSES))
    # Every record: ids, labels (sorted unique), frames unchanged.
    for subset in ("train", "test"):
        records = b.read_frame_records(layout["out"], subset,
                                       modalities=("rgb",))
        assert len(records) == info["subsets"][subset]["num_records"]
        for record in records:
            vid = record["video/id"].decode()
            video = videos[vid]
            assert video["split"] == subset
            assert record["video/subset"] == subset.encode()
            assert list(record["clip/label/index"]) == video["labels"]
            assert [t.decode() for t in record["clip/label/text"]] == [
                synthetic_charades.class_names(NUM_CLASSES)[c]
                for c in video["labels"]]
            assert record["video/num_frames"] == video["num_frames"]
            assert len(record["image/encoded"]) == video["num_frames"]
            assert record["video/fps"] == pytest.approx(24.0)
            assert record["video/duration"] == pytest.approx(video["length"])
            last = os.path.join(layout["frames"], vid,
                                f"{vid}-{video['num_frames']:06d}.jpg")
            with open(last, "rb") as f:
                assert record["image/encoded"][-1] == f.read()
    # Labels agree with the official evaluation's reading of the CSV.
    ids, labels, _ = charades_map.read_charades_csv(layout["test"],
                                                    NUM_CLASSES)
    for vid, row in zip(ids, labels):
        assert list(np.flatnonzero(row)) == videos[vid]["labels"]
    assert output.verify_output(layout["out"]) == {
        "train": summary["num_train"], "test": summary["num_test"]}


def test_frames_pipeline_multi_hot(layout):
    _convert(layout)
    videos = {v["id"]: v for v in layout["summary"]["videos"]}
    config = frames_pipeline.FramesConfig(
        sampler="actionvlad", num_steps=3, crop_size=(24, 24),
        test_crop="center", num_classes=NUM_CLASSES, multi_label=True,
        batch_size=4, drop_remainder=False)
    pattern = os.path.join(layout["out"], "train-*.tfrecord")
    seen = 0
    for batch in frames_pipeline.make_frames_dataset(
            pattern, config, training=False):
        for vid, label in zip(batch["video_id"].numpy(),
                              batch["label"].numpy()):
            video = videos[vid.decode()]
            if not video["labels"]:
                continue  # see test_empty_actions_give_zero_multi_hot
            expected = np.zeros(NUM_CLASSES, np.float32)
            expected[video["labels"]] = 1
            np.testing.assert_array_equal(label, expected)
            seen += 1
    assert seen == layout["summary"]["num_train"] - 1


def test_empty_actions_give_zero_multi_hot(layout):
    _convert(layout)
    empty = {v["id"] for v in layout["summary"]["videos"]
             if not v["labels"] and v["split"] == "test"}
    config = frames_pipeline.FramesConfig(
        sampler="actionvlad", num_steps=2, crop_size=(24, 24),
        test_crop="center", num_classes=NUM_CLASSES, multi_label=True,
        batch_size=8, drop_remainder=False)
    pattern = os.path.join(layout["out"], "test-*.tfrecord")
    found = 0
    for batch in frames_pipeline.make_frames_dataset(
            pattern, config, training=False):
        for vid, label in zip(batch["video_id"].numpy(),
                              batch["label"].numpy()):
            if vid.decode() in empty:
                np.testing.assert_array_equal(
                    label, np.zeros(NUM_CLASSES, np.float32))
                found += 1
    assert found == len(empty) == 1


def test_empty_actions_kept_with_no_label(layout):
    header, rows = _rows(layout["test"])
    column = header.index("actions")
    for row in rows:
        row[column] = ""
    _write_rows(layout["test"], header, rows)
    info = _convert(layout, csvs=[layout["test"]])
    assert info["videos_without_actions"] == {"test": len(rows)}
    records = b.read_frame_records(layout["out"], "test", modalities=("rgb",))
    assert [r["video/id"].decode() for r in records] == [r[0] for r in rows]
    for record in records:
        assert list(record["clip/label/index"]) == []
        assert list(record["clip/label/text"]) == []


def test_default_classes_subsets_and_frame_step(layout):
    info = _convert(layout, class_list=None, num_classes=NUM_CLASSES,
                    subsets="a,b", frame_step=3)
    assert sorted(info["subsets"]) == ["a", "b"]
    assert open(os.path.join(layout["out"], "classes.txt")).read() == "".join(
        f"c{i:03d}\n" for i in range(NUM_CLASSES))
    assert info["fps"] == 8.0 and info["frame_step"] == 3
    videos = {v["id"]: v for v in layout["summary"]["videos"]}
    for record in b.read_frame_records(layout["out"], "a",
                                       modalities=("rgb",)):
        vid = record["video/id"].decode()
        n = videos[vid]["num_frames"]
        assert record["video/num_frames"] == len(range(1, n + 1, 3))
        assert record["video/fps"] == pytest.approx(8.0)
        with open(os.path.join(layout["frames"], vid,
                               f"{vid}-000004.jpg"), "rb") as f:
            assert record["image/encoded"][1] == f.read()


def test_subset_names():
    assert charades.subset_name("a/Charades_v1_train.csv") == "train"
    assert charades.subset_name("Charades_v1_test.csv") == "test"
    assert charades.subset_name("my_list.csv") == "my_list"


def test_printf_pattern():
    assert charades.printf_pattern("{id}-{index:06d}.jpg", "AB%1") == (
        "AB%%1-%06d.jpg")
    assert charades.printf_pattern("img_{index}.jpg", "x") == "img_%d.jpg"
    for bad in ("{id}.jpg", "{name}-{index:06d}.jpg", "{index:x}.jpg"):
        with pytest.raises(ValueError):
            charades.printf_pattern(bad, "x")


def test_read_charades_classes(tmp_path):
    good = b.write_text(tmp_path / "c.txt",
                        "c000 Holding some clothes\n\nc001 Putting clothes "
                        "somewhere\n")
    classes = charades.read_charades_classes(good)
    assert classes.names == ["Holding some clothes",
                             "Putting clothes somewhere"]
    for text, line in (("c000 a\nc002 b\n", 2), ("c000 a\nc001\n", 2),
                       ("c000 a\nc001 a\n", 2), ("Holding\n", 1)):
        path = b.write_text(tmp_path / "bad.txt", text)
        with pytest.raises(errors.MalformedFileError) as e:
            charades.read_charades_classes(path)
        assert e.value.path == path and e.value.line == line


@pytest.mark.parametrize("field,value,error,message", [
    ("actions", "c001 0.00 0.10;c0x2 0.1 0.2", errors.MalformedFileError,
     "bad action"),
    ("actions", "c001 0.00", errors.MalformedFileError, "bad action"),
    ("actions", "c001 0.00 abc", errors.MalformedFileError, "number"),
    ("actions", "c001 0.50 0.10", errors.MalformedFileError, "start <= end"),
    ("actions", "c006 0.00 0.10", errors.UnknownLabelError, "6 classes"),
    ("length", "", errors.MalformedFileError, "number"),
    ("length", "-1", errors.MalformedFileError, "positive"),
])
def test_bad_csv_field_names_file_line_video(layout, field, value, error,
                                             message):
    header, rows = _rows(layout["train"])
    rows[2][header.index(field)] = value
    _write_rows(layout["train"], header, rows)
    with pytest.raises(error, match=message) as e:
        _convert(layout)
    assert e.value.path == layout["train"]
    assert e.value.line == 4  # header, then rows 1..
    assert e.value.video_id == rows[2][0]
    assert f"{layout['train']}:4" in str(e.value)
    assert not os.path.exists(os.path.join(layout["out"],
                                           "dataset_info.json"))


def test_missing_column(layout):
    header, rows = _rows(layout["test"])
    column = header.index("length")
    _write_rows(layout["test"], header[:column] + header[column + 1:],
                [r[:column] + r[column + 1:] for r in rows])
    with pytest.raises(errors.MalformedFileError,
                       match="missing column 'length'") as e:
        _convert(layout)
    assert e.value.path == layout["test"]


def test_duplicate_ids(layout):
    header, rows = _rows(layout["train"])
    _write_rows(layout["train"], header, rows + [rows[0]])
    with pytest.raises(errors.MalformedFileError, match="twice") as e:
        _convert(layout)
    assert e.value.line == len(rows) + 2 and e.value.video_id == rows[0][0]
    _write_rows(layout["train"], header, rows)
    _, test_rows = _rows(layout["test"])
    _write_rows(layout["test"], header, test_rows + [rows[1]])
    with pytest.raises(errors.MalformedFileError,
                       match="also in .*train.csv:3") as e:
        _convert(layout)
    assert e.value.path == layout["test"]


def test_missing_folder_and_frames(layout):
    _, rows = _rows(layout["train"])
    vid = rows[1][0]
    folder = os.path.join(layout["frames"], vid)
    os.remove(os.path.join(folder, f"{vid}-000002.jpg"))
    with pytest.raises(errors.MissingFrameError, match="missing frame") as e:
        _convert(layout)
    assert e.value.video_id == vid
    assert e.value.path.endswith(f"{vid}-000002.jpg")
    import shutil
    shutil.rmtree(folder)
    with pytest.raises(errors.MissingFrameError, match="not found") as e:
        _convert(layout)
    assert e.value.video_id == vid
    os.makedirs(folder)
    with pytest.raises(errors.MissingFrameError, match="no frame") as e:
        _convert(layout)
    # With skip_corrupt the video is skipped and listed.
    info = _convert(layout, skip_corrupt=True)
    assert info["skipped"]["count"] == 1
    assert info["skipped"]["items"][0]["video_id"] == vid
    assert info["subsets"]["train"]["num_records"] == len(rows) - 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "corrupt_body"])
def test_bad_jpeg(layout, damage):
    _, rows = _rows(layout["test"])
    vid = rows[0][0]
    path = os.path.join(layout["frames"], vid, f"{vid}-000003.jpg")
    data = open(path, "rb").read()
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "garbage":
        data = b"this is not a jpeg"
    else:  # valid markers, destroyed tables: only decoding sees it
        data = data[:4] + b"\x00" * (len(data) - 6) + data[-2:]
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(errors.MissingFrameError) as e:
        _convert(layout)
    assert e.value.video_id == vid and e.value.path == path
    with pytest.raises(errors.MissingFrameError):  # also with frame_step
        _convert(layout, frame_step=2)


def test_bad_arguments(layout):
    with pytest.raises(ValueError, match="no Charades CSV"):
        _convert(layout, csvs=",")
    with pytest.raises(ValueError, match="subset"):
        _convert(layout, subsets="train")
    with pytest.raises(ValueError, match="frame_step"):
        _convert(layout, frame_step=0)
    with pytest.raises(ValueError, match="index"):
        _convert(layout, frame_pattern="{id}.jpg")


@pytest.mark.parametrize("class_list", ["given", "default"])
def test_cli_convert_and_verify(layout, class_list):
    """Without --class_list the names are the shipped list's (codes keep
    the indices either way)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT),
               TF_CPP_MIN_LOG_LEVEL="3")
    script = (
        "import sys\n"
        "from absl import app\n"
        "from tfaction.data import convert\n"
        "for argv in (sys.argv[1:-1], ['--format=verify', "
        "'--input=' + sys.argv[-1]]):\n"
        "    from absl import flags\n"
        "    flags.FLAGS.unparse_flags()\n"
        "    flags.FLAGS(['convert'] + argv)\n"
        "    code = convert.main(['convert'])\n"
        "    print('exit', code)\n")
    result = subprocess.run(
        [sys.executable, "-c", script, "--format=charades_frames",
         f"--input={layout['train']},{layout['test']}",
         f"--frames_root={layout['frames']}",
         *([f"--class_list={layout['classes']}"]
           if class_list == "given" else []), "--num_shards=2",
         f"--output_dir={layout['out']}", layout["out"]],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = layout["summary"]
    assert "exit 0" in result.stdout and "exit 1" not in result.stdout
    assert (f"wrote {summary['num_videos']} record(s)" in result.stdout)
    assert f"verified test: {summary['num_test']} record(s)" in result.stdout
    info = json.load(open(os.path.join(layout["out"], "dataset_info.json")))
    assert info["format"] == "charades_frames" and info["multi_label"]
    assert info["subsets"]["train"]["num_shards"] == 2
    source = (layout["classes"] if class_list == "given"
              else REPO_ROOT / "data/charades/Charades_v1_classes_hf.txt")
    names = (pathlib.Path(layout["out"]) / info["class_list"]).read_text()
    assert names.split() == [
        w for line in pathlib.Path(source).read_text().splitlines()
        for w in line.split()[1:]]


def test_cli_reports_bad_input(layout):
    header, rows = _rows(layout["test"])
    rows[0][header.index("actions")] = "x001 0 1"
    _write_rows(layout["test"], header, rows)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT),
               TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert",
         "--format=charades_frames", f"--input={layout['test']}",
         f"--frames_root={layout['frames']}",
         f"--class_list={layout['classes']}",
         f"--output_dir={layout['out']}"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 1
    assert f"{layout['test']}:2: video {rows[0][0]!r}" in result.stderr
    assert "bad action 'x001 0 1'" in result.stderr


def test_synthetic_layout_is_deterministic(dataset, tmp_path):
    root, summary = dataset
    again = synthetic_charades.generate_charades(tmp_path / "again",
                                                 num_videos=12, seed=3)
    assert again["videos"] == summary["videos"]
    assert b.snapshot(tmp_path / "again") == b.snapshot(root)
    header, _ = _rows(root / "Charades_v1_train.csv")
    assert header == list(synthetic_charades.COLUMNS)
