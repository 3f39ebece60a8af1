"""AVA annotation CSVs + a folder of videos -> keyframe-boxes TFRecords.

Inputs (the layout of the public AVA download):

```
ava_train_v2.1.csv     video_id,timestamp,x1,y1,x2,y2,action_id,person_id
                       -5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1
ava_action_list_v2.1.pbtxt      label { name: "bend/bow (at the waist)"
                                        label_id: 1 ... }
ava_train_excluded_timestamps_v2.1.csv                 video_id,timestamp
videos/<video_id>.mp4|.mkv|.webm|...                   one file per video
```

Coordinates are normalised to [0, 1]; a timestamp is the keyframe's time in
seconds in the video file plus `time_offset` (0 for whole movies; 900 for
videos cut to AVA's 15-minute segment, whose keyframes are 902-1798).

Output: one `tf.train.SequenceExample` per annotated keyframe
(`schemas.keyframe_boxes_example`), in sharded TFRecords per subset,
committed atomically (`output.StagedOutput`):

* context `video/id`, `video/fps`, `video/num_frames` (frames in the clip),
  `video/duration` (of the decoded video), `video/subset`, `video/source`,
  `clip/timestamp` (the CSV's value, seconds), `clip/timestamp/text` (its
  text, for the evaluator's keyframe key), `clip/keyframe_index`,
  `clip/padded/before`, `clip/padded/after`;
* one entry per person box: `box/{ymin,xmin,ymax,xmax}`, `box/person_id`,
  and the box's actions as a ragged matrix, `box/label/index` (flat) and
  `box/label/row_lengths` (labels per box). The CSV rows of one keyframe
  with the same box and person id are merged into one box whose labels are
  the sorted unique actions of those rows; boxes keep the order of their
  first row;
* feature list `image/encoded`: `clip_frames` JPEG frames at `fps`, centred
  on the keyframe: frame i shows video time `t + (i - keyframe_index) / fps`
  with `keyframe_index = clip_frames // 2` (t = timestamp - time_offset,
  rounded to the nearest output frame). Where the window reaches before the
  video's start or after its end, the video's first / last frame is
  repeated (edge padding); `clip/padded/before` and `clip/padded/after`
  count those frames, so frames `[before, clip_frames - after)` are real.

Label index = action id - 1, the convention of AVA models with 80 outputs:
`classes.txt` line k names action id k + 1 (a placeholder
`class_list.unannotated_name(id)` for an id missing from the label map, e.g.
the 20 ids of the 80 that the 60-class evaluation map lacks).

Videos are decoded once each with PyAV (`video_decode.DecodedVideo`,
resampled to `fps` by timestamps, optionally resized to `short_side`), and
every frame inside some keyframe's window is JPEG-encoded once, however many
windows share it. The JPEGs go to a temporary file on the converting
machine's own disk (a Beam worker's, with `--runner`) while the video
decodes, and the records are assembled from it one at a time as they are
written, so memory does not grow with the length of a video. The ground
truth and summary are built from what each video reports back
(`runners.VideoRecords.extra`), so every runner writes the same files.

Beside the records, for `tfaction.evaluation.ava_frame_ap`:
`ground_truth_<subset>.csv` (the input rows of every converted keyframe, in
file order; a row repeating an earlier one's box, person and action is
written once, as it is stored once) and `label_map.pbtxt` (the evaluation
label map: `eval_label_map`, by default the conversion label map, or the
official 60-class map when the conversion uses the default 80-class list).

Checks, each error naming the file and line (and video): wrong column
count, empty video id, non-numeric or non-finite fields, a box outside
[0, 1] or with x2 <= x1 or y2 <= y1, an action id not in the label map, a
non-integer person id, a video in two CSVs, a missing or undecodable video,
a keyframe outside the video (t < 0 or t >= duration; `SegmentError`).
With `skip_corrupt`, bad rows, keyframes outside their video and bad videos
are skipped, counted and listed in dataset_info.json (`skipped_rows`,
`skipped_keyframes`, `skipped`) instead. Keyframes listed in the excluded
timestamps CSVs are not converted and are counted (`excluded`).

Example:

```python
info = convert_ava("ava_train_v2.1.csv,ava_val_v2.1.csv", "ava/videos",
                   "ava/records", time_offset=900, short_side=256,
                   excluded_timestamps="ava_train_excluded_timestamps_v2.1"
                   ".csv,ava_val_excluded_timestamps_v2.1.csv")
print(info["num_keyframes"])
```
"""

