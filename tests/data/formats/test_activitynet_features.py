"""ActivityNet-layout annotations + .npy/.npz features -> feature TFRecords."""

import json
import logging
import os

import numpy as np
import pytest

from tfaction import errors
from tfaction.data.formats import activitynet_annotations
from tfaction.data.formats import activitynet_features

from . import _builders as b


def _video(subset, segments, labels, duration=None, fps=None):
    entry = {"subset": subset,
             "annotations": [{"segment": s, "label": l}
                             for s, l in zip(segments, labels)]}
    if duration is not None:
        entry["duration"] = duration
    if fps is not None:
        entry["fps"] = fps
    return entry


@pytest.fixture
def dataset(tmp_path):
    """Three videos (two subsets) with duration/fps, features C=3."""
    database = {
        "vid_a": _video("training", [[0.5, 2.25], [1.0, 1.0]], ["jump", "run"],
                        duration=4.0, fps=25.0),
        "vid_b": _video("training", [["0.1", "3.3"]], ["run"], duration=4.0,
                        fps=25.0),
        "vid_c": _video("validation", [[0.0, 1.5]], ["walk"], duration=2.0,
                        fps=30.0),
    }
    features = tmp_path / "features"
    features.mkdir()
    rng = np.random.RandomState(0)
    arrays = {vid: rng.rand(t, 3).astype(np.float32)
              for vid, t in (("vid_a", 7), ("vid_b", 6), ("vid_c", 4))}
    for vid, array in arrays.items():
        np.save(features / f"{vid}.npy", array)
    annotations = b.write_json(tmp_path / "gt.json", {"database": database})
    return {"annotations": annotations, "features": str(features),
            "arrays": arrays, "database": database, "tmp": tmp_path,
            "out": str(tmp_path / "out")}


def _convert(d, **kwargs):
    kwargs.setdefault("feature_stride", 8)
    kwargs.setdefault("feature_window", 16)
    return activitynet_features.convert_activitynet_features(
        kwargs.pop("annotations", d["annotations"]),
        kwargs.pop("features_dir", d["features"]),
        kwargs.pop("output_dir", d["out"]), **kwargs)


def test_round_trip(dataset):
    info = _convert(dataset, num_shards=2)
    assert info["subsets"]["training"]["num_records"] == 2
    assert [s["num_records"] for s in info["subsets"]["training"]["shards"]
            ] == [1, 1]
    assert info["feature_dim"] == 3 and info["num_classes"] == 3
    out = dataset["out"]
    assert sorted(os.listdir(out)) == [
        "classes.txt", "dataset_info.json", "ground_truth.json",
        "training-00000-of-00002.tfrecord", "training-00001-of-00002.tfrecord",
        "validation-00000-of-00002.tfrecord",
        "validation-00001-of-00002.tfrecord"]  # one empty shard
    classes = open(os.path.join(out, "classes.txt")).read().split()
    assert classes == ["jump", "run", "walk"]
    on_disk = json.load(open(os.path.join(out, "dataset_info.json")))
    assert on_disk == json.loads(json.dumps(info))
    records = b.read_feature_records(out, "training", feature_dim=3)
    records += b.read_feature_records(out, "validation", feature_dim=3)
    by_id = {r["video/id"].decode(): r for r in records}
    assert sorted(by_id) == ["vid_a", "vid_b", "vid_c"]
    for vid, record in by_id.items():
        entry = dataset["database"][vid]
        np.testing.assert_array_equal(record["features"],
                                      dataset["arrays"][vid])
        expected = np.array([[float(x) for x in a["segment"]]
                             for a in entry["annotations"]])
        np.testing.assert_array_equal(record["segments"], expected)
        labels = [a["label"] for a in entry["annotations"]]
        assert list(record["segment/label/index"]) == [classes.index(l)
                                                        for l in labels]
        assert record["video/subset"].decode() == entry["subset"]
        assert record["video/duration"] == pytest.approx(entry["duration"])
        assert record["video/fps"] == pytest.approx(entry["fps"])
        assert record["feature/stride"] == 8
        assert record["feature/window"] == 16
    # Zero-length segment of vid_a is kept and reported.
    assert info["zero_length_segments"]["count"] == 1


