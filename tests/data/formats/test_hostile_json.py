"""Annotation JSON with hostile content gets a clear `MalformedFileError`
naming the file: NaN / Infinity (Python's `json` would read them), numbers
beyond float range, integers longer than Python converts, nesting deeper
than the recursion limit; a converter stops on them before writing."""

import os

import pytest

from tfaction import errors
from tfaction.data.formats import activitynet_features
from tfaction.data.formats.common import read_json

VIDEO = ('{"database": {"v1": {"subset": "training", "duration": %s, '
         '"fps": 25.0, "annotations": []}}}')
HOSTILE = {
    "nan": (VIDEO % "NaN", "NaN is not a JSON number"),
    "infinity": (VIDEO % "-Infinity", "-Infinity is not a JSON number"),
    "huge_float": (VIDEO % "1e400", "overflows a float"),
    "huge_int": (VIDEO % ("9" * 5000), "invalid JSON"),
    "deep": ("[" * 100000 + "]" * 100000, "nested too deeply"),
}


# The converters' strict reader, then the evaluator's fast path (the C
# parser without hooks; NaN and other numbers are checked where an entry
# reads them, naming the video).
PREDICTIONS = ('{"version": "1", "results": {"v": [{"label": "a", '
               '"score": %s, "segment": [1, 2]}]}}')
CASES = [("converter", case, *HOSTILE[case]) for case in sorted(HOSTILE)] + [
    ("evaluator", "huge_int", PREDICTIONS % ("9" * 5000), "invalid JSON"),
    ("evaluator", "deep", HOSTILE["deep"][0], "nested too deeply")]


@pytest.mark.parametrize("reader,case,text,message", CASES,
                         ids=[f"{r}-{c}" for r, c, _, _ in CASES])
def test_hostile_json_is_a_clear_error(tmp_path, reader, case, text,
                                       message):
    from tfaction.evaluation import common as eval_common

    read = {"converter": lambda p: read_json(p, what="annotation file"),
            "evaluator": lambda p: eval_common.load_json(
                p, what="prediction file")}[reader]
    path = tmp_path / f"{case}.json"
    path.write_text(text)
    with pytest.raises(errors.MalformedFileError, match=message) as e:
        read(str(path))
    assert e.value.path == str(path)


def test_converter_stops_before_writing(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(VIDEO % "NaN")
    (tmp_path / "features").mkdir()
    with pytest.raises(errors.MalformedFileError, match="NaN"):
        activitynet_features.convert_activitynet_features(
            str(path), str(tmp_path / "features"), str(tmp_path / "out"),
            feature_stride=4, feature_window=16)
    assert not os.path.exists(tmp_path / "out") or not os.listdir(
        tmp_path / "out")


def test_ordinary_numbers_still_read(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(VIDEO % "12.5")
    data = read_json(str(path))
    assert data["database"]["v1"]["duration"] == 12.5


def test_deep_json_in_the_plain_readers(tmp_path):
    from tfaction.data import filesystems
    from tfaction.evaluation import ava_io

    path = tmp_path / "labels.json"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match="nested too deeply"):
        filesystems.read_json(str(path))
    with pytest.raises(errors.MalformedFileError, match="labels.json"):
        ava_io.read_label_map(str(path))