import collections
import csv
import dataclasses
import io
import math
import os
import re
import tempfile
import weakref

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data import schemas
from tfaction.data.formats import ava_label_maps as label_maps
from tfaction.data.formats import common
from tfaction.data.formats import jpeg
from tfaction.data.formats import output
from tfaction.data.formats import runners
from tfaction.data.formats import video_decode
from tfaction.data.formats import videos as videos_lib
from tfaction.evaluation import ava_io

DEFAULT_FPS = 25.0
DEFAULT_CLIP_FRAMES = 64
COLUMNS = ("video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id",
           "person_id")
DEFAULT_LABEL_MAP = label_maps.DEFAULT_LABEL_MAP
LABEL_MAP_FILE = "label_map.pbtxt"
GROUND_TRUTH_FILE = "ground_truth_{subset}.csv"
PADDING = ("edge: clip frames before the video's start / after its end "
           "repeat its first / last frame; clip/padded/before and "
           "clip/padded/after count them")


# --- Annotation CSV ---------------------------------------------------------
@dataclasses.dataclass
class Keyframe:
    """The rows of one annotated keyframe, merged per person box.

    Attributes:
        video_id: the video.
        key: the evaluator's keyframe key (`ava_io.make_key`).
        timestamp: seconds, as written in the CSV.
        timestamp_text: the CSV text of the first row's timestamp.
        path: the CSV; `line`: the keyframe's first row (1-based).
        boxes: list of (x1, y1, x2, y2) floats, one per person box.
        person_ids: list of ints, parallel to `boxes`.
        actions: list of sorted lists of action ids, parallel to `boxes`.
        rows: `(line, fields)` of every row but repeated ones, for the
            ground-truth CSV.
    """

    video_id: str
    key: str
    timestamp: float
    timestamp_text: str
    path: str
    line: int
    boxes: list = dataclasses.field(default_factory=list)
    person_ids: list = dataclasses.field(default_factory=list)
    actions: list = dataclasses.field(default_factory=list)
    rows: list = dataclasses.field(default_factory=list)
    _box_index: dict = dataclasses.field(default_factory=dict, repr=False)

    def add(self, box, person_id, action_id, line, fields):
        """Adds one row; returns False (and keeps nothing) when it repeats
        an earlier row's box, person and action."""
        index = self._box_index.get((box, person_id))
        if index is None:
            index = self._box_index[(box, person_id)] = len(self.boxes)
            self.boxes.append(box)
            self.person_ids.append(person_id)
            self.actions.append([])
        if action_id in self.actions[index]:
            return False
        self.actions[index] = sorted(self.actions[index] + [action_id])
        self.rows.append((line, fields))
        return True


def _number(text, column, where):
    try:
        value = float(text)
    except ValueError:
        raise errors.MalformedFileError(
            f"column {column} is not a number: {text!r}", key=column,
            **where) from None
    if not math.isfinite(value):
        raise errors.MalformedFileError(
            f"column {column} is not finite: {text!r}", key=column, **where)
    return value


def _integer(text, column, where):
    try:
        return int(text)
    except ValueError:
        raise errors.MalformedFileError(
            f"column {column} is not an integer: {text!r}", key=column,
            **where) from None


