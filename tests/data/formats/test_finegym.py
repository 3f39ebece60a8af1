"""FineGym annotation JSON + element lists + videos -> CARL's records.

Tiny videos whose frames show their own index in binary (8 black / white
bands) are cut per event; the tests read the index back from each stored
JPEG, so the cut (seeking, 30 -> 25 fps resampling by nearest timestamp),
the frame counts and the element labels at the sub-action boundaries are
checked against hand-computed values. Also: splits, ids, event classes,
skipped events (missing video, event past the video's end), pre-cut event
clips, the errors naming file / line / key, the `--format=finegym` flags,
and the CARL recipe's input pipeline on the records.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from experiments.configs import carl_finegym
from tfaction import errors
from tfaction import tasks
from tfaction.data import schemas
from tfaction.data.formats import finegym
from tfaction.data.formats import jpeg
from tfaction.data.formats import output
from tfaction.data.formats import registry

from . import _builders as b

W, H = 32, 24  # output frame size (small, fast)
VIDEO_A, VIDEO_B = "a_B-c", "vidB"  # YouTube ids ("_" and "-" included)
E1 = f"{VIDEO_A}_E_000050_000150"  # [1.2, 3.2] s: 50 frames, train
E2 = f"{VIDEO_A}_E_000300_000400"  # [2.5, 4.1] s: 40 frames, val (seeks)
E3 = f"{VIDEO_B}_E_000010_000050"  # [0.52, 2.0] s: 37 frames, train
E_PAST = f"{VIDEO_A}_E_000600_000700"  # [5.6, 6.4] s, video ends at 6 s
E_LOST = "lost_E_000001_000002"  # no video file

ANNOTATIONS = {
    VIDEO_A: {
        "E_000050_000150": {"event": 1, "timestamps": [[1.2, 3.2]],
                            "segments": {
            "A_0005_0015": {"stages": 1, "timestamps": [[0.2, 0.6]]},
            "A_0016_0020": {"stages": 1, "timestamps": [[0.64, 0.8]]},
            "A_0025_0038": {"stages": 2,
                            "timestamps": [[0.1, 0.3], [1.0, 1.52]]},
            "A_0040_0060": {"stages": 1, "timestamps": [[1.6, 2.4]]}}},
        # No labelled sub-action: not converted.
        "E_000200_000260": {"event": 2, "timestamps": [[4.0, 5.2]],
                            "segments": None},
        "E_000300_000400": {"event": 1, "timestamps": [[2.5, 4.1]],
                            "segments": {
            "A_0000_0004": {"stages": 1, "timestamps": [[0.0, 0.16]]}}},
        "E_000600_000700": {"event": 2, "timestamps": [[5.6, 6.4]],
                            "segments": {
            "A_0000_0001": {"stages": 1, "timestamps": [[0.0, 0.2]]}}},
    },
    VIDEO_B: {
        "E_000010_000050": {"event": 3, "timestamps": [[0.52, 2.0]],
                            "segments": {
            "A_0000_0012": {"stages": 1, "timestamps": [[0.0, 0.5]]}}},
    },
    "lost": {
        "E_000001_000002": {"event": 0, "timestamps": [[0.0, 1.0]],
                            "segments": {
            "A_0000_0001": {"stages": 1, "timestamps": [[0.0, 0.2]]}}},
    },
}
TRAIN_LINES = [f"{E1}_A_0025_0038 7", f"{E1}_A_0005_0015 5",
               f"{E_LOST}_A_0000_0001 1", f"{E1}_A_0040_0060 9",
               f"{E_PAST}_A_0000_0001 4", f"{E3}_A_0000_0012 0"]
VAL_LINES = [f"{E2}_A_0000_0004 98"]


def labels_of(num_frames, *spans):
    """-1 everywhere, `label` over each inclusive `(lo, hi, label)`."""
    labels = [-1] * num_frames
    for lo, hi, label in spans:
        labels[lo:hi + 1] = [label] * (hi + 1 - lo)
    return labels


# Hand-computed: frames [int(s * 25), int(e * 25)] of each listed
# sub-action's last timestamp pair, clipped to the event.
E1_LABELS = labels_of(50, (5, 15, 5), (25, 38, 7), (40, 49, 9))
E2_LABELS = labels_of(40, (0, 4, 98))
E3_LABELS = labels_of(37, (0, 12, 0))


def coded_frames(indices, width=64, height=48):
    """Frames showing their index in binary: band b white when bit b is 1."""
    frames = []
    for i in indices:
        image = np.zeros((height, width, 3), np.uint8)
        for bit in range(8):
            if i >> bit & 1:
                image[:, bit * width // 8:(bit + 1) * width // 8] = 255
        frames.append(image)
    return frames


def shown_index(data):
    """The index a stored JPEG frame shows (its bands' centre columns)."""
    image = jpeg.decode_jpeg(data)
    centres = [(2 * bit + 1) * image.shape[1] // 16 for bit in range(8)]
    bits = image[:, centres].mean(axis=(0, 2)) > 128
    return int(sum(1 << bit for bit in range(8) if bits[bit]))


def nearest_source_frames(start, count, source_fps):
    """Index of the source frame nearest to `start + k / 25` (no ties)."""
    return [int(np.floor((start + k / 25) * source_fps + 0.5))
            for k in range(count)]


def read_output(folder, subset):
    pattern = os.path.join(str(folder), f"{subset}-*.tfrecord")
    return {r[schemas.VIDEO_ID].numpy().decode(): r for r in (
        schemas.parse_frame_labels(x)
        for x in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern))))}


