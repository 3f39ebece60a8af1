"""AdaFocus split lists (ActivityNet / FCVID / Mini-Kinetics) -> frames
records: syntax of each list kind, what is dropped and counted, and every
bad row named by file and line."""

import json
import os
import subprocess
import sys

import pytest

from tfaction import errors
from tfaction.data.formats import adafocus_lists

from . import _builders as b

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


def _frames(root, video, n, pattern="image_{:05d}.jpg"):
    folder = os.path.join(root, video)
    os.makedirs(folder, exist_ok=True)
    for i in range(1, n + 1):
        with open(os.path.join(folder, pattern.format(i)), "wb") as f:
            f.write(b.jpeg_bytes(b.frame_image(i, size=8)))


@pytest.fixture
def actnet(tmp_path):
    """v_a (4 frames, labels 2,0), v_b (3, label 1), v_short (2) train;
    v_c (5, labels 1,1 -> 1) val."""
    frames = tmp_path / "frames"
    for video, n in {"v_a": 4, "v_b": 3, "v_short": 2, "v_c": 5}.items():
        _frames(frames, video, n)
    train = b.write_text(tmp_path / "actnet_train_split.txt",
                         "v_a,4,2,0\nv_b,3,1\n\nv_short,2,0\n")
    val = b.write_text(tmp_path / "actnet_val_split.txt", "v_c,5,1,1\n")
    classes = b.write_text(tmp_path / "classInd.txt", "run\njump\nswim\n")
    return {"frames": str(frames), "train": train, "val": val,
            "classes": classes, "tmp": tmp_path,
            "out": str(tmp_path / "out")}


def _convert(layout, lists=None, dataset="actnet", **kwargs):
    return adafocus_lists.convert_adafocus_lists(
        lists or [layout["train"], layout["val"]], layout["frames"],
        kwargs.pop("output_dir", layout["out"]), dataset=dataset,
        class_list=kwargs.pop("class_list", layout["classes"]), **kwargs)


def test_actnet_lists_keep_label_order_and_count_drops(actnet):
    info = _convert(actnet, fps=30.0)
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "train": 2, "val": 1}
    assert info["format"] == "actnet_frames" and info["multi_label"]
    assert info["dropped_short"] == {"train": 1, "val": 0}
    assert info["repeated_labels"] == {"train": 0, "val": 1}
    first, second = b.read_frame_records(actnet["out"], "train", ("rgb",))
    assert first["video/id"] == b"v_a"
    assert list(first["clip/label/index"]) == [2, 0]  # file order
    assert list(first["clip/label/text"]) == [b"swim", b"run"]
    assert first["video/num_frames"] == 4 and len(first["image/encoded"]) == 4
    assert first["video/fps"] == pytest.approx(30.0)
    assert list(second["clip/label/index"]) == [1]
    (val,) = b.read_frame_records(actnet["out"], "val", ("rgb",))
    assert list(val["clip/label/index"]) == [1]
    with open(os.path.join(actnet["frames"], "v_a", "image_00003.jpg"),
              "rb") as f:
        assert first["image/encoded"][2] == f.read()  # bytes unchanged


def test_minik_space_separated_paths_with_spaces(tmp_path):
    pattern = "img_{:05d}.jpg"
    _frames(tmp_path, "riding a bike/x1", 3, pattern)
    _frames(tmp_path, "yoga/x2", 4, pattern)
    train = b.write_text(tmp_path / "mini_train_videofolder.txt",
                         "riding a bike/x1 3 1\n")
    val = b.write_text(tmp_path / "mini_val_videofolder.txt", "yoga/x2 4 0\n")
    classes = b.write_text(tmp_path / "minik_classInd.txt", "yoga\nbike\n")
    info = adafocus_lists.convert_adafocus_lists(
        f"{train},{val}", str(tmp_path), str(tmp_path / "out"),
        dataset="minik", class_list=classes)
    assert sorted(info["subsets"]) == ["train", "val"]
    assert not info["multi_label"] and info["patterns"]["rgb"] == (
        "img_%05d.jpg")
    (record,) = b.read_frame_records(tmp_path / "out", "train", ("rgb",))
    assert record["video/id"] == b"riding a bike/x1"
    assert list(record["clip/label/index"]) == [1]
    # The last two fields are the count and the label, as the authors'
    # loader reads them; fewer than three fields is an error.
    (entry,) = adafocus_lists.read_split_list(
        b.write_text(tmp_path / "two.txt", "yoga/x2 4 0 1\n"), "minik")
    assert (entry.video_path, entry.num_frames, entry.labels) == (
        "yoga/x2 4", 0, (1,))
    bad = b.write_text(tmp_path / "bad.txt", "yoga/x2 4\n")
    with pytest.raises(errors.MalformedFileError,
                       match=r"bad.txt:1.*'path num_frames label'"):
        adafocus_lists.read_split_list(bad, "minik")


@pytest.mark.parametrize("row,message", [
    ("v_a,4", "expected 'path,num_frames,label'"),
    ("v_a,four,1", "num_frames 'four' is not an integer"),
    ("v_a,4,x", "label 'x' is not an integer"),
    ("v_a,4,0,1,2,0", "got 4 labels"),
    ("v_a,4,-1", "must be >= 0"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    path = b.write_text(tmp_path / "fcvid_train_split.txt",
                        f"v_ok,3,0\n{row}\n")
    with pytest.raises(errors.MalformedFileError) as info:
        adafocus_lists.read_split_list(path, "fcvid")
    assert message in str(info.value)
    assert f"{path}:2" in str(info.value)


def test_list_and_class_errors(actnet):
    b.write_text(actnet["val"], "v_c,5,3\n")
    with pytest.raises(errors.UnknownLabelError,
                       match=r"actnet_val_split.txt:1.*out of range"):
        _convert(actnet)
    b.write_text(actnet["val"], "v_b,3,1\n")
    with pytest.raises(errors.MalformedFileError,
                       match="also in .*actnet_train_split.txt:2"):
        _convert(actnet)
    b.write_text(actnet["val"], "v_c,5,1\nv_c,5,1\n")
    with pytest.raises(errors.MalformedFileError, match="repeats line 1"):
        _convert(actnet)
    b.write_text(actnet["val"], "v_c,6,1\n")
    with pytest.raises(errors.FrameCountMismatchError, match="declares 6"):
        _convert(actnet)
    assert os.listdir(actnet["out"]) == []  # nothing half-written
    info = _convert(actnet, skip_corrupt=True)
    assert info["skipped"]["count"] == 1
    assert info["subsets"]["val"]["num_records"] == 0
    with pytest.raises(errors.ConfigError, match="unknown AdaFocus dataset"):
        _convert(actnet, dataset="kinetics", output_dir=actnet["tmp"] / "k")
    assert adafocus_lists.subset_name("mini_val_videofolder.txt") == "val"
    assert adafocus_lists.subset_name("fcvid_train_split.txt") == "train"
    assert adafocus_lists.subset_name("my_list.txt") == "my_list"


def test_convert_command(actnet):
    out = actnet["tmp"] / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert",
         "--format=fcvid_frames", f"--input={actnet['train']},"
         f"{actnet['val']}", f"--frames_root={actnet['frames']}",
         f"--class_list={actnet['classes']}", "--min_frames=4",
         f"--output_dir={out}"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO,
                           TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["format"] == "fcvid_frames"
    assert info["dropped_short"] == {"train": 2, "val": 0}
