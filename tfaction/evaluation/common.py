"""Shared helpers of the evaluation metrics: strict JSON loading, prediction
parsing, interpolated AP and table formatting.

All numbers are numpy float64. Loading never imports TensorFlow.

Example:

```python
preds = read_detection_predictions("preds.json")
print(preds.num_predictions, preds.video_ids[:3])
```
"""

import contextlib
import dataclasses
import gc
import itertools
import json
import math
import operator

import numpy as np

from tfaction import errors
from tfaction.data.formats import common as formats_common
from tfaction.evaluation import numpy_sort


# --- JSON ---------------------------------------------------------------------
@contextlib.contextmanager
def without_gc():
    """Pauses Python's cyclic garbage collector (if on) inside the block.

    Decoding a large JSON file creates millions of dicts, lists and floats
    and no reference cycle; each of the collector's many passes over the
    growing heap is wasted (about 45 % of `json.loads` on a prediction
    file of 472,800 entries). Memory is still freed by reference counting.
    Nested blocks leave the collector off; end the outer block once the
    decoded objects are freed, or the collector's first pass after it
    scans them all once.

    Example:

    >>> with without_gc():
    ...     data = json.loads("[1, 2]")
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_json(text, *, path):
    """Decodes JSON text with the C parser, without the duplicate check.

    Follow with `check_unique_keys` (or use `load_json`).

    Args:
        text: the file's text.
        path: file named in errors.

    Returns:
        The decoded JSON value.

    Raises:
        MalformedFileError: invalid JSON (with its line), an integer of
            more digits than Python converts, or nesting deeper than
            Python's recursion limit.

    Example:

    >>> parse_json('{"a": [1, 2]}', path="x.json")
    {'a': [1, 2]}
    """
    # Numbers (NaN included) are checked where an entry reads them, so
    # that the error names the video and key.
    with formats_common.json_errors(path), without_gc():
        return json.loads(text)


def count_keys(value):
    """Keys of every object nested in a decoded JSON value.

    Args:
        value: decoded JSON (dicts, lists, scalars).

    Returns:
        int.

    Example:

    >>> count_keys({"a": [{"b": 1, "c": {}}], "d": 2})
    4
    """
    count, level = 0, [value]
    while level:  # level by level: C-speed passes, no per-item recursion
        objs = [v for v in level if type(v) is dict]
        count += sum(map(len, objs))
        nxt = list(itertools.chain.from_iterable(map(dict.values, objs)))
        nxt.extend(itertools.chain.from_iterable(
            v for v in level if type(v) is list))
        level = nxt
    return count


# Strict JSON at the speed of plain `json.loads`. A duplicated key is lost
# by `json.loads` (the last value wins), so the decoded value has fewer keys
# than the text has key/value pairs. Outside strings a ':' only separates a
# key from its value, so text ':'s = pairs + ':'s inside strings. When no
# string holds an escaped colon (\u003a), the ':'s of the decoded strings
# are those of the text less those of lost pairs, so `text ':'s - decoded
# string ':'s == decoded keys` holds iff no pair was lost. Equal counts
# prove the file free of duplicates; otherwise the file is parsed again
# with the duplicate-rejecting hook, which names the key.
def check_unique_keys(text, num_keys, *, path, data=None):
    """Raises if the JSON text has a duplicated key.

    Args:
        text: the file's text.
        num_keys: keys in its decoded value (`count_keys`).
        path: file named in errors.
        data: the decoded value: when some string of the file holds a ':',
            its strings' ':'s are counted (else the file is parsed again).

    Raises:
        MalformedFileError: a key repeated in one object (named).

    Example:

    >>> check_unique_keys('{"a": 1}', 1, path="x.json")
    >>> check_unique_keys('{"a": 1, "a": 2}', 1, path="x.json")
    Traceback (most recent call last):
    ...
    tfaction.errors.MalformedFileError: x.json: invalid JSON: duplicate key 'a'
    """
    colons = text.count(":")
    if colons == num_keys:
        return
    if (data is not None and "\\u003a" not in text
            and "\\u003A" not in text
            and colons - string_colons(data) == num_keys):
        return
    try:
        with without_gc():
            json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as e:
        raise errors.MalformedFileError(f"invalid JSON: {e}",
                                        path=path) from e


def string_colons(value):
    """':' characters in the strings (keys and values) of a decoded JSON
    value.

    Example:

    >>> string_colons({"a:b": ["c:d:e", 1], "f": "g"})
    3
    """
    count, level = 0, [value]
    while level:
        objs = [v for v in level if type(v) is dict]
        count += "".join(itertools.chain.from_iterable(objs)).count(":")
        count += "".join([v for v in level if type(v) is str]).count(":")
        nxt = list(itertools.chain.from_iterable(map(dict.values, objs)))
        nxt.extend(itertools.chain.from_iterable(
            v for v in level if type(v) is list))
        level = nxt
    return count


def _no_duplicate_keys(pairs):
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return out


def read_json_text(path, *, what="file"):
    """The UTF-8 text of a JSON file (missing / not UTF-8: an error).

    Example:

    >>> read_json_text("missing.json")  # doctest: +SKIP
    Traceback (most recent call last):
    MalformedFileError: missing.json: file not found
    """
    return formats_common.read_text(str(path), what=what)


def load_json(path, *, what="file"):
    """Reads a JSON file strictly (duplicate keys rejected).

    Args:
        path: file path.
        what: description used in error messages.

    Returns:
        The decoded JSON value.

    Raises:
        MalformedFileError: missing file, not UTF-8, invalid JSON (with line)
            or a duplicated key.

    Example:

    >>> load_json("gt.json", what="ground truth")  # doctest: +SKIP
    """
    path = str(path)
    text = read_json_text(path, what=what)
    data = parse_json(text, path=path)
    check_unique_keys(text, count_keys(data), path=path, data=data)
    return data


def number(value, **where):
    """A JSON number (or numeric string) as a finite float.

    Args:
        value: the decoded value.
        **where: `path`, `video_id`, `key` for the error.

    Returns:
        float.

    Raises:
        MalformedFileError: not a number, or NaN / infinite.

    Example:

    >>> number("1.5", key="segment")
    1.5
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise errors.MalformedFileError(
            f"expected a number, got {value!r}", **where)
    try:
        out = float(value)
    except ValueError:
        raise errors.MalformedFileError(
            f"expected a number, got {value!r}", **where) from None
    except OverflowError:  # an integer beyond the float range
        out = math.inf
    if not math.isfinite(out):
        raise errors.MalformedFileError(
            f"expected a finite number, got {value!r}", **where)
    return out


