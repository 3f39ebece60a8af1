"""EPIC-Kitchens 100 action detection files: ground truth CSV, labels.

The official evaluator (`epic-kitchens/C2-Action-Detection`
`EvaluationCode/evaluate_detection_json_ek100.py`) scores three tasks:

* "verb": class = `verb_class` (97 classes);
* "noun": class = `noun_class` (300 classes);
* "action": class = `verb_class * num_nouns + noun_class` (num_nouns 300).

Ground truth: the annotations table `EPIC_100_validation.csv` (columns
`video_id`, `start_timestamp`, `stop_timestamp` as `HH:MM:SS.ff`,
`verb_class`, `noun_class`; the whole file is the evaluated subset).
Predictions: `{"results": {video_id: [{"segment", "score", "verb": v,
"noun": n, "action": "v,n"}]}}`.

Example:

```python
gt = read_epic_ground_truth("EPIC_100_validation.csv", task="action")
label = epic_label({"verb": 3, "noun": 7, "action": "3,7"}, "action")
```
"""

import math

import numpy as np

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data.formats import common as formats_common
from tfaction.evaluation import ground_truth as gt_lib

TASKS = ("verb", "noun", "action")
NUM_NOUNS = 300
_COLUMNS = ("video_id", "start_timestamp", "stop_timestamp", "verb_class",
            "noun_class")


def timestamp_seconds(text, **where):
    """`HH:MM:SS.ff` -> seconds, summed as hours*3600 + minutes*60 + seconds.

    Args:
        text: the timestamp.
        **where: `path`, `line`, `key` for the error.

    Returns:
        float.

    Raises:
        MalformedFileError: not three ':'-separated finite numbers.

    Example:

    >>> timestamp_seconds("00:01:02.50")
    62.5
    """
    try:
        hours, minutes, seconds = (float(p) for p in str(text).split(":"))
    except ValueError:
        hours = minutes = seconds = math.nan
    total = hours * 3600.0 + minutes * 60.0 + seconds
    if not math.isfinite(total):  # also 'nan' / 'inf' parts
        raise errors.MalformedFileError(
            f"expected a HH:MM:SS.ff timestamp, got {text!r}", **where)
    return total


def task_label(verb, noun, task, num_nouns=NUM_NOUNS):
    """The integer class of one (verb, noun) pair for `task`.

    Example:

    >>> task_label(3, 7, "action")
    907
    """
    if task not in TASKS:
        raise errors.ConfigError(
            f"epic task must be one of {TASKS}, got {task!r}")
    return {"verb": verb, "noun": noun,
            "action": verb * num_nouns + noun}[task]


def read_epic_ground_truth(path, *, task, num_nouns=NUM_NOUNS):
    """Reads `EPIC_100_validation.csv` as the GT of one task.

    Args:
        path: the annotations CSV.
        task: "verb", "noun" or "action".
        num_nouns: nouns per verb in the action id.

    Returns:
        `ground_truth.GroundTruth` with int `labels` and `label_ids` (the
        task's class), videos in order of first appearance, subset None.

    Raises:
        MalformedFileError: a missing column, a bad timestamp or class
            (naming file, line and column); SegmentError: stop before start.

    Example:

    >>> gt = read_epic_ground_truth("EPIC_100_validation.csv",
    ...                             task="verb")  # doctest: +SKIP
    """
    path = str(path)
    text = filesystems.read_text(path)
    columns, lines = formats_common.csv_dict_rows(text, path)
    missing = [c for c in _COLUMNS if c not in columns]
    if missing:
        raise errors.MalformedFileError(
            f"missing column(s) {missing}; expected the EPIC-KITCHENS-100 "
            f"annotation columns {list(_COLUMNS)}", path=path, line=1)
    videos, video, segments, labels = {}, [], [], []
    for line, row in lines:
        where = {"path": path, "line": line}
        classes = []
        for column in ("verb_class", "noun_class"):
            try:
                classes.append(int(row[column]))
            except (TypeError, ValueError):
                raise errors.MalformedFileError(
                    f"expected an integer class, got {row[column]!r}",
                    key=column, **where) from None
        start = timestamp_seconds(row["start_timestamp"],
                                  key="start_timestamp", **where)
        stop = timestamp_seconds(row["stop_timestamp"], key="stop_timestamp",
                                 **where)
        if stop < start:
            raise errors.SegmentError(
                f"stop {stop} s before start {start} s", path=path,
                line=line, video_id=row["video_id"], key="stop_timestamp")
        video.append(videos.setdefault(row["video_id"], len(videos)))
        segments.append([start, stop])
        labels.append(task_label(*classes, task, num_nouns))
    return gt_lib.GroundTruth(
        video_ids=list(videos), video=np.asarray(video, np.int64),
        segments=np.asarray(segments, np.float64).reshape(-1, 2),
        labels=labels, label_ids=list(labels), subset=None, path=path)


def epic_label(entry, task, num_nouns=NUM_NOUNS, **where):
    """The task's class of one submission entry (`verb`, `noun`, `action`).

    Args:
        entry: `{"verb": v, "noun": n, "action": "v,n", ...}`; only the
            task's key is read.
        task: "verb", "noun" or "action".
        num_nouns: nouns per verb in the action id.
        **where: `path`, `video_id`, `key` for the error.

    Returns:
        int.

    Raises:
        MalformedFileError: the key is missing or not an integer ("v,n"
            for action).

    Example:

    >>> epic_label({"action": "2,10"}, "action")
    610
    """
    value = entry.get(task) if isinstance(entry, dict) else None
    try:
        if task == "action":
            verb, noun = (int(p) for p in str(value).split(","))
            return task_label(verb, noun, task, num_nouns)
        if isinstance(value, bool) or value is None:
            raise ValueError
        return int(value)
    except ValueError:
        expected = "'verb,noun' ids" if task == "action" else "an integer"
        raise errors.MalformedFileError(
            f"expected {expected} under {task!r}, got {value!r}",
            **where) from None