def parse_row(fields, action_ids, *, path, line):
    """Validates one CSV row `video_id,timestamp,x1,y1,x2,y2,action,person`.

    Args:
        fields: the row's fields (strings).
        action_ids: set of valid action ids (the label map's).
        path, line: where the row is, for errors.

    Returns:
        `(video_id, key, timestamp, box, action_id, person_id)` with `box`
        a tuple (x1, y1, x2, y2) of floats.

    Raises:
        MalformedFileError: wrong column count, empty video id, a
            non-numeric or non-finite field, a box outside [0, 1] or
            inverted / empty, a non-integer action or person id.
        UnknownLabelError: the action id is not in `action_ids`.

    Example:

    >>> parse_row(["v", "0902", "0.1", "0.2", "0.5", "0.9", "12", "0"],
    ...           {12}, path="a.csv", line=1)[1:]
    ('v,902.000000', 902.0, (0.1, 0.2, 0.5, 0.9), 12, 0)
    """
    if len(fields) != len(COLUMNS):
        raise errors.MalformedFileError(
            f"expected {len(COLUMNS)} columns ({','.join(COLUMNS)}), got "
            f"{len(fields)}", path=path, line=line)
    fields = [f.strip() for f in fields]
    video_id = fields[0]
    if not video_id:
        raise errors.MalformedFileError("empty video id", path=path,
                                        line=line, key="video_id")
    where = dict(path=path, line=line, video_id=video_id)
    try:
        key = ava_io.make_key(video_id, fields[1])
    except ValueError as e:
        raise errors.MalformedFileError(f"bad timestamp: {e}",
                                        key="timestamp", **where) from None
    timestamp = float(fields[1])
    box = tuple(_number(fields[i], COLUMNS[i], where) for i in range(2, 6))
    x1, y1, x2, y2 = box
    if not all(0.0 <= v <= 1.0 for v in box):
        raise errors.MalformedFileError(
            f"box ({x1}, {y1}, {x2}, {y2}) is outside [0, 1]; expected "
            "normalised coordinates", key="box", **where)
    if not (x1 < x2 and y1 < y2):
        raise errors.MalformedFileError(
            f"box ({x1}, {y1}, {x2}, {y2}) is inverted or empty; expected "
            "x1 < x2 and y1 < y2", key="box", **where)
    action_id = _integer(fields[6], "action_id", where)
    if action_id not in action_ids:
        raise errors.UnknownLabelError(
            f"action id {action_id} is not in the label map "
            f"({len(action_ids)} actions)", key="action_id", **where)
    person_id = _integer(fields[7], "person_id", where)
    return video_id, key, timestamp, box, action_id, person_id


def read_ava_csv(path, action_ids, on_error=None):
    """Reads an AVA annotation CSV into keyframes, validating every row.

    Args:
        path: `ava_{train,val}_v2.x.csv` (local path or URL). Blank lines
            are ignored; a header line is not expected (it is a bad row).
        action_ids: valid action ids (the label map's).
        on_error: None to raise on the first bad row, else a function
            called with each bad row's `DataError` (the row is skipped).

    Returns:
        `(keyframes, num_duplicate_rows)`: `Keyframe`s in order of first
        appearance, and the number of rows repeating an earlier row's box,
        person and action (merged).

    Raises:
        MalformedFileError, UnknownLabelError: a bad row (file:line), when
            `on_error` is None; a file that is not a CSV or has rows but
            no valid one.

    Example:

    >>> ids = {i for i, _ in label_maps.read_action_label_map("ava")}
    >>> keyframes, _ = read_ava_csv("ava_val_v2.1.csv", ids)  # doctest: +SKIP
    """
    path = str(path)
    text = common.read_text(path, what="AVA annotation CSV")
    action_ids = set(action_ids)
    keyframes = {}
    duplicates = bad = 0
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            try:
                vid, key, ts, box, action, person = parse_row(
                    fields, action_ids, path=path, line=line)
            except errors.DataError as e:
                if on_error is None:
                    raise
                on_error(e)
                bad += 1
                continue
            keyframe = keyframes.get(key)
            if keyframe is None:
                keyframe = keyframes[key] = Keyframe(
                    vid, key, ts, fields[1].strip(), path, line)
            if not keyframe.add(box, person, action, line,
                                [f.strip() for f in fields]):
                duplicates += 1
    except csv.Error as e:
        raise errors.MalformedFileError(f"cannot parse CSV: {e}", path=path,
                                        line=reader.line_num) from None
    if bad and not keyframes:
        raise errors.MalformedFileError(
            f"none of the {bad} rows is valid; is this an AVA annotation "
            "CSV (video_id,timestamp,x1,y1,x2,y2,action_id,person_id)?",
            path=path)
    return list(keyframes.values()), duplicates


