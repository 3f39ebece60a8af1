"""The synthetic AVA dataset: valid AVA files, rules that hold, conversion."""

import collections
import json
import os
import pathlib
import subprocess
import sys

import av
import numpy as np
import pytest

from tfaction.data import keyframe_boxes_pipeline as kbp
from tfaction.data.formats import ava as ava_format
from tfaction.data.synthetic import ava
from tfaction.evaluation import ava_frame_ap
from tfaction.evaluation import ava_io

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ava") / "synth"
    return root, ava.generate_ava(root, seed=3)


def _decode(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24")
                for f in container.decode(video=0)]


def _people(summary):
    """(video, keyframe, person) for every annotated person."""
    return [(v, k, p) for v in summary["videos"] for k in v["keyframes"]
            for p in k["people"]]


def test_files_are_valid_ava(dataset):
    root, summary = dataset
    assert summary["num_videos"] == 6
    assert summary["num_train"] == 4 and summary["num_val"] == 2
    assert summary["num_keyframes"] == 24 and summary["num_excluded"] == 2
    label_map = ava_io.read_label_map(root / summary["label_map"])
    assert label_map == [tuple(c) for c in summary["classes"]]
    ids = {i for i, _ in label_map}
    rows, keys = 0, set()
    for split in ("train", "val"):
        table = ava_io.read_box_csv(root / summary["csv"][split],
                                    "groundtruth")
        assert set(table.labels.tolist()) <= ids
        assert ((table.boxes >= 0) & (table.boxes <= 1)).all()
        assert (table.boxes[:, 2:] > table.boxes[:, :2]).all()
        keys |= set(table.keys.tolist())
        rows += len(table.labels)
        # The converter's strict reader accepts every row.
        keyframes, repeats = ava_format.read_ava_csv(
            root / summary["csv"][split], ids)
        assert repeats == 0
        excluded = ava_io.read_exclusions(root / summary["excluded"][split])
        assert excluded <= {k.key for k in keyframes}
    assert rows == sum(len(p["labels"]) for _, _, p in _people(summary))
    assert len(keys) == summary["num_keyframes"]
    for video in summary["videos"]:
        frames = _decode(root / "videos" / f"{video['id']}.mp4")
        assert len(frames) == summary["duration"] * summary["fps"]
        assert frames[0].shape == (112, 112, 3)


def _expected_labels(keyframe, lamp):
    """The module docstring's rules, re-implemented from the state."""
    people = keyframe["people"]
    lamp_x = (lamp[0] + lamp[2]) / 2
    addressed = collections.defaultdict(set)
    for j in people:
        ahead = [p for p in people if p is not j
                 and (p["x"] - j["x"]) * j["facing"] > 0]
        if ahead:
            nearest = min(ahead, key=lambda p: (abs(p["x"] - j["x"]),
                                                p["person_id"]))
            addressed[nearest["person_id"]].add(j["person_id"])
    out = {}
    for p in people:
        labels = [ava.MOTIONS.index(p["motion"]) + 1]
        if addressed[p["person_id"]]:
            labels.append(ava.TALK_TO)
        if keyframe["blinking"] and (lamp_x - p["x"]) * p["facing"] > 0:
            labels.append(ava.WATCH)
        out[p["person_id"]] = labels
    return out


def test_labels_follow_the_rules_and_need_context(dataset):
    root, summary = dataset
    csv_labels = collections.defaultdict(list)
    for split in ("train", "val"):
        for line in (root / summary["csv"][split]).read_text().splitlines():
            vid, stamp, *_, action, person = line.split(",")
            csv_labels[vid, int(stamp), int(person)].append(int(action))
    own_state = collections.defaultdict(set)
    for video in summary["videos"]:
        for keyframe in video["keyframes"]:
            expected = _expected_labels(keyframe, video["lamp"])
            for p in keyframe["people"]:
                key = (video["id"], keyframe["timestamp"], p["person_id"])
                assert sorted(csv_labels[key]) == expected[p["person_id"]]
                assert p["labels"] == expected[p["person_id"]]
                # What the person's own box shows: motion and facing.
                own_state[p["motion"], p["facing"]].add(
                    (ava.TALK_TO in p["labels"], ava.WATCH in p["labels"]))
    # The same own state occurs with and without each context action: a
    # head that sees only the box cannot tell them apart.
    talk = [{t for t, _ in v} for v in own_state.values()]
    watch = [{w for _, w in v} for v in own_state.values()]
    assert {True, False} in talk and {True, False} in watch
    counts = collections.Counter(a for p in _people(summary)
                                 for a in p[2]["labels"])
    assert all(counts[i] > 0 for i, _ in ava.CLASSES)


