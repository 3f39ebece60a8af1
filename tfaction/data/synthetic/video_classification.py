"""Synthetic two-cue video classification data in the HMDB51 layout.

Writes what the HMDB51 frame + flow bundles used by ActionVLAD/TSN contain:

```
DIR/actions.txt                             class names, line k = class_id k
DIR/train_test_lists/train_split1.txt       "<class>/<video> <n> <class_id>"
DIR/train_test_lists/test_split1.txt        (n = number of frames)
DIR/frames/<class>/<video>/image_%05d.jpg   RGB frames, 1-indexed
DIR/frames/<class>/<video>/flow_x_%05d.jpg  n - 1 flow images per axis,
DIR/frames/<class>/<video>/flow_y_%05d.jpg  flow k = motion, frame k -> k+1
DIR/README.md
```

Flow is quantised as by the dense_flow tool: `q = round((f + 20) / 40 * 255)`
clipped to [0, 255] (pixels per frame; 128 = no motion), one greyscale JPEG
per axis (x right, y down).

Every video shows one textured elliptical blob moving over a static,
textured, nearly grey background. A class is a pair (colour family, motion
group), so that appearance and motion each explain half of the label:

- colour family (the blob's hue; saturation, brightness and texture vary):
  red, yellow, green, blue;
- motion group (direction drawn at random per video): `pan` (move left or
  right), `tilt` (up or down), `spin` (clockwise or anticlockwise rotation),
  `zoom` (expansion or contraction).

The 8 classes form a cycle: family i with motion groups i and i + 1
(`red_pan`, `red_tilt`, `yellow_tilt`, `yellow_spin`, `green_spin`,
`green_zoom`, `blue_zoom`, `blue_pan`). Each colour is shared by two classes
that only motion separates, and each motion group by two classes that only
colour separates. Hence the colour of a frame narrows the label down to two
classes (chance is 1/8), the flow images, the exact motion field of the
rendering (zero on the static background, blind to colour), narrow it down
to two other classes, and only both cues together identify the class: the
ActionVLAD pattern of RGB and flow both above chance and their late fusion
above both. Blob shape, texture pattern and background are drawn from the
same distributions for every class. Blob sizes depend on the motion (a zoom
changes it; ranges overlap across motion groups), so frames carry a weak
motion cue as well and an RGB model may score somewhat above 1/2.
"""

import colorsys
import os

import numpy as np

from tfaction.data.formats import jpeg
from tfaction.data.formats import optical_flow
from tfaction.data.synthetic import staged_output_dir

# Colour family -> hue (degrees); motion group -> its two motions.
FAMILIES = {"red": 0.0, "yellow": 55.0, "green": 125.0, "blue": 230.0}
MOTION_GROUPS = {"pan": ("move_left", "move_right"),
                 "tilt": ("move_up", "move_down"),
                 "spin": ("rotate_cw", "rotate_ccw"),
                 "zoom": ("expand", "contract")}
# Family i pairs with motion groups i and i + 1 (mod 4).
CLASSES = tuple(f"{family}_{group}"
                for i, family in enumerate(FAMILIES)
                for group in (list(MOTION_GROUPS) * 2)[i:i + 2])
# Quantised as by the converters (`formats.optical_flow`, dense_flow style).
FLOW_BOUND = optical_flow.FLOW_BOUND
_DIRECTIONS = {"move_left": (-1, 0), "move_right": (1, 0),
               "move_up": (0, -1), "move_down": (0, 1)}
_HUE_JITTER = 8.0  # degrees around the family's hue
_MARGIN = 2.0


