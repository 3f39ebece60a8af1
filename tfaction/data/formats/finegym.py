"""FineGym events (annotation JSON + Gym99 / Gym288 element lists + videos)
-> frame-label records for CARL.

Input, as FineGym publishes it and CARL's `finegym_process.py` reads it:

* the annotation file `finegym_annotation_info_v1.0.json`::

      {"<youtube_id>": {
          "E_<es>_<ee>": {"event": 1, "timestamps": [[t0, t1]],
                          "segments": {"A_<as>_<ae>": {
                              "stages": 1, "timestamps": [[s0, s1], ...]},
                                       ...} or null}, ...}, ...}

  event timestamps are seconds in the YouTube video, sub-action
  (`segments`) timestamps seconds from the event's start;
* element lists (`gym99_train_element_v1.0.txt`, `gym99_val_element.txt`,
  the Gym288 ones alike), one labelled sub-action per line:
  `<youtube_id>_E_<es>_<ee>_A_<as>_<ae> <element id>`; one subset per list
  (from the file name, `gym99_val_element.txt` -> `val`, or `subsets`);
* a folder of videos (`video_layout`): `raw`, the downloaded YouTube videos
  `<youtube_id>.mp4|.mkv|.webm` (the first of these that exists, as the
  authors look them up), each event cut out at its timestamps here; or
  `events`, event clips already cut, `<youtube_id>_E_<es>_<ee>.mp4` (the
  authors' `processed_videos/`); `auto` tells them apart by the file names.

Output: one record per event that has at least one labelled sub-action
(an event named by some list line; the other events are counted), in the
frame-labels schema (`schemas.frame_labels_example`): context `video/id` =
`<youtube_id>_E_<es>_<ee>`, `video/num_frames`, `video/fps`,
`video/duration`, `video/subset`, `video/source` (the video file's name),
`clip/label/index` / `clip/label/text` = the annotation's `event` (the
gymnastics event type, named `event_<id>` in `classes.txt`); feature lists
`image/encoded` (JPEG frames) and `frame/label/index`. Events keep the order
in which their list first names them. An event named by the lists of two
subsets (265 of Gym99 v1.1's events are in train and val) is written to
each, labelled by that subset's elements only, as the authors' two pickles.

Frames, as the authors' ffmpeg commands make them (`-ss t0 -to t1`,
`scale=640:360`, `fps=25`), decoded with PyAV (no ffmpeg binary): frame k
shows the video at `t0 + k / fps` (the decoded frame whose timestamp is
nearest, the earlier one on ties, the rule of `video_decode`), for every k
with `t0 + k / fps < t1`; each is scaled to `width` x `height` (aspect not
kept) with swscale's bicubic filter, the default of ffmpeg's `scale`. Raw
videos are entered by seeking to the keyframe before `t0`, so only the
events are decoded, not the hours of broadcast around them. Event clips are
decoded whole, resampled to `fps` the same way. (The authors' stream copy,
`-ss` with `-c copy`, can only start at a keyframe, so their clips may
begin up to a keyframe interval before `t0`, depending on the file and the
ffmpeg version; here the cut is exact, which is what the sub-action
timestamps, relative to `t0`, describe.)

Frame labels, as `finegym_process.py` computes them: -1 everywhere, then for
each labelled sub-action, in the order of the event's `segments`, the
element id over frames `[int(s0 * fps), int(s1 * fps)]` (both included,
clipped to the event's frames; a later sub-action overwrites an earlier
one) where `[s0, s1]` is the sub-action's LAST timestamp pair (the authors
use `timestamps[-1]`; sub-actions with several pairs are counted). The
event's first timestamp pair is its span (events with several are
counted).

Checks, each error naming file and line or JSON key and the event: a list
line that is not `<element id> <integer label>`, an element id that does
not parse, a label outside `[0, num_element_classes)` (99 for `gym99_*`
lists, 288 for `gym288_*`, else given), an element listed twice; an event or
sub-action missing from the annotation file; an `event` that is not an
integer >= 0; timestamps that are not `[start, end]` pairs with `0 <= start
<= end` (events: `start < end`). Per event (skipped and reported with
`skip_corrupt`, else the conversion stops): no video file, a video that
does not decode, an event outside its video.

Example:

```python
info = convert_finegym(
    "finegym_annotation_info_v1.0.json",
    "gym99_train_element_v1.0.txt,gym99_val_element.txt",
    "FineGym_Raw_database", "data/finegym/records", num_workers=8)
print(info["subsets"]["val"]["num_records"], info["num_element_classes"])
```
"""

