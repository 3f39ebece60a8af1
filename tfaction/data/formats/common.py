"""Small helpers shared by the converters: file access, numbers, skipping,
threading.

`Skipper` implements the `--skip_corrupt` policy in one place: an error about
one video (a `DataError` that names a video id) either aborts the conversion
or, when skipping is allowed, is counted, logged and kept for
`dataset_info.json`. Errors about a whole file (a malformed list line, an
unknown subset) always abort: they mean the flags or the layout are wrong, not
that one video is damaged.
"""

import collections
import concurrent.futures
import contextlib
import csv
import io
import json
import math

from absl import logging

from tfaction import errors
from tfaction import progress
from tfaction.data import filesystems


# Local or remote file access (see `tfaction.data.filesystems`).
is_local = filesystems.is_local
join = filesystems.join
read_bytes = filesystems.read_bytes
exists = filesystems.exists
is_dir = filesystems.isdir
listdir = filesystems.listdir


def csv_dict_rows(text, path):
    """The header and the rows of a CSV text with a header line.

    `csv` raises its own `csv.Error` for a NUL byte or a field longer than
    its limit; here that is an error naming the file and line.

    Args:
        text: the file's text.
        path: the file, for errors.

    Returns:
        `(columns, rows)`: the header's column names (a list, empty for an
        empty file) and an iterator of `(line, row dict)`, the first data
        line being 2.

    Raises:
        MalformedFileError: a line `csv` cannot parse (while iterating, for
            data lines).

    Example:

    >>> columns, rows = csv_dict_rows("a,b\\n1,2\\n", "x.csv")
    >>> columns, list(rows)
    (['a', 'b'], [(2, {'a': '1', 'b': '2'})])
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = list(reader.fieldnames or [])
    except csv.Error as e:
        raise errors.MalformedFileError(f"cannot parse CSV: {e}", path=path,
                                        line=1) from None

    def rows():
        line = 1
        try:
            for line, row in enumerate(reader, 2):
                yield line, row
        except csv.Error as e:
            raise errors.MalformedFileError(
                f"cannot parse CSV: {e}", path=path, line=line + 1) from None

    return columns, rows()


def read_text(path, *, what="file"):
    """Reads a UTF-8 text file.

    Raises:
        MalformedFileError: the file is missing or not UTF-8.
    """
    path = filesystems.ensure_filesystem(path)
    if not exists(path):
        raise errors.MalformedFileError(f"{what} not found", path=path)
    try:
        return read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise errors.MalformedFileError(f"{what} is not UTF-8 text ({e})",
                                        path=path) from e


def _no_duplicate_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def read_json(path, *, what="file", strict_numbers=True):
    """Reads a JSON file strictly: duplicated keys are errors.

    `json.loads` would silently keep the last of two equal keys, which in an
    annotation or prediction file hides a real mistake.

    Args:
        path: local path or URL.
        what: what the file is, for error messages ("annotation file").
        strict_numbers: NaN / Infinity and numbers beyond float range are
            errors here; False reads them (as Python's `json` does) for a
            caller that checks its numbers itself and names the entry.

    Returns:
        The decoded JSON value.

    Raises:
        MalformedFileError: missing, not UTF-8, invalid JSON (with the
            line), a duplicated key, NaN / Infinity (not JSON, though
            Python's `json` reads them), a number beyond float range or an
            integer of more digits than Python converts, or nesting deeper
            than Python's recursion limit.

    Example:

    >>> read_json("missing.json", what="predictions")  # doctest: +SKIP
    Traceback (most recent call last):
    MalformedFileError: missing.json: predictions not found
    """
    text = read_text(path, what=what)
    with json_errors(path):
        if not strict_numbers:
            return json.loads(text, object_pairs_hook=_no_duplicate_keys)
        return json.loads(text, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_no_constant,
                          parse_float=_finite_float)


@contextlib.contextmanager
def json_errors(path):
    """Turns what `json.loads` raises into errors that name the file.

    Args:
        path: the file the JSON text came from.

    Raises:
        MalformedFileError: invalid JSON (with the line), nesting deeper than
            Python's recursion limit, or a `ValueError` of the decoder or its
            hooks (an integer of more digits than Python converts, a
            duplicated key, NaN / Infinity).

    Example:

    >>> with json_errors("x.json"):
    ...     json.loads("[" * 100000 + "]" * 100000)
    Traceback (most recent call last):
    ...
    tfaction.errors.MalformedFileError: x.json: invalid JSON: nested too deeply
    """
    try:
        yield
    except json.JSONDecodeError as e:
        raise errors.MalformedFileError(f"invalid JSON: {e.msg}", path=path,
                                        line=e.lineno) from e
    except RecursionError as e:
        raise errors.MalformedFileError("invalid JSON: nested too deeply",
                                        path=path) from e
    except ValueError as e:  # duplicate key, NaN / Infinity, huge number
        raise errors.MalformedFileError(f"invalid JSON: {e}",
                                        path=path) from e


def _no_constant(name):
    # Python's json reads NaN / Infinity, which JSON has not.
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows a float")
    return value


def parse_list_flag(value):
    """'a, b,,c' -> ['a', 'b', 'c']; a list/tuple is passed through."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def parse_number(value, *, path=None, line=None, video_id=None, key=None):
    """A JSON number or numeric string as float (bools are not numbers).

    Args:
        value: the value read from a file.
        path, line, video_id, key: where it came from, for the error.

    Returns:
        The value as a float.

    Raises:
        MalformedFileError: `value` is not a number or numeric string.

    Example:

    >>> parse_number("18.6", path="gt.json", key="segment")
    18.6
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise errors.MalformedFileError(
            f"expected a number or numeric string, got {value!r}", path=path,
            line=line, video_id=video_id, key=key)
    try:
        return float(value)
    except ValueError:
        raise errors.MalformedFileError(
            f"expected a number or numeric string, got {value!r}", path=path,
            line=line, video_id=video_id, key=key) from None


def parse_positive(value, **where):
    """`parse_number` that also requires a positive finite value.

    Args:
        value: the value read from a file.
        **where: `path`, `line`, `video_id`, `key` for the error.

    Returns:
        The value as a float > 0.

    Raises:
        MalformedFileError: not a number, or not positive and finite.

    Example:

    >>> parse_positive(30, key="fps")
    30.0
    """
    number = parse_number(value, **where)
    if not (math.isfinite(number) and number > 0):
        raise errors.MalformedFileError(
            f"expected a positive finite number, got {value!r}", **where)
    return number


def is_skippable(error):
    """Whether `--skip_corrupt` may skip the video named by `error`."""
    return (isinstance(error, errors.DataError)
            and error.video_id is not None
            and not isinstance(error, errors.UnknownSubsetError))


class Skipper:
    """Applies the `--skip_corrupt` policy and remembers what was skipped.

    Args:
        skip_corrupt: skip (and report) bad videos instead of raising.

    Example:

    ```python
    skipper = Skipper(skip_corrupt=True)
    for video, record in skipper.map(build_record, videos, subset="train"):
        writer.write(record)
    print(skipper.summary())
    ```
    """

    def __init__(self, skip_corrupt=False):
        self.skip_corrupt = bool(skip_corrupt)
        self.items = []

    def skip_or_raise(self, error, subset=None):
        """Re-raises `error` unless skipping is on and it names one video."""
        if not (self.skip_corrupt and is_skippable(error)):
            raise error
        logging.warning("skipping video %r: %s", error.video_id, error)
        self.items.append({
            "video_id": error.video_id,
            "subset": subset,
            "error": type(error).__name__,
            "message": str(error),
        })

    def map(self, fn, items, subset=None, num_workers=1, on_skip=None):
        """`ordered_map` under the policy: yields what converted, in order.

        Shows a progress line on a terminal (`progress.Progress`).

        Args:
            fn: function of one item (see `ordered_map`).
            items: iterable of inputs.
            subset: subset recorded with skipped videos.
            num_workers: threads; 1 runs inline.
            on_skip: optional `fn(item, error)` called after a skip.

        Yields:
            `(item, result)` for the items whose `fn` succeeded.

        Raises:
            The first error of `fn` that may not be skipped (any error
            that is not a `DataError` naming a video is never skipped).
        """
        total = len(items) if hasattr(items, "__len__") else None
        with progress.Progress(total, label=subset or "") as bar:
            for item, result, error in ordered_map(fn, items, num_workers):
                bar.advance()
                if error is None:
                    yield item, result
                    continue
                self.skip_or_raise(error, subset)
                if on_skip is not None:
                    on_skip(item, error)

    def summary(self):
        """JSON-ready dict: total, counts per error type, and the items."""
        by_error = collections.Counter(i["error"] for i in self.items)
        return {"count": len(self.items),
                "by_error": dict(sorted(by_error.items())),
                "items": list(self.items)}


def ordered_map(fn, items, num_workers=1):
    """Maps `fn` over `items` in threads, yielding `(item, result, error)`.

    Results come back in input order (so output files are deterministic) and
    at most `2 * num_workers` items are in flight (so memory stays bounded
    however long `items` is). `fn`'s exceptions are returned, not raised, so
    the caller decides whether to skip or abort.

    Args:
        fn: function of one item; decoding/IO in it should release the GIL
            (file reads, OpenCV, PyAV do).
        items: iterable of inputs.
        num_workers: threads; 1 runs inline.

    Yields:
        `(item, result, None)` or `(item, None, exception)`.
    """
    if num_workers <= 1:
        for item in items:
            try:
                yield item, fn(item), None
            except Exception as e:  # handed to the caller, never swallowed
                yield item, None, e
        return
    window = collections.deque()
    with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
        def drain_one():
            item, future = window.popleft()
            error = future.exception()
            return item, (None if error else future.result()), error

        try:
            for item in items:
                window.append((item, pool.submit(fn, item)))
                if len(window) >= 2 * num_workers:
                    yield drain_one()
            while window:
                yield drain_one()
        finally:
            # On abort, do not start queued work (running items finish).
            for _, future in window:
                future.cancel()
