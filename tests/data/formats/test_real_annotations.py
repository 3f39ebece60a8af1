"""Converting the real THUMOS14 and ActivityNet 1.3 (BSN) annotation files.

Feature files are generated with the lengths real features would have (C = 4,
float16 zeros, so the test stays fast); every segment, label and subset is
read back from the records and compared with the JSON values exactly.

What the real files contain (asserted below, so a change is noticed):
* THUMOS14 `thumos_gt.json`: 410 videos (210 test / 200 train), 3,311 test
  and 3,007 train instances, bounds as strings, no duration/fps, no
  zero-length or reversed segment.
* ActivityNet 1.3 BSN files: 19,228 videos (9,649 training / 4,728
  validation / 4,851 testing without annotations), 14,859 + 7,293 instances;
  12 zero-length segments (9 training, 3 validation, kept); no negative or
  reversed segment; 215 segments end after `duration_second` (144 training,
  71 validation), by at most 0.848 s (v_m--b-Ltjm_Y: ends at 144 s of
  143.152 s), 202 of them by less than 0.01 s: kept unchanged under the
  default 1 s tolerance and reported.
"""

import collections
import csv
import json
import math

import numpy as np
import pytest

from tfaction import errors
from tfaction.data.formats import activitynet_features

from . import _builders as b

C = 4


def _check_records(out, database, subsets, id_of=lambda k: k):
    """Every record's segments/labels/subset equal the JSON's, exactly."""
    classes = open(out / "classes.txt").read().splitlines()
    expected = {id_of(k): v for k, v in database.items()}
    seen = set()
    for subset in subsets:
        for record in b.read_segment_records(out, subset, feature_dim=C,
                                             encoding="tensor",
                                             dtype="float16"):
            vid = record["video/id"]
            anns = expected[vid]["annotations"]
            # Python floats are float64: JSON numbers and strings parse to
            # the same doubles, so equality is exact.
            assert record["segments"] == [[float(x) for x in a["segment"]]
                                          for a in anns], vid
            labels = [a["label"] for a in anns]
            assert [classes[i] for i in record["segment/label/index"]
                    ] == labels
            assert record["segment/label/string"] == labels
            assert record["video/subset"] == subset
            seen.add(vid)
    return len(seen)


def test_thumos14(real_data_dir, tmp_path):
    path = real_data_dir / "thumos_gt.json"
    database = json.load(open(path))["database"]
    assert len(database) == 410
    features = tmp_path / "features"
    features.mkdir()
    stride, window, fps = 4, 16, 30.0
    for vid, entry in database.items():
        last = max(float(a["segment"][1]) for a in entry["annotations"])
        # Smallest T whose feature span ((T-1)*stride + window)/fps covers it.
        t = max(1, math.ceil((last * fps - window) / stride) + 1)
        np.save(features / f"{vid}.npy", np.zeros((t, C), np.float16))
    info = activitynet_features.convert_activitynet_features(
        path, features, tmp_path / "out", feature_stride=stride,
        feature_window=window, fps=fps, encoding="tensor", dtype="float16")
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "test": 210, "train": 200}
    assert info["num_segments"] == {"test": 3311, "train": 3007}
    assert info["num_classes"] == 20
    assert info["derived_durations"]["count"] == 410
    assert info["zero_length_segments"]["count"] == 0
    assert info["segments_past_duration"]["count"] == 0
    assert info["skipped"]["count"] == 0
    assert info["missing_features"]["count"] == 0
    assert _check_records(tmp_path / "out", database, ["test", "train"]) == 410


def test_activitynet13_bsn(real_data_dir, tmp_path):
    anno_path = real_data_dir / "anet_anno_action.json"
    csv_path = real_data_dir / "video_info_new.csv"
    database = json.load(open(anno_path))
    rows = list(csv.DictReader(open(csv_path)))
    assert len(database) == len(rows) == 19228
    features = tmp_path / "features"
    features.mkdir()
    zeros = np.zeros((max(int(r["featureFrame"]) for r in rows) // 16, C),
                     np.float16)
    for row in rows:  # one step per 16 frames, as BSN's featureFrame
        np.save(features / f"{row['video']}.npy",
                zeros[:int(row["featureFrame"]) // 16])
    info = activitynet_features.convert_activitynet_features(
        anno_path, features, tmp_path / "out", feature_stride=16,
        feature_window=16, video_info=csv_path, encoding="tensor",
        dtype="float16",
        num_workers=2)
    assert {k: v["num_records"] for k, v in info["subsets"].items()} == {
        "testing": 4851, "training": 9649, "validation": 4728}
    assert info["num_segments"] == {"testing": 0, "training": 14859,
                                    "validation": 7293}
    assert info["num_classes"] == 200
    zero = collections.Counter(i["subset"]
                               for i in info["zero_length_segments"]["items"])
    assert zero == {"training": 9, "validation": 3}
    past = info["segments_past_duration"]
    assert past["count"] == 215
    assert collections.Counter(i["subset"] for i in past["items"]) == {
        "training": 144, "validation": 71}
    assert past["max_overrun"] == pytest.approx(0.848)
    assert sum(i["end"] - i["duration"] < 0.01 for i in past["items"]) == 202
    assert info["skipped"]["count"] == 0
    assert info["missing_features"]["count"] == 0
    assert info["derived_durations"]["count"] == 0
    seen = _check_records(tmp_path / "out", database,
                          ["training", "validation", "testing"],
                          id_of=lambda k: k[2:])
    assert seen == 19228
    # ground_truth.json (for the evaluator) joins both files, ids unprefixed.
    gt = json.load(open(tmp_path / "out" / "ground_truth.json"))["database"]
    subset_of = {r["video"]: r["subset"] for r in rows}
    assert len(gt) == 19228
    for key, entry in database.items():
        assert gt[key[2:]]["annotations"] == entry["annotations"]
        assert gt[key[2:]]["duration"] == entry["duration_second"]
        assert gt[key[2:]]["subset"] == subset_of[key]
    # A strict tolerance turns the 0.848 s overrun into an error.
    with pytest.raises(errors.SegmentError) as e:
        activitynet_features.convert_activitynet_features(
            anno_path, features, tmp_path / "strict", feature_stride=16,
            feature_window=16, video_info=csv_path, subsets="validation",
            segment_tolerance=0.5)
    assert e.value.video_id == "m--b-Ltjm_Y"
