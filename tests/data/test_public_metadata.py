"""The public dataset metadata in data/ (class lists, split lists, label maps).

Every class list loads with tfaction's reader, has the count its README
states, has no duplicate, and agrees with the files it was derived from:

* verbatim copies still have the sha256 their README gives;
* THUMOS14 and ActivityNet 1.3 lists equal what tfaction's converter derives
  from the real annotation files (`real_data_dir`, ../shared/data/real), and
  converting real THUMOS14 videos with the list, without it, and with the
  ActionFormer authors' `label_id`s gives the authors' indices;
* HMDB51 split lists index `actions.txt` consistently, EPIC / Ego4D / AVA
  lists equal their raw files read in id order.
"""

import collections
import csv
import hashlib
import io
import json
import math
import pathlib
import re

import numpy as np
import pytest
import setuptools
import tensorflow as tf

from tfaction.data import schemas
from tfaction.data.formats import activitynet_annotations
from tfaction.data.formats import activitynet_features
from tfaction.data.formats import annotation_checks
from tfaction.data.formats import charades
from tfaction.data.formats import class_list as class_list_lib
from tfaction.data.formats import hmdb51
from tfaction.evaluation import ava_io

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO / "data"

# Class lists in the `read_class_list` format and their stated sizes.
CLASS_LISTS = {
    "thumos14/classes.txt": 20,
    "activitynet13/classes.txt": 200,
    "hmdb51/actions.txt": 51,
    "charades/Charades_v1_classes_hf.txt": None,  # cNNN format, below
    "ava/classes_80.txt": 80,
    "ava/classes_60.txt": 60,
    "epic_kitchens100/verb_classes.txt": 97,
    "epic_kitchens100/noun_classes.txt": 300,
    "ego4d_mq/classes.txt": 110,
}
PLAIN_LISTS = {k: v for k, v in CLASS_LISTS.items() if v is not None}

# Verbatim copies: sha256 as stated in each folder's README.
VERBATIM = {
    "hmdb51/actions.txt":
        "c24c56a7af6f3ea55c8fb2a8e5b2c3a42644fcc5d86e49313536cfbd3499538a",
    "hmdb51/train_test_lists/train_split1.txt":
        "275628e3a12e2190620e57855a655b7d26150f927ce522df2da947de524dcd8e",
    "hmdb51/train_test_lists/test_split1.txt":
        "abad9fc9c59f46222eac155fd1d7399d9738d5f8056e62e24cc96be3c7b05dcc",
    "hmdb51/train_test_lists/train_split2.txt":
        "061202ba1daf9a5f59df441a241bcd91a34a70f91e0068510408d09803df35cc",
    "hmdb51/train_test_lists/test_split2.txt":
        "6a736e168f30476e7f2d023c4ea5f64e9c388e181d38c211fddc2ae362b68da3",
    "hmdb51/train_test_lists/train_split3.txt":
        "3e8e1e4920e7e2830d0998b1adf0a40d6c895108c2c32f6d741ba88d3196723f",
    "hmdb51/train_test_lists/test_split3.txt":
        "fcc20191a4d29cb8075ce20da580099e274e0a53e8621088b8d4c9c1ec2ebfe2",
    "hmdb51/train_test_lists/AllVideos.txt":
        "69c1e5a81bad9d868e562018e984860524475d23463a4477bf093256fef25449",
    "ava/ava_action_list_v2.0.csv":
        "b7879fb57fe6abd53f95af8e648580a1cde47b6d79bda1cf4848045f48cdb18f",
    "ava/ava_action_list_v2.1_for_activitynet_2018.pbtxt.txt":
        "6759290ef3cb5b0339291f2e9dc8994ce74277123f75911fc30d53e30baa5e28",
    "epic_kitchens100/EPIC_100_verb_classes.csv":
        "aab8bf210d0234b6facb9b191ae402c03a5f8965d123586b4762d3468a85033e",
    "epic_kitchens100/EPIC_100_noun_classes.csv":
        "40f0a81c5bd06b33050df9f0bd17cd3c2fccd759f9581e4e5e04fec7562be893",
    "ego4d_mq/ego4d_label_map.txt":
        "c25f4f4036398f0786bc0bd40de3070ba03dbd7891420998673ff6827d5a55f4",
}