def subset_name(csv_path):
    """`ava_train_v2.1.csv` -> `train`; other names -> the file stem.

    Example:

    >>> subset_name("annotations/ava_val_v2.2.csv")
    'val'
    """
    stem = os.path.splitext(os.path.basename(str(csv_path)))[0]
    match = re.match(r"(?i)ava_(.+?)(?:_v\d+(?:\.\d+)*)?$", stem)
    return match.group(1) if match else stem


def index_videos(videos_root):
    """Maps video id -> file for the video files directly in a folder.

    Args:
        videos_root: folder holding `<video_id>.<ext>` files (any of
            `videos.VIDEO_EXTENSIONS`).

    Returns:
        Dict video id -> list of paths (several when extensions differ).

    Raises:
        MalformedFileError: the folder does not exist.

    Example:

    >>> index_videos("ava/videos")["-5KQ66BBWC4"]  # doctest: +SKIP
    ['ava/videos/-5KQ66BBWC4.mkv']
    """
    videos_root = str(videos_root)
    if not filesystems.isdir(videos_root):
        raise errors.MalformedFileError("videos folder not found",
                                        path=videos_root)
    found = collections.defaultdict(list)
    for name in sorted(filesystems.listdir(videos_root)):
        stem, ext = os.path.splitext(name.rstrip("/"))
        if ext.lower() in videos_lib.VIDEO_EXTENSIONS:
            found[stem].append(common.join(videos_root, name.rstrip("/")))
    return dict(found)


# --- Conversion -------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Settings:
    fps: float
    clip_frames: int
    short_side: int
    jpeg_quality: int
    time_offset: float
    skip_corrupt: bool


@dataclasses.dataclass
class _Job:
    video_id: str
    subset: str
    keyframes: list  # sorted by time
    paths: list  # candidate files (0: missing; > 1: ambiguous)
    videos_root: str


def _keyframe_error(keyframe, message, settings):
    return errors.SegmentError(
        f"keyframe at timestamp {keyframe.timestamp_text} "
        f"(video time {keyframe.timestamp - settings.time_offset:g} s with "
        f"time_offset {settings.time_offset:g}) {message}",
        path=keyframe.path, line=keyframe.line, video_id=keyframe.video_id,
        key="timestamp")


