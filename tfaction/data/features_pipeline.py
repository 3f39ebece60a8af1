"""tf.data pipeline for pre-extracted feature sequences (localisation).

Records follow `schemas.feature_sequence_example` (features stored as one
serialized tensor, "tensor", or as a float feature list, "floats"). Stages
(see `input_reader.StagedPipeline`):

  read → parse → crop (optional: `random_truncate` or your own hook)
  → pad (features to `max_length` / a multiple / the batch max, segments
  to `max_segments` / the batch max, with masks) → batch → prefetch

Elements are dicts: `video_id`, `features` float32 [B, T, C], `mask` bool
[B, T] (False on padding), `length` int32, `fps`, `duration`,
`feature_stride`, `feature_window` (float32), `crop_start` int32 (first kept
feature step), `segments` float32 [B, S, 2] (seconds, measured from the
first kept step), `segment_labels` int32 [B, S] (-1 on padding),
`segment_mask` bool [B, S], `num_segments` int32.

Example:

```python
config = FeaturesConfig(feature_dim=2048, max_length=2304, truncate=True,
                        crop_ratio=(0.9, 1.0), batch_size=2)
ds = make_features_dataset("/data/thumos/val-*.tfrecord", config,
                           training=True, seed=0, num_epochs=None)
```
"""

import dataclasses
import functools

import tensorflow as tf

from tfaction import errors
from tfaction.data import input_reader
from tfaction.data import samplers
from tfaction.data import schemas

_SEGMENT_LABEL_PAD = -1


