"""Synthetic temporal action localisation data in the ActivityNet/THUMOS layout.

Writes what ActionFormer's released THUMOS/ActivityNet bundles contain:

```
DIR/annotations.json        {"version", "taxonomy", "database": {video_id: {
                              "subset": "training"|"validation",
                              "duration": s, "fps": 30.0,
                              "annotations": [{"segment": [s, e],
                                               "label": name,
                                               "label_id": k}]}}}
DIR/features/<video_id>.npy float32 [T, C], one row per 16-frame window
                            taken every 4 frames at 30 fps
DIR/README.md               the settings the converter needs
```

Feature row `t` covers frames `[4 t, 4 t + 16)`, so a video of `T` rows lasts
`((T - 1) * 4 + 16) / 30` seconds and its centre is at `(4 t + 8) / 30` s
(ActionFormer's `t_sec = (g * stride + 0.5 * window) / fps`).

What a model has to learn: every class has its own direction in feature
space plus a second direction whose sign ramps from start to end of the action
(so boundaries are visible); the action's amplitude has an onset. Videos have
variable length, several segments of variable length (4 to 64 rows, spanning
several pyramid levels), nested and partially overlapping segments of
different classes (features add up), and background clutter: white noise, a
slow drift and per-video offset in directions no class uses, and distractor
bursts in directions that are not actions.
"""

import json
import os

import numpy as np

from tfaction.data.synthetic import staged_output_dir

FPS = 30.0
FEATURE_STRIDE = 4
FEATURE_WINDOW = 16
# Alphabetical, so label_id order = sorted names: converters that derive
# indices from sorted names (as for ActivityNet) agree with label_id.
CLASS_NAMES = ("Climb", "Dive", "Jump", "Kick", "Lift", "Punch", "Row",
               "Spin", "Swing", "Throw")
NUM_DISTRACTOR_DIRECTIONS = 3
MIN_SEGMENT_STEPS = 4
MAX_SEGMENT_STEPS = 64
NOISE_STD = 0.4
ANNOTATIONS_FILE = "annotations.json"
FEATURES_DIR = "features"


def steps_to_duration(num_steps, fps=FPS, stride=FEATURE_STRIDE,
                      window=FEATURE_WINDOW):
    """Seconds covered by `num_steps` feature windows.

    Args:
        num_steps: number of feature rows `T`.
        fps: frame rate of the underlying video.
        stride: frames between the starts of consecutive windows.
        window: frames per window.

    Returns:
        `((T - 1) * stride + window) / fps` as a Python float.
    """
    return ((num_steps - 1) * stride + window) / fps


def grid_to_seconds(g, fps=FPS, stride=FEATURE_STRIDE, window=FEATURE_WINDOW):
    """Time (s) of the centre of feature row `g` (fractional rows allowed).

    Args:
        g: feature-grid coordinate (float or array).
        fps, stride, window: as in `steps_to_duration`.

    Returns:
        `(g * stride + 0.5 * window) / fps`.
    """
    return (np.asarray(g, np.float64) * stride + 0.5 * window) / fps


def class_names(num_classes):
    """Returns `num_classes` class names, in sorted order."""
    if num_classes <= len(CLASS_NAMES):
        return list(CLASS_NAMES[:num_classes])
    return [f"Action{k:03d}" for k in range(num_classes)]


def _orthonormal_directions(rng, dim):
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return (q * np.sign(np.diag(r))).T  # rows are orthonormal directions


def _overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


def _place_free(rng, num_steps, segments, length):
    """Start of a segment of `length` rows overlapping none of `segments`."""
    for _ in range(50):
        start = int(rng.integers(0, num_steps - length))
        span = (start - 2, start + length + 2)  # keep a 2-row gap
        if not any(_overlaps(span, s[:2]) for s in segments):
            return start
    return None


def _segment_length(rng, num_steps, low=MIN_SEGMENT_STEPS):
    high = min(MAX_SEGMENT_STEPS, num_steps // 3)
    # Log-uniform: as many short as long actions, like real datasets.
    return int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))


def _related_segment(rng, relation, partner, segments, num_steps,
                     num_classes):
    """A segment nested in / partially overlapping `partner`, or None."""
    start, end, label = partner
    others = [s for s in segments if s is not partner]
    new_label = int((label + rng.integers(1, num_classes)) % num_classes)
    for _ in range(50):
        if relation == "nested":
            length = int(rng.integers(3, max(4, (end - start) - 2)))
            s = int(rng.integers(start + 1, end - length))
            candidate = (s, s + length)
        else:  # partial overlap from the right or the left
            length = _segment_length(rng, num_steps)
            shared = int(rng.integers(2, max(3, min(length, end - start) - 1)))
            if rng.random() < 0.5:
                candidate = (end - shared, end - shared + length)
            else:
                candidate = (start + shared - length, start + shared)
            inside = (candidate[0] > start and candidate[1] < end)
            if inside or candidate[0] <= start and candidate[1] >= end:
                continue
        if candidate[0] < 0 or candidate[1] > num_steps - 1:
            continue
        # Never more than two actions at once, never one class on itself.
        if not any(_overlaps(candidate, s[:2]) for s in others):
            return candidate + (new_label,)
    return None


