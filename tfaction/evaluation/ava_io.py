"""Readers for the AVA evaluation files: box CSVs, label maps, exclusion lists.

Formats (those of the official AVA evaluation and SlowFast):

* ground truth CSV rows `video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]`,
  plus (new format) 2-column rows `video_id,timestamp` = an annotated
  key-frame without actions;
* detection CSV rows `video_id,timestamp,x1,y1,x2,y2,action_id,score`;
* label map pbtxt `item { name: "..." id: N }` (or `label_id: N`), or a JSON
  list `[{"id": N, "name": "..."}]`;
* excluded-timestamps CSV rows `video_id,timestamp`.

Key-frames are keyed like the reference code: `"%s,%.6f" % (video_id,
Decimal(timestamp))` (official ActivityNet) or `"%s,%04d" % (video_id,
int(timestamp))` (SlowFast). Fully blank lines are skipped; every other
malformed row raises `MalformedFileError` naming the file and 1-based line.

Example:

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "gt.csv")
>>> _ = open(p, "w").write("v,0902,0.1,0.1,0.5,0.9,12,0\\nv,0903\\n")
>>> t = read_box_csv(p, kind="groundtruth")
>>> t.keys.tolist(), t.all_keys
(['v,902.000000'], ['v,902.000000', 'v,903.000000'])
"""

import csv
import dataclasses
import decimal
import io
import json
import math
import os
import re

import numpy as np

from tfaction import errors
from tfaction.data import filesystems

VARIANTS = ("official", "slowfast")

_NAME_RE = re.compile(r'^\s*name\s*:\s*"(.*)"\s*$')
_ID_RE = re.compile(r"^\s*(?:label_)?id\s*:\s*(\S+)\s*$")


@dataclasses.dataclass
class BoxTable:
    """Parsed rows of an AVA box CSV (rows with boxes only), in file order.

    Attributes:
        keys: str [N], key-frame key of each row.
        boxes: float64 [N, 4] as `[y1, x1, y2, x2]` (reference layout).
        labels: int64 [N] action ids.
        scores: float64 [N]: detection score, or person id (as float, 1.0 when
            absent) for ground truth, as the reference reader stores it.
        lines: int64 [N] 1-based line numbers.
        all_keys: every key-frame in the file in order of first appearance,
            including 2-column rows.
        n_empty_rows: number of 2-column rows.
    """

    keys: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    lines: np.ndarray
    all_keys: list
    n_empty_rows: int


def make_key(video_id, timestamp, variant="official"):
    """Key-frame key exactly as the reference code builds it.

    Args:
        video_id: video id string.
        timestamp: timestamp string as written in the CSV.
        variant: "official" (`%s,%.6f` of a Decimal) or "slowfast"
            (`%s,%04d` of an int).

    Returns:
        The key string.

    Raises:
        ValueError: the timestamp is not a number (an int for SlowFast).

    Example:

    >>> make_key("vid", "0902"), make_key("vid", "0902", "slowfast")
    ('vid,902.000000', 'vid,0902')
    """
    if variant == "slowfast":
        return "%s,%04d" % (video_id, int(timestamp))
    try:
        value = decimal.Decimal(timestamp.strip())
    except decimal.InvalidOperation:
        raise ValueError(f"timestamp {timestamp!r} is not a number") from None
    if not value.is_finite() or not math.isfinite(float(value)):
        raise ValueError(f"timestamp {timestamp!r} is not finite")
    return "%s,%.6f" % (video_id, value)


def _check_variant(variant):
    if variant not in VARIANTS:
        raise errors.ConfigError(
            f"unknown AVA variant {variant!r}; expected one of {VARIANTS}")


def _read_rows(path):
    path = os.fspath(path)
    try:
        return list(csv.reader(io.StringIO(filesystems.read_text(path),
                                           newline="")))
    except OSError as e:
        raise errors.MalformedFileError(f"cannot read file: {e}",
                                        path=path) from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise errors.MalformedFileError(f"not a CSV file: {e}",
                                        path=path) from None


