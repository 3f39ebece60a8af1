"""tf.data pipeline for RGB / optical-flow frame records (DMVR-style stages).

Records follow `schemas.frames_example` (one SequenceExample per video, one
JPEG per frame). Stages, each a named function (see `StagedPipeline`):

  read (InputReader: list/shard files, interleave, shuffle)
  → parse → sample (frame indices, `samplers`) → decode (only the chosen
  JPEGs, each once) → augment (resize, crop, flip) → normalize → labels
  → batch → fold_views → prefetch

Views: a video yields V = clips × crops views ([V, T, H, W, C]): several
temporal clips (`num_clips`, CARL's two views) and, at test time, several
spatial crops ("three", "five"). `fold_views` folds V into the batch
([B·V, T, ...], labels repeated), into time ([B, V·T, ...], ActionVLAD's
one vector over all crop-frames), keeps it, or (default) drops it when 1.

Flow: `flow/x/encoded` and `flow/y/encoded` are decoded as single-channel
JPEGs; each sampled index starts a stack of `flow_stack` consecutive flow
frames, laid out as 2·S interleaved channels [x_j, y_j, x_j+1, ...]
(`flow_layout="interleave"`, two-stream nets) or along time [T·S, H, W, 2]
("stack", I3D).

Elements are dicts: `video_id` string, `frames` float32, `label` (int32
index, or float32 multi-hot [C] with `multi_label`), `frame_indices` int32
(indices into the stored frames for every output time step), `frame_mask`
bool (False on padded steps), `num_frames` int32 (stored frames), and
`frame_labels` int32 when `frame_labels=True`.

Example:

```python
config = FramesConfig(sampler="tsn", num_steps=16, resize=256,
                      crop_size=(224, 224), train_crop="tsn_multiscale",
                      mean=(123.675, 116.28, 103.53),
                      std=(58.395, 57.12, 57.375), batch_size=8)
ds = make_frames_dataset("/data/train-*.tfrecord", config, training=True,
                         seed=0, num_epochs=None)
```
"""

import dataclasses
import functools

import tensorflow as tf

from tfaction import errors
from tfaction.data import input_reader
from tfaction.data import samplers
from tfaction.data import schemas
from tfaction.data import video_ops

SAMPLERS = ("tsn", "clip", "temporal_crop", "actionvlad", "carl", "all")
TRAIN_CROPS = ("random", "multiscale", "tsn_multiscale", "random_resized",
               "none")
TEST_CROPS = ("center", "three", "five", "none")
FOLD_VIEWS = ("auto", "batch", "time", "none")
_NUM_TEST_CROPS = {"center": 1, "three": 3, "five": 5, "none": 1}