def _video_segments(rng, num_steps, num_classes, relation):
    """Integer grid segments `(start, end, label)` with `start < end`."""
    segments = []
    # The first action is long enough to hold a nested one.
    first = max(12, _segment_length(rng, num_steps, low=12))
    for i in range(int(rng.integers(2, 5))):
        length = first if i == 0 else _segment_length(rng, num_steps)
        start = _place_free(rng, num_steps, segments, length)
        if start is not None:
            segments.append((start, start + length,
                             int(rng.integers(num_classes))))
    if relation != "none" and segments:
        partner = max(segments, key=lambda s: s[1] - s[0])
        related = _related_segment(rng, relation, partner, segments,
                                   num_steps, num_classes)
        if related is not None:
            segments.append(related)
    return sorted(segments)


def _render_features(rng, num_steps, segments, directions, num_classes):
    """Float32 [T, C] features for one video."""
    dim = directions.shape[1]
    class_dir = directions[:num_classes]
    ramp_dir = directions[num_classes:2 * num_classes]
    distractor_dir = directions[2 * num_classes:
                                2 * num_classes + NUM_DISTRACTOR_DIRECTIONS]
    background_dir = directions[2 * num_classes + NUM_DISTRACTOR_DIRECTIONS:]

    x = NOISE_STD * rng.normal(size=(num_steps, dim))
    if len(background_dir):
        # Scene offset and a slow drift, in directions no class uses.
        walk = np.cumsum(rng.normal(scale=0.15,
                                    size=(num_steps, len(background_dir))), 0)
        offset = rng.normal(scale=0.7, size=len(background_dir))
        x += (walk - walk.mean(0) + offset) @ background_dir

    steps = np.arange(num_steps)
    for start, end, label in segments:
        inside = (steps >= start) & (steps <= end)
        p = (steps[inside] - start) / (end - start)  # progress in [0, 1]
        onset = 0.5 + 0.5 * np.minimum(1.0, p / 0.2)
        amplitude = rng.uniform(1.5, 2.5)
        pattern = (class_dir[label][None]
                   + 0.75 * (2.0 * p - 1.0)[:, None] * ramp_dir[label][None])
        x[inside] += amplitude * onset[:, None] * pattern

    # Distractor bursts: action-like bumps that are not actions.
    for _ in range(int(rng.integers(1, 4))):
        length = int(rng.integers(4, 32))
        start = int(rng.integers(0, num_steps - length))
        p = np.arange(length + 1) / length
        k = int(rng.integers(len(distractor_dir)))
        bump = rng.uniform(1.0, 2.5) * np.sin(np.pi * p)
        x[start:start + length + 1] += bump[:, None] * distractor_dir[k][None]
    return x.astype(np.float32)


def _count_relations(segments):
    nested = overlapping = 0
    for i, a in enumerate(segments):
        for b in segments[i + 1:]:
            if not _overlaps(a[:2], b[:2]):
                continue
            contains = ((a[0] <= b[0] and b[1] <= a[1])
                        or (b[0] <= a[0] and a[1] <= b[1]))
            nested += contains
            overlapping += not contains
    return nested, overlapping


def _readme(num_videos, feature_dim, names):
    return f"""# Synthetic temporal action localisation dataset

Generated by `python -m tfaction.data.synthetic --kind=temporal_localization`.
ActivityNet/THUMOS layout as read by ActionFormer:

- `{ANNOTATIONS_FILE}`: `database[video_id]` = `subset`
  (`training`/`validation`), `duration` (s), `fps`, `annotations`
  (`segment` [start_s, end_s], `label`, `label_id`).
- `{FEATURES_DIR}/<video_id>.npy`: float32 [T, {feature_dim}], {num_videos}
  videos.

Feature settings: fps {FPS:g}, feature_stride {FEATURE_STRIDE} frames,
feature_window {FEATURE_WINDOW} frames. Row t covers frames
[t*{FEATURE_STRIDE}, t*{FEATURE_STRIDE}+{FEATURE_WINDOW}); duration =
((T-1)*{FEATURE_STRIDE} + {FEATURE_WINDOW}) / {FPS:g}.

Classes (label_id order): {", ".join(names)}.

Convert to TFRecords:

    python -m tfaction.data.convert --format=activitynet_features \\
        --input=DIR/{ANNOTATIONS_FILE} --features_dir=DIR/{FEATURES_DIR} \\
        --feature_stride={FEATURE_STRIDE} --feature_window={FEATURE_WINDOW} \\
        --output_dir=OUT
"""