@dataclasses.dataclass(frozen=True)
class FeaturesConfig:
    """Settings of the feature-sequence pipeline.

    Args:
        feature_dim: C (static).
        encoding: "tensor" or "floats" (how the records were written).
        storage_dtype: dtype of the "tensor" encoding ("float32"/"float16").
        max_length: pad every sequence to exactly this many steps (longer
            ones are an error unless truncated first).
        pad_multiple: otherwise pad to a multiple of this (inference).
        min_length: with `pad_multiple`, pad to at least this many steps
            (ActionFormer inference: `max(max_seq_len, multiple)`).
        max_segments: pad segments to this (default: the batch max).
        truncate: apply `random_truncate` in training (ActionFormer).
        crop_ratio: (min, max) random crop of sequences no longer than
            `max_length` (ActionFormer: (0.9, 1.0)); None disables.
        trunc_thresh: fraction of a segment that must stay inside a crop.
        max_trials: crop draws looking for a window that keeps a segment.
        batch_size: global batch size (split per replica with an
            `input_context`).
        drop_remainder: default: True in training.
        shuffle_buffer_size: record shuffle buffer in training.
        cycle_length: files read concurrently (None: AUTOTUNE).
        deterministic: reproducible order (default: not training).
        read_buffer_bytes: read buffer per file; records are ~19 MB each
            for THUMOS, which TF's 256 kB default reads much more slowly.
    """

    feature_dim: int
    encoding: str = schemas.FEATURE_ENCODING_FLOATS
    storage_dtype: str = "float32"
    max_length: int = None
    pad_multiple: int = None
    min_length: int = None
    max_segments: int = None
    truncate: bool = False
    crop_ratio: tuple = None
    trunc_thresh: float = 0.5
    max_trials: int = 200
    batch_size: int = 2
    drop_remainder: bool = None
    shuffle_buffer_size: int = 16
    cycle_length: int = None
    deterministic: bool = None
    read_buffer_bytes: int = 16 << 20

    def __post_init__(self):
        if self.encoding not in schemas.FEATURE_ENCODINGS:
            raise errors.ConfigError(
                f"FeaturesConfig.encoding must be one of "
                f"{schemas.FEATURE_ENCODINGS}, got {self.encoding!r}")
        if self.truncate and not self.max_length:
            raise errors.ConfigError("truncate=True needs max_length")
        for key in ("feature_dim", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise errors.ConfigError(f"FeaturesConfig.{key} must be >= 1")


# --- Stages -----------------------------------------------------------------
def parse_stage(epoch, record, *, config):
    """Parses a record into features [T, C] and seconds segments [S, 2]."""
    ex = schemas.parse_feature_sequence(
        record, feature_dim=config.feature_dim, encoding=config.encoding,
        dtype=tf.as_dtype(config.storage_dtype))
    return {
        "epoch": epoch,
        "video_id": ex[schemas.VIDEO_ID],
        "features": ex["features"],
        "fps": ex[schemas.VIDEO_FPS],
        "duration": ex[schemas.VIDEO_DURATION],
        "feature_stride": ex[schemas.FEATURE_STRIDE],
        "feature_window": ex[schemas.FEATURE_WINDOW],
        "crop_start": tf.constant(0, tf.int32),
        "segments": ex["segments"],  # float64 seconds
        "segment_labels": tf.cast(ex[schemas.SEGMENT_LABEL_INDEX], tf.int32),
    }


def random_truncate(ex, seed, *, max_length, trunc_thresh=0.5,
                    crop_ratio=None, max_trials=200, has_action=True):
    """ActionFormer's training crop (`truncate_feats`) as TF ops.

    Sequences longer than `max_length` get a random window of `max_length`
    steps; shorter ones, when `crop_ratio` is set, a window of
    `U{round(r0·T), ..., round(r1·T)}` steps. Up to `max_trials` windows are
    drawn and the first that keeps at least one segment with >=
    `trunc_thresh` of its length inside (with ActionFormer's slack of
    `0.5·window/stride` grid steps) wins, else the last draw. Kept segments
    are clipped to the window (+ slack); the others are dropped.

    Args:
        ex: the parse stage's dict.
        seed: [2] stateless seed.
        max_length: window length for long sequences.
        trunc_thresh, crop_ratio, max_trials, has_action: as ActionFormer.

    Returns:
        `ex` with `features`, `segments` (seconds from the window start),
        `segment_labels` and `crop_start` updated.

    Example:
        `crop_fn=functools.partial(random_truncate, max_length=2304)`.
    """
    feats = ex["features"]
    t = tf.shape(feats)[0]
    if crop_ratio is None:
        length = tf.minimum(t, max_length)
    else:
        tf64 = tf.cast(t, tf.float64)
        lo = tf.maximum(tf.cast(tf.round(crop_ratio[0] * tf64), tf.int32), 1)
        hi = tf.minimum(tf.cast(tf.round(crop_ratio[1] * tf64), tf.int32), t)
        ratio_len = samplers._rand_int([], samplers.make_seed(seed, 0), lo,
                                       tf.maximum(hi, lo) + 1)
        length = tf.where(t > max_length, max_length, ratio_len)
    stride = tf.cast(ex["feature_stride"], tf.float64)
    fps = tf.cast(ex["fps"], tf.float64)
    slack = 0.5 * tf.cast(ex["feature_window"], tf.float64) / stride
    grid = ex["segments"] * fps / stride - slack  # ActionFormer grid [S, 2]
    starts = samplers._rand_int([max_trials], samplers.make_seed(seed, 1), 0,
                                t - length + 1)
    st = tf.cast(starts, tf.float64)[:, None]
    ed = st + tf.cast(length, tf.float64)
    left = tf.maximum(st - slack, grid[None, :, 0])
    right = tf.minimum(ed + slack, grid[None, :, 1])
    inter = tf.maximum(right - left, 0.0)
    keep = inter / tf.abs(grid[None, :, 1] - grid[None, :, 0]) >= trunc_thresh
    ok = tf.reduce_any(keep, 1) if has_action else tf.ones([max_trials],
                                                           tf.bool)
    pick = tf.where(tf.reduce_any(ok),
                    tf.argmax(tf.cast(ok, tf.int32), output_type=tf.int32),
                    max_trials - 1)
    crop = t > length
    start = tf.where(crop, starts[pick], 0)
    keep = tf.where(crop, keep[pick], tf.ones_like(keep[pick]))
    seg = tf.stack([left[pick], right[pick]], -1) - st[pick]
    # Back to seconds, counted from the window start.
    seg = (seg + slack) * stride / fps
    shift = tf.cast(start, tf.float64) * stride / fps
    seg = tf.where(crop, seg, ex["segments"] - shift)
    out = dict(ex)
    out["features"] = feats[start:start + length]
    out["segments"] = tf.boolean_mask(seg, keep)
    out["segment_labels"] = tf.boolean_mask(ex["segment_labels"], keep)
    out["crop_start"] = ex["crop_start"] + start
    return out


def crop_stage(ex, *, crop_fn, seed):
    """Applies `crop_fn(ex, seed)` with a per-(epoch, video) seed."""
    ex_seed = samplers.make_seed(
        seed, ex["epoch"],
        tf.strings.to_hash_bucket_fast(ex["video_id"], 2**62))
    return crop_fn(ex, ex_seed)


def _pad_to(x, size, value=0):
    pad = [[0, size - tf.shape(x)[0]]] + [[0, 0]] * (x.shape.rank - 1)
    return tf.pad(x, pad, constant_values=value)


def pad_stage(ex, *, config):
    """Pads features (and segments) to a fixed size with validity masks."""
    t = tf.shape(ex["features"])[0]
    s = tf.shape(ex["segments"])[0]
    vid = ex["video_id"]
    feats = ex["features"]
    segments = tf.cast(ex["segments"], tf.float32)
    labels = ex["segment_labels"]
    target_t = None
    if config.max_length:
        feats = input_reader.require(t <= config.max_length, [
            "feature sequence longer than max_length (truncate it): video",
            vid, "steps:", t, "max_length:", config.max_length], feats)
        target_t = config.max_length
    elif config.pad_multiple:
        m = config.pad_multiple
        target_t = (t + m - 1) // m * m
        if config.min_length:
            target_t = tf.maximum(target_t, config.min_length)
    if config.max_segments is not None:
        segments, labels = input_reader.require(
            s <= config.max_segments,
            ["more segments than max_segments: video", vid, "segments:", s],
            (segments, labels))
    if target_t is not None:
        feats = _pad_to(feats, target_t)
    if config.max_segments is not None:
        segments = _pad_to(segments, config.max_segments)
        labels = _pad_to(labels, config.max_segments, _SEGMENT_LABEL_PAD)
    feats = tf.ensure_shape(feats, [config.max_length, config.feature_dim])
    return {
        "video_id": vid,
        "features": feats,
        "mask": tf.range(tf.shape(feats)[0]) < t,
        "length": t,
        "fps": ex["fps"],
        "duration": ex["duration"],
        "feature_stride": ex["feature_stride"],
        "feature_window": ex["feature_window"],
        "crop_start": ex["crop_start"],
        "segments": segments,
        "segment_labels": labels,
        "segment_mask": tf.range(tf.shape(labels)[0]) < s,
        "num_segments": s,
    }


def _padding_values(element_spec):
    values = {}
    for key, spec in element_spec.items():
        if spec.dtype == tf.string:
            values[key] = tf.constant("")
        elif spec.dtype == tf.bool:
            values[key] = tf.constant(False)
        else:
            values[key] = tf.constant(
                _SEGMENT_LABEL_PAD if key == "segment_labels" else 0,
                spec.dtype)
    return values


def _add_batch_axis(ex):
    return {key: value[None] for key, value in ex.items()}


# --- Builder ----------------------------------------------------------------
def build_features_pipeline(config, *, training, seed=0, batch_size=None,
                            crop_fn=None):
    """The stages after reading, as a `StagedPipeline`.

    Args:
        config: a `FeaturesConfig`.
        training: training (crops, dropped remainder) or evaluation.
        seed: int seed of the crops (with the epoch and video id).
        batch_size: per-replica batch size (default `config.batch_size`).
        crop_fn: a hook `(example dict, seed) -> example dict` run after
            parsing (default: `random_truncate` when `config.truncate` and
            training; none otherwise).

    Returns:
        `input_reader.StagedPipeline`.

    Example:
        >>> cfg = FeaturesConfig(feature_dim=8)
        >>> build_features_pipeline(cfg, training=False).names
        ['parse', 'pad', 'batch', 'prefetch']
    """
    det = (not training) if config.deterministic is None else \
        config.deterministic
    drop = training if config.drop_remainder is None else \
        config.drop_remainder
    batch_size = batch_size or config.batch_size
    if crop_fn is None and training and config.truncate:
        crop_fn = functools.partial(
            random_truncate, max_length=config.max_length,
            trunc_thresh=config.trunc_thresh, crop_ratio=config.crop_ratio,
            max_trials=config.max_trials)
    m = functools.partial(input_reader.map_stage, deterministic=det)
    p = functools.partial

    def batch(ds):
        if batch_size == 1:  # a batch of one needs no copy (inference)
            return ds.map(_add_batch_axis)
        return ds.padded_batch(batch_size, drop_remainder=drop,
                               padding_values=_padding_values(
                                   ds.element_spec))

    def prefetch(ds):
        return ds.prefetch(input_reader.AUTOTUNE)

    stages = [("parse", m(p(parse_stage, config=config), name="parse"))]
    if crop_fn is not None:
        stages.append(("crop", m(p(crop_stage, crop_fn=crop_fn, seed=seed),
                                 name="crop")))
    stages += [("pad", m(p(pad_stage, config=config), name="pad")),
               ("batch", batch), ("prefetch", prefetch)]
    return input_reader.StagedPipeline(stages)


def make_features_dataset(file_pattern, config, *, training, seed=0,
                          input_context=None, start_epoch=0, num_epochs=1,
                          pipeline=None, crop_fn=None):
    """Reads feature-sequence records into padded, masked batches.

    Args:
        file_pattern: glob, comma-separated globs or list of TFRecord files.
        config: a `FeaturesConfig`.
        training: training or evaluation behaviour.
        seed: int seed; epoch e is a deterministic function of (seed, e).
        input_context: `tf.distribute.InputContext`, if distributed.
        start_epoch: first epoch (resume).
        num_epochs: epochs to read; None repeats forever.
        pipeline: a modified `build_features_pipeline` result, if any.
        crop_fn: crop hook (see `build_features_pipeline`).

    Returns:
        A `tf.data.Dataset` of dicts (see module docstring).

    Example:
        `ds = make_features_dataset(files, FeaturesConfig(feature_dim=2048,
        pad_multiple=576, batch_size=1), training=False)`
    """
    reader = input_reader.InputReader(
        file_pattern, training=training, seed=seed,
        input_context=input_context,
        shuffle_buffer_size=config.shuffle_buffer_size,
        cycle_length=config.cycle_length, deterministic=config.deterministic,
        buffer_size=config.read_buffer_bytes)
    batch_size = config.batch_size
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if pipeline is None:
        pipeline = build_features_pipeline(config, training=training,
                                            seed=seed, batch_size=batch_size,
                                            crop_fn=crop_fn)
    ds = pipeline(reader.read(start_epoch, num_epochs))
    return input_reader.finalize(ds, deterministic=reader.deterministic,
                                 sharded=input_context is not None)
