"""Video files -> frames TFRecords: resampling, resizing, flow, bad files."""

import os

import numpy as np
import pytest

from tfaction import errors
from tfaction.data.formats import jpeg
from tfaction.data.formats import video_decode
from tfaction.data.formats import videos

from . import _builders as b


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Class folders: right/ (square moving right), left/ (moving left)."""
    root = tmp_path_factory.mktemp("videos")
    frames = b.moving_square_frames(12, step=2)
    os.makedirs(root / "right")
    os.makedirs(root / "left")
    b.write_video(root / "right" / "r1.mp4", frames, fps=10)
    b.write_video(root / "right" / "r2.avi", frames[:8], fps=10)
    b.write_video(root / "left" / "l1.mp4", frames[::-1], fps=10)
    return root


def test_resampling_by_timestamps(clips):
    path = str(clips / "right" / "r1.mp4")  # 12 frames at 10 fps = 1.2 s
    native = video_decode.DecodedVideo(path)
    assert len(list(native)) == 12
    assert native.fps == 10 and native.duration == pytest.approx(1.2)
    for fps, count in ((5, 6), (20, 24), (4, 5), (7, 9)):
        video = video_decode.DecodedVideo(path, fps=fps)
        frames = list(video)
        assert len(frames) == video.num_frames == count  # ceil(1.2 * fps)
        assert video.fps == fps
    # At 5 fps output frame k is input frame 2k (nearest timestamp).
    full = list(video_decode.DecodedVideo(path))
    half = list(video_decode.DecodedVideo(path, fps=5))
    for k, frame in enumerate(half):
        np.testing.assert_array_equal(frame, full[2 * k])


def test_resize_short_side():
    image = np.zeros((60, 80, 3), np.uint8)
    assert video_decode.resize_short_side(image, 30).shape == (30, 40, 3)
    assert video_decode.resize_short_side(image, None).shape == (60, 80, 3)


def test_folder_input_with_flow(clips, tmp_path):
    info = videos.convert_videos(clips, tmp_path / "out", fps=10,
                                 short_side=48, flow="farneback",
                                 subset="all", num_workers=2)
    assert info["subsets"]["all"]["num_records"] == 3
    assert open(tmp_path / "out" / "classes.txt").read() == "left\nright\n"
    records = {r["video/id"].decode(): r
               for r in b.read_frame_records(tmp_path / "out", "all")}
    assert sorted(records) == ["left/l1", "right/r1", "right/r2"]
    r1, l1 = records["right/r1"], records["left/l1"]
    assert r1["video/num_frames"] == 12 and len(r1["image/encoded"]) == 12
    assert len(r1["flow/x/encoded"]) == len(r1["flow/y/encoded"]) == 11
    assert list(r1["clip/label/index"]) == [1]
    assert r1["video/source"] == b"right/r1.mp4"
    assert r1["video/fps"] == 10 and r1["video/duration"] == pytest.approx(
        1.2)
    assert jpeg.decode_jpeg(r1["image/encoded"][0]).shape == (48, 48, 3)

    def square_flow_x(record, t):
        x = jpeg.decode_jpeg(record["flow/x/encoded"][t], grayscale=True)
        return x.astype(float)

    # Frame 3 -> 4 of r1: square (scaled by 0.75) moves right; l1 left.
    right = square_flow_x(r1, 3)
    left = square_flow_x(l1, 3)
    assert right.max() > 135 and right.mean() > 128
    assert left.min() < 121 and left.mean() < 128


def test_tvl1_flow_and_determinism(clips, tmp_path):
    item = str(clips / "right" / "r2.avi")
    listing = b.write_text(tmp_path / "list.txt", f"{item} right\n")
    for out in ("a", "b"):
        info = videos.convert_videos(listing, tmp_path / out, fps=5,
                                     flow="tvl1", videos_root="/")
    assert info["flow"]["method"] == "tvl1"
    (record,) = b.read_frame_records(tmp_path / "a", "train")
    assert record["video/num_frames"] == 4  # 0.8 s at 5 fps
    x = jpeg.decode_jpeg(record["flow/x/encoded"][0], grayscale=True)
    assert x[24:40, 10:26].mean() > 128 + 5  # 4 px right per output frame
    assert b.snapshot(tmp_path / "a") == b.snapshot(tmp_path / "b")


def test_list_file_labels_and_class_list(clips, tmp_path):
    listing = b.write_text(tmp_path / "list.txt",
                           "right/r1.mp4 move_right\nleft/l1.mp4\tmove_left\n")
    classes = b.write_text(tmp_path / "classes.txt",
                           "move_right\nmove_left\n")
    videos.convert_videos(listing, tmp_path / "out", fps=5,
                          videos_root=str(clips), class_list=classes)
    records = b.read_frame_records(tmp_path / "out", "train", ("rgb",))
    assert [(r["video/id"], list(r["clip/label/index"])) for r in records] == [
        (b"left/l1", [1]), (b"right/r1", [0])]
    b.write_text(classes, "move_right\n")
    with pytest.raises(errors.UnknownLabelError) as e:
        videos.convert_videos(listing, tmp_path / "out", fps=5,
                              videos_root=str(clips), class_list=classes)
    assert (e.value.path, e.value.line, e.value.video_id) == (listing, 2,
                                                              "left/l1")
    b.write_text(listing, "right/r1.mp4 a b\n")
    with pytest.raises(errors.MalformedFileError) as e:
        videos.list_videos(listing)
    assert e.value.line == 1


def test_corrupt_and_missing_videos(clips, tmp_path):
    root = tmp_path / "v"
    os.makedirs(root / "right")
    data = open(clips / "right" / "r1.mp4", "rb").read()
    with open(root / "right" / "good.mp4", "wb") as f:
        f.write(data)
    with open(root / "right" / "truncated.mp4", "wb") as f:
        f.write(data[:len(data) // 3])
    with open(root / "right" / "text.mp4", "wb") as f:
        f.write(b"not a video at all")
    with pytest.raises(errors.VideoDecodeError) as e:
        videos.convert_videos(root, tmp_path / "out")
    assert e.value.video_id == "right/text"
    assert e.value.path.endswith("text.mp4")
    assert not os.path.exists(tmp_path / "out" / "train-00000-of-00001"
                                                 ".tfrecord")
    info = videos.convert_videos(root, tmp_path / "out", skip_corrupt=True)
    assert info["num_records"] == 1
    assert info["skipped"]["count"] == 2
    assert sorted(i["video_id"] for i in info["skipped"]["items"]) == [
        "right/text", "right/truncated"]
    listing = b.write_text(tmp_path / "list.txt", "nowhere.mp4 x\n")
    with pytest.raises(errors.VideoDecodeError, match="not found"):
        videos.convert_videos(listing, tmp_path / "out2")


def test_truncated_mkv_is_reported(tmp_path):
    # MKV decodes what is left of a truncated file without an error.
    path = b.write_video(tmp_path / "a.mkv", b.moving_square_frames(20),
                         fps=10)
    assert len(list(video_decode.DecodedVideo(path))) == 20
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) * 6 // 10])
    with pytest.raises(errors.VideoDecodeError, match="truncated") as e:
        list(video_decode.DecodedVideo(path, video_id="a"))
    assert e.value.video_id == "a"


def test_unlabelled_glob(clips, tmp_path):
    items = videos.list_videos(str(clips / "*" / "*.mp4"))
    assert [(i.video_id, i.label) for i in items] == [("left/l1", "left"),
                                                      ("right/r1", "right")]
    items = videos.list_videos(str(clips / "right" / "*.mp4"))
    assert [(i.video_id, i.label) for i in items] == [("r1", None)]
    info = videos.convert_videos(str(clips / "*" / "*.mp4"), tmp_path / "o",
                                 labels=False)
    assert info["labelled"] is False and "class_list" not in info
    assert not os.path.exists(tmp_path / "o" / "classes.txt")
    records = b.read_frame_records(tmp_path / "o", "train", ("rgb",))
    assert [list(r["clip/label/index"]) for r in records] == [[], []]
    with pytest.raises(errors.MalformedFileError, match="no video"):
        videos.list_videos(str(clips / "*.mkv"))