def _motion(rng, motion, n, height, width):
    """Per-frame centres [n, 2] (x, y), angles [n] (rad), radii [n] (px)."""
    t = np.arange(n, dtype=np.float64)
    angle0 = rng.uniform(0, 2 * np.pi)
    limit = min(height, width) / 2 - _MARGIN

    def centre(radius):  # a centre keeping a blob of `radius` in the frame
        lo = radius + _MARGIN
        return np.array([rng.uniform(lo, width - lo),
                         rng.uniform(lo, height - lo)])

    if motion in _DIRECTIONS:
        radius = rng.uniform(7, 12)
        d = np.array(_DIRECTIONS[motion], np.float64)
        axis = 0 if d[0] else 1
        extent = (width, height)[axis]
        speed = min(rng.uniform(0.8, 1.6),
                    (extent - 2 * radius - 2 * _MARGIN - 1) / (n - 1))
        travel = speed * (n - 1)
        c0 = centre(radius)
        lo, hi = radius + _MARGIN, extent - radius - _MARGIN - travel
        c0[axis] = rng.uniform(lo, hi) + (travel if d[axis] < 0 else 0.0)
        centres = c0[None] + speed * t[:, None] * d[None]
        return centres, np.full(n, angle0), np.full(n, radius)
    if motion in MOTION_GROUPS["spin"]:
        radius = rng.uniform(9, 14)
        # Image y points down, so a growing angle turns clockwise on screen.
        omega = np.deg2rad(rng.uniform(3, 6)) * (
            1 if motion == "rotate_cw" else -1)
        centres = np.repeat(centre(radius)[None], n, 0)
        return centres, angle0 + omega * t, np.full(n, radius)
    if motion in MOTION_GROUPS["zoom"]:
        small = rng.uniform(6, 9)
        big = min(rng.uniform(15, 22), limit)
        radii = small * (big / small) ** (t / (n - 1))
        if motion == "contract":
            radii = radii[::-1]
        centres = np.repeat(centre(big)[None], n, 0)
        return centres, np.full(n, angle0), radii
    raise ValueError(f"unknown motion {motion!r}; known: "
                     f"{sum(MOTION_GROUPS.values(), ())}")


def _appearance(rng, family, height, width):
    """Background image and blob texture parameters; the blob's two texture
    colours have the hue of `family`, all else is class-independent."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    # A nearly grey background: the blob's saturation makes it stand out.
    bg_colour = rng.uniform(50, 200) + rng.uniform(-12, 12, 3)
    background = np.broadcast_to(bg_colour, (height, width, 3)).copy()
    for _ in range(2):  # static low-frequency texture
        period, theta = rng.uniform(8, 30), rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta))
                      / period + rng.uniform(0, 2 * np.pi))
        background += wave[..., None] * (rng.uniform(-30, 30)
                                         + rng.uniform(-5, 5, 3))
    hue = (FAMILIES[family] + rng.uniform(-_HUE_JITTER, _HUE_JITTER, 2)) / 360
    # A bright and a dark shade of the hue, so the texture shows.
    value = np.array([rng.uniform(0.8, 1.0), rng.uniform(0.4, 0.6)])
    colours = 255 * np.array([colorsys.hsv_to_rgb(h % 1, s, v) for h, s, v
                              in zip(hue, rng.uniform(0.7, 1.0, 2), value)])
    return {
        "grid": (xx, yy),
        "background": background,
        "colours": colours,
        "aspect": rng.uniform(0.55, 0.85),
        "freqs": rng.uniform(-1, 1, (2, 2)) / rng.uniform(5, 10, (2, 1)),
        "phases": rng.uniform(0, 2 * np.pi, 2),
    }


def _render(look, centre, angle, radius, radius0, noise):
    """One RGB uint8 frame and the blob's coverage (alpha) map."""
    xx, yy = look["grid"]
    dx, dy = xx - centre[0], yy - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    # Material coordinates: q = (r0 / r) R(-angle) (p - c).
    scale = radius0 / radius
    qx = (cos * dx + sin * dy) * scale
    qy = (-sin * dx + cos * dy) * scale
    rho = np.hypot(qx / radius0, qy / (radius0 * look["aspect"]))
    alpha = np.clip((1 - rho) * radius * look["aspect"] + 0.5, 0, 1)
    f, ph = look["freqs"], look["phases"]
    w = 0.5 + 0.5 * (np.sin(2 * np.pi * (qx * f[0, 0] + qy * f[0, 1]) + ph[0])
                     * np.sin(2 * np.pi * (qx * f[1, 0] + qy * f[1, 1])
                              + ph[1]))
    blob = (w[..., None] * look["colours"][0]
            + (1 - w[..., None]) * look["colours"][1])
    a = alpha[..., None]
    image = (1 - a) * look["background"] + a * blob
    image = np.clip(np.round(image + noise), 0, 255).astype(np.uint8)
    return image, alpha