def write_inputs(root, train_lines=TRAIN_LINES, val_lines=VAL_LINES,
                 annotations=ANNOTATIONS):
    root.mkdir(parents=True, exist_ok=True)
    anno = b.write_json(root / "finegym_annotation_info_v1.0.json",
                        annotations)
    lists = [b.write_text(root / "gym99_train_element_v1.0.txt",
                          "\n".join(train_lines) + "\n"),
             b.write_text(root / "gym99_val_element.txt",
                          "\n".join(val_lines) + "\n")]
    return anno, lists


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Whole videos (A: 6 s at 30 fps, mp4; B: 4 s at 25 fps, mkv)."""
    root = tmp_path_factory.mktemp("finegym")
    videos = root / "videos"
    videos.mkdir()
    b.write_video(videos / f"{VIDEO_A}.mp4", coded_frames(range(180)),
                  fps=30)
    b.write_video(videos / f"{VIDEO_B}.mkv", coded_frames(range(100)),
                  fps=25)
    anno, lists = write_inputs(root)
    info = finegym.convert_finegym(anno, lists, videos, root / "out",
                                   width=W, height=H, skip_corrupt=True,
                                   num_shards=2, num_workers=2)
    return {"root": root, "videos": videos, "anno": anno, "lists": lists,
            "out": root / "out", "info": info}


def test_raw_videos_cut_per_event(raw):
    info, out = raw["info"], raw["out"]
    assert info["video_layout"] == "raw"
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "train": 2, "val": 1}
    assert output.verify_output(out) == {"train": 2, "val": 1}
    train, val = read_output(out, "train"), read_output(out, "val")
    assert set(train) == {E1, E3} and set(val) == {E2}
    expected = {
        E1: (E1_LABELS, nearest_source_frames(1.2, 50, 30), 1, "a_B-c.mp4"),
        E3: (E3_LABELS, [13 + k for k in range(37)], 3, "vidB.mkv"),
        E2: (E2_LABELS, nearest_source_frames(2.5, 40, 30), 1, "a_B-c.mp4"),
    }
    for event_id, record in {**train, **val}.items():
        labels, source_frames, event, source = expected[event_id]
        images = record[schemas.IMAGE_ENCODED].numpy().tolist()
        assert [shown_index(x) for x in images] == source_frames, event_id
        assert record[schemas.FRAME_LABEL_INDEX].numpy().tolist() == labels
        assert int(record[schemas.VIDEO_NUM_FRAMES]) == len(labels)
        assert float(record[schemas.VIDEO_FPS]) == 25.0
        assert float(record[schemas.VIDEO_DURATION]) == pytest.approx(
            len(labels) / 25)
        assert record[schemas.CLIP_LABEL_INDEX].numpy().tolist() == [event]
        assert record[schemas.CLIP_LABEL_TEXT].numpy().tolist() == [
            f"event_{event}".encode()]
        assert record[schemas.VIDEO_SOURCE].numpy().decode() == source
        assert jpeg.decode_jpeg(images[0]).shape == (H, W, 3)
    assert val[E2][schemas.VIDEO_SUBSET].numpy() == b"val"
    assert (out / "classes.txt").read_text().split() == [
        "event_0", "event_1", "event_2", "event_3"]


def test_raw_conversion_counts_and_skips(raw):
    info = raw["info"]
    assert info["num_element_classes"] == 99
    assert info["events_without_labelled_sub_actions"] == 1
    assert info["sub_actions_with_several_timestamps"] == 1
    assert info["sub_actions_past_event_end"]["items"] == [
        {"video_id": E1, "sub_action": "A_0040_0060", "num_frames": 50,
         "subset": "train"}]
    stats = info["stats"]["train"]
    assert stats["num_frames"] == 87 and stats["labelled_sub_actions"] == 4
    assert stats["labelled_frames"] == 11 + 14 + 10 + 13
    assert stats["events_per_class"] == {"event_1": 1, "event_3": 1}
    skipped = {i["video_id"]: i for i in info["skipped"]["items"]}
    assert set(skipped) == {E_LOST, E_PAST}
    assert skipped[E_LOST]["error"] == "VideoDecodeError"
    assert "expected the YouTube video lost.mp4, .mkv or .webm" in (
        skipped[E_LOST]["message"])
    assert skipped[E_PAST]["error"] == "SegmentError"
    assert "ends after the video's end (6.000 s)" in (
        skipped[E_PAST]["message"])
    lines = finegym.report_lines(info, {"output_dir": "out"})
    assert lines[0] == ("wrote 3 event record(s) to out (raw videos, 25 "
                        "fps): train 2 (87 frames), val 1 (40 frames)")
    assert "skipped 2 event(s)" in lines


@pytest.mark.parametrize("lines, error, message", [
    ([f"{E_LOST}_A_0000_0001 1"], errors.VideoDecodeError,
     "no video file for this event"),
    ([f"{E_PAST}_A_0000_0001 4"], errors.SegmentError,
     "ends after the video's end"),
])
def test_bad_event_stops_without_skip(raw, tmp_path, lines, error, message):
    anno, lists = write_inputs(tmp_path / "in", train_lines=lines)
    with pytest.raises(error, match=message) as e:
        finegym.convert_finegym(anno, lists, raw["videos"], tmp_path / "out",
                                width=W, height=H)
    assert e.value.video_id == lines[0].split("_A_")[0]
    assert not (tmp_path / "out" / "dataset_info.json").exists()


def test_event_clips_layout_and_an_event_in_two_subsets(tmp_path):
    clips = tmp_path / "processed_videos"
    clips.mkdir()
    b.write_video(clips / f"{E1}.mp4", coded_frames(range(50)), fps=25)
    # E1 is labelled in train by two sub-actions, in val by a third.
    anno, lists = write_inputs(tmp_path, train_lines=TRAIN_LINES[:2],
                               val_lines=[TRAIN_LINES[3]])
    info = finegym.convert_finegym(anno, lists, clips, tmp_path / "out",
                                   width=W, height=H)
    assert info["video_layout"] == "events"
    assert info["events_in_several_subsets"] == [E1]
    train = read_output(tmp_path / "out", "train")[E1]
    val = read_output(tmp_path / "out", "val")[E1]
    for record in (train, val):
        images = record[schemas.IMAGE_ENCODED].numpy().tolist()
        assert [shown_index(x) for x in images] == list(range(50))
        assert record[schemas.VIDEO_SOURCE].numpy().decode() == f"{E1}.mp4"
    # Each subset labels only its own elements.
    assert train[schemas.FRAME_LABEL_INDEX].numpy().tolist() == labels_of(
        50, (5, 15, 5), (25, 38, 7))
    assert val[schemas.FRAME_LABEL_INDEX].numpy().tolist() == labels_of(
        50, (40, 49, 9))
    # A folder with clips and whole videos needs --video_layout.
    b.write_video(clips / f"{VIDEO_A}.webm", coded_frames(range(4)), fps=25,
                  codec="libvpx")
    with pytest.raises(errors.ConfigError, match="--video_layout=raw"):
        finegym.convert_finegym(anno, lists, clips, tmp_path / "out2")


def test_truncated_clip_is_reported(tmp_path):
    # MKV decodes what is left of a truncated file without an error.
    path = tmp_path / f"{E1}.mkv"
    b.write_video(path, coded_frames(range(60)), fps=10)
    assert len(list(finegym.decode_frames(path, width=W, height=H))) == 150
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 4 // 10])
    with pytest.raises(errors.VideoDecodeError, match="truncated") as e:
        list(finegym.decode_frames(path, width=W, height=H, video_id=E1))
    assert e.value.video_id == E1


def test_frame_labels_follow_segments_order():
    # [0, 0.2] -> frames 0..5; [0.12, 0.34] -> frames 3..8, past 8 frames.
    actions = [finegym.SubAction("A_1", 0.0, 0.2, 3, 1),
               finegym.SubAction("A_2", 0.12, 0.34, 4, 2)]
    labels, past = finegym.event_frame_labels(8, actions, fps=25)
    assert labels.tolist() == [3, 3, 3, 4, 4, 4, 4, 4]  # later overwrites
    assert past == ["A_2"]
    labels, past = finegym.event_frame_labels(9, actions[::-1], fps=25)
    assert labels.tolist() == [3, 3, 3, 3, 3, 3, 4, 4, 4] and past == []


def _write(tmp_path, train_lines=None, annotations=None):
    root = tmp_path / "in"
    return write_inputs(root, train_lines=train_lines or TRAIN_LINES[:2],
                        val_lines=[], annotations=annotations or ANNOTATIONS)


def _event_with(**changes):
    data = json.loads(json.dumps(ANNOTATIONS))
    data[VIDEO_A]["E_000050_000150"].update(changes)
    return data


@pytest.mark.parametrize("case, error, where, message", [
    ("no_label", errors.MalformedFileError, ("train", 2, None),
     "expected '<youtube_id>_E_<start>_<end>_A_<start>_<end> <label>'"),
    ("bad_id", errors.MalformedFileError, ("train", 1, "id"),
     "is not of the form"),
    ("label_text", errors.MalformedFileError, ("train", 1, "label"),
     "'x' is not an integer"),
    ("label_range", errors.UnknownLabelError, ("train", 1, "label"),
     r"element label 99 is outside \[0, 99\)"),
    ("repeated", errors.MalformedFileError, ("train", 2, "id"),
     "repeats line 1"),
    ("no_video", errors.MalformedFileError, ("train", 1, "nope"),
     "YouTube video 'nope' is not in the annotation file"),
    ("no_event", errors.MalformedFileError, ("train", 1, "E_000001_000009"),
     "event 'E_000001_000009' of 'a_B-c' is not in the annotation file"),
    ("no_segment", errors.MalformedFileError,
     ("train", 1, "a_B-c.E_000050_000150.segments.A_0099_0100"),
     "sub-action 'A_0099_0100' is not in the 'segments'"),
    ("event_type", errors.MalformedFileError,
     ("anno", None, "a_B-c.E_000050_000150.event"),
     "expected an integer event type >= 0, got 'VT'"),
    ("event_span", errors.SegmentError,
     ("anno", None, "a_B-c.E_000050_000150.timestamps"),
     r"timestamps \[3.2, 1.2\]: expected finite seconds with 0 <= start < "),
    ("segment_pair", errors.MalformedFileError,
     ("anno", None, "a_B-c.E_000050_000150.segments.A_0005_0015.timestamps"),
     r"expected a \[start, end\] pair, got \[0.2\]"),
])
def test_errors_name_file_line_and_key(tmp_path, case, error, where,
                                       message):
    lines, annotations = list(TRAIN_LINES[:2]), None
    if case == "no_label":
        lines[1] = f"{E1}_A_0005_0015"
    elif case == "bad_id":
        lines[0] = "a_B-c_E_000050_A_0025_0038 7"
    elif case == "label_text":
        lines[0] = f"{E1}_A_0025_0038 x"
    elif case == "label_range":
        lines[0] = f"{E1}_A_0025_0038 99"
    elif case == "repeated":
        lines[1] = f"{E1}_A_0025_0038 7"
    elif case == "no_video":
        lines[0] = "nope_E_000050_000150_A_0025_0038 7"
    elif case == "no_event":
        lines[0] = f"{VIDEO_A}_E_000001_000009_A_0025_0038 7"
    elif case == "no_segment":
        lines[0] = f"{E1}_A_0099_0100 7"
    elif case == "event_type":
        annotations = _event_with(event="VT")
    elif case == "event_span":
        annotations = _event_with(timestamps=[[3.2, 1.2]])
    elif case == "segment_pair":
        segments = dict(ANNOTATIONS[VIDEO_A]["E_000050_000150"]["segments"])
        segments["A_0005_0015"] = {"timestamps": [[0.2]]}
        annotations = _event_with(segments=segments)
    anno, lists = _write(tmp_path, lines, annotations)
    with pytest.raises(error, match=message) as e:
        finegym.convert_finegym(anno, lists[:1], tmp_path, tmp_path / "out")
    file, line, key = where
    assert e.value.path == (anno if file == "anno" else lists[0])
    assert (e.value.line, e.value.key) == (line, key)
    assert not (tmp_path / "out").exists()


def test_bad_json_and_arguments(tmp_path):
    anno = b.write_text(tmp_path / "finegym.json", '{"a": {\n  "E_1_2": }')
    lists = [b.write_text(tmp_path / "gym99_train_element_v1.0.txt", "")]
    with pytest.raises(errors.MalformedFileError, match="invalid JSON") as e:
        finegym.convert_finegym(anno, lists, tmp_path, tmp_path / "out")
    assert (e.value.path, e.value.line) == (anno, 2)
    anno = b.write_json(tmp_path / "top.json", [1, 2])
    with pytest.raises(errors.MalformedFileError, match="expected an object"):
        finegym.convert_finegym(anno, lists, tmp_path, tmp_path / "out")
    plain = b.write_text(tmp_path / "train_list.txt", "")
    with pytest.raises(ValueError, match="--num_element_classes"):
        finegym.convert_finegym(anno, [plain], tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="one name per element list"):
        finegym.convert_finegym(anno, lists, tmp_path, tmp_path / "out",
                                subsets="a,b")
    assert finegym.classes_from_list_names(
        ["gym288_train_element_v1.1.txt", "gym288_val_element.txt"]) == 288
    assert finegym.classes_from_list_names(
        ["gym99_val_element.txt", "gym288_val_element.txt"]) is None


def test_cli_flags_convert_and_report(raw, tmp_path):
    formats = registry.load_builtin_formats()
    flag_values = flags.FlagValues()
    formats.define_flags(flag_values)
    flag_values([
        "convert", f"--input={raw['anno']}",
        f"--element_lists={raw['lists'][1]}",
        f"--videos_root={raw['videos']}", "--frame_width=16",
        "--frame_height=12", "--num_element_classes=288",
        f"--output_dir={tmp_path / 'out'}"])
    fmt = formats.get("finegym")
    options = formats.options("finegym", flag_values)
    info = fmt.convert(options)
    assert info["frame_size"] == {"width": 16, "height": 12}
    assert info["num_element_classes"] == 288 and info["fps"] == 25.0
    (record,) = read_output(tmp_path / "out", "val").values()
    assert jpeg.decode_jpeg(
        record[schemas.IMAGE_ENCODED].numpy()[0]).shape == (12, 16, 3)
    assert fmt.report(info, options)[0].startswith(
        f"wrote 1 event record(s) to {tmp_path / 'out'} (raw videos")
    flag_values.unparse_flags()
    flag_values(["convert", f"--input={raw['anno']}",
                 f"--videos_root={raw['videos']}",
                 f"--output_dir={tmp_path / 'x'}"])
    with pytest.raises(errors.ConfigError,
                       match="--element_lists is required"):
        formats.options("finegym", flag_values)


def _carl_task(records):
    config = carl_finegym.get_config()
    config.task.data_dir = str(records)
    config.task.views.num_frames = 8
    config.task.views.image_size = (16, 16)
    return tasks.build_task(config)


EXPECTED_LABELS = {E1: E1_LABELS, E3: E3_LABELS, E2: E2_LABELS}


def test_carl_evaluation_reads_whole_events(raw):
    # The train then the val events, whole, in source order, with their
    # frame labels (the probes' input).
    batches = list(_carl_task(raw["out"]).build_inputs(
        False, global_batch_size=1))
    ids = [labels["video_id"].numpy()[0].decode() for _, labels in batches]
    assert ids == [E1, E3, E2]
    for features, labels in batches:
        video = labels["video_id"].numpy()[0].decode()
        n = len(EXPECTED_LABELS[video])
        assert features["frames"].shape == (1, n, 16, 16, 3)
        assert labels["frame_labels"].numpy()[0].tolist() == (
            EXPECTED_LABELS[video])


@pytest.mark.slow  # ~10 s: tracing the training augmentations
def test_carl_training_views_carry_the_frame_labels(raw):
    features, labels = next(iter(_carl_task(raw["out"]).build_inputs(
        True, global_batch_size=1)))
    assert features["frames"].shape == (1, 2, 8, 16, 16, 3)
    video = labels["video_id"].numpy()[0].decode()
    assert labels["seq_lens"].numpy().tolist() == [
        [len(EXPECTED_LABELS[video])] * 2]
    steps, masks = labels["steps"].numpy()[0], labels["masks"].numpy()[0]
    frame_labels = labels["frame_labels"].numpy()[0]
    for view in range(2):
        np.testing.assert_array_equal(
            frame_labels[view][masks[view]],
            np.asarray(EXPECTED_LABELS[video])[steps[view][masks[view]]])
