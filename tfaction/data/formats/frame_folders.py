"""Reading one video's frame folder (`image_%05d.jpg`, 1-indexed) with checks.

Used by the HMDB51/UCF101 frame-folder converter. Every expected file must
exist and be a complete, decodable JPEG; the folder must hold exactly the
declared number of frames for each pattern.
"""

import re

from tfaction import errors
from tfaction.data.formats import common
from tfaction.data.formats import jpeg

JPEG_CHECKS = ("decode", "header")

_PRINTF_INT = re.compile(r"%(0?\d*)d")


def pattern_regex(pattern):
    """Regex matching file names of a printf pattern such as `image_%05d.jpg`.

    Raises:
        ValueError: the pattern has not exactly one `%d`-style field.
    """
    parts = _PRINTF_INT.split(pattern)
    if len(parts) != 3:
        raise ValueError(f"frame pattern {pattern!r} must contain exactly one "
                         "%d field (e.g. image_%05d.jpg)")
    return re.compile(re.escape(parts[0]) + r"(\d+)" + re.escape(parts[2])
                      + r"\Z")


def _describe(indices):
    indices = sorted(indices)
    shown = ", ".join(str(i) for i in indices[:5])
    return shown + (", ..." if len(indices) > 5 else "")


def read_frames(folder, pattern, count, *, video_id, list_path=None,
                list_line=None, grayscale=False, check="decode"):
    """Reads and checks frames `pattern % 1 .. pattern % count` of a folder.

    Args:
        folder: the video's frame folder.
        pattern: printf file-name pattern, 1-indexed.
        count: number of frames the folder must hold for this pattern.
        video_id: the video (for errors).
        list_path, list_line: where `count` was declared (for errors).
        grayscale: decode as one channel (flow images).
        check: "decode" (decode every JPEG) or "header" (JPEG start and end
            markers only: faster, misses corrupt data inside the file).

    Returns:
        List of `count` JPEG byte strings, in frame order.

    Raises:
        MissingFrameError: the folder, or an expected frame (gap in the
            numbering) is missing, or a frame is unreadable/not a JPEG.
        FrameCountMismatchError: the folder holds a different number of
            frames (numbered 1..m) than declared.
    """
    if check not in JPEG_CHECKS:
        raise ValueError(f"check must be one of {JPEG_CHECKS}, got {check!r}")
    regex = pattern_regex(pattern)
    if not common.is_dir(folder):
        raise errors.MissingFrameError(
            f"frame folder {folder} not found (expected {count} files "
            f"{pattern})", path=folder, video_id=video_id)
    present = set()
    for name in common.listdir(folder):
        match = regex.match(name)
        if match:
            present.add(int(match.group(1)))
    expected = set(range(1, count + 1))
    missing, extra = expected - present, present - expected
    declared = dict(path=list_path, line=list_line, video_id=video_id)
    if (missing or extra) and present == set(range(1, len(present) + 1)):
        raise errors.FrameCountMismatchError(
            f"{folder} holds {len(present)} frame(s) {pattern}; the list "
            f"declares {count}", **declared)
    if missing:
        first = common.join(folder, pattern % min(missing))
        raise errors.MissingFrameError(
            f"missing frame(s) {_describe(missing)} of 1..{count} "
            f"({len(missing)} in all)", path=first, video_id=video_id)
    if extra:
        raise errors.FrameCountMismatchError(
            f"{folder} holds extra frame(s) {_describe(extra)} beyond the "
            f"declared {count} {pattern} (numbered from 1)", **declared)
    return read_numbered_frames(folder, pattern, range(1, count + 1),
                                video_id=video_id, check=check,
                                grayscale=grayscale)


def read_numbered_frames(folder, pattern, indices, *, video_id, check,
                         grayscale=False):
    """Reads frames `pattern % i` for i in `indices`, each checked.

    Args:
        folder: the frame folder.
        pattern: printf file pattern (`image_%05d.jpg`).
        indices: the frame numbers to read, in order.
        video_id: for messages.
        check: "decode" (decode every JPEG) or "markers" (SOI/EOI only).
        grayscale: the JPEGs are single-channel (flow).

    Returns:
        List of JPEG bytes.

    Raises:
        MissingFrameError: an unreadable file.
        DataError: not a (decodable) JPEG (see `jpeg.check_jpeg`).
    """
    frames = []
    for index in indices:
        path = common.join(folder, pattern % index)
        try:
            data = common.read_bytes(path)
        except Exception as e:  # OSError locally, OpError remotely
            raise errors.MissingFrameError(
                f"cannot read frame ({type(e).__name__}: {e})", path=path,
                video_id=video_id) from e
        if check == "decode":
            jpeg.check_jpeg(data, path=path, video_id=video_id,
                            grayscale=grayscale)
        else:
            jpeg.check_jpeg_markers(data, path=path, video_id=video_id)
        frames.append(data)
    return frames