import collections
import dataclasses
import math
import os
import re

import av
import numpy as np

from tfaction import errors
from tfaction.data import schemas
from tfaction.data.formats import ava
from tfaction.data.formats import class_list as class_list_lib
from tfaction.data.formats import common
from tfaction.data.formats import jpeg
from tfaction.data.formats import output
from tfaction.data.formats import runners
from tfaction.data.formats import tcc
from tfaction.data.formats import video_decode

FPS = 25.0
FRAME_WIDTH = 640
FRAME_HEIGHT = 360
LAYOUTS = ("auto", "raw", "events")
# The authors' lookup order of a YouTube video's file.
RAW_EXTENSIONS = (".mp4", ".mkv", ".webm")
# ffmpeg's `scale` filter default.
INTERPOLATION = "BICUBIC"
# Seek this far before a cut: the keyframe found is then before it even
# when a demuxer's index is coarse.
SEEK_MARGIN = 1.0

_ELEMENT_ID = re.compile(r"^(?P<video>.+)_(?P<event>E_[^_\s]+_[^_\s]+)"
                         r"_(?P<action>A_[^_\s]+_[^_\s]+)$")
_CLASSES_IN_NAME = re.compile(r"(?i)(?:^|[_-])gym(\d+)(?=[_.-])")


def event_class_name(event):
    """The `classes.txt` name of an annotation `event` id.

    Example:

    >>> event_class_name(3)
    'event_3'
    """
    return f"event_{int(event)}"


def parse_element_id(text):
    """Splits `<youtube_id>_E_<es>_<ee>_A_<as>_<ae>` into its parts.

    Args:
        text: an element id of a list line.

    Returns:
        `(youtube_id, event_key, action_key)`, or None when `text` does not
        have that form.

    Example:

    >>> parse_element_id("0LtLS9wROrk_E_002407_002435_A_0003_0005")
    ('0LtLS9wROrk', 'E_002407_002435', 'A_0003_0005')
    """
    match = _ELEMENT_ID.match(text)
    if match is None:
        return None
    return match.group("video"), match.group("event"), match.group("action")


def classes_from_list_names(paths):
    """The element class count that FineGym list names state (gym99_...).

    Args:
        paths: element list files.

    Returns:
        The count when every name states the same one, else None.

    Example:

    >>> classes_from_list_names(["a/gym288_train_element_v1.1.txt"])
    288
    """
    counts = set()
    for path in paths:
        match = _CLASSES_IN_NAME.search(os.path.basename(str(path)))
        counts.add(int(match.group(1)) if match else None)
    return counts.pop() if len(counts) == 1 else None


@dataclasses.dataclass(frozen=True)
class Element:
    """One line of an element list: a labelled sub-action.

    Attributes:
        youtube_id, event_key, action_key: the parts of its id.
        label: the element class (Gym99 / Gym288 id).
        path, line: where it is listed.
    """

    youtube_id: str
    event_key: str
    action_key: str
    label: int
    path: str
    line: int

    @property
    def event_id(self):
        """`<youtube_id>_E_<es>_<ee>`, the record's `video/id`."""
        return f"{self.youtube_id}_{self.event_key}"

    @property
    def element_id(self):
        """The id as the list writes it."""
        return f"{self.event_id}_{self.action_key}"