def _convert_video(job, settings):
    """Decodes one video and stores the JPEG frames its keyframes need.

    Every frame inside some keyframe's window is encoded once and appended
    to a local spill file; the records are assembled afterwards
    (`_video_records`), when the video's duration is known.

    Args:
        job: the `_Job` (video and its keyframes).
        settings: the `_Settings`.

    Returns:
        Dict: `spill` (path), `frames` (frame index -> (offset, size) in
        the spill file), `clips` (list of (Keyframe, frame indices,
        (padded before, padded after)) in time order), `invalid`
        (keyframes outside the video with their `SegmentError`; only when
        skipping), `duration` (s) and `source` (file name).

    Raises:
        VideoDecodeError: missing, ambiguous or undecodable video.
        SegmentError: a keyframe outside the video (not skipping).
    """
    if not job.paths:
        raise errors.VideoDecodeError(
            f"video file not found; expected {job.video_id}.<ext> with ext "
            f"one of {', '.join(videos_lib.VIDEO_EXTENSIONS)}",
            path=job.videos_root, video_id=job.video_id)
    if len(job.paths) > 1:
        raise errors.VideoDecodeError(
            f"several files for one video: {', '.join(job.paths)}; keep one",
            path=job.videos_root, video_id=job.video_id)
    path = job.paths[0]
    fps, n = settings.fps, settings.clip_frames
    invalid, windows = [], []
    for kf in job.keyframes:
        t = kf.timestamp - settings.time_offset
        if t < 0:
            invalid.append((kf, _keyframe_error(
                kf, "is before the video's start", settings)))
            continue
        # The keyframe's nearest output frame sits at index n // 2.
        lo = int(math.floor(t * fps + 0.5)) - n // 2
        windows.append((lo, lo + n - 1, kf))
    if invalid and not settings.skip_corrupt:
        raise invalid[0][1]
    needed = set()
    for lo, hi, _ in windows:
        needed.update(range(max(lo, 0), hi + 1))
    video = video_decode.DecodedVideo(path, fps, settings.short_side,
                                      job.video_id)
    frames = {}
    # The converting machine's own temporary folder: a Beam worker reads
    # the file back itself (`_SpilledClips`), so nothing else needs it.
    fd, spill_path = tempfile.mkstemp(prefix="tfaction-ava-",
                                      suffix=".jpegs")
    try:
        with os.fdopen(fd, "wb") as spill:
            def store(index, image):
                data = jpeg.encode_jpeg(image, settings.jpeg_quality)
                frames[index] = (spill.tell(), len(data))
                spill.write(data)

            last, image = -1, None
            for last, image in enumerate(video):
                if last in needed:
                    store(last, image)
            # Windows past the end are edge-padded with the last frame.
            if last not in frames and any(hi > last for _, hi, _ in windows):
                store(last, image)
    except BaseException:
        os.remove(spill_path)
        raise
    clips = []
    for lo, hi, kf in windows:
        if kf.timestamp - settings.time_offset >= video.duration:
            invalid.append((kf, _keyframe_error(
                kf, f"is after the video's end (duration "
                f"{video.duration:.3f} s)", settings)))
            continue
        indices = [min(max(i, 0), last) for i in range(lo, hi + 1)]
        padded = (min(n, max(0, -lo)), min(n, max(0, hi - last)))
        clips.append((kf, indices, padded))
    if invalid and not settings.skip_corrupt:
        os.remove(spill_path)
        raise min(invalid, key=lambda item: item[0].line)[1]
    clips.sort(key=lambda c: (c[0].timestamp, c[0].line))
    invalid.sort(key=lambda item: item[0].line)
    return {"spill": spill_path, "frames": frames, "clips": clips,
            "invalid": invalid, "duration": video.duration,
            "source": os.path.basename(path)}


def _video_records(result, settings, subset):
    """Yields the serialized records of one converted video, in time order.

    Args:
        result: what `_convert_video` returned.
        settings: the `_Settings`.
        subset: the subset name stored in the records.

    Yields:
        Serialized `tf.train.SequenceExample`s.
    """
    offsets = result["frames"]
    with open(result["spill"], "rb") as spill:
        def read(index):
            offset, size = offsets[index]
            spill.seek(offset)
            return spill.read(size)

        for kf, indices, padded in result["clips"]:
            example = schemas.keyframe_boxes_example(
                kf.video_id, timestamp=kf.timestamp, boxes=kf.boxes,
                labels=[[a - 1 for a in actions] for actions in kf.actions],
                person_ids=kf.person_ids, images=[read(i) for i in indices],
                fps=settings.fps, keyframe_index=settings.clip_frames // 2,
                timestamp_text=kf.timestamp_text, padded=padded,
                duration=result["duration"], subset=subset,
                source=result["source"])
            yield example.SerializeToString(deterministic=True)


