"""HMDB51 frame folders + split lists -> frames TFRecords; every bad case."""

import os

import numpy as np
import pytest

from tfaction import errors
from tfaction.data.formats import hmdb51
from tfaction.data.formats import jpeg

from . import _builders as b


@pytest.fixture
def layout(tmp_path):
    """brush_hair/1 (5 frames), cartwheel/2 (4) train; brush_hair/3 (3) test.

    Flow lives in a separate root, as in the released bundles.
    """
    frames, flow = tmp_path / "frames", tmp_path / "flow"
    videos = {"brush_hair/1": 5, "cartwheel/2": 4, "brush_hair/3": 3}
    for video, n in videos.items():
        b.make_frame_folder(frames, video, n, flow=True, flow_root=flow)
    lists = tmp_path / "lists"
    lists.mkdir()
    train = b.write_text(lists / "train_split1.txt",
                         "brush_hair/1 5 0\ncartwheel/2 4 1\n\n")
    test = b.write_text(lists / "test_split1.txt", "brush_hair/3 3 0\n")
    return {"frames": str(frames), "flow": str(flow), "train": train,
            "test": test, "tmp": tmp_path, "out": str(tmp_path / "out")}


def _convert(layout, lists=None, **kwargs):
    kwargs.setdefault("flow_root", layout["flow"])
    return hmdb51.convert_hmdb51_frames(
        lists or [layout["train"], layout["test"]], layout["frames"],
        kwargs.pop("output_dir", layout["out"]), **kwargs)


def test_rgb_and_flow_round_trip(layout):
    info = _convert(layout, modalities="rgb,flow", num_workers=2)
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "train": 2, "test": 1}
    assert open(os.path.join(layout["out"], "classes.txt")).read() == (
        "brush_hair\ncartwheel\n")
    (first, second) = b.read_frame_records(layout["out"], "train")
    assert first["video/id"] == b"brush_hair/1"
    assert first["video/num_frames"] == 5
    assert list(first["clip/label/index"]) == [0]
    assert list(second["clip/label/index"]) == [1]
    assert list(second["clip/label/text"]) == [b"cartwheel"]
    assert len(first["image/encoded"]) == 5
    assert len(first["flow/x/encoded"]) == len(first["flow/y/encoded"]) == 4
    with open(os.path.join(layout["frames"], "brush_hair/1",
                           "image_00003.jpg"), "rb") as f:
        assert first["image/encoded"][2] == f.read()  # bytes unchanged
    with open(os.path.join(layout["flow"], "brush_hair/1",
                           "flow_y_00004.jpg"), "rb") as f:
        assert first["flow/y/encoded"][3] == f.read()
    assert first["video/subset"] == b"train"


def test_rerun_is_byte_identical(layout):
    _convert(layout, modalities="rgb,flow")
    first = b.snapshot(layout["out"])
    _convert(layout, modalities="rgb,flow", num_workers=2)
    assert b.snapshot(layout["out"]) == first


def test_missing_frame(layout):
    os.remove(os.path.join(layout["frames"], "cartwheel/2/image_00002.jpg"))
    with pytest.raises(errors.MissingFrameError) as e:
        _convert(layout)
    assert e.value.video_id == "cartwheel/2"
    assert e.value.path.endswith("cartwheel/2/image_00002.jpg")


def test_missing_folder(layout):
    b.write_text(layout["test"], "brush_hair/3 3 0\nbrush_hair/9 3 0\n")
    with pytest.raises(errors.MissingFrameError, match="not found") as e:
        _convert(layout)
    assert e.value.video_id == "brush_hair/9"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty",
                                    "corrupt_body"])
def test_unreadable_frame(layout, damage):
    path = os.path.join(layout["frames"], "brush_hair/1/image_00004.jpg")
    data = open(path, "rb").read()
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "garbage":
        data = b"this is not a jpeg"
    elif damage == "empty":
        data = b""
    else:  # valid markers, destroyed header tables: only decoding sees it
        data = data[:4] + b"\x00" * (len(data) - 6) + data[-2:]
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(errors.MissingFrameError) as e:
        _convert(layout)
    assert e.value.video_id == "brush_hair/1"
    assert e.value.path == path


def test_unreadable_flow_frame(layout):
    path = os.path.join(layout["flow"], "brush_hair/3/flow_x_00002.jpg")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-40])
    _convert(layout, modalities="rgb")  # flow not read: fine
    with pytest.raises(errors.MissingFrameError, match="truncated") as e:
        _convert(layout, modalities="flow")
    assert e.value.path == path


