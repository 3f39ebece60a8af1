"""Synthetic spatio-temporal action detection data in the AVA layout.

Writes the files of an AVA download (annotation CSVs, a label map,
excluded-timestamps CSVs, video files), small enough to convert in seconds:

```
DIR/ava_action_list_synthetic.pbtxt          item { name: "stand" id: 1 } ...
DIR/ava_train_v2.1.csv, DIR/ava_val_v2.1.csv  video_id,timestamp,x1,y1,x2,y2,
                                              action_id,person_id
DIR/ava_train_excluded_timestamps_v2.1.csv    video_id,timestamp
DIR/ava_val_excluded_timestamps_v2.1.csv
DIR/videos/<video_id>.mp4                     MPEG-4 part 2, 25 fps, 112x112
DIR/README.md
```

Each video shows 2 or 3 "people" over a static textured background: a
coloured body rectangle with a head square on top, and on the head a dark
"face" mark on the side the person faces (left or right). A "lamp" (a small
square) sits in the top band of the frame. Keyframes are at every whole
second t = 1 .. duration - 1 (timestamps written as AVA does, `0001`); the
state of everything is constant within the second around a keyframe,
`[t - 0.5, t + 0.5)`, and drawn at random per second: each person's motion
and facing, and whether the lamp blinks (on 3 frames, off 3 frames) or
stays on.

Actions (multi-label; id. name: rule for a person at keyframe t; ids of
`ava_action_list_synthetic.pbtxt`):

1. `stand`: does not move during the second around t.
2. `walk`: moves sideways (left or right, turning at the frame's edge;
   the facing is independent of the walking direction).
3. `jump`: bounces up and down in place.
4. `talk to`: another person addresses them: some other person faces their
   side and they are the nearest person on that side of that other person
   (positions at t).
5. `watch (the lamp)`: the lamp blinks during the second around t and the
   person faces the lamp's side.

Every person has exactly one of 1-3 (what its own box shows over time) and
any of 4-5. Action 4 depends only on the *other* people (their face marks
and positions) and action 5 on the lamp elsewhere in the frame (and on the
person's own facing): a head that sees only the person's box cannot tell
them (for the same box content both labels occur), a head that attends to
the whole frame can. Boxes are the person's extent at the keyframe (head
top to feet, body width plus one pixel), with 3 decimals as in AVA.

Some keyframes are listed in the excluded-timestamps CSV of their subset;
they are annotated in the annotation CSV like the others, so a converter
must drop them (as the official evaluation drops excluded keyframes found
in its ground truth).

The same arguments and seed give the same files (with the same PyAV/FFmpeg
version: the videos are encoded single-threaded).

Example:

>>> s = generate_ava("/tmp/ava_synth", num_videos=6, seed=0)  # doctest: +SKIP
>>> s["num_keyframes"], s["classes"][3]  # doctest: +SKIP
(24, [4, 'talk to'])
"""

import colorsys
import csv
import io
import os

import av
import numpy as np

from tfaction.data.synthetic import staged_output_dir

CLASSES = ((1, "stand"), (2, "walk"), (3, "jump"), (4, "talk to"),
           (5, "watch (the lamp)"))
MOTIONS = ("stand", "walk", "jump")
STAND, WALK, JUMP, TALK_TO, WATCH = 1, 2, 3, 4, 5
LABEL_MAP_FILE = "ava_action_list_synthetic.pbtxt"
CSV_FILE = "ava_{split}_v2.1.csv"
EXCLUDED_FILE = "ava_{split}_excluded_timestamps_v2.1.csv"
_ID_CHARS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
             "0123456789_-")
_BODY_W, _BODY_H, _HEAD = 14, 26, 10
# The face mark covers the facing half of the head (a cue a small network
# sees at the trunk's 1/16 resolution).
_FACE_W, _FACE_H = 5, 5
_SKIN = (226, 186, 150)
_FACE = (35, 25, 25)
_LAMP_ON, _LAMP_OFF = (250, 235, 60), (45, 45, 50)
_LAMP = 12
_BLINK_FRAMES = 3


def _video_ids(rng, count):
    ids, seen = [], set()
    while len(ids) < count:
        vid = "".join(rng.choice(list(_ID_CHARS), 11))
        if vid not in seen and not vid.startswith("-"):
            seen.add(vid)
            ids.append(vid)
    return ids


def _segments(rng, num_people, duration):
    """Per second s = 0 .. duration: motion, facing, walk direction, blink."""
    seconds = duration + 1
    return {
        "motion": rng.integers(0, 3, (num_people, seconds)),
        "facing": rng.choice([-1, 1], (num_people, seconds)),
        "direction": rng.choice([-1, 1], (num_people, seconds)),
        "speed": rng.uniform(1.4, 2.0, (num_people, seconds)),
        "jump_height": rng.uniform(12, 18, (num_people, seconds)),
        "jump_period": rng.uniform(0.4, 0.6, (num_people, seconds)),
        "blinking": rng.random(seconds) < 0.5,
    }