def generate_temporal_localization(out_dir, num_videos=60, seed=0, *,
                                   num_classes=5, feature_dim=32,
                                   min_steps=64, max_steps=256,
                                   validation_fraction=0.2, overwrite=False):
    """Writes a synthetic ActivityNet/THUMOS-style localisation dataset.

    Args:
        out_dir: dataset folder to create (missing or empty unless
            `overwrite`).
        num_videos: number of videos (>= 2).
        seed: random seed; the same arguments give byte-identical files.
        num_classes: number of action classes (>= 2).
        feature_dim: feature size `C`; needs
            `C >= 2 * num_classes + 3` for the class, ramp and distractor
            directions.
        min_steps, max_steps: range of the number of feature rows `T`
            (`min_steps >= 48`).
        validation_fraction: share of videos in subset `validation`
            (at least one video in each subset).
        overwrite: replace a non-empty `out_dir`.

    Returns:
        A dict summary: `out_dir`, `num_videos`, `num_training`,
        `num_validation`, `num_segments`, `num_nested_pairs`,
        `num_overlapping_pairs`, `classes`, `feature_dim`, `fps`,
        `feature_stride`, `feature_window`.

    Raises:
        ValueError: inconsistent arguments.
        FileExistsError: `out_dir` is not empty and `overwrite` is false.

    Example:

    >>> s = generate_temporal_localization("/tmp/tal", num_videos=10, seed=1)
    >>> s["num_training"], s["num_validation"]
    (8, 2)
    """
    if num_videos < 2 or num_classes < 2:
        raise ValueError("need num_videos >= 2 and num_classes >= 2, got "
                         f"{num_videos} and {num_classes}")
    if feature_dim < 2 * num_classes + NUM_DISTRACTOR_DIRECTIONS:
        raise ValueError(f"feature_dim={feature_dim} is too small for "
                         f"{num_classes} classes; need >= "
                         f"{2 * num_classes + NUM_DISTRACTOR_DIRECTIONS}")
    if not 48 <= min_steps <= max_steps:
        raise ValueError("need 48 <= min_steps <= max_steps, got "
                         f"{min_steps}, {max_steps}")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in (0, 1), got "
                         f"{validation_fraction}")

    rng = np.random.default_rng(seed)
    names = class_names(num_classes)
    directions = _orthonormal_directions(rng, feature_dim)
    num_val = min(num_videos - 1,
                  max(1, int(round(num_videos * validation_fraction))))
    val_set = set(rng.permutation(num_videos)[:num_val].tolist())

    database, features = {}, {}
    nested = overlapping = num_segments = 0
    for i in range(num_videos):
        video_id = f"video_{i:05d}"
        # Cycle the relation so every dataset of >= 2 videos has both kinds.
        relation = ("nested", "overlap", "none")[i % 3]
        num_steps = int(rng.integers(min_steps, max_steps + 1))
        segments = _video_segments(rng, num_steps, num_classes, relation)
        features[video_id] = _render_features(rng, num_steps, segments,
                                               directions, num_classes)
        n, o = _count_relations(segments)
        nested, overlapping = nested + n, overlapping + o
        num_segments += len(segments)
        database[video_id] = {
            "subset": "validation" if i in val_set else "training",
            "duration": steps_to_duration(num_steps),
            "fps": FPS,
            "annotations": [
                {"segment": [round(float(grid_to_seconds(s)), 6),
                             round(float(grid_to_seconds(e)), 6)],
                 "label": names[label], "label_id": label}
                for s, e, label in segments],
        }

    annotations = {
        "version": "synthetic-1",
        "taxonomy": [{"nodeId": k, "nodeName": name, "parentId": None,
                      "parentName": None} for k, name in enumerate(names)],
        "database": database,
    }
    with staged_output_dir(out_dir, overwrite) as staging:
        (staging / FEATURES_DIR).mkdir()
        for video_id, array in features.items():
            np.save(staging / FEATURES_DIR / f"{video_id}.npy", array)
        (staging / ANNOTATIONS_FILE).write_text(
            json.dumps(annotations, indent=1) + "\n")
        (staging / "README.md").write_text(
            _readme(num_videos, feature_dim, names))
    return {
        "out_dir": os.fspath(out_dir),
        "num_videos": num_videos,
        "num_training": num_videos - num_val,
        "num_validation": num_val,
        "num_segments": num_segments,
        "num_nested_pairs": nested,
        "num_overlapping_pairs": overlapping,
        "classes": names,
        "feature_dim": feature_dim,
        "fps": FPS,
        "feature_stride": FEATURE_STRIDE,
        "feature_window": FEATURE_WINDOW,
    }