def _flow(look, alpha, c0, c1, a0, a1, r0, r1):
    """Motion field (fx, fy) of the pixels of frame 0.

    A blob point at p moves to p' = c1 + (r1 / r0) R(a1 - a0) (p - c0).
    """
    xx, yy = look["grid"]
    dx, dy = xx - c0[0], yy - c0[1]
    cos, sin, s = np.cos(a1 - a0), np.sin(a1 - a0), r1 / r0
    fx = c1[0] + s * (cos * dx - sin * dy) - xx
    fy = c1[1] + s * (sin * dx + cos * dy) - yy
    on_blob = alpha >= 0.5  # the static background does not move
    return np.where(on_blob, fx, 0.0), np.where(on_blob, fy, 0.0)


def _write_video(folder, rng, family, motion, num_frames, height, width,
                 quality):
    folder.mkdir(parents=True)
    look = _appearance(rng, family, height, width)
    centres, angles, radii = _motion(rng, motion, num_frames, height, width)
    noise = rng.normal(0, 2.0, (num_frames, height, width, 3))
    prev = None
    for i in range(num_frames):
        image, alpha = _render(look, centres[i], angles[i], radii[i],
                               radii[0], noise[i])
        (folder / f"image_{i + 1:05d}.jpg").write_bytes(
            jpeg.encode_jpeg(image, quality))
        if prev is not None:
            fx, fy = _flow(look, prev, centres[i - 1], centres[i],
                           angles[i - 1], angles[i], radii[i - 1], radii[i])
            for axis, f in (("x", fx), ("y", fy)):
                (folder / f"flow_{axis}_{i:05d}.jpg").write_bytes(
                    jpeg.encode_jpeg(optical_flow.quantize_flow(f), quality))
        prev = alpha


def _readme(classes, height, width):
    return f"""# Synthetic colour x motion dataset (HMDB51 layout)

Generated by `python -m tfaction.data.synthetic --kind=video_classification`.

- `actions.txt`: class names; line k (0-based) is class_id k.
- `train_test_lists/{{train,test}}_split1.txt`: lines
  `<class>/<video> <num_frames> <class_id>`.
- `frames/<class>/<video>/image_%05d.jpg` (1-indexed, {height}x{width} RGB) and
  `flow_x_%05d.jpg` / `flow_y_%05d.jpg` (n-1 each; flow k = motion from frame k
  to k+1, quantised q = round((f + {FLOW_BOUND:g}) / {2 * FLOW_BOUND:g} * 255),
  128 = no motion).

Classes: {", ".join(classes)}. A class is `<colour>_<motion>`: the blob's
colour family (red, yellow, green, blue) and its motion group (pan = move
left or right, tilt = up or down, spin = rotate either way, zoom = expand or
contract). Each colour and each motion group belongs to two classes, so
frames alone or flow alone tell at most half of them apart.

Convert to TFRecords:

    python -m tfaction.data.convert --format=hmdb51_frames \\
        --input=DIR/train_test_lists/train_split1.txt,\\
DIR/train_test_lists/test_split1.txt \\
        --frames_root=DIR/frames --modalities=rgb,flow \\
        --class_list=DIR/actions.txt --output_dir=OUT
"""


