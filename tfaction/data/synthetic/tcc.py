"""Synthetic phase-structured videos in the TCC TFRecord layout.

Writes what the TCC / CARL dataset download looks like (Pouring-style file
names, one `tf.train.SequenceExample` per video), small enough to convert in
seconds with `python -m tfaction.data.convert --format=tcc`:

```
DIR/synthetic_phases_train-0-of-2.tfrecord  DIR/synthetic_phases_train-1-of-2...
DIR/synthetic_phases_val-0-of-1.tfrecord
DIR/README.md
```

Each record has context `name` (`0003_spin_slide`: a 4-digit id, `_`, the
action, as PennAction names), `len` (frames), `label` (action index),
`label_string` (action name), `framelabels_string` (the action's phase
names, comma-joined) and feature lists `video` (one JPEG per frame, RGB,
`size` x `size`) and `frame_labels` (the phase of each frame).

Content: a video shows one rectangular "tool" with a marker square at one
end (so its orientation is visible) over a flat background with a static
distractor disc. The action is a fixed program of K phases; phase k moves
the tool from key pose k to key pose k + 1 (position, rotation, scale),
and every phase changes how the tool looks (its orientation or size), not
only where it is, so a network that pools over space (CARL's spatial max
pool) and is trained to ignore flips can still tell the phases apart:

* `pour` (K = 4): `lift` (up and right, growing as it nears the camera),
  `tilt` (rotate 110 degrees), `empty` (shrink), `return` (back
  down-left, rotating back).
* `spin_slide` (K = 3): `spin` (a quarter turn), `slide` (down and left,
  tipping back 45 degrees), `grow`.

Phase labels are 0 .. K-1, non-decreasing in time, every phase present.
Timing differs strongly between videos, so that a frame's relative time
t / (n - 1) says little about its phase (as in real recordings; CARL's
evaluation gives every network that number through its interpolated
position encoding): a video has 20-60 frames; it may start with the tool
held still at the first key pose and end with it still at the last one
(idle stretches, labelled as the first / last phase, each up to 20 % of
the video, `idle_lengths`); the moving frames are shared between the
phases in Dirichlet(0.5) proportions (at least 3 frames each, so one
phase may take most of a video and another almost nothing,
`phase_lengths`); and progress within a phase follows `u ** gamma` with
a random `gamma` per phase (accelerating or decelerating). Relative time
alone, as a 1-d embedding, classifies the val frames of the default data
(seed 0) with 0.59 accuracy (all train videos, mean over the actions),
where the tool's orientation and size give about 0.9. Appearance
nuisance that carries no phase information: background hue (light), tool
hue (darker than the background) and marker hue (lighter than the tool),
the distractor's place, size and colour, a per-video position offset,
per-frame position jitter and pixel noise; so a single frame's position
or colour does not tell its phase, the tool's pose does.

The same arguments and seed give byte-identical files.

Example:

>>> s = generate_tcc("/tmp/tcc_synth", seed=0)  # doctest: +SKIP
>>> s["num_train"], s["num_val"], s["actions"][0]  # doctest: +SKIP
(24, 8, ['pour', ['lift', 'tilt', 'empty', 'return']])
"""

import os

import numpy as np

from tfaction.data.formats import jpeg
from tfaction.data.synthetic import staged_output_dir

# name, phase names, key poses (x, y as fractions of the frame; angle in
# degrees; scale), one more pose than phases.
ACTIONS = (
    ("pour", ("lift", "tilt", "empty", "return"),
     ((0.32, 0.62, 0.0, 0.85), (0.54, 0.42, 0.0, 1.15),
      (0.54, 0.42, 110.0, 1.15), (0.54, 0.42, 110.0, 0.65),
      (0.34, 0.64, 10.0, 0.65))),
    ("spin_slide", ("spin", "slide", "grow"),
     ((0.66, 0.36, 0.0, 0.8), (0.66, 0.36, -90.0, 0.8),
      (0.34, 0.62, -45.0, 0.8), (0.34, 0.62, -45.0, 1.3))),
)
FILE_PATTERN = "{prefix}_{split}-{shard}-of-{num_shards}.tfrecord"
MIN_PHASE_FRAMES = 3
_TOOL_W, _TOOL_H, _MARK = 0.34, 0.15, 0.08  # fractions of the frame size


