"""Plain video files -> frames TFRecords (JPEG frames, optional optical flow).

Videos are found in one of three ways:

* a glob pattern (`/data/ucf/*/*.avi`) or a folder (every video file below
  it): the root is the folder (or the pattern's fixed leading folders) and
  the label is the first folder level below it, `<root>/<class>/<video>.mp4`
  (videos directly in the root have none);
* a list file (any other file): one video per line, `path [label]`, paths
  relative to `videos_root` (default: the list file's folder); label names
  are class names.

`video/id` is the path relative to the root without extension
(`brush_hair/clip_01`), `video/source` the path relative to the root.

Each video is decoded with PyAV, resampled to `fps` by timestamps (see
`video_decode`), resized so its short side is `short_side`, and stored as
JPEG `image/encoded` frames; with `flow="tvl1"` or `"farneback"` the flow
between consecutive output frames is stored as `flow/x/encoded`,
`flow/y/encoded` (n - 1 each, quantised as in `optical_flow`).

Example:

```python
convert_videos("/data/videos/*/*.mp4", "tfrecords/videos", fps=10,
               short_side=256, flow="farneback")
```
"""

import dataclasses
import os

import cv2

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data import schemas
from tfaction.data.formats import class_list as class_list_lib
from tfaction.data.formats import common
from tfaction.data.formats import jpeg
from tfaction.data.formats import optical_flow
from tfaction.data.formats import output
from tfaction.data.formats import runners
from tfaction.data.formats import video_decode

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".mpg", ".mpeg",
                    ".m4v", ".flv", ".wmv", ".3gp", ".ogv")
_GLOB_CHARS = "*?["


@dataclasses.dataclass
class VideoItem:
    """One video to convert."""

    path: str
    video_id: str
    source: str
    label: str = None
    list_path: str = None
    line: int = None


def _item(path, root, label, list_path=None, line=None):
    relative = os.path.relpath(path, root).replace(os.sep, "/")
    return VideoItem(path=path, video_id=os.path.splitext(relative)[0],
                     source=relative, label=label, list_path=list_path,
                     line=line)


def _glob_root(pattern):
    head = pattern
    for ch in _GLOB_CHARS:
        head = head.split(ch)[0]
    return os.path.dirname(head) or "."


def read_video_list(path, videos_root=None):
    """Reads a `path [label]` list file.

    Raises:
        MalformedFileError: a line with more than two fields (tab-separated
            lines may have spaces in the path).
    """
    path = str(path)
    root = videos_root or os.path.dirname(
        os.path.abspath(path) if common.is_local(path) else path)
    items = []
    for number, line in enumerate(
            common.read_text(path, what="video list").splitlines(), 1):
        if not line.strip():
            continue
        fields = (line.rstrip("\n").split("\t") if "\t" in line
                  else line.split())
        fields = [f.strip() for f in fields]
        if len(fields) > 2 or not fields[0]:
            raise errors.MalformedFileError(
                f"expected 'video_path [label]', got {line.strip()!r}",
                path=path, line=number)
        video_path = os.path.join(root, fields[0])
        items.append(_item(video_path, root,
                           fields[1] if len(fields) == 2 else None,
                           list_path=path, line=number))
    return items


def list_videos(input, videos_root=None, labels=True):
    """Lists the videos named by a glob, a folder or a list file.

    Args:
        input: glob pattern, folder, or list file (see module docstring).
        videos_root: root for relative paths in a list file.
        labels: False to ignore folder / list labels.

    Returns:
        List of `VideoItem`, sorted by video id.

    Raises:
        MalformedFileError: nothing found, a malformed list line, a repeated
            video id, or only some videos labelled.
    """
    input = str(input)
    if any(ch in input for ch in _GLOB_CHARS):
        root = _glob_root(input)
        paths = [p for p in filesystems.glob(input)
                 if filesystems.isfile(p)]
    elif filesystems.isdir(input):
        root = input
        paths = [common.join(folder, name)
                 for folder, _, files in filesystems.walk(input)
                 for name in files
                 if name.lower().endswith(VIDEO_EXTENSIONS)]
    elif filesystems.isfile(input):
        root, paths = None, None
    else:
        raise errors.MalformedFileError(
            "no such file, folder or glob match", path=input)
    if paths is None:
        items = read_video_list(input, videos_root)
    else:
        items = []
        for path in paths:
            # The class is the first folder below the root, if any.
            relative = os.path.relpath(path, root).split(os.sep)
            items.append(_item(path, root, relative[0]
                               if len(relative) > 1 else None))
    if not items:
        raise errors.MalformedFileError("no video file found", path=input)
    if not labels:
        for item in items:
            item.label = None
    seen = {}
    for item in items:
        if item.video_id in seen:
            raise errors.MalformedFileError(
                f"video id {item.video_id!r} is used by {seen[item.video_id]}"
                f" and {item.path}", path=item.list_path or input,
                line=item.line)
        seen[item.video_id] = item.path
    labelled = sum(item.label is not None for item in items)
    if 0 < labelled < len(items):
        unlabelled = next(i for i in items if i.label is None)
        raise errors.MalformedFileError(
            f"{labelled} of {len(items)} videos have a label but "
            f"{unlabelled.path} has none; label all or none",
            path=unlabelled.list_path or input, line=unlabelled.line)
    return sorted(items, key=lambda i: i.video_id)