# --- Predictions --------------------------------------------------------------
@dataclasses.dataclass
class Predictions:
    """Flat detection predictions, in file order.

    Attributes:
        video_ids: list of the distinct video ids, in file order.
        video: int64 [N] index into `video_ids`.
        segments: float64 [N, 2].
        scores: float64 [N].
        labels: list of N labels (str names or int ids; None when absent).
        path: source file (for messages).
        num_negative: predictions with a negative start (kept, as officially).
        num_reversed: predictions whose end is before their start (kept and
            scored with the official arithmetic: they never overlap anything,
            so they are false positives; reported, never silent).
    """

    video_ids: list
    video: np.ndarray
    segments: np.ndarray
    scores: np.ndarray
    labels: list
    path: str = None
    num_negative: int = 0
    num_reversed: int = 0

    @property
    def num_predictions(self):
        return int(self.scores.shape[0])


def check_segments(segments, *, path, video_ids=None, video=None,
                   allow_reversed=False):
    """Raises `SegmentError` on non-finite (and reversed) segments.

    Args:
        segments: float64 [N, 2].
        path: file named in the error.
        video_ids, video: to name the offending video.
        allow_reversed: accept end < start.

    Example:

    >>> check_segments(np.array([[0., 1.]]), path="p.json")
    """
    bad = ~np.isfinite(segments).all(axis=1)
    if not allow_reversed:
        bad |= segments[:, 1] < segments[:, 0]
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        vid = None if video is None else video_ids[int(video[i])]
        raise errors.SegmentError(
            f"segment {segments[i].tolist()} ends before it starts or is not "
            f"finite ({int(bad.sum())} such segments); expected start <= end",
            path=path, video_id=vid, key="segment")