def _trajectories(rng, seg, num_people, num_frames, fps, width):
    """Per frame: body centre x [P, F] and jump lift [P, F] (pixels)."""
    x = np.zeros((num_people, num_frames))
    lift = np.zeros((num_people, num_frames))
    lo, hi = _BODY_W / 2 + 2, width - _BODY_W / 2 - 2
    # Spread the starting positions so people begin apart.
    slots = rng.permutation(num_people)
    starts = lo + (slots + rng.uniform(0.2, 0.8, num_people)) * (
        (hi - lo) / num_people)
    for p in range(num_people):
        pos, direction = starts[p], 0
        prev_second = -1
        for i in range(num_frames):
            t = i / fps
            s = int(np.floor(t + 0.5))
            motion = MOTIONS[seg["motion"][p, s]]
            if s != prev_second:
                direction = seg["direction"][p, s]
                prev_second = s
            if motion == "walk" and i > 0:
                nxt = pos + direction * seg["speed"][p, s]
                if not lo <= nxt <= hi:  # turn at the edge
                    direction = -direction
                    nxt = pos + direction * seg["speed"][p, s]
                pos = nxt
            x[p, i] = pos
            if motion == "jump":
                since = t - (s - 0.5)
                lift[p, i] = seg["jump_height"][p, s] * abs(
                    np.sin(np.pi * since / seg["jump_period"][p, s]))
    return x, lift


def _person_rects(cx, lift, feet):
    """Pixel rectangles (x0, y0, x1, y1), end exclusive: body, head, box."""
    x0 = int(round(cx - _BODY_W / 2))
    bottom = int(round(feet - lift))
    body = (x0, bottom - _BODY_H, x0 + _BODY_W, bottom)
    hx = x0 + (_BODY_W - _HEAD) // 2
    head = (hx, body[1] - _HEAD, hx + _HEAD, body[1])
    box = (x0 - 1, head[1], x0 + _BODY_W + 1, bottom)
    return body, head, box


def _addressed(x, facing):
    """addressed[p]: list of the people who address p (nearest faced)."""
    num = len(x)
    out = [[] for _ in range(num)]
    for j in range(num):
        side = [p for p in range(num)
                if p != j and (x[p] - x[j]) * facing[j] > 0]
        if side:
            nearest = min(side, key=lambda p: (abs(x[p] - x[j]), p))
            out[nearest].append(j)
    return out


def keyframe_labels(motion, facing, x, lamp_x, blinking):
    """The actions of every person at a keyframe, by the module's rules.

    Args:
        motion: [P] motion names ("stand", "walk", "jump").
        facing: [P] -1 (left) or +1 (right).
        x: [P] body centre x at the keyframe (pixels).
        lamp_x: the lamp's centre x (pixels).
        blinking: whether the lamp blinks in the second around the keyframe.

    Returns:
        List of P sorted lists of action ids.

    Example:

    >>> keyframe_labels(["stand", "walk"], [1, -1], [10, 50], 80, True)
    [[1, 4, 5], [2, 4]]
    """
    addressed = _addressed(list(x), list(facing))
    labels = []
    for p in range(len(x)):
        actions = [MOTIONS.index(motion[p]) + 1]
        if addressed[p]:
            actions.append(TALK_TO)
        if blinking and (lamp_x - x[p]) * facing[p] > 0:
            actions.append(WATCH)
        labels.append(actions)
    return labels


def _background(rng, height, width):
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.full((height, width, 3), rng.uniform(90, 150))
    image += rng.uniform(-10, 10, 3)
    for _ in range(3):
        period, theta = rng.uniform(10, 40), rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta))
                      / period + rng.uniform(0, 2 * np.pi))
        image += wave[..., None] * rng.uniform(-14, 14)
    return image


def _body_colours(rng, num_people):
    hues = (rng.uniform(0, 1) + np.arange(num_people) / num_people) % 1
    return [255 * np.array(colorsys.hsv_to_rgb(h, rng.uniform(0.6, 0.9),
                                               rng.uniform(0.55, 0.85)))
            for h in hues]


def _fill(image, rect, colour):
    x0, y0, x1, y1 = rect
    h, w = image.shape[:2]
    image[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)] = colour