@dataclasses.dataclass
class _Settings:
    fps: float
    short_side: int
    flow: str
    flow_bound: float
    jpeg_quality: int
    subset: str


def _convert_one(item, classes, settings):
    label_index = label_text = ()
    if item.label is not None:
        label_index = [classes.index(item.label, path=item.list_path,
                                     line=item.line, video_id=item.video_id)]
        label_text = [item.label]
    if not filesystems.isfile(item.path):
        raise errors.VideoDecodeError("video file not found", path=item.path,
                                      video_id=item.video_id)
    video = video_decode.DecodedVideo(item.path, settings.fps,
                                      settings.short_side, item.video_id)
    estimator = (None if settings.flow == "none"
                 else optical_flow.FlowEstimator(settings.flow))
    images, flow_x, flow_y = [], [], []
    prev_gray = None
    for frame in video:
        images.append(jpeg.encode_jpeg(frame, settings.jpeg_quality))
        if estimator is not None:
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            if prev_gray is not None:
                x, y = optical_flow.encode_flow_jpegs(
                    estimator(prev_gray, gray), settings.flow_bound,
                    settings.jpeg_quality)
                flow_x.append(x)
                flow_y.append(y)
            prev_gray = gray
    example = schemas.frames_example(
        item.video_id, num_frames=video.num_frames, fps=video.fps,
        duration=video.duration, label_index=label_index,
        label_text=label_text, images=images,
        flow_x=flow_x if estimator is not None else None,
        flow_y=flow_y if estimator is not None else None,
        subset=settings.subset, source=item.source)
    return runners.one_record(example.SerializeToString(deterministic=True))


def convert_videos(input, output_dir, *, fps=None, short_side=None,
                   flow="none", flow_bound=optical_flow.FLOW_BOUND,
                   jpeg_quality=95, videos_root=None, labels=True,
                   class_list=None, subset="train", num_shards=1,
                   skip_corrupt=False, verify=True, num_workers=1,
                   runner=None):
    """Decodes video files into frames TFRecords.

    Args:
        input: glob pattern, folder or list file (see module docstring).
        output_dir: output folder (see `output` for the layout).
        fps: output frame rate (resampled by timestamps); None keeps every
            frame at the stream's rate.
        short_side: resize so min(H, W) is this (None: keep the size).
        flow: "tvl1", "farneback" or "none".
        flow_bound: flow clipping bound in pixels for quantisation.
        jpeg_quality: JPEG quality of frames and flow images.
        videos_root: root for relative paths in a list file.
        labels: False to ignore folder / list labels.
        class_list: class list file imposing the label order; default the
            sorted label names.
        subset: subset name (shard prefix).
        num_shards: number of shards.
        skip_corrupt: skip (and report) undecodable videos instead of
            raising.
        verify: read every written shard back before committing.
        num_workers: threads decoding videos.
        runner: a `runners.Runner` (None: this process); a Beam runner
            writes the same records.

    Returns:
        The dataset_info dict (also written to `dataset_info.json`).

    Raises:
        MalformedFileError, UnknownLabelError, VideoDecodeError,
        CorruptRecordError: nothing is written.

    Example:

    ```python
    info = convert_videos("videos.txt", "tfrecords/clips", fps=25,
                          short_side=256, flow="tvl1", subset="test")
    ```
    """
    if flow not in optical_flow.FLOW_METHODS:
        raise ValueError(f"flow must be one of {optical_flow.FLOW_METHODS}, "
                         f"got {flow!r}")
    if not subset or "/" in subset:
        raise ValueError(f"invalid subset name {subset!r}")
    items = list_videos(input, videos_root, labels)
    names = sorted({i.label for i in items if i.label is not None})
    if class_list is not None:
        classes = class_list_lib.read_class_list(class_list)
    else:
        classes = class_list_lib.ClassList(names)
    settings = _Settings(fps=fps, short_side=short_side, flow=flow,
                         flow_bound=float(flow_bound),
                         jpeg_quality=int(jpeg_quality), subset=subset)
    skipper = common.Skipper(skip_corrupt)
    with output.StagedOutput(output_dir, verify=verify) as out:
        runners.write_subset(
            out, subset, lambda item: _convert_one(item, classes, settings),
            items, skipper, num_shards=num_shards, num_workers=num_workers,
            runner=runner)
        info = {
            "format": "videos",
            "schema": "frames",
            "modalities": ["rgb"] + ([] if flow == "none" else ["flow"]),
            "sources": output.source_paths(input=input,
                                           videos_root=videos_root,
                                           class_list=class_list),
            "fps": fps,
            "short_side": short_side,
            "jpeg_quality": int(jpeg_quality),
            "flow": {"method": flow, "bound": float(flow_bound),
                     "encoding": ("uint8 grey JPEG per component: "
                                  "q = clip(round((f + bound) / (2 * bound)"
                                  " * 255), 0, 255); f = 0 -> 128"),
                     "count": "num_frames - 1"},
            "labelled": bool(names),
            "skipped": skipper.summary(),
        }
        return out.commit(info, classes if names or class_list else None)
