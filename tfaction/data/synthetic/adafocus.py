"""Synthetic "find the small patch" videos in the AdaFocus ActivityNet layout.

Writes what the AdaFocus ActivityNet / FCVID data folder holds (frames
extracted with ffmpeg, class list, comma-separated split lists):

```
DIR/classInd.txt                         class names, line k = label k
DIR/actnet_train_split.txt               "<video>,<num_frames>,<label>"
DIR/actnet_val_split.txt
DIR/frames/<video>/image_%05d.jpg        RGB frames, 1-indexed
DIR/README.md
```

Every video is a large frame of static clutter (a textured background and
coloured rectangles) over which several small square *glyphs* drift, each
bouncing off the frame's borders at its own constant velocity. A glyph is
a `3 x 3` grid of black / white cells between grey lines, on a coloured
square plate. Exactly one glyph per video, the *target*, has a red or an
orange plate; the class is its cell pattern (one fixed pattern per class,
every pattern with the same number of white cells), and the plate is red
for even labels, orange for odd ones. The other glyphs (distractors) have
grey, blue, green or white plates and random patterns, class patterns
included.

Glyphs live on a lattice of step `lattice` (4): their places in every frame
are multiples of it, their plates and lines lie on it and their cells fill
the `lattice - 1` pixels in between; frames are `lattice * k + 1` pixels.
A glance at the frame resized by `1 / lattice` with PyTorch's bilinear
`align_corners=True` (AdaFocus V2's glance resize; the synthetic recipe's
97 -> 25) samples exactly the pixels `(lattice i, lattice j)`, which on a
glyph are its plate or its grey lines, never a cell. So:

* the glance finds the target's plate, and its colour tells the class's
  half (even or odd label), but it sees nothing of the pattern (up to
  JPEG's rounding): at most 50 % right with 4 classes;
* a full-resolution patch on the target reads the class; a patch
  elsewhere shows clutter or a distractor, whose pattern is uninformative;
* the target's place changes from video to video and from frame to frame,
  so a fixed or random patch rarely covers it: a policy must find it from
  the glance.

Colours (but the plate's), motion, glyph count and clutter are drawn from
the same distributions for every class.
"""

import itertools
import os

import numpy as np

from tfaction.data.formats import jpeg
from tfaction.data.synthetic import staged_output_dir

# Plate colours of the target: red for even labels, orange for odd ones.
TARGET_COLOURS = ((225, 30, 30), (240, 150, 20))
DISTRACTOR_COLOURS = ((150, 150, 150), (60, 90, 215), (40, 170, 70),
                      (235, 235, 235))
_CELLS = 3
_WHITE_CELLS = 4
_BLACK, _WHITE, _SEPARATOR = 25, 230, 128


def _hamming(a, b):
    return int(np.sum(a != b))


def class_patterns(num_classes):
    """The cell patterns of the first `num_classes` classes.

    Patterns are `3 x 3` with 4 white cells, chosen greedily in a fixed
    order so that any two patterns, and any pattern and the mirror image of
    another, differ in at least 4 cells.

    Args:
        num_classes: how many patterns (at most 8).

    Returns:
        bool array `[num_classes, 3, 3]` (True = white).

    Raises:
        ValueError: more classes than distinct patterns.

    Example:

    >>> class_patterns(2).shape
    (2, 3, 3)
    """
    chosen = []
    for cells in itertools.combinations(range(_CELLS * _CELLS), _WHITE_CELLS):
        grid = np.zeros(_CELLS * _CELLS, bool)
        grid[list(cells)] = True
        grid = grid.reshape(_CELLS, _CELLS)
        if _hamming(grid, grid[:, ::-1]) < 2:
            continue  # a near-symmetric pattern reads the same mirrored
        if all(_hamming(grid, c) >= 4 and _hamming(grid, c[:, ::-1]) >= 4
               for c in chosen):
            chosen.append(grid)
        if len(chosen) == num_classes:
            return np.stack(chosen)
    raise ValueError(f"only {len(chosen)} distinct glyph patterns exist; "
                     f"num_classes={num_classes} is too many")


def _glyph(pattern, plate_colour, lattice):
    """RGB glyph on its plate, `[side + 2 lattice]` square, `side = 3
    lattice + 1`: a plate of `plate_colour` one lattice step wide around
    the glyph, whose lines every `lattice` pixels are the plate colour
    (outer) or grey (inner), around `3 x 3` cells of `lattice - 1`
    pixels."""
    side = _CELLS * lattice + 1
    glyph = np.empty((side + 2 * lattice,) * 2 + (3,), np.float64)
    glyph[:] = plate_colour
    inner = slice(lattice + 1, lattice + side - 1)
    glyph[inner, inner] = _SEPARATOR
    cells = np.where(pattern, _WHITE, _BLACK).astype(np.float64)
    for i in range(_CELLS):
        for j in range(_CELLS):
            top, left = lattice + i * lattice + 1, lattice + j * lattice + 1
            glyph[top:top + lattice - 1, left:left + lattice - 1] = (
                cells[i, j])
    return glyph