def _keys_for(rows, idx, variant, path):
    """Key per row (formatting each distinct timestamp once)."""
    vids = [rows[i][0].strip() for i in idx]
    stamps = [rows[i][1] for i in idx]
    cache = {}
    keys = []
    for i, vid, ts in zip(idx, vids, stamps):
        if not vid:
            raise errors.MalformedFileError("empty video id", path=path,
                                            line=i + 1, key="video_id")
        fmt = cache.get(ts)
        if fmt is None:
            try:
                fmt = make_key("", ts, variant)[1:]
            except ValueError as e:
                raise errors.MalformedFileError(
                    f"bad timestamp: {e}", path=path, line=i + 1,
                    video_id=vid, key="timestamp") from None
            cache[ts] = fmt
        keys.append(vid + "," + fmt)
    return keys


def _to_array(rows, idx, cols, dtype, path, what):
    """Vectorised string->number conversion; on failure, find the bad line."""
    table = [[rows[i][c] for c in cols] for i in idx]
    try:
        return np.array(table, dtype=str).reshape(len(idx), len(cols)).astype(
            dtype)
    except (ValueError, OverflowError):
        for i, vals in zip(idx, table):
            for c, v in zip(cols, vals):
                try:
                    dtype(v) if dtype is float else int(v)
                except (ValueError, OverflowError):
                    raise errors.MalformedFileError(
                        f"column {c + 1} ({what}) is not a number: {v!r}",
                        path=path, line=i + 1, video_id=rows[i][0]) from None
        raise


def read_box_csv(path, kind, variant="official"):
    """Reads an AVA ground-truth or detection CSV.

    Args:
        path: CSV file.
        kind: "groundtruth" (7 or 8 columns; 2-column rows allowed unless
            `variant="slowfast"`) or "detections" (8 columns; 2-column rows
            are accepted and carry nothing, as in the official reader).
        variant: "official" or "slowfast" (key format, 2-column rows).

    Returns:
        A `BoxTable`.

    Raises:
        MalformedFileError: wrong column count, non-numeric field, non-finite
            coordinate or NaN/inf score (file and line named).

    Example:

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "det.csv")
    >>> _ = open(p, "w").write("v,902,0.1,0.1,0.5,0.9,12,0.9\\n")
    >>> read_box_csv(p, "detections").scores
    array([0.9])
    """
    _check_variant(variant)
    if kind not in ("groundtruth", "detections"):
        raise ValueError(f"kind must be groundtruth or detections: {kind!r}")
    rows = _read_rows(path)
    allowed = {"groundtruth": (7, 8), "detections": (8,)}[kind]
    if variant == "official":
        allowed = allowed + (2,)
    lens = np.fromiter((len(r) for r in rows), dtype=np.int64,
                       count=len(rows))
    blank = np.fromiter((len(r) == 0 or (len(r) == 1 and not r[0].strip())
                         for r in rows), dtype=bool, count=len(rows))
    bad = ~blank & ~np.isin(lens, allowed)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        extra = (" (2-column rows are not accepted by the SlowFast variant)"
                 if variant == "slowfast" and lens[i] == 2 else "")
        raise errors.MalformedFileError(
            f"expected {' or '.join(map(str, sorted(allowed)))} columns "
            f"({kind}), got {lens[i]}{extra}", path=path, line=i + 1)
    used = np.flatnonzero(~blank)
    all_keys = list(dict.fromkeys(_keys_for(rows, used, variant, path)))
    full = used[lens[used] >= 7]
    keys = np.array(_keys_for(rows, full, variant, path), dtype=object)
    coords = _to_array(rows, full, (2, 3, 4, 5), float, path, "coordinate")
    labels = _to_array(rows, full, (6,), np.int64, path, "action id")[:, 0]
    if kind == "detections":
        scores = _to_array(rows, full, (7,), float, path, "score")[:, 0]
    else:
        scores = np.ones(len(full))
        has_pid = lens[full] == 8
        scores[has_pid] = _to_array(rows, full[has_pid], (7,), float, path,
                                    "person id")[:, 0]
    for arr, what in ((coords, "box coordinate"), (scores, "score")):
        finite = np.isfinite(arr) if arr.ndim == 1 else np.isfinite(arr).all(1)
        if not finite.all():
            i = int(full[np.flatnonzero(~finite)[0]])
            raise errors.MalformedFileError(
                f"{what} is NaN or infinite", path=path, line=i + 1,
                video_id=rows[i][0])
    x1, y1, x2, y2 = coords.T
    return BoxTable(keys=keys, boxes=np.stack([y1, x1, y2, x2], axis=1),
                    labels=labels, scores=scores,
                    lines=full.astype(np.int64) + 1, all_keys=all_keys,
                    n_empty_rows=int((lens[used] == 2).sum()))


