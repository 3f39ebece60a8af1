"""Charades v1 classification mAP (Charades_v1_classify.m semantics)."""

import json
import math
import re

import numpy as np
import pytest

from tests.conftest import bundle_dirs
from tfaction import errors
from tfaction.evaluation import charades_map as cm


def test_matches_official_output(anchors_dir):
    """Per-class AP equals `Charades_v1_classify.m`'s `ap_all` bit for bit;
    mAP to 1e-12 (order of the sum over classes); WAP to the 6 decimals
    the official code prints; every case of tests/anchors/charades_map."""
    for case in bundle_dirs(anchors_dir, "charades_map/", (
            "official.json", "groundtruth.csv", "submission.txt")):
        want = json.loads((case / "official.json").read_text())
        r = cm.evaluate(case / "groundtruth.csv", case / "submission.txt",
                        num_classes=want["num_classes"])
        np.testing.assert_array_equal(list(r["ap_per_class"].values()),
                                      want["ap_all"], err_msg=case.name)
        np.testing.assert_allclose(r["mAP"], want["map"], rtol=1e-12, atol=0,
                                   err_msg=case.name)
        printed = {k: float(v) for k, v in re.findall(
            r"^(MAP|WAP): (\S+)", "\n".join(want["printed"]), re.M)}
        np.testing.assert_allclose([r["mAP"], r["WAP"]],
                                   [printed["MAP"], printed["WAP"]],
                                   rtol=0, atol=5e-7, err_msg=case.name)


GT = ('id,subject,scene,actions,length\n'
      'v1,s,"Kitchen, big",c000 1.0 2.0;c002 0.5 3.0,10\n'
      'v2,s,Hall,c001 0.0 1.0,10\n'
      'v3,s,Hall,,10\n'                      # no actions: never registered
      'v4,s,Hall,c000 2.0 4.0;c000 5.0 6.0,10\n')
SUB = ("v1 0.9 0.1 0.5\n"
       "v2\t0.8 0.7 0.5\n"
       "v3 5.0 5.0 5.0\n"                     # ignored: v3 has no actions
       "zz 1 1 1\n")                          # not in GT: ignored; v4 missing


@pytest.fixture
def files(tmp_path):
    g, s = tmp_path / "gt.csv", tmp_path / "sub.txt"
    g.write_text(GT)
    s.write_text(SUB)
    return g, s


def test_hand_computed(files):
    r = cm.evaluate(*files, num_classes=3)
    # c000: order v1 .9 (+), v2 .8, v3 -inf, v4 -inf (+, after v3: stable)
    #   AP = (1/1 + 2/4) / 2 = 0.75
    # c001: v2 .7 (+) first -> 1.0; c002: v1 .5, v2 .5 (tie, file order) -> 1
    np.testing.assert_allclose(list(r["ap_per_class"].values()),
                               [0.75, 1.0, 1.0])
    assert r["mAP"] == pytest.approx(2.75 / 3)
    assert r["WAP"] == pytest.approx((0.75 * 2 + 1 + 1) / 4)
    assert r["missing_videos"] == ["v4"]
    assert r["num_videos_without_actions"] == 1
    assert r["num_ignored_predictions"] == 1


def test_stable_ties_in_gt_order():
    ap, npos = cm.per_class_ap(np.zeros((3, 1)),
                               np.array([[0], [1], [0]], bool))
    assert ap[0] == 0.5 and npos[0] == 1


def test_class_without_positive_gives_nan_map(files, tmp_path):
    sub = tmp_path / "sub4.txt"
    sub.write_text("".join(line + " 0.3\n" for line in SUB.splitlines()))
    r = cm.evaluate(files[0], sub, num_classes=4)
    assert math.isnan(r["ap_per_class"]["c003"])
    assert math.isnan(r["mAP"]) and math.isnan(r["WAP"])
    assert r["mAP_nanmean"] == pytest.approx(2.75 / 3)


def test_bad_inputs(tmp_path, files):
    g, _ = files
    s = tmp_path / "s.txt"
    s.write_text("v1 0.1 0.2\n")
    with pytest.raises(errors.MalformedFileError) as e:
        cm.evaluate(g, s, num_classes=3)
    assert e.value.line == 1 and e.value.video_id == "v1"
    s.write_text("v1 0.1 nan 0.3\n")
    with pytest.raises(errors.MalformedFileError, match="NaN"):
        cm.evaluate(g, s, num_classes=3)
    bad = tmp_path / "g.csv"
    bad.write_text("id,actions\nv1,x12 1 2\n")
    with pytest.raises(errors.MalformedFileError, match="cNNN") as e:
        cm.read_charades_csv(bad, 3)
    assert e.value.line == 2
    bad.write_text("id,actions\nv1,c009 1 2\n")
    with pytest.raises(errors.UnknownLabelError):
        cm.read_charades_csv(bad, 3)


def test_run_cli_and_table(files):
    out = cm.run_cli(str(files[0]), str(files[1]), {"num_classes": 3})
    assert out["metric"] == "charades_map"
    json.dumps(out, allow_nan=False)
    table = cm.format_table(out)
    assert "mAP" in table and "0.9167" in table and "c002" in table