def test_num_frames_mismatch(layout):
    b.write_text(layout["train"], "brush_hair/1 6 0\ncartwheel/2 4 1\n")
    with pytest.raises(errors.FrameCountMismatchError) as e:
        _convert(layout)
    assert e.value.path == layout["train"] and e.value.line == 1
    assert e.value.video_id == "brush_hair/1"
    assert "holds 5 frame(s)" in str(e.value) and "declares 6" in str(e.value)
    b.write_text(layout["train"], "brush_hair/1 4 0\ncartwheel/2 4 1\n")
    with pytest.raises(errors.FrameCountMismatchError):
        _convert(layout)


def test_flow_count_mismatch(layout):
    os.remove(os.path.join(layout["flow"], "cartwheel/2/flow_y_00003.jpg"))
    with pytest.raises(errors.FrameCountMismatchError, match="flow_y") as e:
        _convert(layout, modalities="flow")
    assert e.value.video_id == "cartwheel/2"


def test_label_out_of_range(layout):
    classes = b.write_text(layout["tmp"] / "actions.txt",
                           "brush_hair\ncartwheel\n")
    b.write_text(layout["test"], "brush_hair/3 3 2\n")
    with pytest.raises(errors.UnknownLabelError) as e:
        _convert(layout, class_list=classes)
    assert (e.value.path, e.value.line, e.value.video_id) == (
        layout["test"], 1, "brush_hair/3")
    assert "0 <= index < 2" in str(e.value)
    b.write_text(layout["test"], "brush_hair/3 3 -1\n")
    with pytest.raises(errors.UnknownLabelError):
        _convert(layout)


@pytest.mark.parametrize("line", ["brush_hair/3 3", "brush_hair/3 x 0",
                                  "brush_hair/3 3 zero", "brush_hair/3 0 0",
                                  "a b c d"])
def test_malformed_line(layout, line):
    b.write_text(layout["test"], "brush_hair/3 3 0\n" + line + "\n")
    with pytest.raises(errors.MalformedFileError) as e:
        _convert(layout, skip_corrupt=True)  # list errors are never skipped
    assert e.value.path == layout["test"] and e.value.line == 2
    assert f"{layout['test']}:2" in str(e.value)


def test_repeated_video(layout):
    b.write_text(layout["test"], "cartwheel/2 4 1\n")
    with pytest.raises(errors.MalformedFileError, match="disjoint"):
        _convert(layout)


def test_skip_corrupt(layout):
    os.remove(os.path.join(layout["frames"], "cartwheel/2/image_00004.jpg"))
    before = b.snapshot(layout["tmp"] / "frames")
    info = _convert(layout, skip_corrupt=True)
    assert info["subsets"]["train"]["num_records"] == 1
    assert info["skipped"]["count"] == 1
    assert info["skipped"]["items"][0]["video_id"] == "cartwheel/2"
    assert info["skipped"]["items"][0]["error"] == "FrameCountMismatchError"
    assert b.snapshot(layout["tmp"] / "frames") == before


def test_failed_rerun_keeps_previous_output(layout):
    _convert(layout)
    before = b.snapshot(layout["out"])
    os.remove(os.path.join(layout["frames"], "brush_hair/3/image_00002.jpg"))
    with pytest.raises(errors.MissingFrameError):
        _convert(layout, num_shards=2)
    assert b.snapshot(layout["out"]) == before


def test_subset_names_and_all_videos(layout):
    all_videos = b.write_text(
        layout["tmp"] / "AllVideos.txt",
        "brush_hair/a.avi\ncartwheel/b.avi\nbrush_hair/c.avi\n")
    info = _convert(layout, subsets="tr,te", all_videos=all_videos, fps=30.0)
    assert sorted(info["subsets"]) == ["te", "tr"]
    (record,) = b.read_frame_records(layout["out"], "te", ("rgb",))
    assert record["video/source"] == b"brush_hair/c.avi"
    assert record["video/duration"] == pytest.approx(0.1)
    b.write_text(all_videos, "brush_hair/a.avi\nbrush_hair/x.avi\n")
    with pytest.raises(errors.MalformedFileError) as e:
        _convert(layout, all_videos=all_videos)
    assert e.value.video_id == "cartwheel/2"


def test_header_check_mode_skips_decoding(layout):
    path = os.path.join(layout["frames"], "brush_hair/1/image_00004.jpg")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:4] + b"\x00" * (len(data) - 6) + data[-2:])
    info = _convert(layout, jpeg_check="header")
    assert info["jpeg_check"] == "header"


def test_subset_name_from_file():
    assert hmdb51.subset_name("x/train_split1.txt") == "train"
    assert hmdb51.subset_name("testlist01.txt") == "testlist01"


def test_check_jpeg_decodes():
    ramp = np.linspace(0, 255, 16).astype(np.uint8)
    image = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None],
                                         np.uint8(128)), -1)
    data = b.jpeg_bytes(image, quality=100)
    decoded = jpeg.check_jpeg(data, path="x.jpg")
    assert decoded.shape == (16, 16, 3)
    assert np.abs(decoded.astype(int) - image).mean() < 10