def test_video_shows_the_state(dataset):
    """Face marks, the blinking lamp and motion are visible in the pixels."""
    root, summary = dataset
    checked_faces = 0
    for video in summary["videos"]:
        frames = _decode(root / "videos" / f"{video['id']}.mp4")
        x0, y0, x1, y1 = video["lamp"]
        lamp = np.array([f[y0 + 2:y1 - 2, x0 + 2:x1 - 2].mean()
                         for f in frames])
        fps = summary["fps"]
        for keyframe in video["keyframes"]:
            i = keyframe["frame"]
            second = lamp[i - fps // 2 + 1:i + fps // 2]
            assert (second.max() - second.min() > 60) == keyframe["blinking"]
            image = frames[i].astype(float)
            heads = [p["head"] for p in keyframe["people"]]
            for p in keyframe["people"]:
                hx0, hy0, hx1, hy1 = p["head"]
                others = [h for h in heads if h is not p["head"]]
                if any(h[0] < hx1 + 1 and hx0 - 1 < h[2] and h[1] < hy1 + 1
                       and hy0 - 1 < h[3] for h in others):
                    continue  # another head may cover the face mark
                bx0, by0, bx1, by1 = p["box_pixels"]
                if any(q is not p and q["box_pixels"][0] < bx1
                       and bx0 < q["box_pixels"][2]
                       for q in keyframe["people"]):
                    continue  # overlapping bodies may hide the head
                face = image[hy0 + 2:hy0 + 5, hx0:hx1].mean(axis=(0, 2))
                left, right = face[:3].mean(), face[-3:].mean()
                assert (right < left) == (p["facing"] > 0)
                checked_faces += 1
    assert checked_faces >= 10


def test_deterministic_given_seed(dataset, tmp_path):
    root, summary = dataset
    again = ava.generate_ava(tmp_path / "again", seed=3)
    assert json.dumps(again["videos"]) == json.dumps(summary["videos"])
    for path in sorted(root.rglob("*")):
        if path.is_file():
            twin = tmp_path / "again" / path.relative_to(root)
            assert twin.read_bytes() == path.read_bytes(), path
    other = ava.generate_ava(tmp_path / "other", num_videos=2, seed=4,
                             duration=3)
    assert other["num_keyframes"] == 4
    with pytest.raises(FileExistsError, match="not empty"):
        ava.generate_ava(tmp_path / "other", num_videos=2, seed=4)
    with pytest.raises(ValueError, match="even height"):
        ava.generate_ava(tmp_path / "bad", height=63)


def test_converts_and_reads_back(dataset, tmp_path):
    root, summary = dataset
    out = tmp_path / "records"
    info = ava_format.convert_ava(
        [root / summary["csv"]["train"], root / summary["csv"]["val"]],
        root / "videos", out, label_map=root / summary["label_map"],
        excluded_timestamps=[root / summary["excluded"]["train"],
                             root / summary["excluded"]["val"]],
        clip_frames=16)
    kept = [(v, k) for v in summary["videos"] for k in v["keyframes"]
            if not k["excluded"]]
    assert info["num_records"] == len(kept)
    assert info["excluded"]["count"] == summary["num_excluded"]
    assert (out / "classes.txt").read_text().splitlines() == [
        name for _, name in ava.CLASSES]
    # Ground truth scores 1 against itself with the written label map.
    for split in ("train", "val"):
        gt = out / f"ground_truth_{split}.csv"
        det = tmp_path / f"det_{split}.csv"
        det.write_text("".join(",".join(line.split(",")[:7]) + ",1\n"
                               for line in gt.read_text().splitlines()))
        result = ava_frame_ap.evaluate(gt, det, out / "label_map.pbtxt")
        assert result["mAP"] == pytest.approx(1.0)
    # The pipeline reads the records: labels are the state's, id - 1.
    config = kbp.KeyframeBoxesConfig(num_frames=4, stride=4,
                                     image_size=(32, 32), max_boxes=3,
                                     num_classes=5, batch_size=32)
    batch = next(iter(kbp.make_keyframe_boxes_dataset(
        str(out / "*.tfrecord"), config, training=False)))
    by_key = {(v["id"], k["timestamp"]): k for v, k in kept}
    assert len(batch["video_id"]) == len(kept)
    for i, vid in enumerate(batch["video_id"].numpy()):
        keyframe = by_key[vid.decode(), int(batch["timestamp"][i])]
        n = int(batch["num_boxes"][i])
        assert n == len(keyframe["people"])
        for j, person in enumerate(keyframe["people"]):
            want = np.zeros(5)
            want[np.array(person["labels"]) - 1] = 1
            np.testing.assert_array_equal(batch["labels"][i, j], want)
            x1, y1, x2, y2 = map(float, person["box"])
            np.testing.assert_allclose(batch["boxes"][i, j],
                                       [y1, x1, y2, x2], atol=1e-6)


def test_command_line_kind_ava(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "tfaction.data.synthetic", "--kind=ava",
         f"--out_dir={out}", "--num_videos=2", "--seed=1"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["num_videos"] == 2 and "videos" not in summary
    assert (out / "ava_action_list_synthetic.pbtxt").is_file()
    assert len(list((out / "videos").glob("*.mp4"))) == 2