def test_rerun_is_byte_identical(dataset):
    _convert(dataset, num_shards=2)
    first = b.snapshot(dataset["out"])
    _convert(dataset, num_shards=2)
    assert b.snapshot(dataset["out"]) == first


def test_failed_rerun_keeps_previous_output(dataset):
    _convert(dataset)
    before = b.snapshot(dataset["out"])
    bad = dataset["arrays"]["vid_c"].copy()
    bad[2, 1] = np.nan
    np.save(os.path.join(dataset["features"], "vid_c.npy"), bad)
    with pytest.raises(errors.NonFiniteFeatureError):
        _convert(dataset, num_shards=3)  # would also change the shard names
    assert b.snapshot(dataset["out"]) == before  # no staging/tmp left behind


def test_failed_first_run_writes_nothing(dataset):
    np.save(os.path.join(dataset["features"], "vid_b.npy"),
            np.full((6, 3), np.inf, np.float32))
    with pytest.raises(errors.NonFiniteFeatureError) as e:
        _convert(dataset)
    assert e.value.video_id == "vid_b"
    assert "step 0, channel 0" in str(e.value)
    assert os.listdir(dataset["out"]) == []


def test_derived_duration_and_string_segments(tmp_path):
    database = {"video_test_1": _video("test", [["1.5", "2.0"]], ["Dive"])}
    annotations = b.write_json(tmp_path / "gt.json", {"database": database})
    features = tmp_path / "f"
    features.mkdir()
    np.save(features / "video_test_1.npy", np.zeros((13, 2), np.float32))
    info = activitynet_features.convert_activitynet_features(
        annotations, features, tmp_path / "out", feature_stride=4,
        feature_window=16, fps=30.0)
    assert info["derived_durations"]["count"] == 1
    (record,) = b.read_feature_records(tmp_path / "out", "test", feature_dim=2)
    assert record["video/duration"] == pytest.approx((12 * 4 + 16) / 30.0)
    np.testing.assert_array_equal(record["segments"], [[1.5, 2.0]])
    gt = json.load(open(tmp_path / "out" / "ground_truth.json"))
    assert gt["database"]["video_test_1"]["duration"] == (12 * 4 + 16) / 30.0


def test_missing_fps_names_video_and_key(tmp_path):
    database = {"v1": _video("test", [[1, 2]], ["a"], duration=5.0)}
    annotations = b.write_json(tmp_path / "gt.json", {"database": database})
    (tmp_path / "f").mkdir()
    with pytest.raises(errors.MalformedFileError) as e:
        activitynet_features.convert_activitynet_features(
            annotations, tmp_path / "f", tmp_path / "out", feature_stride=4,
            feature_window=16)
    assert e.value.video_id == "v1" and e.value.key == "fps"


def test_missing_features_are_reported(dataset, caplog):
    os.remove(os.path.join(dataset["features"], "vid_b.npy"))
    with caplog.at_level(logging.WARNING):
        info = _convert(dataset)
    assert info["missing_features"] == {
        "count": 1, "video_ids": {"training": ["vid_b"], "validation": []}}
    assert info["subsets"]["training"]["num_records"] == 1
    assert "vid_b" in caplog.text and "no feature file" in caplog.text
    gt = json.load(open(os.path.join(dataset["out"], "ground_truth.json")))
    assert "vid_b" in gt["database"]  # the evaluator keeps it (a miss)
    with pytest.raises(errors.MalformedFileError) as e:
        _convert(dataset, require_features=True)
    assert e.value.video_id == "vid_b"