class _SpilledClips:
    """The records of one converted video, assembled from its spill file
    while they are read (once); the file is removed after the last record,
    or when the object is dropped unread (an aborted conversion)."""

    def __init__(self, result, settings, subset):
        self._result = result
        self._settings = settings
        self._subset = subset
        self._remove = weakref.finalize(self, filesystems.remove_quietly,
                                        result["spill"])

    def __iter__(self):
        try:
            yield from _video_records(self._result, self._settings,
                                      self._subset)
        finally:
            self._remove()


def _convert_one(job, settings):
    """`runners.VideoRecords` of one video: its clips' records (read from
    the spill file as they are written) and, as the extra, which keyframes
    became records and which fell outside the video.

    Returns:
        `VideoRecords` whose extra is `{"clips": [[keyframe position in
        job.keyframes, padded before, padded after]] in time order,
        "invalid": [skipped-keyframe items]}`.

    Raises:
        What `_convert_video` raises.
    """
    result = _convert_video(job, settings)
    position = {id(kf): i for i, kf in enumerate(job.keyframes)}
    extra = {
        "clips": [[position[id(kf)], *padded]
                  for kf, _, padded in result["clips"]],
        "invalid": [_error_item(error, subset=job.subset,
                                timestamp=kf.timestamp_text,
                                rows=len(kf.rows))
                    for kf, error in result["invalid"]]}
    return runners.VideoRecords(_SpilledClips(result, settings, job.subset),
                                extra)


def _error_item(error, **extra):
    return {"path": error.path, "line": error.line,
            "video_id": error.video_id, "error": type(error).__name__,
            "message": str(error), **extra}


def _summary(items):
    by_error = collections.Counter(i["error"] for i in items)
    return {"count": len(items), "by_error": dict(sorted(by_error.items())),
            "items": items}


def _ground_truth_text(keyframes):
    rows = sorted(row for kf in keyframes for row in kf.rows)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        fields for _, fields in rows)
    return buffer.getvalue()