def read_detection_predictions(path, *, data=None, text=None,
                               require_label=True, label_key="label",
                               required_fields=("results",)):
    """Reads ActivityNet-style predictions (`{"results": {vid: [...]}}`).

    Each entry is `{"segment": [t0, t1], "label": ..., "score": s}`. The
    official loader requires `version` and `external_data` too; they carry
    nothing used by the metric, so only `results` is required by default.

    Files of plain numbers are read column-wise (`_fast_columns`, whole
    arrays checked with NumPy); anything else (numeric strings, a missing
    or malformed field, NaN) goes through the entry-by-entry reader, which
    accepts what it accepts and names the file, video and key of the first
    bad entry. Both give identical arrays.

    Args:
        path: JSON file (used for messages when `data` is given).
        data: already decoded JSON (optional).
        text: the file's text when `data` was decoded from it by
            `parse_json` without the duplicate-key check: the check is done
            here. None with `data`: `data` was read strictly.
        require_label: whether every entry needs a label (not for proposals).
        label_key: entry key of the label ("label" or "label_id").
        required_fields: top-level keys that must be present.

    Returns:
        `Predictions`.

    Raises:
        MalformedFileError: bad JSON, a duplicated key, missing key,
            non-numeric or NaN score / segment (naming file, video and key).

    Example:

    >>> preds = read_detection_predictions("preds.json")  # doctest: +SKIP
    """
    # The collector resumes after the decoded file is freed (on return):
    # it then has little to scan.
    with without_gc():
        return _read_predictions(str(path), data, text, require_label,
                                 label_key, required_fields)


def _read_predictions(path, data, text, require_label, label_key,
                      required_fields):
    """`read_detection_predictions` (the collector paused)."""
    if data is None:
        text = read_json_text(path, what="prediction file")
        data = parse_json(text, path=path)
    fast = _fast_columns(data, label_key, require_label, required_fields)
    if text is not None:  # first, as the strict parser would have
        check_unique_keys(text, count_keys(data) if fast is None
                          else fast[-1], path=path, data=data)
    if fast is None:
        return _read_entries(path, data, require_label, label_key,
                             required_fields)
    video_ids, video, segments, scores, labels, _ = fast
    return make_predictions(video_ids, video, segments, scores, labels,
                            path=path)


_NUMBER_TYPES = frozenset((float, int))  # bool excluded (type is bool)


def _fast_columns(data, label_key, require_label, required_fields):
    """Columns of a file of plain entries, or None to read it entry by entry.

    Plain: `results` an object of lists of objects with a list of two
    finite JSON numbers as `segment`, a finite number as `score` and a
    string or integer label (or none, when not required); other keys of an
    entry are allowed. A few C-speed passes over the entries check the
    types; NumPy checks the values.

    Returns:
        None, or `(video_ids, video, segments, scores, labels, num_keys)`
        with `num_keys` the keys of every object in `data` (`count_keys`).
    """
    if type(data) is not dict or any(f not in data for f in required_fields):
        return None
    results = data.get("results")
    if type(results) is not dict:
        return None
    lists = list(results.values())
    if not set(map(type, lists)) <= {list}:
        return None
    counts = np.fromiter(map(len, lists), np.int64, len(lists))
    entries = list(itertools.chain.from_iterable(lists))
    if not set(map(type, entries)) <= {dict}:
        return None
    try:
        segs = list(map(operator.itemgetter("segment"), entries))
        scores = list(map(operator.itemgetter("score"), entries))
    except KeyError:
        return None
    labels = list(map(operator.methodcaller("get", label_key), entries))
    label_types = set(map(type, labels))
    if not label_types <= ({str, int} if require_label else
                           {str, int, type(None)}):
        return None
    if (not set(map(type, segs)) <= {list}
            or not set(map(len, segs)) <= {2}):
        return None
    flat = list(itertools.chain.from_iterable(segs))
    if (not set(map(type, flat)) <= _NUMBER_TYPES
            or not set(map(type, scores)) <= _NUMBER_TYPES):
        return None
    try:
        segments = np.array(flat, np.float64).reshape(-1, 2)
        scores = np.array(scores, np.float64)
    except OverflowError:  # an integer beyond float range
        return None
    if not (np.isfinite(segments).all() and np.isfinite(scores).all()):
        return None
    # Keys: entries (segment, score, the label when present, others) and
    # the rest of the file. Only keys besides these three can hold objects.
    n = len(entries)
    known = np.full(n, 3, np.int64)
    if type(None) in label_types:
        known[[i for i, x in enumerate(labels)
               if x is None and label_key not in entries[i]]] = 2
    sizes = np.fromiter(map(len, entries), np.int64, n)
    named = {"segment", "score", label_key}
    others = [v for i in np.flatnonzero(sizes > known)
              for k, v in entries[int(i)].items() if k not in named]
    num_keys = (int(sizes.sum()) + count_keys(others) + len(data)
                + len(results) + count_keys([v for k, v in data.items()
                                             if k != "results"]))
    video = np.repeat(np.arange(len(lists), dtype=np.int64), counts)
    return list(results), video, segments, scores, labels, num_keys