def test_npz_features_with_prefix(dataset):
    for vid, array in dataset["arrays"].items():
        os.remove(os.path.join(dataset["features"], f"{vid}.npy"))
        np.savez(os.path.join(dataset["features"], f"v_{vid}.npz"),
                 feats=array)
    info = _convert(dataset, feature_prefix="v_")
    assert info["num_records"] == 3
    records = b.read_feature_records(dataset["out"], "validation",
                                     feature_dim=3)
    np.testing.assert_array_equal(records[0]["features"],
                                  dataset["arrays"]["vid_c"])
    np.savez(os.path.join(dataset["features"], "v_vid_a.npz"),
             other=dataset["arrays"]["vid_a"])
    with pytest.raises(errors.MalformedFileError) as e:
        _convert(dataset, feature_prefix="v_")
    assert e.value.key == "feats" and e.value.video_id == "vid_a"


def test_floats_encoding_and_float16(dataset):
    _convert(dataset, encoding="floats")
    (record,) = b.read_feature_records(dataset["out"], "validation",
                                       feature_dim=3, encoding="floats")
    np.testing.assert_array_equal(record["features"],
                                  dataset["arrays"]["vid_c"])
    with pytest.raises(ValueError, match="float16 storage needs the "
                       "'tensor' encoding"):
        _convert(dataset, encoding="floats", dtype="float16")
    info = _convert(dataset, encoding="tensor", dtype="float16")
    assert info["feature_dtype"] == "float16"
    (record,) = b.read_feature_records(dataset["out"], "validation",
                                       feature_dim=3, encoding="tensor",
                                       dtype="float16")
    np.testing.assert_allclose(record["features"], dataset["arrays"]["vid_c"],
                               rtol=1e-3)
    np.save(os.path.join(dataset["features"], "vid_c.npy"),
            np.full((4, 3), 1e6, np.float32))
    with pytest.raises(errors.NonFiniteFeatureError, match="float16"):
        _convert(dataset, encoding="tensor", dtype="float16")


def test_class_list_order_and_unknown_label(dataset):
    class_file = b.write_text(dataset["tmp"] / "classes.txt",
                              "walk\nrun\njump\nswim\n")
    info = _convert(dataset, class_list=class_file)
    assert info["num_classes"] == 4
    (record,) = b.read_feature_records(dataset["out"], "validation",
                                       feature_dim=3)
    assert list(record["segment/label/index"]) == [0]
    b.write_text(class_file, "walk\nrun\n")
    with pytest.raises(errors.UnknownLabelError) as e:
        _convert(dataset, class_list=class_file)
    assert e.value.video_id == "vid_a"
    assert e.value.key == "annotations[0].label"
    assert "'jump'" in str(e.value)


def test_label_id_order_is_kept(dataset, caplog):
    ids = {"run": 0, "walk": 1, "jump": 2}
    for entry in dataset["database"].values():
        for ann in entry["annotations"]:
            ann["label_id"] = ids[ann["label"]]
    b.write_json(dataset["annotations"], {"database": dataset["database"]})
    info = _convert(dataset)
    assert info["class_order"] == "label_id"
    assert open(os.path.join(dataset["out"], "classes.txt")).read() == (
        "run\nwalk\njump\n")
    (record,) = b.read_feature_records(dataset["out"], "validation",
                                       feature_dim=3)
    assert list(record["segment/label/index"]) == [1]
    dataset["database"]["vid_c"]["annotations"][0]["label_id"] = 0
    b.write_json(dataset["annotations"], {"database": dataset["database"]})
    with caplog.at_level(logging.WARNING):
        info = _convert(dataset)
    assert info["class_order"] == "sorted" and "label_id" in caplog.text


@pytest.mark.parametrize("segment, message", [
    ([2.0, 1.0], "ends before it starts"),
    ([-0.5, 1.0], "starts before 0"),
    ([1.0, 5.5], "ends after the video"),
    (["nan", 1.0], "not finite"),
])
def test_bad_segments(dataset, segment, message):
    dataset["database"]["vid_b"]["annotations"][0]["segment"] = segment
    b.write_json(dataset["annotations"], {"database": dataset["database"]})
    with pytest.raises(errors.SegmentError, match=message) as e:
        _convert(dataset)
    assert e.value.video_id == "vid_b"
    assert e.value.key == "annotations[0].segment"


