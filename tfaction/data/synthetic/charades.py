"""Synthetic multi-label video classification data in the Charades v1 layout.

Writes what the Charades v1 download holds (annotations + RGB frames):

```
DIR/Charades_v1_classes.txt          "c000 Showing a red square", ...
DIR/Charades_v1_train.csv            id,subject,scene,quality,relevance,
DIR/Charades_v1_test.csv             verified,script,objects,descriptions,
                                     actions,length
DIR/Charades_v1_rgb/<id>/<id>-000001.jpg ...   RGB frames, 1-indexed, 24 fps
DIR/README.md
```

`actions` lists the action instances as `cNNN start end` (seconds, two
decimals) separated by `;`; some videos have none (empty field), as in the
real files. Class k is "a square of colour k is visible": during each action
instance of class k (frames `start * fps` up to `end * fps`, end excluded) a
square of that colour is drawn at a fixed random place over a noisy textured
background, so a video's label set is exactly the set of colours it shows.
Descriptions contain commas and quotes, so the CSV needs real CSV parsing.
"""

import csv
import io
import os

import numpy as np

from tfaction.data.formats import jpeg
from tfaction.data.synthetic import staged_output_dir

COLOURS = (("red", (220, 40, 40)), ("green", (40, 180, 60)),
           ("blue", (50, 90, 220)), ("yellow", (230, 210, 40)),
           ("magenta", (200, 60, 200)), ("cyan", (40, 200, 210)),
           ("orange", (240, 140, 30)), ("white", (245, 245, 245)))
COLUMNS = ("id", "subject", "scene", "quality", "relevance", "verified",
           "script", "objects", "descriptions", "actions", "length")
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def class_names(num_classes):
    """Names of the first `num_classes` synthetic classes."""
    return [f"Showing a {name} square" for name, _ in COLOURS[:num_classes]]


def _video_ids(rng, count):
    ids, seen = [], set()
    while len(ids) < count:
        vid = "".join(rng.choice(list(_ID_CHARS), 5))
        if vid not in seen:
            seen.add(vid)
            ids.append(vid)
    return ids


def _actions(rng, num_classes, num_frames, empty):
    """[(class, first_frame, last_frame_exclusive)] (0-based frames)."""
    if empty:
        return []
    count = int(rng.integers(1, min(3, num_classes) + 1))
    classes = rng.choice(num_classes, count, replace=False)
    out = []
    for cls in sorted(int(c) for c in classes):
        first = int(rng.integers(0, num_frames - 1))
        last = int(rng.integers(first + 1, num_frames + 1))
        out.append((cls, first, last))
    return out