def _background(rng, height, width):
    """Static clutter: a smooth textured grey field and random rectangles
    of muted colours (no red)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.full((height, width, 3), rng.uniform(80, 170))
    for _ in range(3):
        period, theta = rng.uniform(6, 24), rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta))
                      / period + rng.uniform(0, 2 * np.pi))
        image += wave[..., None] * rng.uniform(-20, 20, 3)
    for _ in range(int(rng.integers(4, 9))):
        h, w = rng.integers(4, max(5, height // 3), 2)
        y, x = rng.integers(0, height - h), rng.integers(0, width - w)
        colour = rng.uniform(60, 200, 3)
        colour[0] = min(colour[0], colour[1:].mean())  # never reddish
        image[y:y + h, x:x + w] = colour
    return image


def _track(rng, num_frames, side, height, width, speed, lattice):
    """Top-left corners `[num_frames, 2]`, multiples of `lattice`, of a
    glyph that moves at a constant velocity and bounces off the frame's
    borders (its place rounded to the lattice in every frame)."""
    # Keep one lattice step free at every border (the plate).
    room = np.array([height - side, width - side], np.float64) - 2 * lattice
    start = rng.uniform(0, 1, 2) * room
    angle = rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([np.sin(angle), np.cos(angle)])
    raw = start[None] + np.arange(num_frames)[:, None] * velocity[None]
    # Reflect into [0, room]: a bounce off each border.
    period = 2 * room
    folded = np.mod(raw, period)
    folded = np.where(folded > room, period - folded, folded)
    return (np.round(folded / lattice) * lattice + lattice).astype(np.int64)


def _write_video(folder, rng, pattern, target_colour, num_frames, height,
                 width, *, lattice, num_distractors, speed, quality):
    folder.mkdir(parents=True)
    side = _CELLS * lattice + 1
    background = _background(rng, height, width)
    glyphs = [_glyph(pattern, target_colour, lattice)]
    for _ in range(num_distractors):
        cells = np.zeros(_CELLS * _CELLS, bool)
        cells[rng.choice(_CELLS * _CELLS, _WHITE_CELLS, replace=False)] = True
        colour = DISTRACTOR_COLOURS[rng.integers(len(DISTRACTOR_COLOURS))]
        glyphs.append(_glyph(cells.reshape(_CELLS, _CELLS), colour,
                             lattice))
    tracks = [_track(rng, num_frames, side, height, width,
                     rng.uniform(*speed), lattice) for _ in glyphs]
    # The target is drawn last: distractors never hide it.
    order = list(range(1, len(glyphs))) + [0]
    noise = rng.normal(0, 3.0, (num_frames, height, width, 3))
    target_track = tracks[0]
    for t in range(num_frames):
        image = background.copy()
        for g in order:
            y, x = tracks[g][t]
            image[y - lattice:y + side + lattice,
                  x - lattice:x + side + lattice] = glyphs[g]
        image = np.clip(np.round(image + noise[t]), 0, 255).astype(np.uint8)
        (folder / f"image_{t + 1:05d}.jpg").write_bytes(
            jpeg.encode_jpeg(image, quality))
    return target_track


def _readme(classes, height, width, side):
    return f"""# Synthetic "find the small patch" dataset (AdaFocus layout)

Generated by `python -m tfaction.data.synthetic --kind=adafocus`.