def _render(background, noise, people, lamp, lamp_on):
    image = background.copy()
    _fill(image, lamp, _LAMP_ON if lamp_on else _LAMP_OFF)
    for body, head, colour, facing in people:
        _fill(image, body, colour)
        _fill(image, head, _SKIN)
        hx0, hy0, hx1, _ = head
        fx = hx1 - _FACE_W if facing > 0 else hx0  # the face mark's side
        _fill(image, (fx, hy0 + 2, fx + _FACE_W, hy0 + 2 + _FACE_H), _FACE)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def write_mp4(path, frames, fps):
    """Encodes RGB uint8 frames as an MPEG-4 (part 2) mp4 file with PyAV.

    Single-threaded, so the bytes depend only on the frames (and the
    FFmpeg version).

    Args:
        path: output file.
        frames: iterable of [H, W, 3] uint8 arrays (H, W even).
        fps: frame rate (integer).

    Example:

    >>> black = [np.zeros((16, 16, 3), np.uint8)] * 5
    >>> write_mp4("/tmp/black.mp4", black, 25)  # doctest: +SKIP
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=int(fps))
        stream.codec_context.thread_count = 1
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 1_000_000  # ~40 dB PSNR on the textured scenes
        first = True
        for image in frames:
            if first:
                stream.height, stream.width = image.shape[:2]
                first = False
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _fmt(value):
    return f"{min(max(value, 0.0), 1.0):.3f}"


def _write_video(path, rng, num_frames, fps, height, width, duration):
    """Renders one video; returns its per-keyframe annotation state."""
    num_people = int(rng.integers(2, 4))
    seg = _segments(rng, num_people, duration)
    x, lift = _trajectories(rng, seg, num_people, num_frames, fps, width)
    feet = rng.uniform(height * 0.80, height * 0.95, num_people)
    colours = _body_colours(rng, num_people)
    lamp_x0 = int(rng.integers(2, width - _LAMP - 2))
    lamp_y0 = int(rng.integers(3, max(4, height // 6)))
    lamp = (lamp_x0, lamp_y0, lamp_x0 + _LAMP, lamp_y0 + _LAMP)
    background = _background(rng, height, width)
    noise = rng.normal(0, 2.0, (num_frames, height, width, 3))

    def state(i):
        s = int(np.floor(i / fps + 0.5))
        facing = seg["facing"][:, s]
        on = not (seg["blinking"][s]
                  and (i // _BLINK_FRAMES) % 2 == 1)
        rects = [_person_rects(x[p, i], lift[p, i], feet[p])
                 for p in range(num_people)]
        return s, facing, on, rects

    def frames():
        for i in range(num_frames):
            _, facing, on, rects = state(i)
            people = [(body, head, colours[p], facing[p])
                      for p, (body, head, _) in enumerate(rects)]
            yield _render(background, noise[i], people, lamp, on)

    write_mp4(path, frames(), fps)
    keyframes = []
    for t in range(1, duration):
        i = int(round(t * fps))
        s, facing, _, rects = state(i)
        motions = [MOTIONS[m] for m in seg["motion"][:, s]]
        centre = [float(x[p, i]) for p in range(num_people)]
        lamp_cx = lamp_x0 + _LAMP / 2
        labels = keyframe_labels(motions, facing, centre, lamp_cx,
                                 bool(seg["blinking"][s]))
        addressed = _addressed(centre, list(facing))
        people = []
        for p, (_, head, box) in enumerate(rects):
            people.append({
                "person_id": p, "motion": motions[p],
                "facing": int(facing[p]), "x": centre[p],
                "head": list(head), "box_pixels": list(box),
                "box": [_fmt(box[0] / width), _fmt(box[1] / height),
                        _fmt(box[2] / width), _fmt(box[3] / height)],
                "addressed_by": addressed[p], "labels": labels[p]})
        keyframes.append({"timestamp": t, "frame": i,
                          "blinking": bool(seg["blinking"][s]),
                          "people": people})
    return {"lamp": list(lamp), "num_frames": num_frames,
            "keyframes": keyframes}


def _csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _readme(num_videos, height, width, fps, duration):
    classes = "\n".join(f"  {i}: {name}" for i, name in CLASSES)
    return f"""# Synthetic AVA-style dataset

Generated by `python -m tfaction.data.synthetic --kind=ava`: {num_videos}
videos of {duration} s at {fps:g} fps, {height}x{width}, 2-3 people each,
keyframes every second (see `tfaction.data.synthetic.ava` for the rules).

Actions:
{classes}

Convert to TFRecords (one record per keyframe):

    python -m tfaction.data.convert --format=ava \\
        --input=DIR/ava_train_v2.1.csv,DIR/ava_val_v2.1.csv \\
        --videos_root=DIR/videos \\
        --label_map=DIR/{LABEL_MAP_FILE} \\
        --excluded_timestamps=DIR/ava_train_excluded_timestamps_v2.1.csv,\\
DIR/ava_val_excluded_timestamps_v2.1.csv \\
        --output_dir=OUT