def phase_lengths(rng, num_frames, num_phases, concentration=0.5):
    """Random frames per phase (each >= MIN_PHASE_FRAMES) summing to n.

    The frames above the minimum are shared out in Dirichlet proportions;
    a low `concentration` makes the shares very unequal (one phase may
    take most of a video, another barely its minimum), so a phase's place
    in relative time differs strongly between videos.

    Args:
        rng: `np.random.Generator`.
        num_frames: n >= MIN_PHASE_FRAMES * num_phases.
        num_phases: K.
        concentration: the symmetric Dirichlet's parameter (> 0).

    Returns:
        int array [K].

    Example:

    >>> phase_lengths(np.random.default_rng(0), 20, 4).sum()
    20
    """
    free = num_frames - MIN_PHASE_FRAMES * num_phases
    if free < 0:
        raise ValueError(f"{num_frames} frames cannot hold {num_phases} "
                         f"phases of >= {MIN_PHASE_FRAMES} frames")
    share = free * rng.dirichlet(np.full(num_phases, float(concentration)))
    extra = np.floor(share).astype(int)
    # Largest remainders get the frames left over.
    order = np.argsort(-(share - extra), kind="stable")
    extra[order[:free - extra.sum()]] += 1
    return MIN_PHASE_FRAMES + extra


def idle_lengths(rng, num_frames, num_phases, max_idle=0.2):
    """Random idle frames before the first and after the last phase.

    Each side holds `floor(U(0, max_idle) * n)` frames, scaled down where
    the phases would be left fewer than MIN_PHASE_FRAMES each.

    Args:
        rng: `np.random.Generator`.
        num_frames: n >= MIN_PHASE_FRAMES * num_phases.
        num_phases: K.
        max_idle: largest share of the video idle on each side (< 0.5).

    Returns:
        int array [2] (before, after).

    Example:

    >>> idle = idle_lengths(np.random.default_rng(0), 40, 4)
    >>> bool(idle.min() >= 0 and 40 - idle.sum() >= 12)
    True
    """
    room = num_frames - MIN_PHASE_FRAMES * num_phases
    idle = np.floor(rng.uniform(0, max_idle, 2) * num_frames).astype(int)
    if idle.sum() > room:
        idle = np.floor(idle * room / idle.sum()).astype(int)
    return idle


def trajectory(poses, lengths, gammas, idle=(0, 0)):
    """Per-frame pose and phase label of an action program.

    Args:
        poses: [K + 1, 4] key poses (x, y, angle, scale).
        lengths: [K] frames per phase (moving).
        gammas: [K] progress exponents (`u ** gamma` within a phase).
        idle: frames held still at the first key pose before the first
            phase (labelled 0) and at the last key pose after the last
            phase (labelled K - 1).

    Returns:
        (poses [n, 4] float64, labels [n] int64), n = sum(lengths) +
        sum(idle).

    Example:

    >>> p, lab = trajectory(np.array([[0, 0, 0, 1], [1, 0, 0, 1.]]), [4],
    ...                     [1.0], idle=(1, 2))
    >>> lab.tolist(), p[:, 0].round(3).tolist()
    ([0, 0, 0, 0, 0, 0, 0], [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    """
    poses = np.asarray(poses, np.float64)
    before, after = (int(i) for i in idle)
    num_phases = len(lengths)
    out = [np.repeat(poses[:1], before, axis=0)]
    labels = [np.zeros(before, np.int64)]
    for k, (n, gamma) in enumerate(zip(lengths, gammas)):
        u = (np.arange(n) / n) ** gamma
        out.append(poses[k] + u[:, None] * (poses[k + 1] - poses[k]))
        labels.append(np.full(n, k, np.int64))
    out.append(np.repeat(poses[num_phases:num_phases + 1], after, axis=0))
    labels.append(np.full(after, num_phases - 1, np.int64))
    return np.concatenate(out), np.concatenate(labels)


def _luma(colour):
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def _coloured(rng, low, high):
    """A random RGB colour whose luma lies in [low, high]."""
    while True:
        colour = rng.uniform(20, 235, 3)
        if low <= _luma(colour) <= high:
            return colour


def _contrasting(rng, other, min_diff=70):
    while True:
        colour = rng.uniform(20, 235, 3)
        if abs(_luma(colour) - _luma(other)) >= min_diff:
            return colour