DATASETS = ("thumos14", "activitynet13", "hmdb51", "charades", "ava",
            "epic_kitchens100", "ego4d_mq")


def _names(rel):
    return class_list_lib.read_class_list(str(DATA / rel)).names


def _real(real_data_dir, name):
    path = real_data_dir / name
    if not path.is_file():
        pytest.fail(f"real annotation file {path} not found; set "
                    "TFACTION_REAL_DATA to the folder of ../shared/data/real")
    return path


# --------------------------------------------------------------- all lists


def test_every_dataset_folder_has_a_readme():
    for name in DATASETS:
        readme = DATA / name / "README.md"
        assert readme.is_file(), readme
        text = readme.read_text()
        # Each README names where its lists come from.
        assert "source" in text.lower() or "Source" in text, readme
    assert (DATA / "README.md").is_file()


@pytest.mark.parametrize("rel, count", sorted(PLAIN_LISTS.items()))
def test_class_list_loads_with_stated_count(rel, count):
    path = DATA / rel
    classes = class_list_lib.read_class_list(str(path))
    assert len(classes) == count
    assert len(set(classes.names)) == count
    raw = path.read_bytes()
    # Exactly the reader's own file form: no blank line, no padding, no
    # BOM, LF line ends, final newline.
    assert raw.decode("utf-8") == classes.to_text()
    for i, name in enumerate(classes.names):
        assert classes.index(name) == i
        assert not name.startswith(class_list_lib.UNANNOTATED_PREFIX)


def test_charades_class_file_loads_with_157_codes():
    path = DATA / "charades" / "Charades_v1_classes_hf.txt"
    classes = charades.read_charades_classes(str(path))
    assert len(classes) == 157 == charades.NUM_CLASSES
    assert len(set(classes.names)) == 157
    lines = path.read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [
        f"c{i:03d}" for i in range(157)]
    assert [line.split(" ", 1)[1] for line in lines] == classes.names


@pytest.mark.parametrize("rel, digest", sorted(VERBATIM.items()))
def test_verbatim_copies_are_unchanged(rel, digest):
    assert hashlib.sha256((DATA / rel).read_bytes()).hexdigest() == digest


def test_data_holds_no_python_code():
    """data/ is metadata only: no Python file, never found by find_packages
    (setup.py maps it explicitly to the package data tfaction/public_data)."""
    assert not [p for p in DATA.rglob("*.py")]
    packages = setuptools.find_packages(where=str(REPO))
    assert not [p for p in packages if p == "data" or p.startswith("data.")]


# ---------------------------------------------------------------- THUMOS14


def _authors_thumos_ids():
    text = (DATA / "thumos14" / "actionformer_label_ids.tsv").read_text()
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    return {row["label"]: int(row["label_id"]) for row in rows}


def test_thumos14_list_is_the_authors_label_id_order(real_data_dir):
    authors = _authors_thumos_ids()
    names = _names("thumos14/classes.txt")
    assert sorted(authors.values()) == list(range(20))
    assert [n for n, _ in sorted(authors.items(), key=lambda kv: kv[1])
            ] == names
    # What the converter derives from the real thumos_gt.json (no label_id:
    # sorted names) is the same list.
    videos = activitynet_annotations.read_activitynet_json(
        str(_real(real_data_dir, "thumos_gt.json")))
    assert len(videos) == 410
    derived, order = annotation_checks.default_classes(videos)
    assert order == "sorted"
    assert derived.names == names


def _covering_videos(database):
    """Shortest-first videos until every class has an instance."""
    labels = {a["label"] for v in database.values() for a in v["annotations"]}

    def last_end(vid):
        return max(float(a["segment"][1]) for a in database[vid]["annotations"])

    chosen, covered = [], set()
    for vid in sorted(database, key=lambda v: (last_end(v), v)):
        new = {a["label"] for a in database[vid]["annotations"]} - covered
        if new:
            chosen.append(vid)
            covered |= new
        if covered == labels:
            return chosen
    raise AssertionError("classes without any instance")