def test_segment_past_duration_within_tolerance_is_kept(dataset):
    dataset["database"]["vid_b"]["annotations"][0]["segment"] = [1.0, 4.25]
    b.write_json(dataset["annotations"], {"database": dataset["database"]})
    info = _convert(dataset)
    past = info["segments_past_duration"]
    assert past["count"] == 1 and past["max_overrun"] == 0.25
    assert past["items"][0]["video_id"] == "vid_b"
    records = b.read_feature_records(dataset["out"], "training",
                                     feature_dim=3)
    vid_b = [r for r in records if r["video/id"] == b"vid_b"][0]
    np.testing.assert_array_equal(vid_b["segments"], [[1.0, 4.25]])
    with pytest.raises(errors.SegmentError):
        _convert(dataset, segment_tolerance=0.1)


def test_feature_dimension_and_rank(dataset):
    np.save(os.path.join(dataset["features"], "vid_b.npy"),
            np.zeros((6, 5), np.float32))
    with pytest.raises(errors.FeatureShapeError) as e:
        _convert(dataset)
    assert e.value.video_id == "vid_b"  # the odd one, not the majority
    assert "(6, 5)" in str(e.value) and "C = 3" in str(e.value)
    np.save(os.path.join(dataset["features"], "vid_b.npy"),
            np.zeros((6, 3, 1), np.float32))
    with pytest.raises(errors.FeatureShapeError, match="rank 2") as e:
        _convert(dataset)
    assert e.value.video_id == "vid_b"
    with pytest.raises(errors.FeatureShapeError) as e:
        _convert(dataset, feature_dim=4)
    assert e.value.video_id == "vid_a"


def test_unreadable_feature_file(dataset):
    with open(os.path.join(dataset["features"], "vid_c.npy"), "wb") as f:
        f.write(b"\x93NUMPY garbage")
    with pytest.raises(errors.MalformedFileError) as e:
        _convert(dataset)
    assert e.value.video_id == "vid_c"
    assert e.value.path.endswith("vid_c.npy")


def test_subsets(dataset):
    info = _convert(dataset, subsets="Validation")
    assert list(info["subsets"]) == ["validation"]
    with pytest.raises(errors.UnknownSubsetError, match="no video has"):
        _convert(dataset, subsets="testing")
    dataset["database"]["vid_c"]["subset"] = "holdout"
    b.write_json(dataset["annotations"], {"database": dataset["database"]})
    with pytest.raises(errors.UnknownSubsetError) as e:
        _convert(dataset)
    assert e.value.video_id == "vid_c" and e.value.key == "subset"
    with pytest.raises(errors.UnknownSubsetError):  # never skipped
        _convert(dataset, skip_corrupt=True)
    info = _convert(dataset, subsets="holdout,training")
    assert sorted(info["subsets"]) == ["holdout", "training"]


def test_skip_corrupt_counts_and_reports(dataset):
    np.save(os.path.join(dataset["features"], "vid_a.npy"),
            np.full((7, 3), np.nan, np.float32))
    dataset["database"]["vid_c"]["annotations"][0]["label"] = "fly"
    b.write_json(dataset["annotations"], {"database": dataset["database"]})
    class_file = b.write_text(dataset["tmp"] / "c.txt", "jump\nrun\nwalk\n")
    info = _convert(dataset, skip_corrupt=True, class_list=class_file)
    assert info["num_records"] == 1
    assert info["skipped"]["count"] == 2
    assert info["skipped"]["by_error"] == {"NonFiniteFeatureError": 1,
                                           "UnknownLabelError": 1}
    assert {i["video_id"] for i in info["skipped"]["items"]} == {"vid_a",
                                                                  "vid_c"}
    gt = json.load(open(os.path.join(dataset["out"], "ground_truth.json")))
    assert sorted(gt["database"]) == ["vid_a", "vid_b"]  # vid_c: bad labels


@pytest.mark.parametrize("text, line", [
    ('{"database": {"v": {"subset": "test",\n "annotations": [}}}', 2),
])
def test_malformed_json_names_line(tmp_path, text, line):
    path = b.write_text(tmp_path / "gt.json", text)
    with pytest.raises(errors.MalformedFileError) as e:
        activitynet_annotations.read_activitynet_json(path)
    assert e.value.line == line and e.value.path == path


