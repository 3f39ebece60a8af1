"""TCC TFRecords (Pouring / PennAction layouts) -> frame-label records."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import schemas
from tfaction.data.formats import output
from tfaction.data.formats import tcc

from . import _builders as b

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


def _feature(kind, values):
    if kind == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def tcc_record(name, num_frames, *, labels=None, length=None, label=-1,
               label_string=None, phases=None, images=None, drop=()):
    """A TCC SequenceExample written by hand (the dataset_utils layout)."""
    images = ([b.jpeg_bytes(b.frame_image(i, size=8))
               for i in range(num_frames)] if images is None else images)
    labels = ([min(i // 2, 2) for i in range(num_frames)] if labels is None
              else labels)
    context = {"name": _feature("bytes", [name.encode()]),
               "len": _feature("int64", [num_frames if length is None
                                         else length]),
               "label": _feature("int64", [label])}
    if label_string is not None:
        context["label_string"] = _feature("bytes", [label_string.encode()])
    if phases is not None:
        context["framelabels_string"] = _feature(
            "bytes", [",".join(phases).encode()])
    lists = {"video": tf.train.FeatureList(
                 feature=[_feature("bytes", [x]) for x in images]),
             "frame_labels": tf.train.FeatureList(
                 feature=[_feature("int64", [c]) for c in labels])}
    for key in drop:
        context.pop(key, None)
        lists.pop(key, None)
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=lists))


def write_tfrecord(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record if isinstance(record, bytes)
                         else record.SerializeToString())
    return str(path)


def read_output(folder, subset):
    pattern = os.path.join(str(folder), f"{subset}-*.tfrecord")
    return [schemas.parse_frame_labels(r)
            for r in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern))]


@pytest.fixture
def pouring(tmp_path):
    src = tmp_path / "pouring_tfrecords"
    src.mkdir()
    train = [tcc_record(f"pour_{i}", n, phases=["a", "b", "c"])
             for i, n in enumerate((6, 9, 5))]
    write_tfrecord(src / "pouring_train-0-of-2.tfrecord", train[:2])
    write_tfrecord(src / "pouring_train-1-of-2.tfrecord", train[2:])
    write_tfrecord(src / "pouring_val-0-of-1.tfrecord",
                   [tcc_record("pour_val", 4, labels=[0, 1, 1, -1])])
    return src, train


def test_round_trip_pouring(pouring, tmp_path):
    src, train = pouring
    out = tmp_path / "out"
    info = tcc.convert_tcc(str(src / "pouring_*.tfrecord"), out, fps=30.0)
    assert info["layout"] == "pouring"
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "train": 3, "val": 1}
    assert (out / "classes.txt").read_text() == "pouring\n"
    stats = info["stats"]
    assert stats["train"]["num_frames"] == 20
    assert stats["train"]["phases_per_class"]["pouring"] == {
        "num_phases": 3, "phase_names": ["a", "b", "c"]}
    assert stats["val"]["unlabelled_frames"] == 1
    assert output.verify_output(out) == {"train": 3, "val": 1}
    records = read_output(out, "train")
    assert [r[schemas.VIDEO_ID].numpy() for r in records] == [
        b"pour_0", b"pour_1", b"pour_2"]
    for record, source in zip(records, train):
        images = [f.bytes_list.value[0]
                  for f in source.feature_lists.feature_list["video"].feature]
        labels = [f.int64_list.value[0] for f in
                  source.feature_lists.feature_list["frame_labels"].feature]
        assert record[schemas.IMAGE_ENCODED].numpy().tolist() == images
        assert record[schemas.FRAME_LABEL_INDEX].numpy().tolist() == labels
        n = len(images)
        assert int(record[schemas.VIDEO_NUM_FRAMES]) == n
        assert float(record[schemas.VIDEO_FPS]) == 30.0
        assert float(record[schemas.VIDEO_DURATION]) == pytest.approx(n / 30)
        assert record[schemas.VIDEO_SUBSET].numpy() == b"train"
        assert record[schemas.CLIP_LABEL_INDEX].numpy().tolist() == [0]
        assert record[schemas.CLIP_LABEL_TEXT].numpy().tolist() == [
            b"pouring"]
    (val,) = read_output(out, "val")
    assert val[schemas.FRAME_LABEL_INDEX].numpy().tolist() == [0, 1, 1, -1]
    assert float(val[schemas.VIDEO_FPS]) == 30.0


def test_penn_action_and_generic_layouts(tmp_path):
    penn = write_tfrecord(tmp_path / "penn_action_train-0.tfrecord", [
        tcc_record("0001_baseball_pitch", 4),
        tcc_record("0100_tennis_serve", 3),
        tcc_record("0007_strum_guitar", 3)])
    with pytest.raises(errors.UnknownLabelError) as e:
        tcc.convert_tcc(penn, tmp_path / "penn")
    assert e.value.path == penn and "record 2" in str(e.value)
    assert e.value.video_id == "0007_strum_guitar"
    info = tcc.convert_tcc(penn, tmp_path / "penn", skip_corrupt=True)
    assert info["layout"] == "penn_action" and info["num_records"] == 2
    assert info["skipped"]["by_error"] == {"UnknownLabelError": 1}
    records = read_output(tmp_path / "penn", "train")
    assert [int(r[schemas.CLIP_LABEL_INDEX][0]) for r in records] == [0, 12]
    assert (tmp_path / "penn" / "classes.txt").read_text().splitlines() == \
        list(tcc.PENN_ACTION_ACTIONS)
    generic = write_tfrecord(tmp_path / "mine_val.tfrecord", [
        tcc_record("x", 3, label=1, label_string="jump"),
        tcc_record("y", 3),  # label -1: no action
        tcc_record("z", 3, label=1, label_string="jump")])
    info = tcc.convert_tcc(generic, tmp_path / "gen")
    assert info["layout"] == "generic"
    assert (tmp_path / "gen" / "classes.txt").read_text() == \
        "class_0\njump\n"
    records = read_output(tmp_path / "gen", "val")
    assert [r[schemas.CLIP_LABEL_INDEX].numpy().tolist()
            for r in records] == [[1], [], [1]]
    clash = write_tfrecord(tmp_path / "clash_val.tfrecord", [
        tcc_record("x", 3, label=1, label_string="jump"),
        tcc_record("y", 3, label=1, label_string="run")])
    with pytest.raises(errors.MalformedFileError,
                       match="record 1: label 1 is named 'run'"):
        tcc.convert_tcc(clash, tmp_path / "clash")


def _bad_records():
    good = b.jpeg_bytes(b.frame_image(0, size=8))
    other = b.jpeg_bytes(b.frame_image(1, size=10))
    return {
        "len": (tcc_record("v", 4, length=5),
                errors.FrameCountMismatchError, "'len' is 5 but"),
        "labels": (tcc_record("v", 4, labels=[0, 0, 1]),
                   errors.FrameCountMismatchError, "4 frame.* but 3 frame"),
        "no_labels": (tcc_record("v", 4, drop=["frame_labels"]),
                      errors.MalformedFileError, "no feature list"),
        "below": (tcc_record("v", 3, labels=[0, -2, 1]),
                  errors.MalformedFileError, "frame 1 has label -2"),
        "jpeg": (tcc_record("v", 3, images=[good, good, good[:-20]]),
                 errors.MissingFrameError, "frame 2: truncated JPEG"),
        "size": (tcc_record("v", 2, images=[good, other]),
                 errors.MalformedFileError, "frame 1 is 10x10"),
        "no_name": (tcc_record("v", 2, drop=["name"]),
                    errors.MalformedFileError, "no context 'name'"),
        "no_len": (tcc_record("v", 2, drop=["len"]),
                   errors.MalformedFileError, "no context 'len'"),
        "no_video": (tcc_record("v", 0), errors.MalformedFileError,
                     "no frames"),
        "proto": (b"\x0a\xff\xff not a proto", errors.CorruptRecordError,
                  "not a serialized tf.train.SequenceExample"),
        "duplicate": (tcc_record("first", 2), errors.MalformedFileError,
                      "name repeats .* record 0"),
    }


@pytest.mark.parametrize("case", sorted(_bad_records()))
def test_errors_name_file_and_record(tmp_path, case):
    record, error, message = _bad_records()[case]
    path = write_tfrecord(tmp_path / "pouring_train-0-of-1.tfrecord",
                          [tcc_record("first", 2), record])
    with pytest.raises(error, match=message) as e:
        tcc.convert_tcc(path, tmp_path / "out")
    text = str(e.value)
    assert text.startswith(path) and "record 1" in text
    if case not in ("proto", "no_name"):
        assert e.value.video_id in ("v", "first")
    assert not (tmp_path / "out" / "dataset_info.json").exists()


def test_missing_labels_allowed_and_markers_only(tmp_path):
    path = write_tfrecord(tmp_path / "x_test.tfrecord",
                          [tcc_record("v", 3, drop=["frame_labels"])])
    info = tcc.convert_tcc(path, tmp_path / "out",
                           require_frame_labels=False, decode_check=False)
    (record,) = read_output(tmp_path / "out", "test")
    assert record[schemas.FRAME_LABEL_INDEX].numpy().tolist() == [-1] * 3
    assert info["stats"]["test"]["frame_sizes"] == {}
    assert not (tmp_path / "out" / "classes.txt").exists()


def test_skip_corrupt_counts_and_reports(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    good = [tcc_record(f"v{i}", 3) for i in range(4)]
    write_tfrecord(src / "d_train-0-of-2.tfrecord",
                   [good[0], tcc_record("bad", 3, length=9), good[1]])
    cut = write_tfrecord(src / "d_train-1-of-2.tfrecord", good[2:])
    data = open(cut, "rb").read()
    open(cut, "wb").write(data[:-30])  # the second record is cut short
    with pytest.raises(errors.FrameCountMismatchError, match="record 1"):
        tcc.convert_tcc(str(src / "*.tfrecord"), tmp_path / "out")
    with pytest.raises(errors.CorruptRecordError, match="record 1") as e:
        tcc.convert_tcc(cut, tmp_path / "out")
    assert e.value.path == cut
    info = tcc.convert_tcc(str(src / "*.tfrecord"), tmp_path / "out",
                           skip_corrupt=True, num_workers=2)
    records = read_output(tmp_path / "out", "train")
    assert [r[schemas.VIDEO_ID].numpy() for r in records] == [
        b"v0", b"v1", b"v2"]
    assert info["skipped"]["count"] == 1
    (item,) = info["skipped"]["items"]
    assert item["video_id"] == "bad" and "record 1" in item["message"]
    assert item["path"].endswith("d_train-0-of-2.tfrecord")
    (tail,) = info["skipped_files"]["items"]
    assert tail["path"] == cut and tail["records_kept"] == 1
    lines = tcc.report_lines(info, {"output_dir": "OUT"})
    assert lines[0].startswith("wrote 3 video record(s) to OUT")
    assert any("record 1" in line and "'len' is 9" in line
               for line in lines)
    assert "skipped 1 corrupt file tail(s)" in lines
    saved = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert saved["skipped"]["count"] == 1


def test_atomic_on_failure(pouring, tmp_path):
    src, _ = pouring
    out = tmp_path / "out"
    tcc.convert_tcc(str(src / "pouring_*.tfrecord"), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write_tfrecord(src / "pouring_val-0-of-1.tfrecord",
                   [tcc_record("late", 3), tcc_record("late", 3)])
    with pytest.raises(errors.MalformedFileError, match="name repeats"):
        tcc.convert_tcc(str(src / "pouring_*.tfrecord"), out,
                        num_shards=2)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_subset_names_and_layout_detection():
    assert tcc.subset_name("pouring_train-0-of-2.tfrecord") == "train"
    assert tcc.subset_name("/d/penn_action_val-3.tfrecord") == "val"
    assert tcc.subset_name("other.tfrecord") == "other"
    assert tcc.detect_layout(["a/penn_action_train-0.tfrecord"]) == \
        "penn_action"
    assert tcc.detect_layout(["pouring_val-0-of-1.tfrecord",
                              "x_train.tfrecord"]) == "generic"
    with pytest.raises(ValueError, match="one name per"):
        tcc.convert_tcc("a.tfrecord,b.tfrecord", "out", subsets="train")


def test_cli_reports_skips(tmp_path):
    path = write_tfrecord(tmp_path / "penn_action_val-0.tfrecord", [
        tcc_record("0001_bowl", 3), tcc_record("0002_bowl", 3, length=1)])
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert", "--format=tcc",
         f"--input={path}", f"--output_dir={tmp_path / 'out'}", "--fps=30",
         "--skip_corrupt", "--noprogress"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "wrote 1 video record(s)" in result.stdout
    assert "layout penn_action" in result.stdout
    assert "skipped 1 record(s)" in result.stdout
    assert f"{path}: video '0002_bowl': key 'len': record 1" in result.stdout
