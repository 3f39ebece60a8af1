"""The Charades annotation CSV (`Charades_v1_train.csv` / `_test.csv`).

Read by the Charades frames converter (`tfaction.data.formats.charades`)
and by the Charades mAP (`tfaction.evaluation.charades_map`), with the
rules of the official `Charades_v1_classify.m`: the `actions` field lists
`cNNN start end` items separated by `;` (class `cNNN` -> index NNN,
0-based); an empty field means no action. Pure Python (no TensorFlow).

Example:

>>> parse_actions("c092 11.90 21.20;c147 0.00 12.60")
[(92, '11.90', '21.20'), (147, '0.00', '12.60')]
"""

import csv
import re

from tfaction import errors

NUM_CLASSES = 157
_ACTION_RE = re.compile(r"^c(\d+)$")


def parse_actions(actions, num_classes=NUM_CLASSES, *, path=None,
                  line=None, video_id=None):
    """Parses one `actions` field: `c092 11.90 21.20;c147 0.00 12.60`.

    Args:
        actions: the field text (may be empty or None: no actions).
        num_classes: number of classes (157); class indices must be below.
        path, line, video_id: where the field came from, for errors.

    Returns:
        List of `(class_index, start, end)`, in field order; `start` and
        `end` are the raw (unchecked) strings.

    Raises:
        MalformedFileError: an item is not `cNNN start end`.
        UnknownLabelError: class index >= num_classes.

    Example:

    >>> parse_actions("c092 11.90 21.20;c147 0.00 12.60")
    [(92, '11.90', '21.20'), (147, '0.00', '12.60')]
    """
    out = []
    for item in filter(None, (actions or "").strip().split(";")):
        parts = item.split()
        m = _ACTION_RE.match(parts[0]) if parts else None
        if m is None or len(parts) != 3:
            raise errors.MalformedFileError(
                f"bad action {item!r}; expected 'cNNN start end'",
                path=path, line=line, video_id=video_id, key="actions")
        cls = int(m.group(1))
        if cls >= num_classes:
            raise errors.UnknownLabelError(
                f"class c{cls:03d} >= {num_classes} classes",
                path=path, line=line, video_id=video_id, key="actions")
        out.append((cls, parts[1], parts[2]))
    return out


def iter_charades_rows(stream, path, num_classes=NUM_CLASSES,
                       columns=("id", "actions")):
    """Parses a Charades annotation CSV from an open text stream.

    Shared by the Charades frames converter and the Charades mAP.

    Args:
        stream: text stream opened with `newline=""` (file or StringIO).
        path: the file's name, for errors.
        num_classes: number of classes (157).
        columns: columns that must be in the header (`id` and `actions`
            are always needed).

    Yields:
        `(line, video_id, actions, record)`: the CSV reader's line number
        (last physical line of the row), the stripped id, the parsed
        `parse_actions` list and the row dict.

    Raises:
        MalformedFileError: missing columns, empty id, bad action token (line
            named), duplicated id. `csv.Error` propagates.
        UnknownLabelError: class index >= num_classes.
    """
    reader = csv.DictReader(stream)
    fields = reader.fieldnames or []
    for col in columns:
        if col not in fields:
            raise errors.MalformedFileError(
                f"missing column {col!r} (have {fields})", path=path,
                key=col)
    seen = set()
    for rec in reader:
        line = reader.line_num
        vid = (rec["id"] or "").strip()
        if not vid:
            raise errors.MalformedFileError("empty id", path=path,
                                            line=line, key="id")
        if vid in seen:
            raise errors.MalformedFileError(
                "video id appears twice", path=path, line=line,
                video_id=vid)
        seen.add(vid)
        actions = parse_actions(rec["actions"], num_classes, path=path,
                                line=line, video_id=vid)
        yield line, vid, actions, rec