@pytest.mark.parametrize("entry, key", [
    ({"subset": "test"}, "annotations"),
    ({"annotations": []}, "subset"),
    ({"subset": "test", "annotations": [{"segment": [1], "label": "a"}]},
     "annotations[0].segment"),
    ({"subset": "test", "annotations": [{"segment": ["x", 2], "label": "a"}]},
     "annotations[0].segment"),
    ({"subset": "test", "annotations": [{"segment": [1, 2]}]},
     "annotations[0].label"),
    ({"subset": "test", "duration": -3, "annotations": []}, "duration"),
])
def test_malformed_entries_name_video_and_key(tmp_path, entry, key):
    path = b.write_json(tmp_path / "gt.json", {"database": {"v9": entry}})
    with pytest.raises(errors.MalformedFileError) as e:
        activitynet_annotations.read_activitynet_json(path)
    assert e.value.video_id == "v9" and e.value.key == key


def test_duplicate_video_key_is_an_error(tmp_path):
    path = b.write_text(tmp_path / "gt.json",
                        '{"database": {"v": {}, "v": {}}}')
    with pytest.raises(errors.MalformedFileError, match="duplicate key"):
        activitynet_annotations.read_activitynet_json(path)


def test_video_info_csv_fills_duration(dataset):
    for entry in dataset["database"].values():
        del entry["duration"], entry["fps"]
    b.write_json(dataset["annotations"], {"database": dataset["database"]})
    csv_path = b.write_text(dataset["tmp"] / "info.csv",
                            "video,numFrame,seconds\nvid_a,100,4.0\n"
                            "v_vid_b,100,4.0\nvid_c,60,2.0\n")
    info = _convert(dataset, video_info=csv_path)
    assert info["derived_durations"]["count"] == 0
    records = b.read_feature_records(dataset["out"], "validation",
                                     feature_dim=3)
    assert records[0]["video/fps"] == 30.0
    assert records[0]["video/num_frames"] == 60
    b.write_text(csv_path, "video,numFrame,seconds\nvid_a,100,abc\n")
    with pytest.raises(errors.MalformedFileError) as e:
        _convert(dataset, video_info=csv_path)
    assert e.value.line == 2 and e.value.key == "seconds"


def test_bsn_layout(tmp_path):
    annotations = b.write_json(tmp_path / "anno.json", {
        "v_abc": {"duration_second": 10.0, "duration_frame": 300,
                  "feature_frame": 288,
                  "annotations": [{"segment": [1.25, 9.5], "label": "Ski"}]},
        "v_xyz": {"duration_second": 5.0, "duration_frame": 150,
                  "feature_frame": 144, "annotations": []},
    })
    csv_path = b.write_text(
        tmp_path / "info.csv",
        "video,numFrame,seconds,fps,rfps,subset,featureFrame\n"
        "v_abc,300,10.0,30.0,30.0,training,288\n"
        "v_xyz,150,5.0,30.0,30.0,testing,144\n"
        "v_only,30,1.0,30.0,30.0,testing,16\n")
    features = tmp_path / "f"
    features.mkdir()
    np.save(features / "v_abc.npy", np.ones((18, 2), np.float32))
    np.save(features / "v_xyz.npy", np.ones((9, 2), np.float32))
    info = activitynet_features.convert_activitynet_features(
        annotations, features, tmp_path / "out", feature_stride=16,
        feature_window=16, video_info=csv_path)
    assert info["layout"] == "bsn"
    assert info["videos_without_annotations"] == {"count": 1,
                                                  "video_ids": ["v_only"]}
    (record,) = b.read_feature_records(tmp_path / "out", "training",
                                       feature_dim=2)
    assert record["video/id"] == b"abc"  # v_ prefix stripped
    assert record["video/num_frames"] == 300
    np.testing.assert_array_equal(record["segments"], [[1.25, 9.5]])
    with pytest.raises(errors.MalformedFileError, match="video info"):
        activitynet_features.convert_activitynet_features(
            annotations, features, tmp_path / "out2", feature_stride=16,
            feature_window=16)
    b.write_text(csv_path, "video,numFrame,seconds,fps,rfps,subset\n")
    with pytest.raises(errors.MalformedFileError) as e:
        activitynet_annotations.read_bsn_annotations(annotations, csv_path)
    assert e.value.key == "featureFrame"