def _label_indices(out):
    """{(video id, segment index): (label index, label string)}."""
    files = sorted(tf.io.gfile.glob(str(out / "*.tfrecord")))
    result = {}
    for serialized in tf.data.TFRecordDataset(files):
        record = schemas.parse_feature_sequence(serialized, feature_dim=2)
        vid = record["video/id"].numpy().decode()
        for k, (index, text) in enumerate(zip(
                record["segment/label/index"].numpy().tolist(),
                record["segment/label/string"].numpy().tolist())):
            result[(vid, k)] = (index, text.decode())
    return result


def test_thumos14_converter_gives_the_authors_indices(real_data_dir,
                                                      tmp_path):
    """Real thumos_gt.json videos (all 20 classes) converted three ways."""
    database = json.loads(
        _real(real_data_dir, "thumos_gt.json").read_text())["database"]
    chosen = _covering_videos(database)
    subset = {vid: database[vid] for vid in chosen}
    features = tmp_path / "features"
    features.mkdir()
    for vid, entry in subset.items():
        end = max(float(a["segment"][1]) for a in entry["annotations"])
        # Enough steps that the derived duration covers every segment.
        steps = math.ceil(end * 30 / 4) + 1
        np.save(features / f"{vid}.npy", np.zeros((steps, 2), np.float32))
    plain = tmp_path / "thumos_subset.json"
    plain.write_text(json.dumps({"database": subset}))
    authors = _authors_thumos_ids()
    with_ids = json.loads(json.dumps({"database": subset}))
    for entry in with_ids["database"].values():
        for ann in entry["annotations"]:
            ann["label_id"] = authors[ann["label"]]
    labelled = tmp_path / "thumos_subset_label_id.json"
    labelled.write_text(json.dumps(with_ids))

    class_file = DATA / "thumos14" / "classes.txt"
    runs = {
        "class_list": (plain, dict(class_list=str(class_file)), "class_list"),
        "default": (plain, {}, "sorted"),
        "label_id": (labelled, {}, "label_id"),
    }
    expected = {(vid, k): (authors[a["label"]], a["label"])
                for vid, entry in subset.items()
                for k, a in enumerate(entry["annotations"])}
    assert {label for _, label in expected.values()} == set(authors)
    for name, (annotations, kwargs, order) in runs.items():
        out = tmp_path / f"out_{name}"
        info = activitynet_features.convert_activitynet_features(
            str(annotations), str(features), str(out), feature_stride=4,
            feature_window=16, fps=30.0, **kwargs)
        assert info["class_order"] == order, name
        assert (out / "classes.txt").read_text() == class_file.read_text()
        assert _label_indices(out) == expected, name


# ---------------------------------------------------------- ActivityNet 1.3


def test_activitynet_list_equals_the_real_annotations(real_data_dir):
    names = _names("activitynet13/classes.txt")
    videos, _ = activitynet_annotations.read_bsn_annotations(
        str(_real(real_data_dir, "anet_anno_action.json")),
        str(_real(real_data_dir, "video_info_new.csv")))
    assert len(videos) == 19228
    assert not any(v.label_ids for v in videos)  # no label_id anywhere
    derived, order = annotation_checks.default_classes(videos)
    assert order == "sorted"
    assert derived.names == names
    # The ActivityNet repository's example submission uses the same 200.
    sample = json.loads(_real(real_data_dir,
                              "sample_detection_prediction.json").read_text())
    labels = {p["label"] for preds in sample["results"].values()
              for p in preds}
    assert labels == set(names)


# ------------------------------------------------------------------ HMDB51