def read_exclusions(path, variant="official"):
    """Reads an excluded-timestamps CSV (`video_id,timestamp` rows).

    Args:
        path: CSV file, or None (no exclusions).
        variant: key format, "official" or "slowfast".

    Returns:
        set of key-frame keys.

    Example:

    >>> read_exclusions(None)
    set()
    """
    _check_variant(variant)
    if path is None:
        return set()
    rows = _read_rows(path)
    used = []
    for i, r in enumerate(rows):
        if len(r) == 0 or (len(r) == 1 and not r[0].strip()):
            continue
        if len(r) != 2:
            raise errors.MalformedFileError(
                f"expected 2 columns (video_id,timestamp), got {len(r)}",
                path=path, line=i + 1)
        used.append(i)
    return set(_keys_for(rows, used, variant, path))


def read_label_map(path):
    """Reads a label map: pbtxt `item { name: "..." id: N }` or a JSON list.

    The pbtxt is read line-wise like the reference `read_labelmap`: a `name:`
    line sets the current name and each `id:` / `label_id:` line emits one
    class with it; indentation is not required here.

    Args:
        path: `.pbtxt`/`.txt` file, or `.json` file holding `[{"id", "name"}]`.

    Returns:
        list of `(id, name)` in file order.

    Raises:
        MalformedFileError: no classes, an id without a name, a non-integer
            id, a duplicated id or name.

    Example:

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "lm.pbtxt")
    >>> _ = open(p, "w").write('item {\\n  name: "stand"\\n  id: 12\\n}\\n')
    >>> read_label_map(p)
    [(12, 'stand')]
    """
    path = os.fspath(path)
    try:
        text = filesystems.read_text(path)
    except (OSError, UnicodeDecodeError) as e:
        raise errors.MalformedFileError(f"cannot read label map: {e}",
                                        path=path) from None
    items = []
    if path.endswith(".json"):
        try:
            data = json.loads(text)
            items = [(int(d["id"]), str(d["name"])) for d in data]
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            raise errors.MalformedFileError(
                f"expected a JSON list of {{'id', 'name'}} objects: {e}",
                path=path) from None
    else:
        name = None
        for n, line in enumerate(text.splitlines(), start=1):
            m = _NAME_RE.match(line)
            if m:
                name = m.group(1)
                continue
            m = _ID_RE.match(line)
            if m:
                if name is None:
                    raise errors.MalformedFileError(
                        "id before any name", path=path, line=n, key="id")
                try:
                    items.append((int(m.group(1)), name))
                except ValueError:
                    raise errors.MalformedFileError(
                        f"id is not an integer: {m.group(1)!r}", path=path,
                        line=n, key="id") from None
                name = None
    if not items:
        raise errors.MalformedFileError("label map has no classes", path=path)
    ids = [i for i, _ in items]
    names = [s for _, s in items]
    for what, vals in (("id", ids), ("name", names)):
        if len(set(vals)) != len(vals):
            dup = next(v for v in vals if vals.count(v) > 1)
            raise errors.MalformedFileError(f"duplicated class {what} {dup!r}",
                                            path=path, key=what)
    return items