@dataclasses.dataclass(frozen=True)
class FramesConfig:
    """Settings of the frames pipeline.

    Args:
        modality: "rgb" or "flow".
        sampler: "tsn" (segments), "clip" (fixed stride), "temporal_crop",
            "actionvlad" (deterministic uniform), "carl" (two views,
            training only) or "all" (every `stride`-th frame, padded).
        num_steps: frames (flow: stacks) per clip.
        stride: frame step of "clip" and "all".
        pad_mode: "clip" on short videos: "loop" or "repeat_last".
        temporal_scale: "temporal_crop" window (min, max) fraction.
        num_clips: temporal clips per video (train and test).
        carl_sampling_region, carl_consistent_offset, carl_block_from:
            CARL `time_augment` settings (see `samplers.carl_indices`).
        flow_stack: flow frames per stack (ActionVLAD: 10).
        flow_layout: "interleave" ([T, H, W, 2S]) or "stack" ([T·S, H, W, 2]).
        resize: None, (height, width), or an int shorter side.
        crop_size: (height, width) of the output.
        train_crop: "random", "multiscale" (ActionVLAD), "tsn_multiscale",
            "random_resized" or "none".
        crop_scales: scales of the multiscale crops.
        resized_crop_scale, resized_crop_ratio: "random_resized" ranges.
        test_crop: "center", "three", "five" or "none".
        test_crop_offsets: explicit (y, x) test crop offsets (overrides
            `test_crop`; ActionVLAD: ((16, 60),)).
        flip: random horizontal flip in training.
        flow_flip_invert_x: on flips, x-flow → 255 − x-flow.
        mean, std: normalisation in [0, 255] units (scalar or per channel).
        bgr: RGB → BGR before `mean` (VGG/caffe weights).
        num_classes: number of classes (checked; needed for multi_label).
        multi_label: `label` is a multi-hot [num_classes] vector.
        frame_labels: also read `frame/label/index` (CARL).
        batch_size: global batch size (split per replica when an
            `input_context` is given).
        drop_remainder: default: True in training.
        fold_views: "auto", "batch", "time" or "none".
        shuffle_buffer_size: record shuffle buffer in training.
        cycle_length: files read concurrently (None: AUTOTUNE).
        deterministic: reproducible order (default: not training).
        dct_method: `tf.io.decode_jpeg` DCT method.
        crop_in_decode: when no resize comes first and each clip has one
            crop, decode straight into it (`tf.image.decode_and_crop_jpeg`):
            ~25 % less decoding, but libjpeg's chroma upsampling at the crop
            border then differs from decode + crop by a few grey levels (up
            to ~30 on noise); off for reference parity.
    """

    modality: str = "rgb"
    sampler: str = "tsn"
    num_steps: int = 8
    stride: int = 1
    pad_mode: str = "loop"
    temporal_scale: tuple = (0.5, 1.0)
    num_clips: int = 1
    carl_sampling_region: float = 1.5
    carl_consistent_offset: float = 0.2
    carl_block_from: str = "video"
    flow_stack: int = 1
    flow_layout: str = "interleave"
    resize: object = None
    crop_size: tuple = (224, 224)
    train_crop: str = "random"
    crop_scales: tuple = (1.0, 0.875, 0.75, 0.66)
    resized_crop_scale: tuple = (0.08, 1.0)
    resized_crop_ratio: tuple = (3 / 4, 4 / 3)
    test_crop: str = "center"
    test_crop_offsets: tuple = None
    flip: bool = True
    flow_flip_invert_x: bool = False
    mean: object = 0.0
    std: object = 1.0
    bgr: bool = False
    num_classes: int = 0
    multi_label: bool = False
    frame_labels: bool = False
    batch_size: int = 8
    drop_remainder: bool = None
    fold_views: str = "auto"
    shuffle_buffer_size: int = 64
    cycle_length: int = None
    deterministic: bool = None
    dct_method: str = "INTEGER_ACCURATE"
    crop_in_decode: bool = False

    def __post_init__(self):
        choices = {"modality": ("rgb", "flow"), "sampler": SAMPLERS,
                   "pad_mode": ("loop", "repeat_last"),
                   "flow_layout": ("interleave", "stack"),
                   "train_crop": TRAIN_CROPS, "test_crop": TEST_CROPS,
                   "fold_views": FOLD_VIEWS,
                   "carl_block_from": ("video", "valid")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise errors.ConfigError(
                    f"FramesConfig.{key} must be one of {allowed}, got "
                    f"{getattr(self, key)!r}")
        for key in ("num_steps", "stride", "num_clips", "flow_stack",
                    "batch_size"):
            if int(getattr(self, key)) < 1:
                raise errors.ConfigError(
                    f"FramesConfig.{key} must be >= 1, got "
                    f"{getattr(self, key)!r}")
        if self.multi_label and self.num_classes < 1:
            raise errors.ConfigError("multi_label needs num_classes >= 1")
        if self.frame_labels and self.modality != "rgb":
            raise errors.ConfigError("frame_labels needs modality='rgb'")
        if self.sampler == "carl" and self.num_clips != 1:
            raise errors.ConfigError("the carl sampler makes two views; "
                                     "leave num_clips at 1")

    @property
    def temporal_views(self):
        """Clips per video (CARL: 2)."""
        return 2 if self.sampler == "carl" else self.num_clips

    def spatial_views(self, training):
        """Crops per clip (several only at test time)."""
        if training:
            return 1
        if self.test_crop_offsets is not None:
            return len(self.test_crop_offsets)
        return _NUM_TEST_CROPS[self.test_crop]


# --- Stages -----------------------------------------------------------------
def parse_stage(epoch, record, *, config):
    """Parses a record; JPEGs stay encoded. Adds the `epoch`."""
    ex = schemas.parse_frames(record, modalities=(config.modality,))
    if config.frame_labels:
        _, seq = tf.io.parse_single_sequence_example(
            record, sequence_features={
                schemas.FRAME_LABEL_INDEX:
                    tf.io.FixedLenSequenceFeature([], tf.int64)})
        ex[schemas.FRAME_LABEL_INDEX] = seq[schemas.FRAME_LABEL_INDEX]
    ex["epoch"] = epoch
    return ex


def _stored_frames(ex, config):
    key = (schemas.IMAGE_ENCODED if config.modality == "rgb"
           else schemas.FLOW_X_ENCODED)
    return tf.shape(ex[key])[0]


def sample_stage(ex, *, config, training, seed):
    """Chooses frame indices ([V, T] or flow [V, T, S]) and a frame mask."""
    video_id = ex[schemas.VIDEO_ID]
    stored = _stored_frames(ex, config)
    stored = input_reader.require(stored > 0, [
        "video has no", config.modality, "frames:", video_id], stored)
    ex_seed = samplers.make_seed(
        seed, ex["epoch"], tf.strings.to_hash_bucket_fast(video_id, 2**62))
    s_seed = samplers.make_seed(ex_seed, 1) if training else None
    flow = config.modality == "flow"
    size = config.flow_stack if flow else 1
    n = tf.maximum(stored - size + 1, 1)  # valid stack starts
    t, views = config.num_steps, config.temporal_views
    mask = None
    if config.sampler == "tsn":
        starts = samplers.tsn_indices(n, t, training=training, seed=s_seed,
                                      num_clips=views)
    elif config.sampler == "clip":
        starts = samplers.clip_indices(n, t, config.stride,
                                       training=training, seed=s_seed,
                                       num_clips=views,
                                       pad_mode=config.pad_mode)
    elif config.sampler == "temporal_crop":
        starts = samplers.temporal_crop_indices(
            n, t, training=training, seed=s_seed,
            scale=config.temporal_scale, num_clips=views)
    elif config.sampler == "carl":
        if not training:
            raise errors.ConfigError("the carl sampler is for training; "
                                     "evaluate with sampler='all'")
        starts, mask = samplers.carl_indices(
            n, t, seed=s_seed, sampling_region=config.carl_sampling_region,
            consistent_offset=config.carl_consistent_offset,
            block_from=config.carl_block_from)
    elif config.sampler == "all":
        starts = tf.range(0, n, config.stride)[None]
        starts = tf.tile(starts, [views, 1])
    elif flow:  # actionvlad flow: n counts RGB frames (n - 1 flows)
        rgb = tf.cast(ex[schemas.VIDEO_NUM_FRAMES], tf.int32)
        rgb = tf.where(rgb > 0, rgb, stored + 1)
        stacks = samplers.actionvlad_flow_indices(rgb, t, size, seed=s_seed)
        starts = tf.tile(stacks[None, :, 0], [views, 1])
    else:
        starts = tf.tile(samplers.actionvlad_indices(n, t, seed=s_seed)[None],
                         [views, 1])
    if mask is None:
        mask = tf.ones_like(starts, tf.bool)
    starts = tf.minimum(starts, stored - 1)
    ex["indices"] = (starts[..., None] + tf.range(size) if flow else starts)
    ex["indices"] = tf.minimum(ex["indices"], stored - 1)
    ex["frame_mask"] = mask
    ex["seed"] = ex_seed
    ex["num_frames"] = stored
    return ex


def _train_box(hw, config, seed):
    """(box, resize_back) of one training view; box None: no crop."""
    crop = config.crop_size
    if config.train_crop == "random":
        return video_ops.random_crop_box(hw, crop, seed), False
    if config.train_crop == "multiscale":
        return video_ops.multiscale_crop_box(hw, crop, config.crop_scales,
                                             seed), True
    if config.train_crop == "tsn_multiscale":
        return video_ops.tsn_multiscale_crop_box(hw, crop,
                                                 config.crop_scales,
                                                 seed), True
    if config.train_crop == "random_resized":
        return video_ops.random_resized_crop_box(
            hw, seed, config.resized_crop_scale,
            config.resized_crop_ratio), True
    return None, False


def eval_crop_boxes(hw, config):
    """[crops, 4] test boxes, or None (no crop)."""
    if config.test_crop_offsets is not None:
        h, w = config.crop_size
        return tf.constant([[y, x, h, w] for y, x in
                            config.test_crop_offsets], tf.int32)
    if config.test_crop == "none":
        return None
    return video_ops.fixed_crop_boxes(hw, config.crop_size, config.test_crop)


def has_crops(config, training):
    if training:
        return config.train_crop != "none"
    return config.test_crop_offsets is not None or config.test_crop != "none"


def crop_at_decode(config, training):
    """Crop each frame as it is decoded (only crops are kept and copied)
    when no resize comes first and each clip has one crop."""
    if config.resize is not None or not has_crops(config, training):
        return False
    return training or config.spatial_views(False) == 1


def _view_seed(ex, view):
    return samplers.make_seed(ex["seed"], 100 + view)


def decode_stage(ex, *, config, training):
    """Decodes only the chosen JPEGs → uint8 [V, T', h, w, C]."""
    idx = ex["indices"]
    decode = functools.partial(video_ops.decode_jpegs,
                               video_id=ex[schemas.VIDEO_ID],
                               dct_method=config.dct_method,
                               crop_in_decode=config.crop_in_decode)
    keys = ([schemas.IMAGE_ENCODED] if config.modality == "rgb"
            else [schemas.FLOW_X_ENCODED, schemas.FLOW_Y_ENCODED])
    channels = 3 if config.modality == "rgb" else 1
    encoded = [ex.pop(k) for k in keys]
    if not crop_at_decode(config, training):
        parts = [decode(e, idx, channels=channels) for e in encoded]
    elif training:  # one random box per clip
        parts = [tf.stack([
            decode(e, idx[v], channels=channels,
                   crop_fn=lambda hw, v=v: _train_box(
                       hw, config, _view_seed(ex, v))[0])
            for v in range(config.temporal_views)]) for e in encoded]
    else:
        parts = [decode(e, idx, channels=channels,
                        crop_fn=lambda hw: eval_crop_boxes(hw, config)[0])
                 for e in encoded]
    frames = tf.concat(parts, -1)
    if config.modality == "flow":  # [V, T, S, h, w, 2] → [V, T·S, h, w, 2]
        shape = tf.shape(frames)
        frames = tf.reshape(frames, tf.concat(
            [[shape[0], shape[1] * shape[2]], shape[3:]], 0))
    ex["frames"] = frames
    return ex


def _flip(frames, config):
    frames = video_ops.flip_left_right(frames)
    if config.modality == "flow" and config.flow_flip_invert_x:
        frames = tf.concat([255.0 - frames[..., :1], frames[..., 1:]], -1)
    return frames


def augment_stage(ex, *, config, training):
    """Resize, then per-view crop (+ flip in training); float32 frames."""
    frames = ex["frames"]  # uint8 until a resize (cheaper crops)
    if config.resize is not None:
        resize = config.resize
        frames = video_ops.resize_frames(
            frames, resize if isinstance(resize, int) else tuple(resize))
    cropped = crop_at_decode(config, training)
    if training:
        out = []
        for v in range(config.temporal_views):
            f = frames[v]
            seed = _view_seed(ex, v)
            box, resize_back = _train_box(tf.shape(f)[-3:-1], config, seed)
            if box is not None and not cropped:
                f = video_ops.crop_frames(f, box)
            if resize_back:
                f = video_ops.resize_frames(f, tuple(config.crop_size))
            f = tf.cast(f, tf.float32)
            if config.flip:
                coin = tf.random.stateless_uniform(
                    [], samplers.make_seed(seed, 7)) < 0.5
                f = tf.cond(coin, lambda f=f: _flip(f, config),
                            lambda f=f: f)
            out.append(f)
        frames = tf.stack(out)
    else:
        boxes = eval_crop_boxes(tf.shape(frames)[-3:-1], config)
        if boxes is not None and not cropped:
            crops = config.spatial_views(False)
            frames = tf.stack([video_ops.crop_frames(frames, boxes[k])
                               for k in range(crops)], 1)
            shape = tf.shape(frames)
            frames = tf.reshape(frames, tf.concat([[-1], shape[2:]], 0))
            # View order: clip-major, crop-minor.
            for key in ("indices", "frame_mask"):
                ex[key] = tf.repeat(ex[key], crops, axis=0)
        frames = tf.cast(frames, tf.float32)
    if has_crops(config, training):
        frames = tf.ensure_shape(
            frames, [None, None, *config.crop_size, None])
    ex["frames"] = frames
    return ex


def normalize_stage(ex, *, config):
    """Mean/std (BGR) normalisation; flow stacks into their layout."""
    frames = video_ops.normalize(ex["frames"], config.mean, config.std,
                                 config.bgr)
    idx, mask = ex["indices"], ex["frame_mask"]
    if config.modality == "flow":
        s = config.flow_stack
        shape = tf.shape(frames)
        v, hw = shape[0], shape[2:4]
        if config.flow_layout == "interleave":
            frames = tf.reshape(frames, tf.concat([[v, -1, s], hw, [2]], 0))
            frames = tf.transpose(frames, [0, 1, 3, 4, 2, 5])
            frames = tf.reshape(frames, tf.concat([[v, -1], hw, [2 * s]], 0))
            idx = idx[..., 0]
        else:
            idx = tf.reshape(idx, [v, -1])
            mask = tf.repeat(mask, s, axis=1)
    frames = tf.ensure_shape(frames, [None, None, None, None,
                                      channels(config)])
    ex["frames"], ex["frame_indices"], ex["frame_mask"] = frames, idx, mask
    return ex


def channels(config):
    """Channels of the output frames (RGB 3; flow 2·S or 2)."""
    if config.modality == "rgb":
        return 3
    return 2 * config.flow_stack if config.flow_layout == "interleave" else 2


def label_stage(ex, *, config):
    """Builds the output dict with `label` (index or multi-hot)."""
    vid = ex[schemas.VIDEO_ID]
    labels = tf.cast(ex[schemas.CLIP_LABEL_INDEX], tf.int32)
    if config.num_classes > 0:
        labels = input_reader.require(
            tf.reduce_all((labels >= 0) & (labels < config.num_classes)),
            ["clip/label/index outside [0, num_classes) in video", vid,
             labels], labels)
    if config.multi_label:
        # Sum, not max: the max of no rows (a video without actions,
        # Charades) is -inf.
        label = tf.minimum(tf.reduce_sum(tf.one_hot(
            labels, config.num_classes, dtype=tf.float32), 0), 1.0)
        label = tf.ensure_shape(label, [config.num_classes])
    else:
        labels = input_reader.require(tf.size(labels) == 1, [
            "expected exactly one clip/label/index (multi_label=False) in "
            "video", vid, labels], labels)
        label = labels[0]
    out = {"video_id": vid, "frames": ex["frames"], "label": label,
           "frame_indices": tf.cast(ex["frame_indices"], tf.int32),
           "frame_mask": ex["frame_mask"],
           "num_frames": tf.cast(ex["num_frames"], tf.int32)}
    if config.frame_labels:
        frame_labels = tf.cast(ex[schemas.FRAME_LABEL_INDEX], tf.int32)
        out["frame_labels"] = tf.gather(
            frame_labels, tf.minimum(out["frame_indices"],
                                     tf.size(frame_labels) - 1))
    return out


_PER_VIEW = ("frames", "frame_indices", "frame_mask", "frame_labels")


def fold_views_stage(batch, *, mode, views):
    """Folds the view axis (axis 1) into the batch or the time axis."""
    if mode == "none" or (mode == "auto" and views > 1):
        return batch
    out = {}
    for key, value in batch.items():
        if key in _PER_VIEW:
            shape = tf.shape(value)
            if mode == "auto":
                value = tf.squeeze(value, 1)
            elif mode == "batch":
                value = tf.reshape(value, tf.concat(
                    [[shape[0] * shape[1]], shape[2:]], 0))
            else:
                value = tf.reshape(value, tf.concat(
                    [[shape[0], shape[1] * shape[2]], shape[3:]], 0))
        elif mode == "batch":
            value = tf.repeat(value, views, axis=0)
        out[key] = value
    return out


# --- Builder ----------------------------------------------------------------
def build_frames_pipeline(config, *, training, seed=0, batch_size=None):
    """The stages after reading, as a `StagedPipeline`.

    Args:
        config: a `FramesConfig`.
        training: training (random sampling/augmentation) or evaluation.
        seed: int seed of every random choice (with the epoch and video id).
        batch_size: per-replica batch size (default `config.batch_size`).

    Returns:
        `input_reader.StagedPipeline` mapping (epoch, record) pairs to
        batches.

    Example:
        >>> pipe = build_frames_pipeline(FramesConfig(), training=False)
        >>> pipe.names[:3]
        ['parse', 'sample', 'decode']
    """
    det = (not training) if config.deterministic is None else \
        config.deterministic
    drop = training if config.drop_remainder is None else \
        config.drop_remainder
    batch_size = batch_size or config.batch_size
    views = config.temporal_views * config.spatial_views(training)
    m = functools.partial(input_reader.map_stage, deterministic=det)
    p = functools.partial

    def batch(ds):
        if config.sampler == "all":  # variable length: pad, mask tells
            return ds.padded_batch(batch_size, drop_remainder=drop)
        return ds.batch(batch_size, drop_remainder=drop,
                        num_parallel_calls=input_reader.AUTOTUNE,
                        deterministic=det)

    def prefetch(ds):
        return ds.prefetch(input_reader.AUTOTUNE)

    return input_reader.StagedPipeline([
        ("parse", m(p(parse_stage, config=config), name="parse")),
        ("sample", m(p(sample_stage, config=config, training=training,
                       seed=seed), name="sample")),
        ("decode", m(p(decode_stage, config=config, training=training),
                     name="decode")),
        ("augment", m(p(augment_stage, config=config, training=training),
                      name="augment")),
        ("normalize", m(p(normalize_stage, config=config),
                        name="normalize")),
        ("labels", m(p(label_stage, config=config), name="labels")),
        ("batch", batch),
        ("fold_views", m(p(fold_views_stage, mode=config.fold_views,
                           views=views), name="fold_views")),
        ("prefetch", prefetch),
    ])


def make_frames_dataset(file_pattern, config, *, training, seed=0,
                        input_context=None, start_epoch=0, num_epochs=1,
                        pipeline=None):
    """Reads frame records into batches.

    Args:
        file_pattern: glob, comma-separated globs or list of TFRecord files.
        config: a `FramesConfig`.
        training: training or evaluation behaviour.
        seed: int seed; epoch e is a deterministic function of (seed, e).
        input_context: `tf.distribute.InputContext` (per-worker files and
            per-replica batch size), e.g. from
            `strategy.distribute_datasets_from_function`.
        start_epoch: first epoch (resume).
        num_epochs: epochs to read; None repeats forever.
        pipeline: a modified `build_frames_pipeline` result, if any.

    Returns:
        A `tf.data.Dataset` of dicts (see module docstring).

    Raises:
        DataError: the pattern matches no file.
        ConfigError: inconsistent settings.

    Bad data surfaces while iterating: a chosen frame that is not a JPEG,
    an empty video, a bad label or crop raise `tf.errors.
    InvalidArgumentError` naming the video; a corrupt TFRecord raises
    `DataLossError` (iterate inside `input_reader.naming_corrupt_files` to
    get a `CorruptRecordError` naming the file).

    Example:
        `for batch in make_frames_dataset(pattern, cfg, training=False):`
    """
    reader = input_reader.InputReader(
        file_pattern, training=training, seed=seed,
        input_context=input_context,
        shuffle_buffer_size=config.shuffle_buffer_size,
        cycle_length=config.cycle_length, deterministic=config.deterministic)
    batch_size = config.batch_size
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if pipeline is None:
        pipeline = build_frames_pipeline(config, training=training,
                                          seed=seed, batch_size=batch_size)
    ds = pipeline(reader.read(start_epoch, num_epochs))
    return input_reader.finalize(ds, deterministic=reader.deterministic,
                                 sharded=input_context is not None)