def _second_feature_set(dataset, lengths=None, dim=2):
    """A second feature folder (C=2) for the dataset's videos."""
    folder = dataset["tmp"] / "features_b"
    folder.mkdir()
    rng = np.random.RandomState(1)
    arrays = {}
    for vid, array in dataset["arrays"].items():
        t = (lengths or {}).get(vid, array.shape[0])
        if t is None:
            continue
        arrays[vid] = rng.rand(t, dim).astype(np.float32)
        np.save(folder / f"{vid}.npy", arrays[vid])
    return str(folder), arrays


def test_feature_sets_are_concatenated_in_folder_order(dataset):
    second, arrays = _second_feature_set(dataset, lengths={"vid_b": None})
    info = _convert(dataset, features_dir=[dataset["features"], second])
    assert info["feature_dim"] == 5
    assert info["sources"]["features_dir"] == [dataset["features"], second]
    # vid_b has no file in the second folder: not converted, reported
    assert info["missing_features"]["video_ids"]["training"] == ["vid_b"]
    records = b.read_feature_records(dataset["out"], "training",
                                     feature_dim=5)
    records += b.read_feature_records(dataset["out"], "validation",
                                      feature_dim=5)
    by_id = {r["video/id"].decode(): r for r in records}
    assert sorted(by_id) == ["vid_a", "vid_c"]
    for vid, record in by_id.items():
        np.testing.assert_array_equal(
            record["features"],
            np.concatenate([dataset["arrays"][vid], arrays[vid]], axis=1))


def test_feature_sets_of_different_lengths_are_an_error(dataset):
    second, _ = _second_feature_set(dataset, lengths={"vid_c": 5})
    with pytest.raises(errors.FeatureShapeError,
                       match=r"different lengths T \[4, 5\]") as e:
        _convert(dataset, features_dir=[dataset["features"], second])
    assert "vid_c" in str(e.value) and "features_b" in str(e.value)
    assert os.listdir(dataset["out"]) == []  # nothing half-written


def test_force_fps_replaces_the_annotated_fps(dataset):
    _convert(dataset, fps=15.0, force_fps=True)
    records = b.read_feature_records(dataset["out"], "training",
                                     feature_dim=3)
    assert [r["video/fps"] for r in records] == [15.0, 15.0]
    info = json.load(open(os.path.join(dataset["out"], "dataset_info.json")))
    assert info["force_fps"] is True and info["default_fps"] == 15.0
    with pytest.raises(ValueError, match="force_fps needs fps"):
        _convert(dataset, force_fps=True)


def test_label_ids_with_gaps_keep_the_authors_indices(tmp_path):
    """ActionFormer indexes classes by `label_id` even when ids are unused
    (EPIC-Kitchens nouns); unused ids get placeholder names."""
    database = {
        "v1": {"subset": "training", "duration": 4.0, "fps": 30.0,
               "annotations": [
                   {"segment": [0.5, 1.0], "label": "cut", "label_id": 3},
                   {"segment": [1.5, 2.0], "label": "wash", "label_id": 0}]},
    }
    annotations = b.write_json(tmp_path / "gt.json", {"database": database})
    features = tmp_path / "features"
    features.mkdir()
    np.save(features / "v1.npy", np.zeros((5, 2), np.float32))
    out = tmp_path / "out"
    info = activitynet_features.convert_activitynet_features(
        annotations, features, out, feature_stride=16, feature_window=32)
    assert info["class_order"] == "label_id"
    classes = (out / "classes.txt").read_text().split()
    assert classes == ["wash", "__unannotated_label_id_1",
                       "__unannotated_label_id_2", "cut"]
    (record,) = b.read_feature_records(str(out), "training", feature_dim=2)
    assert list(record["segment/label/index"]) == [3, 0]
