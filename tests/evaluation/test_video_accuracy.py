"""Video top-k accuracy on HMDB51-style split lists."""

import json

import numpy as np
import pytest

from tests.conftest import bundle_dirs
from tfaction import errors
from tfaction.evaluation import video_accuracy as va
from tfaction.models.actionvlad import fusion


def test_matches_official_output(anchors_dir):
    """Top-1 of each stream and of the 1-r : r fusion equal what ActionVLAD's
    `combine_streams.py` printed (6 decimals; with at most 1,530 videos that
    pins the count of correct videos), for every case of
    tests/anchors/video_accuracy."""
    for case in bundle_dirs(anchors_dir, "video_accuracy/", (
            "official.json", "test_split.txt", "rgb.npz", "flow.npz")):
        split = case / "test_split.txt"
        ids, labels = va.read_split_list(split)
        streams = {}
        for name in ("rgb", "flow"):
            got_ids, scores = va.read_scores(case / f"{name}.npz")
            streams[name] = fusion.align(ids, got_ids, scores, name=name)
        top1 = {"Spatial": va.evaluate(split, case / "rgb.npz", 1)["top1"],
                "Temporal": va.evaluate(split, case / "flow.npz", 1)["top1"]}
        for run in json.loads((case / "official.json").read_text())["runs"]:
            fused = fusion.fuse_streams(streams["rgb"], streams["flow"],
                                        flow_weight=run["temporal_ratio"])
            got = dict(top1, **{"Final acc": va.accuracies(
                fused, labels, 1)["top1"]})
            want = run["accuracy"]
            assert sorted(want) == sorted(got), case.name
            np.testing.assert_allclose(
                [got[k] for k in sorted(want)],
                [want[k] for k in sorted(want)], rtol=0, atol=5e-7,
                err_msg=f"{case.name} r={run['temporal_ratio']}")


SPLIT = "a/1 40 0\na/2 41 0\nb/1 30 1\nc/1 20 2\n"
IDS = ["a/1", "a/2", "b/1", "c/1", "extra/9"]
SCORES = np.array([[0.9, 0.1, 0.0],     # a/1 correct
                   [0.5, 0.5, 0.0],     # a/2 tie -> class 0 (first) correct
                   [0.6, 0.3, 0.1],     # b/1 wrong, label 2nd
                   [0.4, 0.4, 0.2],     # c/1 wrong, label 3rd
                   [0.0, 0.0, 1.0]])    # not in the list: ignored


@pytest.fixture
def files(tmp_path):
    split = tmp_path / "test_split1.txt"
    split.write_text(SPLIT)
    npz = tmp_path / "s.npz"
    np.savez(npz, video_ids=np.array(IDS), scores=SCORES)
    csv = tmp_path / "s.csv"
    csv.write_text("video_id,s0,s1,s2\n" + "".join(
        f"{v},{','.join(map(repr, r))}\n" for v, r in zip(IDS, SCORES)))
    return split, npz, csv


def test_topk_ties_and_per_class(files):
    split, npz, csv = files
    for scores in (npz, csv):
        r = va.evaluate(split, scores, top_k=(1, 2, 3))
        assert r["top1"] == 0.5 and r["top2"] == 0.75 and r["top3"] == 1.0
        assert r["per_class_accuracy"] == {0: 1.0, 1: 0.0, 2: 0.0}
        assert r["mean_class_accuracy"] == pytest.approx(1 / 3)
        assert r["num_videos"] == 4 and r["num_extra_predictions"] == 1


def test_topk_matches_argmax_on_ties():
    s = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    lab = np.array([1, 1])
    np.testing.assert_array_equal(va.topk_correct(s, lab, 1),
                                  np.argmax(s, 1) == lab)


def test_missing_prediction_names_video(files, tmp_path):
    split, _, _ = files
    p = tmp_path / "part.npz"
    np.savez(p, video_ids=np.array(IDS[:3]), scores=SCORES[:3])
    with pytest.raises(errors.DataError, match="c/1") as e:
        va.evaluate(split, p)
    assert e.value.video_id == "c/1"


def test_bad_inputs(files, tmp_path):
    split, npz, _ = files
    bad = tmp_path / "bad.csv"
    bad.write_text("a/1,0.1,nan,0\n")
    with pytest.raises(errors.NonFiniteFeatureError):
        va.read_scores(bad)
    bad.write_text("a/1,0.1,0.2\na/2,0.1\n")
    with pytest.raises(errors.MalformedFileError) as e:
        va.read_scores(bad)
    assert e.value.line == 2
    lst = tmp_path / "l.txt"
    lst.write_text("a/1 40 x\n")
    with pytest.raises(errors.MalformedFileError):
        va.read_split_list(lst)
    lst.write_text("a/1 40 7\n")
    with pytest.raises(errors.UnknownLabelError):
        va.evaluate(lst, npz)
    with pytest.raises(errors.ConfigError):
        va.evaluate(split, npz, top_k=5)


def test_run_cli_and_table(files):
    split, npz, _ = files
    out = va.run_cli("ignored", str(npz), {"split_list": str(split),
                                           "top_k": [1, 2]})
    assert out["metric"] == "video_accuracy" and out["top2"] == 0.75
    json.dumps(out, allow_nan=False)
    table = va.format_table(out)
    assert "top1" in table and "0.5000" in table and "class 2" in table