def test_hmdb51_split_lists_index_actions_txt():
    actions = _names("hmdb51/actions.txt")
    assert actions == sorted(actions)
    lists = DATA / "hmdb51" / "train_test_lists"
    all_videos = hmdb51.read_all_videos(str(lists / "AllVideos.txt"))
    assert len(all_videos) == 6766
    for split in (1, 2, 3):
        seen = {}
        for subset, per_class in (("train", 70), ("test", 30)):
            path = lists / f"{subset}_split{split}.txt"
            assert hmdb51.subset_name(path) == subset
            entries = hmdb51.read_split_list(str(path))
            assert len(entries) == 51 * per_class
            counts = collections.Counter(e.class_id for e in entries)
            assert counts == {i: per_class for i in range(51)}
            for e in entries:
                folder, number = e.video_path.split("/")
                # class_id is the line of the folder's class in actions.txt
                assert actions[e.class_id] == folder, (path, e.line)
                # renamed id N -> line N of AllVideos.txt, same class
                source = all_videos[int(number) - 1]
                assert source.startswith(folder + "/"), (path, e.line)
                assert source.endswith(".avi")
                assert e.video_path not in seen, (path, e.line)
                seen[e.video_path] = subset


# ------------------------------------------------------------------- AVA


def test_ava_label_maps(real_data_dir):
    ava = DATA / "ava"
    pbtxt = ava / "ava_action_list_v2.1_for_activitynet_2018.pbtxt.txt"
    assert pbtxt.read_bytes() == _real(
        real_data_dir,
        "ava_action_list_v2.1_for_activitynet_2018.pbtxt.txt").read_bytes()
    evaluated = ava_io.read_label_map(str(pbtxt))
    ids = [i for i, _ in evaluated]
    assert len(evaluated) == 60 and ids == sorted(ids)
    stated = ([1] + list(range(3, 16)) + [17, 20, 22, 24]
              + list(range(26, 31)) + [34, 36, 37, 38, 41, 43]
              + list(range(45, 50)) + [51, 52, 54] + list(range(56, 71))
              + [72, 73, 74] + list(range(76, 81)))
    assert ids == stated
    full = ava_io.read_label_map(str(ava / "ava_action_list_v2.0.json"))
    assert [i for i, _ in full] == list(range(1, 81))
    rows = list(csv.DictReader(io.StringIO(
        (ava / "ava_action_list_v2.0.csv").read_text())))
    assert [(int(r["label_id"]), r["label_name"]) for r in rows] == full
    json_rows = json.loads((ava / "ava_action_list_v2.0.json").read_text())
    assert [r["label_type"] for r in json_rows] == [
        r["label_type"] for r in rows]
    names80 = _names("ava/classes_80.txt")
    assert names80 == [name for _, name in full]
    # The 60 evaluated classes have the same name and id in the 80 list.
    for i, name in evaluated:
        assert names80[i - 1] == name
    assert _names("ava/classes_60.txt") == [name for _, name in evaluated]


# --------------------------------------------------------- EPIC-KITCHENS


@pytest.mark.parametrize("kind, count", [("verb", 97), ("noun", 300)])
def test_epic_lists_are_the_csv_keys_in_id_order(kind, count):
    text = (DATA / "epic_kitchens100" / f"EPIC_100_{kind}_classes.csv"
            ).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == list(range(count))
    assert _names(f"epic_kitchens100/{kind}_classes.txt") == [
        r["key"] for r in rows]


# ------------------------------------------------------------------ Ego4D


def test_ego4d_list_is_the_authors_label_map_unquoted():
    raw = (DATA / "ego4d_mq" / "ego4d_label_map.txt").read_text()
    lines = raw.splitlines()
    assert len(lines) == 110
    ids = [line.split("\t", 1)[0] for line in lines]
    assert ids == [f"{i:03d}" for i in range(110)]
    # The authors' file is their raw names sorted (quoted ones first).
    raw_names = [line.split("\t", 1)[1] for line in lines]
    assert raw_names == sorted(raw_names)
    rows = list(csv.reader(io.StringIO(raw), delimiter="\t"))
    unquoted = [name for _, name in rows]
    names = _names("ego4d_mq/classes.txt")
    assert names == unquoted
    changed = [i for i in range(110) if raw_names[i] != names[i]]
    assert changed == list(range(7))
    for i in changed:
        assert raw_names[i] == f'"{names[i]}"' and "," in names[i]
    assert not any('"' in name or re.search(r"\s", name) for name in names)