def convert_ava(csv_paths, videos_root, output_dir, *, label_map=None,
                eval_label_map=None, excluded_timestamps=None, subsets=None,
                fps=DEFAULT_FPS, clip_frames=DEFAULT_CLIP_FRAMES,
                short_side=None, jpeg_quality=95, time_offset=0.0,
                num_shards=1, skip_corrupt=False, verify=True,
                num_workers=1, runner=None):
    """Converts AVA CSVs + videos to keyframe-boxes records (see module doc).

    Args:
        csv_paths: `ava_{train,val}_v2.x.csv` (list or comma string); one
            subset each.
        videos_root: folder of `<video_id>.<ext>` video files.
        output_dir: output folder (see `output` for the layout).
        label_map: pbtxt / JSON label map, or `"ava"` (default, 80
            actions) / `"ava60"` (the official 60-class map).
        eval_label_map: label map written as `label_map.pbtxt` for the
            evaluator (default: `label_map`, or `"ava60"` when `label_map`
            is the default 80-class list).
        excluded_timestamps: excluded-timestamps CSVs (`video_id,timestamp`
            rows; list or comma string), applied to every subset.
        subsets: subset names parallel to `csv_paths` (default from the file
            names: `ava_val_v2.1.csv` -> `val`).
        fps: frame rate of the clips (25).
        clip_frames: frames per clip, centred on the keyframe (64).
        short_side: resize frames so the short side has this many pixels
            (None: keep).
        jpeg_quality: JPEG quality of the frames.
        time_offset: seconds subtracted from the CSV timestamps to get the
            time in the video file (900 for videos cut to AVA's 15-minute
            segment; 0 for whole movies).
        num_shards: shards per subset.
        skip_corrupt: skip (and report) bad rows, keyframes outside their
            video and missing / undecodable videos instead of raising.
        verify: read every written shard back before committing.
        num_workers: threads decoding videos (the local runner).
        runner: a `runners.Runner` (None: this process); a Beam runner
            decodes each video on a worker, spilling its frames to that
            worker's temporary folder.

    Returns:
        The dataset_info dict (also written to `dataset_info.json`).

    Raises:
        MalformedFileError, UnknownLabelError, SegmentError,
        VideoDecodeError, CorruptRecordError: nothing is written.

    Example:

    ```python
    info = convert_ava("ava_val_v2.1.csv", "videos", "records/ava",
                       label_map="ava_action_list_v2.1.pbtxt",
                       excluded_timestamps="ava_val_excluded_timestamps_v2.1"
                       ".csv", time_offset=900, short_side=256)
    print(info["subsets"]["val"]["num_records"])
    ```
    """
    csv_paths = common.parse_list_flag(csv_paths)
    if not csv_paths:
        raise ValueError("no AVA annotation CSV given")
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    if int(clip_frames) != clip_frames or clip_frames < 1:
        raise ValueError(f"clip_frames must be an integer >= 1, got "
                         f"{clip_frames!r}")
    if not math.isfinite(time_offset):
        raise ValueError(f"time_offset must be finite, got {time_offset!r}")
    names = common.parse_list_flag(subsets) or [subset_name(p)
                                                for p in csv_paths]
    if len(names) != len(csv_paths) or len(set(names)) != len(names):
        raise ValueError(f"need one distinct subset name per CSV, got "
                         f"{names} for {csv_paths}")
    for name in names:
        if not name or "/" in name:
            raise ValueError(f"invalid subset name {name!r}")
    items = label_maps.read_action_label_map(label_map)
    if eval_label_map is None and label_map in (None, DEFAULT_LABEL_MAP):
        eval_label_map = "ava60"
    eval_items = (items if eval_label_map is None
                  else label_maps.read_action_label_map(eval_label_map))
    classes = label_maps.class_list_for(items)
    action_ids = {i for i, _ in items}
    excluded_paths = common.parse_list_flag(excluded_timestamps)
    excluded = set()
    for path in excluded_paths:
        excluded |= ava_io.read_exclusions(path)

    bad_rows = []

    def on_error(error):
        if not skip_corrupt:
            raise error
        bad_rows.append(_error_item(error))

    tables, duplicates, owner = [], {}, {}
    excluded_items, excluded_rows = [], 0
    for subset, path in zip(names, csv_paths):
        keyframes, duplicates[subset] = read_ava_csv(path, action_ids,
                                                     on_error)
        kept = []
        for kf in keyframes:
            first = owner.setdefault(kf.video_id, (subset, kf))
            if first[0] != subset:
                raise errors.MalformedFileError(
                    f"video {kf.video_id!r} is also in {first[1].path}:"
                    f"{first[1].line}; subsets must be disjoint",
                    path=kf.path, line=kf.line, video_id=kf.video_id)
            if kf.key in excluded:
                excluded_items.append({"video_id": kf.video_id,
                                       "timestamp": kf.timestamp_text,
                                       "subset": subset,
                                       "rows": len(kf.rows)})
                excluded_rows += len(kf.rows)
            else:
                kept.append(kf)
        tables.append(kept)
    video_files = index_videos(videos_root)
    skipper = common.Skipper(skip_corrupt)
    settings = _Settings(fps=float(fps), clip_frames=int(clip_frames),
                         short_side=short_side,
                         jpeg_quality=int(jpeg_quality),
                         time_offset=float(time_offset),
                         skip_corrupt=bool(skip_corrupt))
    bad_keyframes = []
    stats = {key: {} for key in ("num_keyframes", "num_boxes",
                                 "num_label_rows", "padded_keyframes")}
    converted = {}
    with output.StagedOutput(output_dir, verify=verify) as out:
        for subset, keyframes in zip(names, tables):
            by_video = collections.OrderedDict()
            for kf in keyframes:
                by_video.setdefault(kf.video_id, []).append(kf)
            jobs = [_Job(vid, subset,
                         sorted(kfs, key=lambda k: (k.timestamp, k.line)),
                         video_files.get(vid, []), str(videos_root))
                    for vid, kfs in by_video.items()]
            converted[subset] = []
            counts = dict.fromkeys(stats, 0)
            for job, extra in runners.write_subset(
                    out, subset, lambda job: _convert_one(job, settings),
                    jobs, skipper, num_shards=num_shards,
                    num_workers=num_workers, runner=runner):
                for position, before, after in extra["clips"]:
                    kf = job.keyframes[position]
                    converted[subset].append(kf)
                    counts["num_keyframes"] += 1
                    counts["num_boxes"] += len(kf.boxes)
                    counts["num_label_rows"] += len(kf.rows)
                    counts["padded_keyframes"] += bool(before or after)
                bad_keyframes.extend(extra["invalid"])
            for key, value in counts.items():
                stats[key][subset] = value
            out.add_text(GROUND_TRUTH_FILE.format(subset=subset),
                         _ground_truth_text(converted[subset]))
        out.add_text(LABEL_MAP_FILE,
                     label_maps.label_map_text(eval_items))
        info = {
            "format": "ava",
            "schema": "keyframe_boxes",
            "sources": {
                "csv": dict(zip(names, csv_paths)),
                **output.source_paths(
                    videos_root=videos_root,
                    label_map=label_maps.label_map_path(label_map),
                    eval_label_map=(
                        None if eval_label_map is None
                        else label_maps.label_map_path(eval_label_map)),
                    excluded_timestamps=excluded_paths)},
            "fps": settings.fps,
            "clip_frames": settings.clip_frames,
            "keyframe_index": settings.clip_frames // 2,
            "short_side": short_side,
            "jpeg_quality": settings.jpeg_quality,
            "time_offset": settings.time_offset,
            "padding": PADDING,
            "box_order": "xmin, ymin, xmax, ymax normalised to [0, 1] "
                         "(box/xmin, ...)",
            "label_index": "action id - 1 (classes.txt line k names "
                           "action id k + 1)",
            "label_map": LABEL_MAP_FILE,
            "ground_truth": {s: GROUND_TRUTH_FILE.format(subset=s)
                             for s in names},
            **stats,
            "duplicate_rows": duplicates,
            "excluded": {"count": len(excluded_items),
                         "rows": excluded_rows,
                         "items": excluded_items},
            "skipped": skipper.summary(),
            "skipped_rows": _summary(bad_rows),
            "skipped_keyframes": _summary(bad_keyframes),
        }
        return out.commit(info, classes)