def generate_video_classification(out_dir, num_videos=32, seed=0, *,
                                  classes=CLASSES, height=64, width=80,
                                  min_frames=24, max_frames=40,
                                  test_fraction=0.3, jpeg_quality=90,
                                  overwrite=False):
    """Writes a synthetic HMDB51-style dataset of colour x motion classes.

    Args:
        out_dir: dataset folder to create (missing or empty unless
            `overwrite`).
        num_videos: total number of videos, dealt round-robin over the
            classes (>= 2 per class so both splits hold every class).
        seed: random seed; the same arguments give byte-identical files.
        classes: a subset of `CLASSES` (order = class_id); see the module
            docstring for what each name means.
        height, width: frame size in pixels (>= 48 each).
        min_frames, max_frames: range of frames per video (>= 8).
        test_fraction: share of each class's videos in `test_split1.txt`.
        jpeg_quality: JPEG quality of frame and flow images.
        overwrite: replace a non-empty `out_dir`.

    Returns:
        A dict summary: `out_dir`, `num_videos`, `num_train`, `num_test`,
        `classes`, `frame_size` [height, width], and `videos`, a list of
        `{"path", "num_frames", "class_id", "split", "family", "motion"}`
        (`motion`: the drawn direction, e.g. "move_left" for a `pan`).

    Raises:
        ValueError: inconsistent arguments.
        FileExistsError: `out_dir` is not empty and `overwrite` is false.

    Example:

    >>> s = generate_video_classification("/tmp/hmdb_synth", num_videos=16)
    >>> s["num_train"], s["num_test"]
    (8, 8)
    """
    classes = list(classes)
    unknown = sorted(set(classes) - set(CLASSES))
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"classes must be >= 2 distinct names from {CLASSES}"
                         f"; got {classes}")
    if num_videos < 2 * len(classes):
        raise ValueError(f"num_videos={num_videos} < 2 per class "
                         f"({2 * len(classes)})")
    if min(height, width) < 48 or not 8 <= min_frames <= max_frames:
        raise ValueError("need height, width >= 48 and 8 <= min_frames <= "
                         f"max_frames; got {height}x{width}, "
                         f"{min_frames}..{max_frames}")

    rng = np.random.default_rng(seed)
    per_class = [list(range(k, num_videos, len(classes)))
                 for k in range(len(classes))]
    videos = []
    with staged_output_dir(out_dir, overwrite) as staging:
        for class_id, members in enumerate(per_class):
            cls = classes[class_id]
            family, group = cls.split("_")
            num_test = min(len(members) - 1,
                           max(1, int(round(len(members) * test_fraction))))
            for j, _ in enumerate(members):
                num_frames = int(rng.integers(min_frames, max_frames + 1))
                motion = MOTION_GROUPS[group][rng.integers(2)]
                path = f"{cls}/{cls}_{j + 1:03d}"
                _write_video(staging / "frames" / path, rng, family, motion,
                             num_frames, height, width, jpeg_quality)
                split = "test" if j >= len(members) - num_test else "train"
                videos.append({"path": path, "num_frames": num_frames,
                               "class_id": class_id, "split": split,
                               "family": family, "motion": motion})
        lists = staging / "train_test_lists"
        lists.mkdir()
        for split in ("train", "test"):
            lines = [f"{v['path']} {v['num_frames']} {v['class_id']}\n"
                     for v in videos if v["split"] == split]
            (lists / f"{split}_split1.txt").write_text("".join(lines))
        (staging / "actions.txt").write_text("".join(c + "\n"
                                                     for c in classes))
        (staging / "README.md").write_text(_readme(classes, height, width))
    return {
        "out_dir": os.fspath(out_dir),
        "num_videos": num_videos,
        "num_train": sum(v["split"] == "train" for v in videos),
        "num_test": sum(v["split"] == "test" for v in videos),
        "classes": classes,
        "frame_size": [height, width],
        "videos": videos,
    }
