"""Exceptions raised by tfaction for bad input, bad configuration or missing deps.

Every user-facing failure is one of these. Each data error names where the
problem is (file, line, video id, key) and what was expected, so a user can fix
the input without reading tfaction's code.

Example:

>>> try:
...     raise SegmentError("end < start", path="gt.json", video_id="v1")
... except DataError as e:
...     print(e)
gt.json: video 'v1': end < start
"""


class TfactionError(Exception):
    """Base class of every exception tfaction raises on purpose."""


class ConfigError(TfactionError, ValueError):
    """An experiment config is invalid (unknown key, bad value, bad override)."""


class MissingDependencyError(TfactionError, ImportError):
    """An optional dependency needed for the requested feature is missing."""


class CheckpointWriteError(TfactionError, OSError):
    """Writing a checkpoint failed (disk full, file too large, I/O error).

    The message names the checkpoint and the last complete one, which a
    restarted run resumes from; the failed checkpoint's files are removed.
    """


class LostWorkerError(TfactionError, RuntimeError):
    """A multi-worker job lost a worker (killed, crashed, unreachable).

    The message names the lost worker, the step reached and the checkpoint
    a restart of every worker resumes from.
    """


class DataError(TfactionError, ValueError):
    """Input data is malformed. Subclasses name the specific problem.

    Args:
        message: what is wrong and what was expected.
        path: the offending file, if any.
        line: 1-based line number within `path`, if any.
        video_id: the offending video, if any.
        key: the offending key / field name, if any.
    """

    def __init__(self, message, *, path=None, line=None, video_id=None,
                 key=None):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.video_id = video_id
        self.key = key
        super().__init__(self._format())

    def _format(self):
        where = []
        if self.path is not None:
            where.append(self.path if self.line is None
                         else f"{self.path}:{self.line}")
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.video_id is not None:
            where.append(f"video {self.video_id!r}")
        if self.key is not None:
            where.append(f"key {self.key!r}")
        return ": ".join(where + [self.message])

    def __reduce__(self):
        # Keep keyword-only fields when the error crosses process boundaries.
        return (_rebuild_data_error,
                (type(self), self.message, self.path, self.line,
                 self.video_id, self.key))


def _rebuild_data_error(cls, message, path, line, video_id, key):
    return cls(message, path=path, line=line, video_id=video_id, key=key)


class MalformedFileError(DataError):
    """A JSON/CSV/list file cannot be parsed or lacks a required field."""


class MissingFrameError(DataError):
    """A frame (or flow) image is missing or cannot be read/decoded."""


class CorruptRecordError(DataError):
    """A TFRecord file is truncated or corrupt, or a record does not parse."""


class FrameCountMismatchError(DataError):
    """The number of frames on disk differs from the declared `num_frames`."""


class SegmentError(DataError):
    """A segment is outside [0, duration] or ends before it starts."""


class UnknownLabelError(DataError):
    """A label is not in the class list."""


class NonFiniteFeatureError(DataError):
    """A feature array contains NaN or inf."""


class FeatureShapeError(DataError):
    """A feature array has the wrong rank or feature dimension."""


class UnknownSubsetError(DataError):
    """A subset name is not one of the known subsets."""


class VideoDecodeError(DataError):
    """A video file cannot be opened or decoded."""