- `classInd.txt`: class names; line k (0-based) is label k.
- `actnet_train_split.txt`, `actnet_val_split.txt`: lines
  `<video>,<num_frames>,<label>` (the authors' ActivityNet list format).
- `frames/<video>/image_%05d.jpg`: {height}x{width} RGB frames, 1-indexed.

Classes: {", ".join(classes)}. Each video shows drifting {side}x{side} glyphs
over static clutter; the one on a red or orange plate carries the class in
its 3x3 black/white cell pattern (red: even labels, orange: odd ones).
Distractor glyphs (other plate colours) carry random patterns.

Convert to TFRecords:

    python -m tfaction.data.convert --format=actnet_frames \\
        --input=DIR/actnet_train_split.txt,DIR/actnet_val_split.txt \\
        --frames_root=DIR/frames --class_list=DIR/classInd.txt \\
        --output_dir=OUT
"""


def generate_adafocus(out_dir, num_videos=1200, seed=0, *, num_classes=4,
                      height=97, width=97, lattice=4,
                      num_distractors=4, min_frames=12, max_frames=20,
                      speed=(0.5, 2.0), val_fraction=0.25, jpeg_quality=95,
                      overwrite=False):
    """Writes a synthetic AdaFocus-layout dataset (see the module docstring).

    Args:
        out_dir: dataset folder to create (missing or empty unless
            `overwrite`).
        num_videos: total number of videos, dealt round-robin over the
            classes (>= 2 per class so both splits hold every class).
        seed: random seed; the same arguments give byte-identical files.
        num_classes: number of classes (2 to 8), each one glyph pattern.
        height, width: frame size in pixels, each `lattice * k + 1`.
        lattice: the glance's downsampling factor: glyphs sit on a grid
            of this step, their lines are this far apart and their cells
            `lattice - 1` pixels wide.
        num_distractors: glyphs besides the target in every video.
        min_frames, max_frames: range of frames per video (>= 3).
        speed: range of glyph speeds in pixels per frame.
        val_fraction: share of each class's videos in the val list.
        jpeg_quality: JPEG quality of the frames.
        overwrite: replace a non-empty `out_dir`.

    Returns:
        A dict summary: `out_dir`, `num_videos`, `num_train`, `num_val`,
        `classes`, `frame_size` [height, width], `glyph_size`, and
        `videos`, a list of `{"video", "num_frames", "label", "split",
        "target"}` (`target`: the target glyph's top-left `[row, col]` in
        every frame).

    Raises:
        ValueError: inconsistent arguments.
        FileExistsError: `out_dir` is not empty and `overwrite` is false.

    Example:

    >>> s = generate_adafocus("/tmp/adafocus_synth", num_videos=16)
    >>> s["num_train"], s["num_val"]
    (12, 4)
    """
    patterns = class_patterns(num_classes)
    side = _CELLS * lattice + 1
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if num_videos < 2 * num_classes:
        raise ValueError(f"num_videos={num_videos} < 2 per class "
                         f"({2 * num_classes})")
    if min(height, width) < 2 * side + 2 * lattice:
        raise ValueError(f"frames of {height}x{width} are too small for "
                         f"{side}-pixel glyphs (need >= "
                         f"{2 * side + 2 * lattice})")
    if not 3 <= min_frames <= max_frames:
        raise ValueError(f"need 3 <= min_frames <= max_frames, got "
                         f"{min_frames}..{max_frames}")
    if lattice < 2 or (height - 1) % lattice or (width - 1) % lattice:
        raise ValueError(f"need lattice >= 2 and frames of lattice * k + 1 "
                         f"pixels; got lattice={lattice}, {height}x{width}")
    if num_distractors < 0:
        raise ValueError(f"num_distractors must be >= 0, got "
                         f"{num_distractors}")
    classes = [f"pattern_{k}" for k in range(num_classes)]
    rng = np.random.default_rng(seed)
    per_class = [list(range(k, num_videos, num_classes))
                 for k in range(num_classes)]
    videos = []
    with staged_output_dir(out_dir, overwrite) as staging:
        for label, members in enumerate(per_class):
            num_val = min(len(members) - 1,
                          max(1, int(round(len(members) * val_fraction))))
            for j, index in enumerate(members):
                num_frames = int(rng.integers(min_frames, max_frames + 1))
                video = f"v_{index:05d}"
                track = _write_video(
                    staging / "frames" / video, rng, patterns[label],
                    TARGET_COLOURS[label % 2], num_frames, height, width,
                    lattice=lattice, num_distractors=num_distractors,
                    speed=speed, quality=jpeg_quality)
                split = "val" if j >= len(members) - num_val else "train"
                videos.append({"video": video, "num_frames": num_frames,
                               "label": label, "split": split,
                               "target": track.tolist()})
        videos.sort(key=lambda v: v["video"])
        for split in ("train", "val"):
            lines = [f"{v['video']},{v['num_frames']},{v['label']}\n"
                     for v in videos if v["split"] == split]
            (staging / f"actnet_{split}_split.txt").write_text("".join(lines))
        (staging / "classInd.txt").write_text("".join(c + "\n"
                                                      for c in classes))
        (staging / "README.md").write_text(_readme(classes, height, width,
                                                   side))
    return {
        "out_dir": os.fspath(out_dir),
        "num_videos": num_videos,
        "num_train": sum(v["split"] == "train" for v in videos),
        "num_val": sum(v["split"] == "val" for v in videos),
        "classes": classes,
        "frame_size": [height, width],
        "glyph_size": side,
        "videos": videos,
    }