def _read_entries(path, data, require_label, label_key, required_fields):
    """Entry-by-entry reader of `read_detection_predictions` (exact errors,
    numeric strings accepted)."""
    if not isinstance(data, dict):
        raise errors.MalformedFileError(
            "expected a top-level object with 'results'", path=path)
    for field in required_fields:
        if field not in data:
            raise errors.MalformedFileError(
                f"missing top-level key (found {sorted(data)})", path=path,
                key=field)
    results = data["results"]
    if not isinstance(results, dict):
        raise errors.MalformedFileError(
            "expected an object {video_id: [predictions]}", path=path,
            key="results")
    video_ids, video, segs, scores, labels = [], [], [], [], []
    for vid, entries in results.items():
        if not isinstance(entries, list):
            raise errors.MalformedFileError(
                "expected a list of predictions", path=path, video_id=vid,
                key="results")
        v = len(video_ids)
        video_ids.append(vid)
        for i, e in enumerate(entries):
            key = f"results[{i}]"
            where = dict(path=path, video_id=vid)
            if not isinstance(e, dict):
                raise errors.MalformedFileError("expected an object",
                                                key=key, **where)
            seg = e.get("segment")
            if not isinstance(seg, (list, tuple)) or len(seg) != 2:
                raise errors.MalformedFileError(
                    f"expected 'segment': [start, end], got {seg!r}",
                    key=f"{key}.segment", **where)
            segs.append([number(s, key=f"{key}.segment", **where)
                         for s in seg])
            if "score" not in e:
                raise errors.MalformedFileError("missing field",
                                                key=f"{key}.score", **where)
            scores.append(number(e["score"], key=f"{key}.score", **where))
            label = e.get(label_key)
            if require_label and (label is None or isinstance(label, bool)
                                  or not isinstance(label, (str, int))):
                raise errors.MalformedFileError(
                    f"expected a class label, got {label!r}",
                    key=f"{key}.{label_key}", **where)
            labels.append(label)
            video.append(v)
    return make_predictions(video_ids, video, segs, scores, labels, path=path)


def make_predictions(video_ids, video, segments, scores, labels, *, path):
    """Builds a checked `Predictions` from flat lists.

    Args:
        video_ids: distinct video ids.
        video: per-prediction index into `video_ids`.
        segments: [N, 2] numbers.
        scores: [N] numbers.
        labels: N labels.
        path: source (for messages).

    Returns:
        `Predictions`.

    Example:

    >>> make_predictions(["v"], [0], [[0, 1]], [0.5], ["A"], path="x").video
    array([0])
    """
    segments = np.asarray(segments, np.float64).reshape(-1, 2)
    scores = np.asarray(scores, np.float64).reshape(-1)
    video = np.asarray(video, np.int64).reshape(-1)
    if not np.isfinite(scores).all():
        i = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise errors.MalformedFileError(
            f"score {scores[i]!r} is not finite", path=path,
            video_id=video_ids[int(video[i])], key="score")
    check_segments(segments, path=path, video_ids=video_ids, video=video,
                   allow_reversed=True)
    return Predictions(video_ids=list(video_ids), video=video,
                       segments=segments, scores=scores, labels=list(labels),
                       path=path,
                       num_negative=int((segments[:, 0] < 0).sum()),
                       num_reversed=int((segments[:, 1] < segments[:, 0]).sum()))


