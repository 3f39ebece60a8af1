"""Per-video info CSVs (BSN's `video_info_new.csv` and similar): subset and
timing of each video.

BSN's ActivityNet 1.3 release has the columns `video,numFrame,seconds,fps,
rfps,subset,featureFrame`. The rate used is the real one, `numFrame /
seconds` (BSN's `rfps`), consistent with the duration; the nominal `fps`
column is used only when the frame count or duration is absent.

Example:

```python
rows = read_video_info_csv("video_info_new.csv", required=BSN_CSV_COLUMNS)
print(rows["v_QOlSCBRmfWY"].subset, rows["v_QOlSCBRmfWY"].fps)
```
"""

import dataclasses

from tfaction import errors
from tfaction.data.formats import common

BSN_CSV_COLUMNS = ("video", "numFrame", "seconds", "fps", "rfps", "subset",
                   "featureFrame")


@dataclasses.dataclass
class VideoInfo:
    """One row of a video-info CSV (all fields optional but `video`).

    Attributes:
        video: video id as written in the file (BSN: `v_<id>`).
        line: line of the row in the file (for error messages).
        subset: lower-cased subset name, or None.
        duration: seconds, or None.
        fps: frames per second, or None.
        num_frames: frames of the video, or None.
        feature_frames: frames covered by the features (BSN's
            `featureFrame`), or None.
    """

    video: str
    line: int
    subset: str = None
    duration: float = None
    fps: float = None
    num_frames: int = None
    feature_frames: int = None


def read_video_info_csv(path, *, required=("video",)):
    """Reads a per-video info CSV (BSN's `video_info_new.csv` or similar).

    Recognised columns: `video` (id), `subset`, `seconds` or `duration`,
    `numFrame` or `num_frames`, `fps` (used only when the frame count and
    duration are absent), `featureFrame`. fps is `numFrame / seconds` when both
    are present (BSN's `rfps`: the real rate, consistent with the duration).

    Args:
        path: CSV file with a header row.
        required: columns that must exist.

    Returns:
        Dict video id (as in the file) -> `VideoInfo`.

    Raises:
        MalformedFileError: missing column, bad number or repeated video
            (naming file and line).

    Example:

    >>> rows = read_video_info_csv("video_info_new.csv")  # doctest: +SKIP
    >>> rows["v_QOlSCBRmfWY"].duration  # doctest: +SKIP
    82.73
    """
    path = str(path)
    text = common.read_text(path, what="video info CSV")
    columns, lines = common.csv_dict_rows(text, path)
    for column in required:
        if column not in columns:
            raise errors.MalformedFileError(
                f"missing column {column!r} (columns: {columns})", path=path,
                line=1, key=column)
    rows = {}
    for line, row in lines:
        if None in row or None in row.values():
            raise errors.MalformedFileError(
                f"expected {len(columns)} comma-separated fields "
                f"{columns}, got {row}", path=path, line=line)
        video = (row.get("video") or "").strip()
        if not video:
            raise errors.MalformedFileError(
                f"empty or missing 'video' field; expected a video id, got "
                f"{row}", path=path, line=line, key="video")
        if video in rows:
            raise errors.MalformedFileError(
                f"video {video!r} repeats line {rows[video].line}",
                path=path, line=line, key="video")
        rows[video] = _row_info(row, video=video, path=path, line=line)
    return rows


def _row_info(row, *, video, path, line):
    """The `VideoInfo` of one checked CSV row."""
    where = dict(path=path, line=line, video_id=video)

    def field(*names, kind=float):
        for name in names:
            if row.get(name, "").strip():
                value = common.parse_positive(row[name], key=name, **where)
                if kind is int:
                    if value != int(value):
                        raise errors.MalformedFileError(
                            f"expected an integer, got {row[name]!r}",
                            key=name, **where)
                    return int(value)
                return value
        return None

    info = VideoInfo(video=video, line=line,
                     subset=(row.get("subset") or "").strip().lower() or None,
                     duration=field("seconds", "duration"),
                     num_frames=field("numFrame", "num_frames", kind=int),
                     feature_frames=field("featureFrame", kind=int))
    if info.num_frames is not None and info.duration is not None:
        info.fps = info.num_frames / info.duration
    else:
        info.fps = field("fps")
    return info


def fill_from_video_info(videos, info_rows):
    """Fills missing duration/fps/num_frames of annotated videos in place.

    Args:
        videos: `VideoAnnotation`s (see `activitynet_annotations`).
        info_rows: `read_video_info_csv` result; a video's row is found by
            its id or by `v_<id>` (BSN's file names).

    Example:

    ```python
    fill_from_video_info(videos, read_video_info_csv("video_info.csv"))
    ```
    """
    for video in videos:
        row = info_rows.get(video.video_id) or info_rows.get(
            "v_" + video.video_id)
        if row is None:
            continue
        if video.duration is None:
            video.duration = row.duration
        if video.fps is None:
            video.fps = row.fps
        if video.num_frames is None:
            video.num_frames = row.num_frames