def report_lines(info, options=None):
    """Human-readable summary of an AVA conversion (printed by the CLI).

    Args:
        info: the dataset_info dict `convert_ava` returns.
        options: the format's flag values (`output_dir` is shown).

    Returns:
        Lines of text.

    Example:

    >>> report_lines({"num_records": 0, "subsets": {}, "num_boxes": {},
    ...               "skipped": {"count": 0, "items": []},
    ...               "skipped_rows": {"count": 0, "items": []},
    ...               "skipped_keyframes": {"count": 0, "items": []},
    ...               "excluded": {"count": 0, "rows": 0}})[0]
    'wrote 0 keyframe record(s): no subset'
    """
    where = f" to {options['output_dir']}" if options else ""
    subsets = ", ".join(
        f"{name} {entry['num_records']} ({info['num_boxes'][name]} boxes)"
        for name, entry in info["subsets"].items())
    lines = [f"wrote {info['num_records']} keyframe record(s){where}: "
             f"{subsets or 'no subset'}",
             f"excluded {info['excluded']['count']} keyframe(s) "
             f"({info['excluded']['rows']} rows) listed in the excluded "
             "timestamps"]
    for key, what in (("skipped", "video(s)"), ("skipped_rows", "row(s)"),
                      ("skipped_keyframes", "keyframe(s)")):
        lines.append(f"skipped {info[key]['count']} corrupt {what}")
        for item in info[key]["items"][:20]:
            lines.append(f"  {item['message']}")
        if len(info[key]["items"]) > 20:
            lines.append(f"  ... ({len(info[key]['items']) - 20} more in "
                         "dataset_info.json)")
    return lines