def official_score_order(scores):
    """The order of `scores.argsort()[::-1]` with ties made explicit.

    NumPy's default argsort is an insertion sort for arrays of at most 16
    elements, so the official `argsort()[::-1]` takes tied scores in
    **reverse input order** there; longer arrays with ties get the order of
    NumPy's generic (non-SIMD) introsort, reproduced exactly by
    `numpy_sort.argsort_desc` (NumPy's AVX-512 sort would give another
    order; the reference numbers were made without it).

    Args:
        scores: float [N].

    Returns:
        int64 [N] indices, highest score first.

    Example:

    >>> official_score_order(np.array([0.5, 0.8, 0.8, 0.1]))
    array([2, 1, 0, 3])
    """
    return numpy_sort.argsort_desc(np.asarray(scores, np.float64))


# --- AP ------------------------------------------------------------------------
def interpolated_ap(precision, recall):
    """VOC2011 all-point interpolated AP (ActivityNet `interpolated_prec_rec`).

    Prepends (rec 0, prec 0), appends (rec 1, prec 0), makes precision
    non-increasing from the right and sums delta-recall x precision where
    recall changes. Summation matches the official `np.sum` exactly.

    Args:
        precision: float64 [..., N].
        recall: float64 [..., N] (same shape).

    Returns:
        float64 array [...] (a float for 1-D input).

    Example:

    >>> interpolated_ap(np.array([1., .5, 2 / 3]), np.array([.5, .5, 1.]))
    0.8333333333333333
    """
    precision = np.asarray(precision, np.float64)
    recall = np.asarray(recall, np.float64)
    lead = precision.shape[:-1]
    p = precision.reshape(-1, precision.shape[-1])
    r = recall.reshape(-1, recall.shape[-1])
    zeros = np.zeros((p.shape[0], 1))
    mprec = np.concatenate([zeros, p, zeros], axis=1)
    mrec = np.concatenate([zeros, r, zeros + 1.0], axis=1)
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    change = mrec[:, 1:] != mrec[:, :-1]
    terms = (mrec[:, 1:] - mrec[:, :-1]) * mprec[:, 1:]
    out = np.array([np.sum(terms[i][change[i]]) for i in range(p.shape[0])],
                   np.float64)
    return float(out[0]) if not lead else out.reshape(lead)


# --- Output --------------------------------------------------------------------
# The tIoU grids of the benchmarks, built as the official codes build them
# (`np.linspace`): their floats differ from typed decimals in the last bits
# (linspace(0.5, 0.95, 10)[8] = 0.8999999999999999), which decides matches
# whose tIoU lies between the two.
BENCHMARK_THRESHOLDS = {
    "activitynet": np.linspace(0.5, 0.95, 10),
    "thumos14": np.linspace(0.3, 0.7, 5),
    "epic_ego4d": np.linspace(0.1, 0.5, 5),
}
# Typed thresholds this close to a benchmark value are that value.
SNAP_TOLERANCE = 1e-9


def linspace_thresholds(spec):
    """Thresholds from a `"start:stop:num"` string, `np.linspace` values.

    Args:
        spec: "start:stop:num", e.g. "0.5:0.95:10".

    Returns:
        float64 [num] array `np.linspace(start, stop, num)`.

    Raises:
        ConfigError: not three fields, non-numeric, or num < 1.

    Example:

    >>> linspace_thresholds("0.5:0.95:10")[8]
    0.8999999999999999
    """
    parts = [p.strip() for p in str(spec).split(":")]
    try:
        if len(parts) != 3:
            raise ValueError
        start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise errors.ConfigError(
            f"tiou_thresholds: expected 'start:stop:num' (np.linspace, "
            f"e.g. 0.5:0.95:10), got {spec!r}") from None
    if num < 1:
        raise errors.ConfigError(
            f"tiou_thresholds: 'start:stop:num' needs num >= 1, got {spec!r}")
    return np.linspace(start, stop, num)