def render(pose, size, *, background, tool, marker, disc, noise):
    """Draws one frame (2x2 supersampled edges).

    Args:
        pose: (x, y, angle, scale) of the tool, x and y in pixels.
        size: frame side in pixels.
        background, tool, marker: RGB colours.
        disc: (x, y, radius, colour) of the static distractor.
        noise: [size, size, 3] additive pixel noise.

    Returns:
        uint8 [size, size, 3].
    """
    sub = (np.arange(2 * size) + 0.5) / 2.0
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    image = np.empty((2 * size, 2 * size, 3))
    image[:] = background
    dx, dy, radius, colour = disc
    image[(xx - dx) ** 2 + (yy - dy) ** 2 <= radius ** 2] = colour
    x, y, angle, scale = pose
    theta = np.deg2rad(angle)
    # Pixel -> tool coordinates (u along the tool, v across it).
    u = (xx - x) * np.cos(theta) + (yy - y) * np.sin(theta)
    v = -(xx - x) * np.sin(theta) + (yy - y) * np.cos(theta)
    half_w, half_h = _TOOL_W * size * scale / 2, _TOOL_H * size * scale / 2
    body = (np.abs(u) <= half_w) & (np.abs(v) <= half_h)
    image[body] = tool
    mark = _MARK * size * scale
    tip = body & (u >= half_w - mark) & (np.abs(v) <= mark / 2)
    image[tip] = marker
    image = image.reshape(size, 2, size, 2, 3).mean(axis=(1, 3))
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def _video(rng, action, num_frames, size, concentration, max_idle):
    """Frames and labels of one video, with its drawn parameters."""
    _, _, poses = ACTIONS[action]
    num_phases = len(poses) - 1
    idle = idle_lengths(rng, num_frames, num_phases, max_idle)
    lengths = phase_lengths(rng, num_frames - idle.sum(), num_phases,
                            concentration)
    gammas = np.exp(rng.uniform(-0.5, 0.5, num_phases))
    path, labels = trajectory(poses, lengths, gammas, idle)
    offset = rng.uniform(-0.08, 0.08, 2) * size
    jitter = np.clip(rng.normal(0, 0.8, (num_frames, 2)), -2, 2)
    # Any hues, one polarity: a light background, a darker tool (by >= 70
    # in luma) and a lighter marker on it (by >= 90, or at least 225).
    background = _coloured(rng, 150, 235)
    tool = _coloured(rng, 20, min(_luma(background) - 70, 145))
    marker = _coloured(rng, min(_luma(tool) + 90, 225), 235)
    disc = (rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size,
            rng.uniform(0.06, 0.12) * size, _contrasting(rng, background, 30))
    noise = rng.normal(0, 3.0, (num_frames, size, size, 3))
    frames = []
    for i in range(num_frames):
        x, y, angle, scale = path[i]
        pose = (x * size + offset[0] + jitter[i, 0],
                y * size + offset[1] + jitter[i, 1], angle, scale)
        frames.append(render(pose, size, background=background, tool=tool,
                             marker=marker, disc=disc, noise=noise[i]))
    return frames, labels, {"phase_lengths": np.bincount(
                                labels, minlength=num_phases).tolist(),
                            "idle_frames": idle.tolist(),
                            "phase_gammas": gammas.round(4).tolist(),
                            "offset": offset.round(3).tolist()}


def tcc_example(name, frames, frame_labels, *, label, label_string,
                phase_names, jpeg_quality=95):
    """One video as a TCC `tf.train.SequenceExample`.

    Args:
        name: video name (context `name`).
        frames: RGB uint8 frames, encoded as JPEG (`video`).
        frame_labels: per-frame phase labels (`frame_labels`).
        label, label_string: the video class (`label`, `label_string`).
        phase_names: phase names (`framelabels_string`, comma-joined).
        jpeg_quality: JPEG quality.

    Returns:
        A `tf.train.SequenceExample`.
    """
    import tensorflow as tf

    def feature(kind, values):
        if kind == "bytes":
            return tf.train.Feature(bytes_list=tf.train.BytesList(
                value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    context = {
        "name": feature("bytes", [name.encode()]),
        "len": feature("int64", [len(frames)]),
        "label": feature("int64", [int(label)]),
        "label_string": feature("bytes", [label_string.encode()]),
        "framelabels_string": feature("bytes",
                                      [",".join(phase_names).encode()]),
    }
    lists = {
        "video": tf.train.FeatureList(feature=[
            feature("bytes", [jpeg.encode_jpeg(f, jpeg_quality)])
            for f in frames]),
        "frame_labels": tf.train.FeatureList(feature=[
            feature("int64", [int(c)]) for c in frame_labels]),
    }
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=lists))


def _readme(summary, prefix):
    actions = "\n".join(f"  {i}: {name} (phases: {', '.join(phases)})"
                        for i, (name, phases) in
                        enumerate(summary["actions"]))
    height, width = summary["frame_size"]
    return f"""# Synthetic phase-structured videos (TCC TFRecord layout)

Generated by `python -m tfaction.data.synthetic --kind=tcc`:
{summary['num_videos']} videos ({summary['num_train']} train,
{summary['num_val']} val), {height}x{width},
{summary['min_frames']}-{summary['max_frames']} frames each, one phase label
per frame (see `tfaction.data.synthetic.tcc`).

Actions:
{actions}

Convert to frame-label TFRecords:

    python -m tfaction.data.convert --format=tcc \\
        --input='DIR/{prefix}_*.tfrecord' --output_dir=OUT
"""