def read_element_list(path, num_classes):
    """Reads a Gym99 / Gym288 element list.

    Args:
        path: the list file (`<element id> <label>` per line; blank lines
            are ignored).
        num_classes: element classes; labels must be in `[0, num_classes)`.

    Returns:
        The `Element`s in file order.

    Raises:
        MalformedFileError: a line without exactly two fields, an id not
            of the form `<youtube_id>_E_<es>_<ee>_A_<as>_<ae>`, a label
            that is not an integer, an id listed twice.
        UnknownLabelError: a label outside `[0, num_classes)`.

    Example:

    ```python
    elements = read_element_list("gym99_val_element.txt", 99)
    print(elements[0].event_id, elements[0].label)
    # 0LtLS9wROrk_E_002407_002435 78
    ```
    """
    path = str(path)
    text = common.read_text(path, what="element list")
    elements, lines = [], {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = dict(path=path, line=number)
        if len(fields) != 2:
            raise errors.MalformedFileError(
                f"expected '<youtube_id>_E_<start>_<end>_A_<start>_<end> "
                f"<label>', got {line.strip()!r}", **where)
        element_id, label_text = fields
        parts = parse_element_id(element_id)
        if parts is None:
            raise errors.MalformedFileError(
                f"element id {element_id!r} is not of the form "
                "<youtube_id>_E_<start>_<end>_A_<start>_<end>", key="id",
                **where)
        if not re.fullmatch(r"[+-]?\d+", label_text):
            raise errors.MalformedFileError(
                f"label {label_text!r} is not an integer", key="label",
                video_id=element_id, **where)
        label = int(label_text)
        if not 0 <= label < num_classes:
            raise errors.UnknownLabelError(
                f"element label {label} is outside [0, {num_classes}) "
                f"({num_classes} element classes)", key="label",
                video_id=element_id, **where)
        if element_id in lines:
            raise errors.MalformedFileError(
                f"element {element_id!r} repeats line {lines[element_id]}",
                key="id", **where)
        lines[element_id] = number
        elements.append(Element(*parts, label=label, path=path,
                                line=number))
    return elements


@dataclasses.dataclass(frozen=True)
class SubAction:
    """A labelled sub-action of an event.

    Attributes:
        key: its `segments` key (`A_<as>_<ae>`).
        start, end: its last timestamp pair, seconds from the event start.
        label: the element class.
        num_pairs: how many timestamp pairs it has (the last is used).
    """

    key: str
    start: float
    end: float
    label: int
    num_pairs: int


@dataclasses.dataclass(frozen=True)
class Event:
    """One event to convert.

    Attributes:
        youtube_id, event_key: where it is in the annotation file.
        subset: its subset (that of the lists naming it).
        label: the annotation's `event` (event type).
        start, end: its first timestamp pair, seconds in the YouTube video.
        num_pairs: how many timestamp pairs it has.
        sub_actions: its labelled `SubAction`s, in `segments` order.
    """

    youtube_id: str
    event_key: str
    subset: str
    label: int
    start: float
    end: float
    num_pairs: int
    sub_actions: tuple

    @property
    def event_id(self):
        """`<youtube_id>_E_<es>_<ee>`, the record's `video/id`."""
        return f"{self.youtube_id}_{self.event_key}"


def read_annotations(path):
    """Reads `finegym_annotation_info_v1.0.json` (checked lazily per event).

    Args:
        path: the annotation file.

    Returns:
        The JSON object `{youtube_id: {event_key: event}}`.

    Raises:
        MalformedFileError: missing, invalid JSON (with its line), a
            repeated key, or not an object of objects.

    Example:

    >>> annotations = read_annotations(
    ...     "finegym_annotation_info_v1.0.json")  # doctest: +SKIP
    """
    path = str(path)
    data = common.read_json(path, what="FineGym annotation file")
    if not isinstance(data, dict):
        raise errors.MalformedFileError(
            f"expected an object {{youtube_id: {{event_id: ...}}}}, got "
            f"{type(data).__name__}", path=path)
    for youtube_id, events in data.items():
        if not isinstance(events, dict):
            raise errors.MalformedFileError(
                f"expected an object {{event_id: event}}, got "
                f"{type(events).__name__}", path=path, key=youtube_id)
    return data


def _pairs(value, *, path, key, video_id, strict):
    """The `[[start, end], ...]` pairs of a `timestamps` entry."""
    where = dict(path=path, key=key, video_id=video_id)
    if not isinstance(value, list) or not value:
        raise errors.MalformedFileError(
            f"expected a non-empty list of [start, end] pairs, got "
            f"{value!r}", **where)
    pairs = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise errors.MalformedFileError(
                f"expected a [start, end] pair, got {pair!r}", **where)
        start, end = (common.parse_number(v, **where) for v in pair)
        if not (math.isfinite(start) and math.isfinite(end)
                and 0 <= start <= end and (start < end or not strict)):
            relation = "<" if strict else "<="
            raise errors.SegmentError(
                f"timestamps [{start}, {end}]: expected finite seconds with "
                f"0 <= start {relation} end", **where)
        pairs.append((start, end))
    return pairs


def _event(annotations, elements, *, subset, path):
    """The `Event` of one event's elements (one subset, in list order)."""
    first = elements[0]
    event_id = first.event_id
    where = dict(path=first.path, line=first.line, video_id=event_id)
    video = annotations.get(first.youtube_id)
    if video is None:
        raise errors.MalformedFileError(
            f"YouTube video {first.youtube_id!r} is not in the annotation "
            f"file {path}", key=first.youtube_id, **where)
    entry = video.get(first.event_key)
    if entry is None:
        raise errors.MalformedFileError(
            f"event {first.event_key!r} of {first.youtube_id!r} is not in "
            f"the annotation file {path}", key=first.event_key, **where)
    key = f"{first.youtube_id}.{first.event_key}"
    at = dict(path=path, video_id=event_id)
    if not isinstance(entry, dict):
        raise errors.MalformedFileError(
            f"expected an event object, got {type(entry).__name__}", key=key,
            **at)
    label = entry.get("event")
    if isinstance(label, bool) or not isinstance(label, int) or label < 0:
        raise errors.MalformedFileError(
            f"expected an integer event type >= 0, got {label!r}",
            key=f"{key}.event", **at)
    spans = _pairs(entry.get("timestamps"), key=f"{key}.timestamps",
                   strict=True, **at)
    segments = entry.get("segments")
    if segments is not None and not isinstance(segments, dict):
        raise errors.MalformedFileError(
            f"expected an object {{sub_action_id: sub-action}} or null, got "
            f"{type(segments).__name__}", key=f"{key}.segments", **at)
    segments = segments or {}
    for element in elements:
        if element.action_key not in segments:
            raise errors.MalformedFileError(
                f"sub-action {element.action_key!r} is not in the "
                f"'segments' of event {key} in {path} (it has "
                f"{len(segments)} sub-action(s))",
                key=f"{key}.segments.{element.action_key}",
                path=element.path, line=element.line, video_id=event_id)
    labels = {e.action_key: e.label for e in elements}
    sub_actions = []
    for action_key, segment in segments.items():
        if action_key not in labels:
            continue
        seg_key = f"{key}.segments.{action_key}"
        if not isinstance(segment, dict):
            raise errors.MalformedFileError(
                f"expected a sub-action object, got "
                f"{type(segment).__name__}", key=seg_key, **at)
        pairs = _pairs(segment.get("timestamps"), key=f"{seg_key}.timestamps",
                       strict=False, **at)
        sub_actions.append(SubAction(action_key, *pairs[-1],
                                     label=labels[action_key],
                                     num_pairs=len(pairs)))
    return Event(first.youtube_id, first.event_key, subset, label,
                 *spans[0], num_pairs=len(spans),
                 sub_actions=tuple(sub_actions))


def events_of_list(annotations, elements, *, subset, path):
    """The events a subset's elements label, in order of first mention.

    Args:
        annotations: `read_annotations` result.
        elements: the subset's `Element`s (list order).
        subset: the subset name.
        path: the annotation file (for errors).

    Returns:
        `Event`s.

    Raises:
        MalformedFileError: an event or sub-action missing from the
            annotation file, or malformed there.
        SegmentError: timestamps that are not `0 <= start <= end`.

    Example:

    ```python
    data = read_annotations("finegym_annotation_info_v1.0.json")
    val = events_of_list(data, read_element_list("gym99_val_element.txt",
                                                 99),
                         subset="val", path="finegym_annotation_info_v1.0"
                         ".json")
    print(val[0].event_id, val[0].start, len(val[0].sub_actions))
    ```
    """
    grouped = collections.OrderedDict()
    for element in elements:
        grouped.setdefault(element.event_id, []).append(element)
    return [_event(annotations, group, subset=subset, path=path)
            for group in grouped.values()]


def event_frame_labels(num_frames, sub_actions, fps=FPS):
    """Per-frame element labels of an event, as `finegym_process.py`.

    Args:
        num_frames: frames of the event.
        sub_actions: its labelled `SubAction`s, in `segments` order.
        fps: frame rate of the frames.

    Returns:
        `(labels, past)`: int64 [num_frames] labels (-1 outside the
        sub-actions), and the keys of the sub-actions that end after the
        last frame (clipped).

    Example:

    >>> labels, past = event_frame_labels(
    ...     6, [SubAction("A_1_2", 0.04, 0.12, 7, 1)], fps=25)
    >>> labels.tolist(), past
    ([-1, 7, 7, 7, -1, -1], [])
    """
    labels = np.full(num_frames, -1, np.int64)
    past = []
    for action in sub_actions:
        lo, hi = int(action.start * fps), int(action.end * fps) + 1
        labels[lo:hi] = action.label
        if hi > num_frames:
            past.append(action.key)
    return labels, past


# --- Decoding ---------------------------------------------------------------
def _decoded_frames(container, stream, seek_to, not_after):
    """The decoded frames, from the keyframe at or before `seek_to`.

    Falls back to decoding from the file's start when the demuxer lands
    after `not_after` (a seek index too coarse to go back far enough).
    """
    if seek_to is not None:
        container.seek(max(0, int(seek_to / stream.time_base)),
                       stream=stream)
    frames = iter(container.decode(stream))
    first = next(frames, None)
    if (seek_to is not None and first is not None
            and first.time is not None and first.time > not_after):
        container.seek(0)
        frames = iter(container.decode(stream))
        first = next(frames, None)
    if first is not None:
        yield first
        yield from frames


def _check_not_truncated(container, stream, decoded, fail):
    """Raises when a file decodes to much less than it declares.

    MKV / WebM files cut short decode what is left without an error; the
    thresholds are `video_decode`'s.
    """
    if stream.duration and stream.time_base:
        declared = float(stream.duration * stream.time_base)
    elif container.duration:  # microseconds, may include audio
        declared = container.duration / av.time_base
    else:
        return
    if (decoded < video_decode.TRUNCATED_FRACTION * declared
            and declared - decoded > video_decode.TRUNCATED_SECONDS):
        raise fail(f"decoded only {decoded:.2f} s of the {declared:.2f} s "
                   "the file declares; it is probably truncated")


def decode_frames(path, *, fps=FPS, width=FRAME_WIDTH, height=FRAME_HEIGHT,
                  start=0.0, end=None, video_id=None):
    """Decodes a video (or a cut of it) with PyAV, resampled and resized.

    Output frame k is the decoded frame whose timestamp is nearest to
    `start + k / fps` (the earlier one on ties; times from the stream's
    start), scaled to `width` x `height` with swscale's bicubic filter.
    With `end`, frames k with `start + k / fps < end` (at least one); else
    every k up to the end of the video.

    Args:
        path: local video file.
        fps: output frame rate.
        width, height: output frame size.
        start: first output time, seconds.
        end: end of the cut, seconds, or None (to the video's end).
        video_id: the event (for errors).

    Yields:
        RGB uint8 [height, width, 3] frames.

    Raises (while iterating):
        VideoDecodeError: the file does not open, has no video stream,
            fails to decode, or (whole videos) decodes to less than half
            of the duration it declares (truncated).
        SegmentError: the cut starts or ends after the video's last frame.

    Example:

    ```python
    frames = list(decode_frames("0LtLS9wROrk.mp4", start=2407.04,
                                end=2435.28))  # 706 frames at 25 fps
    ```
    """
    path = str(path)

    def fail(message, cause=None):
        detail = f" ({type(cause).__name__}: {cause})" if cause else ""
        return errors.VideoDecodeError(message + detail, path=path,
                                       video_id=video_id)

    try:
        container = av.open(path)
    except Exception as e:  # FileNotFoundError, av.error.*Error
        raise fail("cannot open video", e) from e
    with container:
        if not container.streams.video:
            raise fail("file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        origin = (float(stream.start_time * stream.time_base)
                  if stream.start_time is not None else 0.0)
        first = origin + start  # time of output frame 0
        count = (None if end is None
                 else max(1, math.ceil((end - start) * fps - 1e-6)))
        seek_to = first - SEEK_MARGIN if start > SEEK_MARGIN else None
        out, prev_t, prev, image, step = 0, None, None, None, 0.0

        def emit():
            nonlocal out, image
            if image is None:
                image = prev.reformat(width=width, height=height,
                                      format="rgb24",
                                      interpolation=INTERPOLATION
                                      ).to_ndarray()
            out += 1
            return image

        try:
            for i, frame in enumerate(_decoded_frames(container, stream,
                                                      seek_to, first)):
                if frame.time is not None:
                    t = float(frame.time)
                elif seek_to is None and rate:
                    t = origin + i / float(rate)
                else:
                    raise fail("a frame has no timestamp; cannot cut the "
                               "video by time")
                if prev is not None:
                    t = max(t, prev_t)  # tolerate non-monotonic stamps
                    step = t - prev_t
                    middle = (prev_t + t) / 2
                    while ((count is None or out < count)
                           and first + out / fps <= middle):
                        yield emit()
                    if count is not None and out >= count:
                        return
                prev_t, prev, image = t, frame, None
        except errors.DataError:
            raise
        except Exception as e:  # av.error.InvalidDataError, ...
            raise fail("video stream fails to decode", e) from e
        if prev is None:
            raise fail("no frame could be decoded")
        video_end = prev_t + (1.0 / float(rate) if rate else step)
        where = dict(path=path, video_id=video_id, key="timestamps")
        if end is not None and first >= video_end:
            raise errors.SegmentError(
                f"the cut [{start:.3f}, {end:.3f}] s starts after the "
                f"video's end ({video_end - origin:.3f} s)", **where)
        if end is None:  # a whole clip: is it all there?
            _check_not_truncated(container, stream, video_end - origin, fail)
        # The last frame lasts one frame period (the video's end).
        while (count is None or out < count) and (
                first + out / fps < video_end):
            yield emit()
        if count is not None and out < count:
            raise errors.SegmentError(
                f"the cut [{start:.3f}, {end:.3f}] s ends after the video's "
                f"end ({video_end - origin:.3f} s)", **where)


# --- Conversion -------------------------------------------------------------
def _video_index(videos_root):
    """Video files of the folder: file stem -> the path to use."""
    def preference(path):
        ext = os.path.splitext(path)[1].lower()
        order = (RAW_EXTENSIONS.index(ext) if ext in RAW_EXTENSIONS
                 else len(RAW_EXTENSIONS))
        return order, path

    return {stem: min(paths, key=preference)
            for stem, paths in ava.index_videos(videos_root).items()}


def detect_layout(index, events, videos_root):
    """`raw` or `events` from the file names of the videos folder.

    Args:
        index: file stem -> path (`_video_index`).
        events: the `Event`s to convert.
        videos_root: the folder (for errors).

    Returns:
        `events` when some file is named after an event, else `raw`.

    Raises:
        ConfigError: files of both kinds are present.

    Example:

    ```python
    layout = detect_layout(_video_index("processed_videos"), events,
                           "processed_videos")  # "events"
    ```
    """
    clip = next((e for e in events if e.event_id in index), None)
    whole = next((e for e in events if e.youtube_id in index), None)
    if clip is not None and whole is not None:
        raise errors.ConfigError(
            f"{videos_root} holds both event clips ({index[clip.event_id]}) "
            f"and whole videos ({index[whole.youtube_id]}); pass "
            "--video_layout=raw or --video_layout=events")
    return "events" if clip is not None else "raw"


@dataclasses.dataclass(frozen=True)
class _Settings:
    layout: str
    index: dict
    videos_root: str
    fps: float
    width: int
    height: int
    jpeg_quality: int


def _convert_event(event, settings):
    """The record of one event, its stats as `extra`."""
    stem = event.event_id if settings.layout == "events" else event.youtube_id
    path = settings.index.get(stem)
    if path is None:
        expected = (f"the event clip {event.event_id}.mp4 "
                    "(--video_layout=events)"
                    if settings.layout == "events" else
                    f"the YouTube video {event.youtube_id}.mp4, .mkv or "
                    ".webm (--video_layout=raw)")
        raise errors.VideoDecodeError(
            f"no video file for this event: expected {expected} in the "
            "videos folder; --skip_corrupt skips (and lists) the events "
            "whose video is missing", path=settings.videos_root,
            video_id=event.event_id)
    cut = ({} if settings.layout == "events"
           else {"start": event.start, "end": event.end})
    images = [jpeg.encode_jpeg(frame, settings.jpeg_quality)
              for frame in decode_frames(
                  path, fps=settings.fps, width=settings.width,
                  height=settings.height, video_id=event.event_id, **cut)]
    labels, past = event_frame_labels(len(images), event.sub_actions,
                                      settings.fps)
    example = schemas.frame_labels_example(
        event.event_id, images=images, frame_labels=labels,
        fps=settings.fps, duration=len(images) / settings.fps,
        subset=event.subset, label_index=[event.label],
        label_text=[event_class_name(event.label)],
        source=os.path.basename(path))
    stats = {"num_frames": len(images),
             "labelled_frames": int((labels >= 0).sum()),
             "past_end": [{"video_id": event.event_id, "sub_action": key,
                           "num_frames": len(images)} for key in past]}
    return runners.one_record(example.SerializeToString(deterministic=True),
                              stats)


def _group_lists(element_lists, subsets):
    """{subset: [list paths]} in input order."""
    paths = common.parse_list_flag(element_lists)
    if not paths:
        raise ValueError("no element list given")
    names = common.parse_list_flag(subsets)
    if names and len(names) != len(paths):
        raise ValueError(f"--subsets needs one name per element list, got "
                         f"{names} for {paths}")
    grouped = collections.OrderedDict()
    for i, path in enumerate(paths):
        subset = names[i] if names else tcc.subset_name(path)
        if not subset or "/" in subset:
            raise ValueError(f"invalid subset name {subset!r} for {path}")
        grouped.setdefault(subset, []).append(path)
    return grouped


def _read_subset_elements(paths, num_classes):
    """The elements of a subset's lists; an id in two lists is an error."""
    elements, first = [], {}
    for path in paths:
        for element in read_element_list(path, num_classes):
            seen = first.get(element.element_id)
            if seen is not None:
                raise errors.MalformedFileError(
                    f"element {element.element_id!r} is also listed in "
                    f"{seen.path}:{seen.line} (same subset)",
                    path=element.path, line=element.line, key="id")
            first[element.element_id] = element
            elements.append(element)
    return elements


def _new_stats():
    return {"num_events": 0, "num_frames": 0, "min_frames": None,
            "max_frames": None, "labelled_frames": 0,
            "labelled_sub_actions": 0, "events_per_class":
            collections.Counter(), "element_classes": set()}


def _add_stats(stats, event, result):
    n = result["num_frames"]
    stats["num_events"] += 1
    stats["num_frames"] += n
    stats["min_frames"] = n if stats["min_frames"] is None else min(
        stats["min_frames"], n)
    stats["max_frames"] = max(stats["max_frames"] or 0, n)
    stats["labelled_frames"] += result["labelled_frames"]
    stats["labelled_sub_actions"] += len(event.sub_actions)
    stats["events_per_class"][event_class_name(event.label)] += 1
    stats["element_classes"].update(a.label for a in event.sub_actions)


def _finish_stats(stats):
    out = dict(stats)
    out["unlabelled_frames"] = stats["num_frames"] - stats["labelled_frames"]
    out["events_per_class"] = dict(sorted(stats["events_per_class"].items()))
    out["element_classes"] = len(stats["element_classes"])
    return out


def convert_finegym(annotations, element_lists, videos_root, output_dir, *,
                    subsets=None, video_layout="auto",
                    num_element_classes=None, fps=FPS, width=FRAME_WIDTH,
                    height=FRAME_HEIGHT, jpeg_quality=95, num_shards=1,
                    skip_corrupt=False, verify=True, num_workers=1,
                    runner=None):
    """Converts FineGym events to frame-label records (see module doc).

    Args:
        annotations: `finegym_annotation_info_v1.0.json`.
        element_lists: element list files (list or comma-separated), one
            subset each (several lists may share one).
        videos_root: folder of the YouTube videos or of the event clips.
        output_dir: output folder (see `output` for the layout).
        subsets: subset names, one per list (default: from the names,
            `gym99_train_element_v1.0.txt` -> `train`).
        video_layout: `raw`, `events` or `auto` (from the file names).
        num_element_classes: element classes (labels must be below it);
            None: from the list names (`gym99_*` -> 99, `gym288_*` -> 288).
        fps: output frame rate (the authors': 25).
        width, height: output frame size (the authors': 640 x 360).
        jpeg_quality: JPEG quality of the frames.
        num_shards: shards per subset.
        skip_corrupt: skip (and report) events whose video is missing,
            does not decode or does not cover the event, instead of
            raising.
        verify: read every written shard back before committing.
        num_workers: threads decoding events.
        runner: a `runners.Runner` (None: this process); a Beam runner
            writes the same records.

    Returns:
        The dataset_info dict (also written to `dataset_info.json`).

    Raises:
        DataError: bad input (nothing is written); `ValueError`: bad
            arguments.

    Example:

    ```python
    info = convert_finegym("finegym_annotation_info_v1.0.json",
                           ["gym288_train_element_v1.1.txt",
                            "gym288_val_element.txt"],
                           "processed_videos", "records/gym288",
                           video_layout="events")
    ```
    """
    if video_layout not in LAYOUTS:
        raise ValueError(f"video_layout must be one of {LAYOUTS}, got "
                         f"{video_layout!r}")
    if not (fps > 0):
        raise ValueError(f"fps must be positive, got {fps!r}")
    if min(width, height) < 1:
        raise ValueError(f"frame size must be positive, got {width}x"
                         f"{height}")
    grouped = _group_lists(element_lists, subsets)
    all_lists = [p for paths in grouped.values() for p in paths]
    if num_element_classes is None:
        num_element_classes = classes_from_list_names(all_lists)
        if num_element_classes is None:
            raise ValueError(
                f"cannot tell the number of element classes from the list "
                f"names {all_lists} (gym99_... / gym288_...); pass "
                "num_element_classes (--num_element_classes)")
    if num_element_classes < 1:
        raise ValueError(f"num_element_classes must be >= 1, got "
                         f"{num_element_classes}")
    annotations = str(annotations)
    data = read_annotations(annotations)
    events = {subset: events_of_list(
        data, _read_subset_elements(paths, num_element_classes),
        subset=subset, path=annotations)
        for subset, paths in grouped.items()}
    everything = [e for subset_events in events.values()
                  for e in subset_events]
    index = _video_index(videos_root)
    layout = (detect_layout(index, everything, videos_root)
              if video_layout == "auto" else video_layout)
    settings = _Settings(layout=layout, index=index,
                         videos_root=str(videos_root), fps=float(fps),
                         width=int(width), height=int(height),
                         jpeg_quality=int(jpeg_quality))
    listed = {e.event_id for e in everything}
    subsets_of = collections.defaultdict(list)
    for e in everything:
        subsets_of[e.event_id].append(e.subset)
    skipper = common.Skipper(skip_corrupt)
    stats, past_end = collections.OrderedDict(), []
    with output.StagedOutput(output_dir, verify=verify) as out:
        for subset, subset_events in events.items():
            counts = _new_stats()
            for event, result in runners.write_subset(
                    out, subset, lambda e: _convert_event(e, settings),
                    subset_events, skipper, num_shards=num_shards,
                    num_workers=num_workers, runner=runner):
                _add_stats(counts, event, result)
                past_end.extend(dict(item, subset=subset)
                                for item in result["past_end"])
            stats[subset] = _finish_stats(counts)
        num_event_classes = max((e.label for e in everything), default=-1) + 1
        classes = class_list_lib.ClassList(
            [event_class_name(i) for i in range(num_event_classes)])
        info = {
            "format": "finegym",
            "schema": "frame_labels",
            "sources": output.source_paths(
                annotations=annotations, videos_root=videos_root,
                element_lists=all_lists),
            "element_lists": {s: list(p) for s, p in grouped.items()},
            "video_layout": layout,
            "fps": float(fps),
            "frame_size": {"width": int(width), "height": int(height)},
            "jpeg_quality": int(jpeg_quality),
            "num_element_classes": int(num_element_classes),
            "label_index": "FineGym event type: the annotation's 'event' "
                           "(classes.txt line)",
            "frame_label_index": "element id per frame, -1 outside the "
                                 "labelled sub-actions",
            "stats": stats,
            "events_without_labelled_sub_actions": sum(
                f"{video}_{key}" not in listed
                for video, video_events in data.items()
                for key in video_events),
            "events_in_several_subsets": sorted(
                i for i, s in subsets_of.items() if len(s) > 1),
            "events_with_several_timestamps": sum(
                e.num_pairs > 1 for e in everything),
            "sub_actions_with_several_timestamps": sum(
                a.num_pairs > 1 for e in everything for a in e.sub_actions),
            "sub_actions_past_event_end": {"count": len(past_end),
                                           "items": past_end},
            "skipped": skipper.summary(),
        }
        return out.commit(info, classes)


def report_lines(info, options=None):
    """Human-readable summary of a FineGym conversion (printed by the CLI).

    Args:
        info: the dataset_info dict `convert_finegym` returns.
        options: the format's flag values (`output_dir` is shown).

    Returns:
        Lines of text.

    Example:

    >>> report_lines({"num_records": 0, "subsets": {}, "stats": {},
    ...               "video_layout": "raw", "fps": 25.0,
    ...               "events_without_labelled_sub_actions": 2,
    ...               "sub_actions_past_event_end": {"count": 0},
    ...               "skipped": {"count": 0, "items": []}})[0]
    'wrote 0 event record(s) (raw videos, 25 fps): no subset'
    """
    where = f" to {options['output_dir']}" if options else ""
    subsets = ", ".join(
        f"{name} {entry['num_records']} "
        f"({info['stats'][name]['num_frames']} frames)"
        for name, entry in info["subsets"].items())
    lines = [f"wrote {info['num_records']} event record(s){where} "
             f"({info['video_layout']} videos, {info['fps']:g} fps): "
             f"{subsets or 'no subset'}",
             f"{info['events_without_labelled_sub_actions']} annotated "
             "event(s) without a labelled sub-action (not converted)",
             f"{info['sub_actions_past_event_end']['count']} labelled "
             "sub-action(s) end after their event's last frame (clipped)",
             f"skipped {info['skipped']['count']} event(s)"]
    for item in info["skipped"]["items"][:20]:
        lines.append(f"  {item['message']}")
    if len(info["skipped"]["items"]) > 20:
        lines.append(f"  ... ({len(info['skipped']['items']) - 20} more in "
                     "dataset_info.json)")
    return lines
