"""AVA CSVs + label map + videos -> keyframe-boxes TFRecords."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import schemas
from tfaction.data.formats import ava
from tfaction.data.formats import ava_label_maps
from tfaction.data.formats import jpeg
from tfaction.data.synthetic.ava import write_mp4
from tfaction.evaluation import ava_frame_ap
from tfaction.evaluation import ava_io

from . import _builders as b

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
FPS = 10
CLIP = 8

# vidA: 3 s (30 frames at 10 fps); vidB: 2 s (20 frames). Frame i of a
# video is a flat grey of level 20 + 7 i, so a clip frame tells its index.
GOOD_ROWS = [
    "vidA,0001,0.1,0.2,0.5,0.9,12,0",
    "vidA,0001,0.1,0.2,0.5,0.9,79,0",   # same box: merged, labels [11, 78]
    "vidA,0001,0.5,0.2,0.9,0.9,14,1",
    "vidA,0001,0.1,0.2,0.5,0.9,12,0",   # repeats line 1: counted, merged
    "vidA,0000,0.3,0.3,0.6,0.7,80,2",   # window starts 4 frames early
    "vidA,0002,0.1,0.2,0.5,0.9,80,0",
    "vidB,1.8,0.2,0.2,0.6,0.8,11,3",    # window ends 2 frames late
]


def _level(index):
    return 20 + 7 * index


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("ava_videos")
    for vid, count in (("vidA", 30), ("vidB", 20)):
        frames = [np.full((48, 64, 3), _level(i), np.uint8)
                  for i in range(count)]
        write_mp4(root / f"{vid}.mp4", frames, FPS)
    return root


def _csv(folder, rows, name="ava_train_v2.1.csv"):
    return b.write_text(pathlib.Path(folder) / name,
                        "".join(r + "\n" for r in rows))


def _convert(csvs, videos, out, **kwargs):
    kwargs.setdefault("fps", FPS)
    kwargs.setdefault("clip_frames", CLIP)
    return ava.convert_ava(csvs, str(videos), str(out), **kwargs)


def _records(out, subset="train"):
    files = sorted(str(p) for p in pathlib.Path(out).glob(
        f"{subset}-*.tfrecord"))
    out = []
    for record in tf.data.TFRecordDataset(files):
        ex = schemas.parse_keyframe_boxes(record)
        ex = {k: (v.to_list() if isinstance(v, tf.RaggedTensor)
                  else v.numpy()) for k, v in ex.items()}
        out.append(ex)
    return out


def _frame_levels(record):
    return [float(jpeg.decode_jpeg(f).mean()) for f in
            record[schemas.IMAGE_ENCODED]]


def test_round_trip_merge_padding_and_ground_truth(videos, tmp_path):
    csv_path = _csv(tmp_path, GOOD_ROWS)
    info = _convert(csv_path, videos, tmp_path / "out", num_shards=2,
                    num_workers=2)
    assert info["format"] == "ava" and info["schema"] == "keyframe_boxes"
    assert info["subsets"]["train"]["num_records"] == 4
    assert info["num_keyframes"] == {"train": 4}
    assert info["num_boxes"] == {"train": 5}
    assert info["num_label_rows"] == {"train": 6}  # the repeat once
    assert info["duplicate_rows"] == {"train": 1}
    assert info["padded_keyframes"] == {"train": 2}
    assert info["keyframe_index"] == CLIP // 2 and "edge" in info["padding"]
    assert info["num_classes"] == 80
    # Shards are round-robin: read both and order by (video, time).
    records = sorted(_records(tmp_path / "out"),
                     key=lambda r: (r["video/id"], r["clip/timestamp"]))
    assert [(r["video/id"].decode(), r["clip/timestamp/text"].decode())
            for r in records] == [("vidA", "0000"), ("vidA", "0001"),
                                  ("vidA", "0002"), ("vidB", "1.8")]
    a0, a1, a2, b1 = records
    # Multi-label merge: one box per (box, person), labels = id - 1.
    assert a1[schemas.BOX_LABEL_INDEX] == [[11, 78], [13]]
    np.testing.assert_allclose(a1["boxes"], [[0.1, 0.2, 0.5, 0.9],
                                             [0.5, 0.2, 0.9, 0.9]])
    assert a1[schemas.BOX_PERSON_ID].tolist() == [0, 1]
    assert a2[schemas.BOX_LABEL_INDEX] == [[79]]
    assert b1[schemas.BOX_LABEL_INDEX] == [[10]]
    assert b1[schemas.BOX_PERSON_ID].tolist() == [3]
    for r in records:
        assert r[schemas.VIDEO_FPS] == FPS
        assert r[schemas.VIDEO_NUM_FRAMES] == CLIP
        assert len(r[schemas.IMAGE_ENCODED]) == CLIP
        assert r[schemas.CLIP_KEYFRAME_INDEX] == CLIP // 2
        assert r[schemas.VIDEO_SUBSET] == b"train"
    assert a1[schemas.VIDEO_DURATION] == pytest.approx(3.0)
    assert b1[schemas.VIDEO_DURATION] == pytest.approx(2.0)
    assert b1[schemas.CLIP_TIMESTAMP] == pytest.approx(1.8)
    assert a1[schemas.VIDEO_SOURCE] == b"vidA.mp4"
    # Clip frame i shows video frame clamp(centre - 4 + i); edge padding.
    expected = {"0000": (0, 4, 0), "0001": (10, 0, 0), "0002": (20, 0, 0),
                "1.8": (18, 0, 2)}
    for r in records:
        centre, before, after = expected[r["clip/timestamp/text"].decode()]
        assert (r[schemas.CLIP_PADDED_BEFORE],
                r[schemas.CLIP_PADDED_AFTER]) == (before, after)
        last = 29 if r["video/id"] == b"vidA" else 19
        want = [_level(min(max(centre - CLIP // 2 + i, 0), last))
                for i in range(CLIP)]
        np.testing.assert_allclose(_frame_levels(r), want, atol=2.5)
    # Ground truth for the evaluator: the input rows, a label map, and a
    # perfect detection file scores 1.
    out = tmp_path / "out"
    gt = out / "ground_truth_train.csv"
    unique = GOOD_ROWS[:3] + GOOD_ROWS[4:]
    assert gt.read_text().splitlines() == unique
    table = ava_io.read_box_csv(gt, "groundtruth")
    assert len(table.labels) == len(unique)
    label_map = out / "label_map.pbtxt"
    assert ava_io.read_label_map(label_map) == ava_io.read_label_map(
        ava_label_maps.label_map_path("ava60"))
    det = b.write_text(tmp_path / "det.csv", "".join(
        ",".join(r.split(",")[:7]) + ",0.9\n" for r in unique))
    result = ava_frame_ap.evaluate(gt, det, label_map)
    assert result["mAP"] == pytest.approx(1.0)
    classes = (out / "classes.txt").read_text().splitlines()
    assert len(classes) == 80 and classes[11] == "stand"
    on_disk = json.loads((out / "dataset_info.json").read_text())
    assert on_disk["ground_truth"] == {"train": "ground_truth_train.csv"}
    assert on_disk["label_map"] == "label_map.pbtxt"


def test_custom_label_map_and_subsets(videos, tmp_path):
    label_map = b.write_text(
        tmp_path / "lm.pbtxt",
        'item {\n  name: "stand"\n  id: 1\n}\n'
        'item {\n  name: "talk"\n  id: 3\n}\n')
    train = _csv(tmp_path, ["vidA,0001,0.1,0.2,0.5,0.9,3,0"])
    val = _csv(tmp_path, ["vidB,0001,0.1,0.2,0.5,0.9,1,5"],
               "ava_val_v2.1.csv")
    info = _convert([train, val], videos, tmp_path / "out",
                    label_map=label_map)
    assert sorted(info["subsets"]) == ["train", "val"]
    out = tmp_path / "out"
    # classes.txt: line k = action id k + 1; id 2 is not in the map.
    assert (out / "classes.txt").read_text().splitlines() == [
        "stand", "__unannotated_label_id_2", "talk"]
    assert ava_io.read_label_map(out / "label_map.pbtxt") == [
        (1, "stand"), (3, "talk")]
    assert _records(out, "train")[0][schemas.BOX_LABEL_INDEX] == [[2]]
    assert _records(out, "val")[0][schemas.BOX_LABEL_INDEX] == [[0]]
    with pytest.raises(errors.UnknownLabelError, match=r"lm\.pbtxt|2"):
        _convert(_csv(tmp_path, ["vidA,0001,0.1,0.2,0.5,0.9,2,0"],
                      "bad.csv"), videos, tmp_path / "out2",
                 label_map=label_map)
    with pytest.raises(errors.MalformedFileError, match="also in"):
        _convert([train, _csv(tmp_path, ["vidA,0002,0.1,0.2,0.5,0.9,1,0"],
                              "ava_val2.csv")], videos, tmp_path / "out3",
                 label_map=label_map)


BAD_ROWS = [
    ("vidA,0001,0.1,0.2,0.5,0.9,12", errors.MalformedFileError,
     "expected 8 columns"),
    ("vidA,0001,0.1,0.2,0.5,0.9,12,0,7", errors.MalformedFileError,
     "expected 8 columns"),
    ("vidA,soon,0.1,0.2,0.5,0.9,12,0", errors.MalformedFileError,
     "bad timestamp"),
    ("vidA,0001,abc,0.2,0.5,0.9,12,0", errors.MalformedFileError,
     "x1 is not a number"),
    ("vidA,0001,0.1,0.2,0.5,nan,12,0", errors.MalformedFileError,
     "not finite"),
    ("vidA,0001,0.1,0.2,1.2,0.9,12,0", errors.MalformedFileError,
     r"outside \[0, 1\]"),
    ("vidA,0001,0.6,0.2,0.5,0.9,12,0", errors.MalformedFileError,
     "inverted or empty"),
    ("vidA,0001,0.1,0.2,0.5,0.9,81,0", errors.UnknownLabelError,
     "action id 81 is not in the label map"),
    ("vidA,0001,0.1,0.2,0.5,0.9,walk,0", errors.MalformedFileError,
     "action_id is not an integer"),
    ("vidA,0001,0.1,0.2,0.5,0.9,12,p1", errors.MalformedFileError,
     "person_id is not an integer"),
    (",0001,0.1,0.2,0.5,0.9,12,0", errors.MalformedFileError,
     "empty video id"),
    ("vidB,0005,0.1,0.2,0.5,0.9,12,0", errors.SegmentError,
     "after the video's end"),
    ("vidB,2,0.1,0.2,0.5,0.9,12,0", errors.SegmentError,
     "after the video's end"),
    ("vidA,-1,0.1,0.2,0.5,0.9,12,0", errors.SegmentError,
     "before the video's start"),
]


@pytest.mark.parametrize("row,error,message", BAD_ROWS)
def test_bad_row_names_file_and_line(videos, tmp_path, row, error, message):
    rows = GOOD_ROWS[:2] + [row] + GOOD_ROWS[2:]
    csv_path = _csv(tmp_path, rows)
    with pytest.raises(error, match=message) as info:
        _convert(csv_path, videos, tmp_path / "out")
    assert info.value.path == csv_path and info.value.line == 3
    assert f"{csv_path}:3" in str(info.value)
    assert not (tmp_path / "out" / "dataset_info.json").exists()


def test_missing_and_corrupt_videos(videos, tmp_path):
    rows = GOOD_ROWS + ["vidC,0001,0.1,0.2,0.5,0.9,12,0"]
    with pytest.raises(errors.VideoDecodeError, match="video file not found"
                       ) as info:
        _convert(_csv(tmp_path, rows), videos, tmp_path / "out")
    assert info.value.video_id == "vidC"
    broken = tmp_path / "videos"
    broken.mkdir()
    for name in ("vidA.mp4", "vidB.mp4"):
        (broken / name).write_bytes((videos / name).read_bytes())
    (broken / "vidC.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(errors.VideoDecodeError, match="cannot open video"):
        _convert(_csv(tmp_path, rows), broken, tmp_path / "out")
    assert not (tmp_path / "out" / "dataset_info.json").exists()


def test_skip_corrupt_counts_and_reports(videos, tmp_path):
    rows = GOOD_ROWS + [
        "vidA,0001,0.1,0.2,1.5,0.9,12,0",      # line 8: box outside
        "vidA,0001,0.1,0.2,0.5,0.9,99,0",      # line 9: unknown action
        "vidA,0001,0.1",                       # line 10: columns
        "vidB,0007,0.1,0.2,0.5,0.9,12,0",      # line 11: after the end
        "vidC,0001,0.1,0.2,0.5,0.9,12,0",      # line 12: no video file
    ]
    csv_path = _csv(tmp_path, rows)
    info = _convert(csv_path, videos, tmp_path / "out", skip_corrupt=True)
    assert info["subsets"]["train"]["num_records"] == 4
    bad = info["skipped_rows"]
    assert bad["count"] == 3
    assert bad["by_error"] == {"MalformedFileError": 2,
                               "UnknownLabelError": 1}
    assert [(i["path"], i["line"]) for i in bad["items"]] == [
        (csv_path, 8), (csv_path, 9), (csv_path, 10)]
    keyframes = info["skipped_keyframes"]
    assert keyframes["count"] == 1
    assert keyframes["items"][0]["line"] == 11
    assert keyframes["items"][0]["error"] == "SegmentError"
    assert keyframes["items"][0]["video_id"] == "vidB"
    assert info["skipped"]["count"] == 1
    assert info["skipped"]["items"][0]["video_id"] == "vidC"
    # The ground truth holds the converted keyframes' rows only.
    gt = (tmp_path / "out" / "ground_truth_train.csv").read_text()
    assert gt.splitlines() == GOOD_ROWS[:3] + GOOD_ROWS[4:]
    on_disk = json.loads(
        (tmp_path / "out" / "dataset_info.json").read_text())
    assert on_disk["skipped_rows"]["count"] == 3
    lines = ava.report_lines(info, {"output_dir": "x"})
    assert "skipped 3 corrupt row(s)" in lines
    assert "skipped 1 corrupt keyframe(s)" in lines
    assert "skipped 1 corrupt video(s)" in lines
    with pytest.raises(errors.MalformedFileError, match="none of the 2"):
        _convert(_csv(tmp_path, ["video_id,timestamp", "a,b,c"], "h.csv"),
                 videos, tmp_path / "out2", skip_corrupt=True)


def test_excluded_timestamps_are_skipped_and_counted(videos, tmp_path):
    excluded = b.write_text(tmp_path / "excluded.csv",
                            "vidA,2\nvidB,0009\nvidX,0001\n")
    info = _convert(_csv(tmp_path, GOOD_ROWS), videos, tmp_path / "out",
                    excluded_timestamps=excluded)
    assert info["subsets"]["train"]["num_records"] == 3
    assert info["excluded"]["count"] == 1
    assert info["excluded"]["rows"] == 1
    assert info["excluded"]["items"][0]["timestamp"] == "0002"
    stamps = sorted(r["clip/timestamp/text"].decode()
                    for r in _records(tmp_path / "out"))
    assert stamps == ["0000", "0001", "1.8"]
    gt = (tmp_path / "out" / "ground_truth_train.csv").read_text()
    assert "vidA,0002" not in gt
    with pytest.raises(errors.MalformedFileError, match="expected 2 columns"):
        _convert(_csv(tmp_path, GOOD_ROWS), videos, tmp_path / "out2",
                 excluded_timestamps=b.write_text(tmp_path / "x.csv",
                                                  "vidA,2,3\n"))


def test_atomic_output_on_failure(videos, tmp_path):
    out = tmp_path / "out"
    _convert(_csv(tmp_path, GOOD_ROWS), videos, out)
    before = b.snapshot(out)
    # A bad row found after decoding (a keyframe past the end), and a
    # broken video: the previous output stays as it was.
    with pytest.raises(errors.SegmentError):
        _convert(_csv(tmp_path, GOOD_ROWS + ["vidB,0003,0.1,0.2,0.5,0.9,1,0"]),
                 videos, out)
    assert b.snapshot(out) == before
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "vidA.mp4").write_bytes((videos / "vidA.mp4").read_bytes())
    (broken / "vidB.mp4").write_bytes((videos / "vidB.mp4").read_bytes()[:300])
    with pytest.raises(errors.VideoDecodeError):
        _convert(_csv(tmp_path, GOOD_ROWS), broken, out)
    assert b.snapshot(out) == before
    assert not [p for p in os.listdir(out) if p.startswith(".staging")]


def test_label_maps_helpers(tmp_path):
    assert len(ava_label_maps.read_action_label_map(None)) == 80
    assert ava_label_maps.action_ids("ava60")[:3] == (1, 3, 4)
    text = ava_label_maps.label_map_text([(12, "stand"), (80, "watch")])
    path = b.write_text(tmp_path / "lm.pbtxt", text)
    assert ava_io.read_label_map(path) == [(12, "stand"), (80, "watch")]
    # The layout of AVA's own ava_action_list_v2.x.pbtxt.
    release = b.write_text(
        tmp_path / "ava_action_list_v2.1.pbtxt",
        'label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n'
        '  label_type: PERSON_MOVEMENT\n}\nlabel {\n  name: "crawl"\n'
        '  label_id: 2\n  label_type: PERSON_MOVEMENT\n}\n')
    assert ava_label_maps.action_ids(release) == (1, 2)
    bad = b.write_text(tmp_path / "zero.pbtxt",
                       'item {\n  name: "x"\n  id: 0\n}\n')
    with pytest.raises(errors.MalformedFileError, match="1-based"):
        ava_label_maps.read_action_label_map(bad)
    assert ava.subset_name("a/ava_val_v2.2.csv") == "val"
    assert ava.subset_name("ava_train_excluded.csv") == "train_excluded"
    assert ava.subset_name("mine.csv") == "mine"


def test_command_line(videos, tmp_path):
    csv_path = _csv(tmp_path, GOOD_ROWS)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert", "--format=ava",
         f"--input={csv_path}", f"--videos_root={videos}", "--fps=10",
         "--clip_frames=4", "--short_side=24", "--label_map=ava",
         "--eval_label_map=ava", f"--output_dir={tmp_path / 'out'}",
         "--noprogress"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "wrote 4 keyframe record(s)" in result.stdout
    record = _records(tmp_path / "out")[0]
    assert len(record[schemas.IMAGE_ENCODED]) == 4
    assert jpeg.decode_jpeg(record[schemas.IMAGE_ENCODED][0]).shape == (
        24, 32, 3)
    assert len(ava_io.read_label_map(tmp_path / "out" / "label_map.pbtxt")
               ) == 80
