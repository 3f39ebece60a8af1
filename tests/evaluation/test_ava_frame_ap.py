"""AVA frame-AP: anchors from the official code, a loop oracle, bad input."""

import heapq
import json
import math

import numpy as np
import pytest

from tfaction import errors
from tfaction.evaluation import ava_frame_ap as ava
from tfaction.evaluation import ava_io

EVALUATED_IDS = [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 20, 22,
                 24, 26, 27, 28, 29, 30, 34, 36, 37, 38, 41, 43, 45, 46, 47,
                 48, 49, 51, 52, 54, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
                 66, 67, 68, 69, 70, 72, 73, 74, 76, 77, 78, 79, 80]
P0, P1 = (0.1, 0.1, 0.5, 0.9), (0.5, 0.1, 0.9, 0.9)


@pytest.fixture(scope="module")
def bundle(anchors_dir):
    d = anchors_dir / "eval" / "ava"
    return d, json.loads((d / "ava_results.json").read_text())


def _cases(d):
    """Anchor cases -> (GT, exclusions, variant), from the bundle's files."""
    return {
        "official": (d / "ava_synth_gt.csv", None, "official"),
        "slowfast_old_gt_plus_exclusions": (
            d / "ava_synth_gt_no_empty_rows.csv",
            d / "ava_synth_excluded_timestamps.csv", "slowfast"),
        "slowfast_old_gt_no_exclusions": (
            d / "ava_synth_gt_no_empty_rows.csv", None, "slowfast"),
    }


def test_anchor_cases(bundle):
    d, ref = bundle
    cases = _cases(d)
    assert {k for k in ref if "mAP@0.5IOU" in ref[k]} == set(cases)
    for name, (gt, excl, variant) in cases.items():
        res = ava.evaluate(gt, d / "ava_synth_det.csv",
                           d / "ava_labelmap_60.json", excl, variant)
        assert abs(res["mAP"] - ref[name]["mAP@0.5IOU"]) <= 1e-9, name
        with_gt = {k: v for k, v in res["ap_per_class"].items()
                   if not math.isnan(v)}
        assert set(with_gt) == set(ref[name]["AP_per_class_with_gt"]), name
        for cls, ap in ref[name]["AP_per_class_with_gt"].items():
            assert abs(with_gt[cls] - ap) <= 1e-9, (name, cls)
        if "n_classes_reported" in ref[name]:
            assert len(res["ap_per_class"]) == ref[name]["n_classes_reported"]


def test_anchor_compute_average_precision(bundle):
    ex = bundle[1]["official_compute_average_precision_example"]
    ap = ava.voc_average_precision(np.array(ex["scores"]), np.array(ex["tp"]),
                                   ex["num_gt"])
    assert abs(ap - ex["ap"]) <= 1e-12


def test_official_details_count_quirks(bundle):
    d, _ = bundle
    det = ava.evaluate(d / "ava_synth_gt.csv", d / "ava_synth_det.csv",
                       d / "ava_labelmap_60.json")["details"]
    assert det["n_detection_rows_over_top50"] == 5
    assert det["n_invalid_boxes_removed"] == 1
    assert det["n_keyframes_ignored_not_in_gt"] == 1
    assert det["n_detection_rows_not_in_label_map"] == 1


def test_real_label_map(real_data_dir):
    items = ava_io.read_label_map(
        real_data_dir / "ava_action_list_v2.1_for_activitynet_2018.pbtxt.txt")
    assert [i for i, _ in items] == EVALUATED_IDS
    assert dict(items)[12] == "stand" and dict(items)[80] == "watch (a person)"