def _write_frames(folder, video_id, rng, actions, num_frames, height, width,
                  quality):
    folder.mkdir(parents=True)
    base = rng.integers(70, 150, 3)
    texture = rng.integers(-25, 26, (height, width, 3))
    side = max(4, min(height, width) // 4)
    places = [(int(rng.integers(0, height - side + 1)),
               int(rng.integers(0, width - side + 1))) for _ in actions]
    for t in range(num_frames):
        noise = rng.integers(-8, 9, (height, width, 3))
        image = np.clip(base + texture + noise, 0, 255).astype(np.uint8)
        for (cls, first, last), (y, x) in zip(actions, places):
            if first <= t < last:
                image[y:y + side, x:x + side] = COLOURS[cls][1]
        (folder / f"{video_id}-{t + 1:06d}.jpg").write_bytes(
            jpeg.encode_jpeg(image, quality))


def _csv_text(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue()


def generate_charades(out_dir, num_videos=12, seed=0, *, num_classes=6,
                      height=32, width=40, min_frames=8, max_frames=16,
                      fps=24.0, test_every=4, empty_every=6, jpeg_quality=90,
                      overwrite=False):
    """Writes a small synthetic dataset in the Charades v1 layout.

    Args:
        out_dir: dataset folder to create (missing or empty unless
            `overwrite`).
        num_videos: number of videos (>= 2).
        seed: random seed; the same arguments give byte-identical files.
        num_classes: classes (2..8), one colour each.
        height, width: frame size in pixels (>= 16 each).
        min_frames, max_frames: range of frames per video (>= 2).
        fps: frame rate; `length` = frames / fps.
        test_every: video i is in the test CSV when i % test_every ==
            test_every - 1 (the others are train).
        empty_every: video i has no actions when i % empty_every ==
            empty_every - 1 (0: every video has actions).
        jpeg_quality: JPEG quality of the frames.
        overwrite: replace a non-empty `out_dir`.

    Returns:
        A dict summary: `out_dir`, `num_videos`, `num_train`, `num_test`,
        `num_without_actions`, `classes`, `frame_size` [height, width],
        `fps`, and `videos`, a list of `{"id", "split", "num_frames",
        "length", "labels"}` (`labels`: sorted unique class indices).

    Raises:
        ValueError: inconsistent arguments.
        FileExistsError: `out_dir` is not empty and `overwrite` is false.

    Example:

    >>> s = generate_charades("/tmp/charades_synth", num_videos=12)
    >>> s["num_train"], s["num_test"], s["num_without_actions"]
    (9, 3, 2)
    """
    if not 2 <= num_classes <= len(COLOURS):
        raise ValueError(f"num_classes must be in 2..{len(COLOURS)}, got "
                         f"{num_classes}")
    if num_videos < 2 or test_every < 2 or empty_every < 0:
        raise ValueError("need num_videos >= 2, test_every >= 2, "
                         "empty_every >= 0")
    if min(height, width) < 16 or not 2 <= min_frames <= max_frames:
        raise ValueError("need height, width >= 16 and 2 <= min_frames <= "
                         f"max_frames; got {height}x{width}, "
                         f"{min_frames}..{max_frames}")
    names = class_names(num_classes)
    rng = np.random.default_rng(seed)
    ids = _video_ids(rng, num_videos)
    videos, rows = [], {"train": [], "test": []}
    with staged_output_dir(out_dir, overwrite) as staging:
        for i, vid in enumerate(ids):
            num_frames = int(rng.integers(min_frames, max_frames + 1))
            empty = empty_every > 0 and i % empty_every == empty_every - 1
            actions = _actions(rng, num_classes, num_frames, empty)
            _write_frames(staging / "Charades_v1_rgb" / vid, vid, rng,
                          actions, num_frames, height, width, jpeg_quality)
            split = "test" if i % test_every == test_every - 1 else "train"
            length = num_frames / fps
            field = ";".join(f"c{c:03d} {a / fps:.2f} {b / fps:.2f}"
                             for c, a, b in actions)
            shown = ", ".join(COLOURS[c][0] for c, _, _ in actions)
            rows[split].append([
                vid, f"S{i % 7:03d}", "Synthetic room", "6", "7", "Yes",
                "A person shows coloured squares.", "square",
                f'The screen shows "{shown or "nothing"}", then stops.',
                field, f"{length:.2f}"])
            videos.append({"id": vid, "split": split,
                           "num_frames": num_frames,
                           "length": float(f"{length:.2f}"),
                           "labels": sorted({c for c, _, _ in actions})})
        for split, split_rows in rows.items():
            (staging / f"Charades_v1_{split}.csv").write_text(
                _csv_text(split_rows))
        (staging / "Charades_v1_classes.txt").write_text("".join(
            f"c{k:03d} {name}\n" for k, name in enumerate(names)))
        (staging / "README.md").write_text(
            "# Synthetic multi-label dataset (Charades v1 layout)\n\n"
            f"{num_videos} videos, {num_classes} classes ({height}x{width} "
            f"frames at {fps:g} fps). Class k: a square of colour k is "
            "visible (see `tfaction.data.synthetic.charades`). Convert with\n"
            "`python -m tfaction.data.convert --format=charades_frames "
            "--input=Charades_v1_train.csv,Charades_v1_test.csv "
            "--frames_root=Charades_v1_rgb "
            "--class_list=Charades_v1_classes.txt --output_dir=OUT`.\n")
    return {
        "out_dir": os.fspath(out_dir),
        "num_videos": num_videos,
        "num_train": sum(v["split"] == "train" for v in videos),
        "num_test": sum(v["split"] == "test" for v in videos),
        "num_without_actions": sum(not v["labels"] for v in videos),
        "classes": names,
        "frame_size": [height, width],
        "fps": fps,
        "videos": videos,
    }
