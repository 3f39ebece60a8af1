"""tfaction.errors: messages name the location; errors survive pickling."""

import copy

import pytest

from tfaction import errors


@pytest.mark.parametrize("kwargs,expected", [
    ({"path": "a.json", "line": 3, "video_id": "v", "key": "segment"},
     "a.json:3: video 'v': key 'segment': bad"),
    ({"path": "a.json"}, "a.json: bad"),
    ({"line": 7}, "line 7: bad"),
    ({"video_id": "v_1"}, "video 'v_1': bad"),
    ({}, "bad"),
])
def test_message_names_location(kwargs, expected):
    assert str(errors.SegmentError("bad", **kwargs)) == expected


def test_hierarchy_catchable_as_value_error():
    err = errors.UnknownLabelError("no such label", path="x")
    assert isinstance(err, errors.DataError)
    assert isinstance(err, ValueError)
    assert isinstance(errors.MissingDependencyError("x"), ImportError)


def test_reduce_round_trip_keeps_fields():
    # Worker processes (Beam, multiprocessing) send exceptions back through
    # __reduce_ex__; copy.deepcopy rebuilds them through the same protocol.
    err = errors.MissingFrameError("unreadable", path="f.jpg", line=2,
                                   video_id="v", key="image/encoded")
    back = copy.deepcopy(err)
    assert type(back) is errors.MissingFrameError
    assert str(back) == str(err)
    assert (back.path, back.line, back.video_id, back.key) == (
        "f.jpg", 2, "v", "image/encoded")