def snap_thresholds(values):
    """Replaces typed thresholds by the benchmarks' `np.linspace` floats.

    A list within `SNAP_TOLERANCE` of a whole benchmark grid
    (`BENCHMARK_THRESHOLDS`) becomes that grid; otherwise each value within
    `SNAP_TOLERANCE` of a grid value becomes it, unless the grids disagree
    on it (0.3 is 0.3 in THUMOS's grid, 0.30000000000000004 in the
    EPIC/Ego4D one): such a value is kept as typed.

    Args:
        values: float64 [T] array.

    Returns:
        `(snapped float64 [T] array, note)`: note is None when nothing
        changed, else one line saying which values changed.

    Example:

    >>> snap_thresholds(np.array([0.9]))[0][0]
    0.8999999999999999
    """
    values = np.asarray(values, np.float64).reshape(-1)
    out = values.copy()
    grid_name = next(
        (name for name, grid in BENCHMARK_THRESHOLDS.items()
         if grid.shape == values.shape
         and np.all(np.abs(grid - values) <= SNAP_TOLERANCE)), None)
    if grid_name is not None:
        out = BENCHMARK_THRESHOLDS[grid_name].copy()
    else:
        grid = np.concatenate(list(BENCHMARK_THRESHOLDS.values()))
        for i, v in enumerate(values):
            near = set(grid[np.abs(grid - v) <= SNAP_TOLERANCE].tolist())
            if len(near) == 1:
                out[i] = near.pop()
    changed = np.flatnonzero(out != values)
    if not changed.size:
        return out, None
    where = (f"the {grid_name} grid" if grid_name is not None
             else "benchmark grid values")
    pairs = ", ".join(f"{values[i]!r} -> {out[i]!r}" for i in changed)
    return out, (f"tIoU thresholds snapped onto {where} (np.linspace floats "
                 f"as the official code builds them; typed values within "
                 f"{SNAP_TOLERANCE:g}): {pairs}")


def parse_thresholds(value, default, *, report=None):
    """Threshold list from a CLI option or config value (None -> `default`).

    Args:
        value: None; a list of floats; a comma-separated string
            ("0.3,0.5"); or "start:stop:num" for `np.linspace(start, stop,
            num)` ("0.5:0.95:10"). Typed values within `SNAP_TOLERANCE` of a
            benchmark's linspace value become that value (`snap_thresholds`).
        default: float64 array used when `value` is None (used as given).
        report: callable receiving the note when values were snapped
            (e.g. `print` to stderr in the CLI); None: no note.

    Returns:
        float64 [T] array.

    Raises:
        ConfigError: empty, non-numeric, a bad "start:stop:num", or a value
            outside [0, 1].

    Example:

    >>> parse_thresholds("0.3,0.5", None)
    array([0.3, 0.5])
    >>> parse_thresholds("0.5:0.95:10", None)[8]
    0.8999999999999999
    """
    if value is None:
        return np.asarray(default, np.float64)
    if isinstance(value, str) and ":" in value:
        out = linspace_thresholds(value)
    else:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        try:
            out = np.asarray([float(v) for v in value], np.float64)
        except (TypeError, ValueError):
            raise errors.ConfigError(
                f"tiou_thresholds: expected numbers, got {value!r}") from None
        out, note = snap_thresholds(out)
        if note and report is not None:
            report(note)
    if out.size == 0 or not np.all((out >= 0) & (out <= 1)):
        raise errors.ConfigError(
            f"tiou_thresholds: expected numbers in [0, 1], got {value!r}")
    return out


def format_rows(header, rows):
    """A plain-text table.

    Args:
        header: column names.
        rows: lists of cells (floats printed with 4 decimals).

    Returns:
        str.

    Example:

    >>> print(format_rows(["a", "b"], [[1, 0.5]]))
    a  b
    1  0.5000
    """
    def cell(x):
        return f"{x:.4f}" if isinstance(x, float) else str(x)
    table = [list(map(str, header))] + [[cell(x) for x in r] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in table)