def generate_tcc(out_dir, num_videos=32, seed=0, *, size=64, min_frames=20,
                 max_frames=60, num_actions=2, val_every=4,
                 train_shards=2, prefix="synthetic_phases",
                 phase_concentration=0.5, max_idle=0.2, overwrite=False):
    """Writes a small synthetic dataset in the TCC layout (module doc).

    Args:
        out_dir: dataset folder to create (missing or empty unless
            `overwrite`).
        num_videos: number of videos (>= 2 * num_actions); video i does
            action `i % num_actions`.
        seed: random seed; the same arguments give the same files.
        size: frame side in pixels (>= 32).
        min_frames, max_frames: video length range (uniform, inclusive).
        num_actions: 1 or 2 actions of `ACTIONS`.
        val_every: the j-th video of an action (j = i // num_actions) is in
            val when j % val_every == val_every - 1, else in train.
        train_shards: TFRecord files of the train split (val has one).
        prefix: file name prefix (`<prefix>_<split>-<i>-of-<n>.tfrecord`).
        phase_concentration: Dirichlet concentration of the phases' shares
            of a video (`phase_lengths`; lower = more unequal).
        max_idle: largest share of a video held still before the first and
            after the last phase, each (`idle_lengths`, in [0, 0.5)).
        overwrite: replace a non-empty `out_dir`.

    Returns:
        Summary dict: `out_dir`, `num_videos`, `num_train`, `num_val`,
        `actions` ([name, phase names]), `frame_size`, `min_frames`,
        `max_frames`, `files` (per split), and `videos`: per video `name`,
        `split`, `action`, `num_frames`, `phase_lengths` (frames per
        label, idle frames included), `idle_frames` ([before, after]),
        `phase_gammas`, `offset` (pixels) and `frame_labels`.

    Raises:
        ValueError: inconsistent arguments.
        FileExistsError: `out_dir` is not empty and `overwrite` is false.

    Example:

    >>> s = generate_tcc("/tmp/tcc_synth", num_videos=8)  # doctest: +SKIP
    >>> [v["num_frames"] for v in s["videos"]][:3]  # doctest: +SKIP
    [54, 46, 41]
    """
    if not 1 <= num_actions <= len(ACTIONS):
        raise ValueError(f"num_actions must be in [1, {len(ACTIONS)}], got "
                         f"{num_actions}")
    longest = max(len(a[1]) for a in ACTIONS[:num_actions])
    if min_frames < MIN_PHASE_FRAMES * longest or max_frames < min_frames:
        raise ValueError(f"need {MIN_PHASE_FRAMES * longest} <= min_frames "
                         f"<= max_frames, got {min_frames}, {max_frames}")
    if size < 32 or num_videos < 2 * num_actions or val_every < 2:
        raise ValueError("need size >= 32, num_videos >= 2 * num_actions "
                         "and val_every >= 2")
    if train_shards < 1 or not prefix or "/" in prefix:
        raise ValueError("need train_shards >= 1 and a prefix without '/'")
    if phase_concentration <= 0 or not 0 <= max_idle < 0.5:
        raise ValueError(f"need phase_concentration > 0 and 0 <= max_idle "
                         f"< 0.5, got {phase_concentration}, {max_idle}")
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    videos, records = [], {"train": [], "val": []}
    for i in range(num_videos):
        action = i % num_actions
        name, phases, _ = ACTIONS[action]
        split = ("val" if (i // num_actions) % val_every == val_every - 1
                 else "train")
        num_frames = int(rng.integers(min_frames, max_frames + 1))
        frames, labels, params = _video(rng, action, num_frames, size,
                                        phase_concentration, max_idle)
        vid = f"{i + 1:04d}_{name}"
        example = tcc_example(vid, frames, labels, label=action,
                              label_string=name, phase_names=phases)
        records[split].append(example.SerializeToString(deterministic=True))
        videos.append({"name": vid, "split": split, "action": action,
                       "num_frames": num_frames, **params,
                       "frame_labels": labels.tolist()})
    shards = {"train": train_shards, "val": 1}
    files = {}
    with staged_output_dir(out_dir, overwrite) as staging:
        for split, serialized in records.items():
            n = min(shards[split], max(len(serialized), 1))
            per = -(-len(serialized) // n)  # contiguous blocks, as TCC
            files[split] = []
            for shard in range(n):
                name = FILE_PATTERN.format(prefix=prefix, split=split,
                                           shard=shard, num_shards=n)
                with tf.io.TFRecordWriter(str(staging / name)) as writer:
                    for record in serialized[shard * per:(shard + 1) * per]:
                        writer.write(record)
                files[split].append(name)
        summary = {
            "out_dir": os.fspath(out_dir),
            "num_videos": num_videos,
            "num_train": len(records["train"]),
            "num_val": len(records["val"]),
            "actions": [[a[0], list(a[1])] for a in ACTIONS[:num_actions]],
            "frame_size": [size, size],
            "min_frames": min_frames,
            "max_frames": max_frames,
            "files": files,
            "videos": videos,
        }
        (staging / "README.md").write_text(_readme(summary, prefix))
    return summary
