"""Strict, column-wise reading of prediction and ground-truth JSON files
(`common.read_detection_predictions`, `common.load_json`): the fast path
gives the arrays of the entry-by-entry reader, duplicated keys are found at
any depth, and bad values are reported with their file, video and key."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tfaction import errors
from tfaction.data.formats import common as formats_common
from tfaction.evaluation import activitynet_detection as det
from tfaction.evaluation import common
from tfaction.evaluation import ground_truth as gt_lib


def _entry(seg=(0.0, 1.0), label="A", score=0.5, **extra):
    return dict({"segment": list(seg), "label": label, "score": score},
                **extra)


def _file(tmp_path, text, name="p.json"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _random_results(rng, videos=30):
    results = {}
    for v in range(videos):
        n = int(rng.integers(0, 6))
        results[f"vid_{v}"] = [
            _entry(sorted(rng.uniform(-1, 50, 2).round(rng.integers(0, 4))
                          .tolist()),
                   label=["A", "B", 3][int(rng.integers(3))],
                   score=[float(rng.random()), int(rng.integers(0, 2))][
                       int(rng.integers(2))])
            for _ in range(n)]
    return results


def _same(a, b):
    assert a.video_ids == b.video_ids and a.labels == b.labels
    np.testing.assert_array_equal(a.video, b.video)
    assert a.segments.tobytes() == b.segments.tobytes()
    assert a.scores.tobytes() == b.scores.tobytes()
    assert (a.num_negative, a.num_reversed) == (b.num_negative,
                                                b.num_reversed)


def test_fast_path_equals_entry_reader(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(20):
        data = {"version": "1.3", "results": _random_results(rng),
                "external_data": {"used": True, "details": {"x": [1]}}}
        path = _file(tmp_path, json.dumps(data))
        assert common._fast_columns(data, "label", True, ("results",))
        fast = common.read_detection_predictions(path)
        slow = common._read_entries(str(path), data, True, "label",
                                    ("results",))
        _same(fast, slow)


def test_count_keys_matches_a_recursive_count():
    def rec(v):
        if isinstance(v, dict):
            return len(v) + sum(rec(x) for x in v.values())
        if isinstance(v, list):
            return sum(rec(x) for x in v)
        return 0

    rng = np.random.default_rng(1)
    data = {"a": _random_results(rng), "b": [[{"c": {"d": None}}], 3]}
    assert common.count_keys(data) == rec(data) > 50


@pytest.mark.parametrize("text,key", [
    # top level, video id, entry field, nested extra field, external data
    ('{"results": {}, "results": {}}', "results"),
    ('{"results": {"v": [], "v": []}}', "v"),
    ('{"results": {"v": [{"segment": [0, 1], "label": "A", "score": 1, '
     '"score": 2}]}}', "score"),
    ('{"results": {"v": [{"segment": [0, 1], "label": "A", "score": 1, '
     '"extra": {"k": 1, "k": 2}}]}}', "k"),
    ('{"results": {"v": [{"segment": [0, 1], "label": "A", "score": 1}]}, '
     '"external_data": {"u": 1, "u": 2}}', "u"),
    # a bad value after the duplicate: the duplicate is reported first
    ('{"results": {"v": [{"segment": [0, 1], "label": "A", "score": "x", '
     '"label": "B"}]}}', "label"),
])
def test_duplicate_keys_are_reported(tmp_path, text, key):
    path = _file(tmp_path, text)
    match = f"p.json: invalid JSON: duplicate key '{key}'"
    with pytest.raises(errors.MalformedFileError, match=match):
        common.read_detection_predictions(path)
    with pytest.raises(errors.MalformedFileError, match=match):
        common.load_json(path)
    gt = gt_lib.GroundTruth(["v"], np.zeros(1, np.int64),
                            np.array([[0.0, 1.0]]), ["A"])
    with pytest.raises(errors.MalformedFileError, match=match):
        det.evaluate_detection(gt, path)


def test_colons_inside_strings_are_not_duplicates(tmp_path, monkeypatch):
    data = {"results": {"v:1": [_entry(label="A: b"), _entry(label="A: b")]},
            "version": "x:y", "url": {"https://a:b": "c::"}}
    path = _file(tmp_path, json.dumps(data))

    def hook(pairs):
        raise AssertionError("the slow duplicate-key parse ran")

    # The strings' ':'s are counted: no second, slow parse.
    monkeypatch.setattr(common, "_no_duplicate_keys", hook)
    preds = common.read_detection_predictions(path)
    assert preds.video_ids == ["v:1"] and preds.labels == ["A: b"] * 2
    assert common.load_json(path) == data


@pytest.mark.parametrize("text,key", [
    ('{"url": "http://x", "results": {"v": [], "v": []}}', "v"),
    ('{"u:": {"a": "b:", "a": "c"}}', "a"),
    # an escaped ':' in a string could balance the count: parsed again
    ('{"k": "\\u003a", "a": 1, "a": 2}', "a"),
    ('{"k": "\\u003A", "a": 1, "a": 2}', "a"),
])
def test_duplicates_next_to_colons_in_strings(tmp_path, text, key):
    path = _file(tmp_path, text)
    assert common.string_colons(json.loads(text)) >= 1
    with pytest.raises(errors.MalformedFileError,
                       match=f"duplicate key '{key}'"):
        common.load_json(path)


def test_ground_truth_duplicates_and_one_read(tmp_path, monkeypatch):
    gt = {"database": {"v": {"subset": "validation", "annotations": [
        {"segment": [0, 1], "label": "A"}]}}, "version": "1"}
    good = _file(tmp_path, json.dumps(gt), "gt.json")
    reads = []
    real_read = formats_common.read_text

    def counting_read(path, **kwargs):
        reads.append(path)
        return real_read(path, **kwargs)

    monkeypatch.setattr(formats_common, "read_text", counting_read)
    assert gt_lib.load_ground_truth(good).video_ids == ["v"]
    assert len(reads) == 1
    text = json.dumps(gt).replace('"subset"', '"subset": "x", "subset"')
    with pytest.raises(errors.MalformedFileError,
                       match="gt.json: invalid JSON: duplicate key 'subset'"):
        gt_lib.load_ground_truth(_file(tmp_path, text, "gt.json"))


@pytest.mark.parametrize("entry,key,message", [
    (_entry(score=True), "results[1].score", "expected a number"),
    (_entry(score="nan"), "results[1].score", "finite"),
    (_entry(score=None), "results[1].score", "expected a number"),
    (_entry(seg=(0, float("inf"))), "results[1].segment", "finite"),
    (_entry(seg=(0, 1, 2)), "results[1].segment", "expected 'segment'"),
    (_entry(seg=(0, "a")), "results[1].segment", "expected a number"),
    (_entry(label=None), "results[1].label", "expected a class label"),
    (_entry(label=["A"]), "results[1].label", "expected a class label"),
    (_entry(label=False), "results[1].label", "expected a class label"),
    ("x", "results[1]", "expected an object"),
])
def test_bad_values_name_file_video_and_key(tmp_path, entry, key, message):
    data = {"results": {"ok": [_entry()], "bad": [_entry(), entry]}}
    path = _file(tmp_path, json.dumps(data))
    with pytest.raises(errors.MalformedFileError) as info:
        common.read_detection_predictions(path)
    text = str(info.value)
    assert "p.json" in text and "'bad'" in text and key in text
    assert message in text


def test_integer_beyond_float_range_is_an_error(tmp_path):
    path = _file(tmp_path, '{"results": {"v": [{"segment": [0, 1], '
                           '"label": "A", "score": 1' + "0" * 400 + '}]}}')
    with pytest.raises(errors.MalformedFileError, match="finite number"):
        common.read_detection_predictions(path)


def test_numeric_strings_and_missing_labels_read_as_before(tmp_path):
    data = {"results": {"v": [
        {"segment": ["1.5", 2], "label": "A", "score": "0.25"},
        {"segment": [0, 1], "score": 1}]}}
    path = _file(tmp_path, json.dumps(data))
    preds = common.read_detection_predictions(path, require_label=False)
    np.testing.assert_array_equal(preds.segments, [[1.5, 2.0], [0.0, 1.0]])
    np.testing.assert_array_equal(preds.scores, [0.25, 1.0])
    assert preds.labels == ["A", None]
    with pytest.raises(errors.MalformedFileError, match=r"results\[1\].label"):
        common.read_detection_predictions(path)


def test_cli_path_imports_no_tensorflow(anchors_dir):
    anet = anchors_dir / "eval" / "activitynet"
    code = ("import sys\n"
            "from experiments import evaluate\n"
            "rc = evaluate.main(['--metric=activitynet_detection', "
            f"'--ground_truth={anet / 'anet_synth_gt.json'}', "
            f"'--predictions={anet / 'anet_synth_pred.json'}', "
            "'--noprogress'])\n"
            "print('RC', rc, 'tensorflow' in sys.modules, "
            "'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.splitlines()[-1] == "RC 0 False False"