# ---------------------------------------------------------------- oracle ----
def _oracle(gt_rows, det_rows, ids, variant):
    """Row-by-row port of the reference semantics (slow, for checking)."""
    def read(rows, cap):
        entries, keys = {}, []
        for r in rows:
            key = (r[0], r[1])
            keys.append(key)
            if len(r) == 2 or r[6] not in ids:
                continue
            item = (float(r[7]) if len(r) == 8 else 1.0, r[6],
                    r[3], r[2], r[5], r[4])
            if variant == "slowfast":
                entries.setdefault(key, []).append(item)
                continue
            h = entries.setdefault(key, [])
            if cap < 1 or len(h) < cap:
                heapq.heappush(h, item)
            elif item[0] > h[0][0]:
                heapq.heapreplace(h, item)
        if variant == "official":
            entries = {k: sorted(v, key=lambda t: -t[0])
                       for k, v in entries.items()}
        return entries, set(keys)

    gt, gt_keys = read(gt_rows, 0)
    det, _ = read(det_rows, 50)
    scores = {c: [] for c in ids}
    tps = {c: [] for c in ids}
    for key, items in det.items():
        if variant == "official" and key not in gt_keys:
            continue
        g = gt.get(key, [])
        for c in ids:
            gb = np.array([t[2:] for t in g if t[1] == c]).reshape(-1, 4)
            matched = np.zeros(len(gb), bool)
            for t in items:
                if t[1] != c or not (t[2] < t[4] and t[3] < t[5]):
                    continue
                tp = False
                if len(gb):
                    ih = np.maximum(0, np.minimum(t[4], gb[:, 2])
                                    - np.maximum(t[2], gb[:, 0]))
                    iw = np.maximum(0, np.minimum(t[5], gb[:, 3])
                                    - np.maximum(t[3], gb[:, 1]))
                    inter = ih * iw
                    iou = inter / ((t[4] - t[2]) * (t[5] - t[3]) + (
                        gb[:, 2] - gb[:, 0]) * (gb[:, 3] - gb[:, 1]) - inter)
                    j = int(np.argmax(iou))
                    if iou[j] >= 0.5 and not matched[j]:
                        tp = matched[j] = True
                scores[c].append(t[0])
                tps[c].append(tp)
    aps = []
    for c in ids:
        n = sum(t[1] == c for v in gt.values() for t in v)
        if n == 0:
            aps.append(math.nan)
            continue
        s, lab = np.array(scores[c]), np.array(tps[c], bool)
        order = sorted(range(len(s)), key=lambda i: (-s[i], -i))
        ctp = np.cumsum(lab[order])
        prec = np.r_[0, ctp / np.arange(1, len(s) + 1), 0]
        rec = np.r_[0, ctp / n, 1]
        for i in range(len(prec) - 2, -1, -1):
            prec[i] = max(prec[i], prec[i + 1])
        aps.append(sum((rec[i] - rec[i - 1]) * prec[i]
                       for i in range(1, len(rec)) if rec[i] != rec[i - 1]))
    return np.nanmean(aps), aps


def _write(path, rows):
    path.write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _random_case(rng, n_keys=6, n_dets=260):
    ids = [1, 2, 3, 5]
    grid = [(0.1, 0.1, 0.5, 0.9), (0.5, 0.1, 0.9, 0.9), (0.2, 0.2, 0.6, 0.8),
            (0.12, 0.1, 0.5, 0.9), (0.3, 0.3, 0.3, 0.5), (0.1, 0.1, 0.3, 0.3)]
    gt = []
    for k in range(n_keys):
        if k == n_keys - 1:
            gt.append((f"v{k % 2}", 900 + k))  # empty key-frame
            continue
        for p in range(rng.integers(1, 4)):
            for c in rng.choice([1, 2, 3, 4], size=rng.integers(1, 3)):
                b = grid[rng.integers(0, 4)]
                gt.append((f"v{k % 2}", 900 + k, *b, int(c), p))
    det = []
    for _ in range(n_dets):
        k = int(rng.integers(0, n_keys + 1))  # key n_keys: not in GT
        b = grid[rng.integers(0, len(grid))]
        score = rng.choice([0.5, 0.25, 0.75, round(float(rng.random()), 2)])
        det.append((f"v{k % 2}", 900 + k, *b, int(rng.choice([1, 2, 3, 7])),
                    score))
    return ids, gt, det


@pytest.mark.parametrize("variant", ["official", "slowfast"])
def test_matches_loop_oracle_with_ties_and_caps(tmp_path, variant):
    rng = np.random.default_rng(7 if variant == "official" else 8)
    lm = [(1, "a"), (2, "b"), (3, "c"), (5, "e")]
    for trial in range(6):
        ids, gt, det = _random_case(rng)
        if variant == "slowfast":
            gt = [r for r in gt if len(r) > 2]
        g = _write(tmp_path / f"gt{trial}.csv", gt)
        d = _write(tmp_path / f"det{trial}.csv", det)
        res = ava.evaluate(g, d, lm, variant=variant)
        m_ap, aps = _oracle(gt, det, set(ids), variant)
        got = list(res["ap_per_class"].values())
        np.testing.assert_allclose(got, aps, atol=1e-12, equal_nan=True)
        assert abs(res["mAP"] - m_ap) <= 1e-12


def _small(tmp_path, gt, det, **kw):
    return ava.evaluate(_write(tmp_path / "g.csv", gt),
                        _write(tmp_path / "d.csv", det), [(12, "stand")], **kw)


def test_duplicate_is_false_positive_no_fall_through(tmp_path):
    gt = [("v", 902, *P0, 12, 0), ("v", 902, *P0, 12, 1)]  # two identical GT
    det = [("v", 902, *P0, 12, 0.9), ("v", 902, *P0, 12, 0.8)]
    # Both detections pick GT 0 (first argmax): the second is a FP.
    assert _small(tmp_path, gt, det)["mAP"] == pytest.approx(0.5)