"""


def generate_ava(out_dir, num_videos=6, seed=0, *, height=112, width=112,
                 fps=25, duration=5, val_every=3, exclude_every=10,
                 overwrite=False):
    """Writes a small synthetic dataset in the AVA layout (module docstring).

    Args:
        out_dir: dataset folder to create (missing or empty unless
            `overwrite`).
        num_videos: number of videos (>= 2).
        seed: random seed; the same arguments give the same files.
        height, width: frame size in pixels (even, >= 64).
        fps: frame rate of the videos (integer).
        duration: video length in seconds (>= 3); keyframes at 1 ..
            duration - 1.
        val_every: video i is in the val CSV when i % val_every ==
            val_every - 1 (the others are train).
        exclude_every: every `exclude_every`-th keyframe (counted over all
            videos in order) is listed in the excluded timestamps of its
            split (0: none).
        overwrite: replace a non-empty `out_dir`.

    Returns:
        A dict summary: `out_dir`, `num_videos`, `num_train`, `num_val`,
        `num_keyframes` (excluded ones included), `num_excluded`,
        `num_boxes`, `classes` ([id, name] pairs), `frame_size`, `fps`,
        `duration`, `label_map`, `csv` and `excluded` (file names per
        split), and `videos`: per video `id`, `split`, `lamp` (pixel
        rectangle x0, y0, x1, y1), `num_frames` and `keyframes`, each with
        `timestamp`, `frame` (index at `fps`), `blinking`, `excluded` and
        `people` (`person_id`, `motion`, `facing` (-1 left, +1 right), `x`
        (body centre), `head` and `box_pixels` (pixel rectangles, end
        exclusive), `box` (the CSV strings x1, y1, x2, y2), `addressed_by`
        and `labels`).

    Raises:
        ValueError: inconsistent arguments.
        FileExistsError: `out_dir` is not empty and `overwrite` is false.

    Example:

    >>> s = generate_ava("/tmp/ava_synth", num_videos=6)  # doctest: +SKIP
    >>> s["num_train"], s["num_val"], s["num_excluded"]  # doctest: +SKIP
    (4, 2, 2)
    """
    if num_videos < 2 or val_every < 2 or exclude_every < 0:
        raise ValueError("need num_videos >= 2, val_every >= 2, "
                         "exclude_every >= 0")
    if (min(height, width) < 64 or height % 2 or width % 2
            or duration < 3 or int(fps) != fps or fps < 4):
        raise ValueError(
            "need even height, width >= 64, duration >= 3 and an integer "
            f"fps >= 4; got {height}x{width}, {duration} s, {fps} fps")
    fps = int(fps)
    rng = np.random.default_rng(seed)
    ids = _video_ids(rng, num_videos)
    videos = []
    rows = {"train": [], "val": []}
    excluded = {"train": [], "val": []}
    count = 0  # keyframes so far, over all videos
    with staged_output_dir(out_dir, overwrite) as staging:
        (staging / "videos").mkdir()
        for i, vid in enumerate(ids):
            split = "val" if i % val_every == val_every - 1 else "train"
            info = _write_video(staging / "videos" / f"{vid}.mp4", rng,
                                duration * fps, fps, height, width, duration)
            for keyframe in info["keyframes"]:
                stamp = f"{keyframe['timestamp']:04d}"
                count += 1
                keyframe["excluded"] = bool(
                    exclude_every and count % exclude_every == 0)
                if keyframe["excluded"]:
                    excluded[split].append([vid, stamp])
                for person in keyframe["people"]:
                    for action in person["labels"]:
                        rows[split].append([vid, stamp, *person["box"],
                                            action, person["person_id"]])
            videos.append({"id": vid, "split": split, **info})
        for split in ("train", "val"):
            (staging / CSV_FILE.format(split=split)).write_text(
                _csv_text(rows[split]))
            (staging / EXCLUDED_FILE.format(split=split)).write_text(
                _csv_text(excluded[split]))
        (staging / LABEL_MAP_FILE).write_text("".join(
            f'item {{\n  name: "{name}"\n  id: {i}\n}}\n'
            for i, name in CLASSES))
        (staging / "README.md").write_text(
            _readme(num_videos, height, width, fps, duration))
    keyframes = [k for v in videos for k in v["keyframes"]]
    return {
        "out_dir": os.fspath(out_dir),
        "num_videos": num_videos,
        "num_train": sum(v["split"] == "train" for v in videos),
        "num_val": sum(v["split"] == "val" for v in videos),
        "num_keyframes": len(keyframes),
        "num_excluded": sum(k["excluded"] for k in keyframes),
        "num_boxes": sum(len(k["people"]) for k in keyframes),
        "classes": [list(c) for c in CLASSES],
        "frame_size": [height, width],
        "fps": fps,
        "duration": duration,
        "label_map": LABEL_MAP_FILE,
        "csv": {s: CSV_FILE.format(split=s) for s in ("train", "val")},
        "excluded": {s: EXCLUDED_FILE.format(split=s)
                     for s in ("train", "val")},
        "videos": videos,
    }