def test_empty_keyframe_detections_are_false_positives(tmp_path):
    gt = [("v", 902, *P0, 12, 0), ("v", 903)]
    det = [("v", 903, *P0, 12, 0.9), ("v", 902, *P0, 12, 0.8),
           ("v", 904, *P0, 12, 0.99)]  # 904 absent from GT: ignored
    assert _small(tmp_path, gt, det)["mAP"] == pytest.approx(0.5)


def test_top50_cap_tie_at_boundary_keeps_earlier_row(tmp_path):
    gt = [("v", 902, *P1, 12, 0)]
    det = [("v", 902, *P0, 12, 0.5)] * 49 + [("v", 902, *P0, 12, 0.1),
                                             ("v", 902, *P1, 12, 0.1)]
    res = _small(tmp_path, gt, det)
    assert res["ap_per_class"]["stand"] == 0.0  # the P1 row did not fit
    res = _small(tmp_path, gt, det, variant="slowfast")
    # Tied 0.1 rows rank in reverse file order: the TP comes 50th, not 51st.
    assert res["ap_per_class"]["stand"] == pytest.approx(1 / 50)


def test_no_detections_gives_zero_and_nan_classes(tmp_path):
    res = ava.evaluate(_write(tmp_path / "g.csv", [("v", 902, *P0, 12, 0)]),
                       _write(tmp_path / "d.csv", []),
                       [(12, "stand"), (11, "sit")])
    assert res["ap_per_class"]["stand"] == 0.0
    assert math.isnan(res["ap_per_class"]["sit"]) and res["mAP"] == 0.0


@pytest.mark.parametrize("rows,kind,match", [
    ([("v", 902, 0.1, 0.1, 0.5, 12, 0.9)], "d",
     r"8 columns \(detections\), got 7"),
    ([("v", 902, *P0, 12, "nan")], "d", "NaN"),
    ([("v", 902, *P0, 12, "high")], "d", "not a number"),
    ([("v", "t", *P0, 12, 0.9)], "d", "bad timestamp"),
    ([("v", 902, 0.5, 0.1, 0.1, 0.9, 12, 0)], "g", "x2 < x1"),
    ([("v", 902, *P0, "x", 0)], "g", "action id"),
])
def test_bad_input_names_file_and_line(tmp_path, rows, kind, match):
    good_gt = [("v", 902, *P0, 12, 0)]
    gt = rows if kind == "g" else good_gt
    det = rows if kind == "d" else []
    with pytest.raises(errors.MalformedFileError, match=match) as e:
        _small(tmp_path, [("v", 901, *P0, 12, 0)] + gt if kind == "g" else gt,
               det)
    assert e.value.line == (2 if kind == "g" else 1)


def test_slowfast_rejects_two_column_rows_and_bad_variant(tmp_path):
    with pytest.raises(errors.MalformedFileError, match="SlowFast"):
        _small(tmp_path, [("v", 902)], [], variant="slowfast")
    with pytest.raises(errors.ConfigError):
        _small(tmp_path, [("v", 902)], [], variant="coco")


def test_label_map_errors(tmp_path):
    p = tmp_path / "lm.pbtxt"
    p.write_text('item {\n  id: 3\n}\n')
    with pytest.raises(errors.MalformedFileError, match="id before any name"):
        ava_io.read_label_map(p)
    p.write_text('item {\n  name: "a"\n  id: 3\n}\nitem {\n  name: "b"\n'
                 '  label_id: 3\n}\n')
    with pytest.raises(errors.MalformedFileError, match="duplicated class id"):
        ava_io.read_label_map(p)


def test_run_cli_and_format_table(bundle, real_data_dir):
    d, ref = bundle
    out = ava.run_cli(str(d / "ava_synth_gt.csv"), str(d / "ava_synth_det.csv"),
                      {"label_map": str(real_data_dir / "ava_action_list_v2.1_"
                                        "for_activitynet_2018.pbtxt.txt"),
                       "top_k": 5})
    assert out["metric"] == "ava_frame_ap"
    assert abs(out["mAP"] - ref["official"]["mAP@0.5IOU"]) <= 1e-9
    assert out["ap_per_class"]["sit"] == 1.0
    assert out["ap_per_class"]["dance"] is None
    json.dumps(out, allow_nan=False)
    table = ava.format_table(out)
    assert "stand" in table and "0.3333" in table and "0.6667" in table
    assert len(table.splitlines()) == 62
    with pytest.raises(errors.ConfigError, match="label_map"):
        ava.run_cli("g", "d", {})
