"""tf.data pipeline for AVA-style keyframe records (DMVR-style stages).

Records follow `schemas.keyframe_boxes_example` (one SequenceExample per
keyframe: person boxes, their multi-label actions, and the JPEG frames of a
clip window around the keyframe, as written by `--format=ava`). Stages, each
a named function (see `input_reader.StagedPipeline`):

  read (InputReader: list/shard files, interleave, shuffle)
  → parse → choose_frames (indices around the keyframe) → decode (only the
  chosen JPEGs, each once) → crop (training) → resize → flip (training)
  → boxes (pad to `max_boxes`, mask, multi-hot labels) → normalize
  → batch → prefetch

Frames: `num_frames` frames spaced `stride` apart, the keyframe at output
index `num_frames // 2`; indices outside the stored clip are clamped to its
first / last frame. `frame_mask` is False on output steps that show no real
video frame: clamped ones and the converter's edge padding
(`clip/padded/before`, `clip/padded/after`).

Training augmentation (one random draw per example, the same for all its
frames): a random crop whose sides are a fraction `crop_scale` of the
frame's (position uniform), applied to the decoded frames before the resize
to `image_size` (one interpolation, and the crop is exact in source pixels);
boxes are mapped into the crop, clipped to it, and dropped when narrower or
shorter than `min_box_size` (normalised) afterwards, with their labels. Then
a horizontal flip with probability 1/2 that mirrors the boxes exactly
(`xmin' = 1 - xmax`, `xmax' = 1 - xmin`). Evaluation only resizes, in file
order (`deterministic`).

Labels: the records store label index = AVA action id - 1. With
`class_ids=None` the label matrix column is that index (`num_classes`
columns, 80 for AVA); with `class_ids` (AVA action ids, e.g. the 60
evaluated ones from `class_ids_from_label_map("ava60")`, or the ids of a
class list's names from `class_ids_from_class_list`) column j is action
`class_ids[j]` and actions not listed are ignored.

Elements are dicts (batched along a leading axis):

* `frames` float32 [T, H, W, 3], normalised with `mean`, `std`;
* `frame_indices` int32 [T], indices into the stored clip;
* `frame_mask` bool [T], False on padded / clamped steps;
* `keyframe_index` int32 [], T // 2;
* `boxes` float32 [max_boxes, 4], normalised `(ymin, xmin, ymax, xmax)`
  (the order of `tf.image.crop_and_resize`), zeros when padded;
* `box_mask` bool [max_boxes], True for real boxes;
* `labels` float32 [max_boxes, label columns], multi-hot;
* `person_ids` int32 [max_boxes], -1 when padded;
* `num_boxes` int32 [];
* `video_id` string [], `timestamp` float32 [] (`clip/timestamp`) and
  `timestamp_text` string [] (the CSV's text), for writing detections.

A record with more than `max_boxes` boxes (after cropping) is an error
naming the video and timestamp, never silently truncated.

Example:

```python
config = KeyframeBoxesConfig(num_frames=32, stride=2, image_size=(224, 224),
                             max_boxes=16, batch_size=8)
train = make_keyframe_boxes_dataset("/data/ava/train-*.tfrecord", config,
                                    training=True, num_epochs=None)
val = make_keyframe_boxes_dataset("/data/ava/val-*.tfrecord", config,
                                  training=False)
```
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.data import input_reader
from tfaction.data import samplers
from tfaction.data import schemas
from tfaction.data import video_ops


@dataclasses.dataclass(frozen=True)
class KeyframeBoxesConfig:
    """Settings of the keyframe-boxes pipeline.

    Args:
        num_frames: frames per output clip (T).
        stride: step between chosen stored frames.
        image_size: (height, width) of the output frames.
        crop: random crop in training.
        crop_scale: (min, max) fraction of the frame's height and width kept
            by the crop (one fraction for both sides, uniform).
        min_box_size: boxes narrower or shorter than this (normalised, after
            the crop) are dropped.
        flip: random horizontal flip in training.
        max_boxes: boxes per example after padding.
        num_classes: label columns when `class_ids` is None.
        class_ids: AVA action ids of the label columns, or None (column =
            stored label index = action id - 1).
        mean, std: normalisation in [0, 255] units (scalar or per channel).
        bgr: RGB → BGR before `mean`.
        batch_size: global batch size (split per replica when an
            `input_context` is given).
        drop_remainder: default: True in training.
        shuffle_buffer_size: record shuffle buffer in training.
        cycle_length: files read concurrently (None: AUTOTUNE).
        deterministic: reproducible order (default: not training).
        dct_method: `tf.io.decode_jpeg` DCT method.

    Example:

    >>> KeyframeBoxesConfig(class_ids=(1, 3, 80)).label_columns
    3
    """

    num_frames: int = 32
    stride: int = 2
    image_size: tuple = (224, 224)
    crop: bool = True
    crop_scale: tuple = (0.7, 1.0)
    min_box_size: float = 0.02
    flip: bool = True
    max_boxes: int = 16
    num_classes: int = 80
    class_ids: tuple = None
    mean: object = 0.0
    std: object = 1.0
    bgr: bool = False
    batch_size: int = 8
    drop_remainder: bool = None
    shuffle_buffer_size: int = 64
    cycle_length: int = None
    deterministic: bool = None
    dct_method: str = "INTEGER_ACCURATE"

    def __post_init__(self):
        for key in ("num_frames", "stride", "max_boxes", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise errors.ConfigError(
                    f"KeyframeBoxesConfig.{key} must be >= 1, got "
                    f"{getattr(self, key)!r}")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise errors.ConfigError(
                "KeyframeBoxesConfig.image_size must be (height, width), "
                f"got {self.image_size!r}")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise errors.ConfigError(
                "KeyframeBoxesConfig.crop_scale must satisfy 0 < min <= max "
                f"<= 1, got {self.crop_scale!r}")
        if not 0 <= self.min_box_size < 1:
            raise errors.ConfigError(
                "KeyframeBoxesConfig.min_box_size must be in [0, 1), got "
                f"{self.min_box_size!r}")
        if self.class_ids is None:
            if self.num_classes < 1:
                raise errors.ConfigError(
                    "KeyframeBoxesConfig.num_classes must be >= 1")
        else:
            ids = list(self.class_ids)
            if (not ids or len(set(ids)) != len(ids)
                    or min(int(i) for i in ids) < 1):
                raise errors.ConfigError(
                    "KeyframeBoxesConfig.class_ids must be distinct AVA "
                    f"action ids >= 1, got {self.class_ids!r}")

    @property
    def label_columns(self):
        """Columns of the label matrix."""
        return (self.num_classes if self.class_ids is None
                else len(self.class_ids))


def class_ids_from_label_map(label_map):
    """The action ids of a label map, for `KeyframeBoxesConfig.class_ids`.

    Args:
        label_map: pbtxt / JSON label map, or `"ava"` (80 actions) /
            `"ava60"` (the 60 evaluated ones).

    Returns:
        Tuple of ints in file order.

    Example:

    >>> class_ids_from_label_map("ava60")[:5]
    (1, 3, 4, 5, 6)
    """
    from tfaction.data.formats import ava_label_maps

    return ava_label_maps.action_ids(label_map)


def class_ids_from_class_list(class_list, label_map=None):
    """The action ids of a class list's names, for `class_ids`.

    Args:
        class_list: a class list file (one name per line) or a shipped
            list's name (`"ava"`, `"ava60"`; see
            `tfaction.data.public_metadata`).
        label_map: the label map giving each name its id (default: the 80
            AVA actions).

    Returns:
        Tuple of ints in the class list's order.

    Raises:
        UnknownLabelError: a name is not in the label map (line named).

    Example:

    >>> class_ids_from_class_list("ava60")[:5]
    (1, 3, 4, 5, 6)
    """
    from tfaction.data.formats import ava_label_maps
    from tfaction.data.formats import class_list as class_list_lib

    names = class_list_lib.read_class_list(class_list)
    ids = {name: i for i, name in
           ava_label_maps.read_action_label_map(label_map)}
    out = []
    for line, name in enumerate(names.names, 1):
        if name not in ids:
            raise errors.UnknownLabelError(
                f"class {name!r} is not in the label map "
                f"({ava_label_maps.label_map_path(label_map)})",
                path=names.path, line=line)
        out.append(ids[name])
    return tuple(out)


# --- Stages -----------------------------------------------------------------
def parse_stage(epoch, record):
    """Parses a record; JPEGs stay encoded. Adds the `epoch`."""
    ex = schemas.parse_keyframe_boxes(record)
    ex["epoch"] = epoch
    return ex


def choose_frames_stage(ex, *, config, seed):
    """Chooses the frame indices around the keyframe (before decoding)."""
    vid = ex[schemas.VIDEO_ID]
    stored = tf.shape(ex[schemas.IMAGE_ENCODED], out_type=tf.int64)[0]
    stored = input_reader.require(stored > 0, [
        "keyframe record has no frames: video", vid, "timestamp",
        ex[schemas.CLIP_TIMESTAMP]], stored)
    key = ex[schemas.CLIP_KEYFRAME_INDEX]
    key = tf.where(key >= 0, key, stored // 2)
    t = config.num_frames
    raw = key + (tf.range(t, dtype=tf.int64) - t // 2) * config.stride
    indices = tf.clip_by_value(raw, 0, stored - 1)
    real = ((raw >= ex[schemas.CLIP_PADDED_BEFORE])
            & (raw < stored - ex[schemas.CLIP_PADDED_AFTER])
            & (raw >= 0) & (raw < stored))
    ex["indices"] = tf.cast(indices, tf.int32)
    ex["frame_mask"] = real
    name = tf.strings.join([vid, ex[schemas.CLIP_TIMESTAMP_TEXT]], ",")
    ex["seed"] = samplers.make_seed(
        seed, ex["epoch"], tf.strings.to_hash_bucket_fast(name, 2**62))
    return ex


def decode_stage(ex, *, config):
    """Decodes only the chosen JPEGs → uint8 [T, h, w, 3]."""
    ex["frames"] = video_ops.decode_jpegs(
        ex.pop(schemas.IMAGE_ENCODED), ex["indices"],
        video_id=ex[schemas.VIDEO_ID], dct_method=config.dct_method)
    return ex


def _keep_boxes(ex, keep):
    ex["boxes"] = tf.boolean_mask(ex["boxes"], keep)
    ex[schemas.BOX_PERSON_ID] = tf.boolean_mask(ex[schemas.BOX_PERSON_ID],
                                                keep)
    ex[schemas.BOX_LABEL_INDEX] = tf.ragged.boolean_mask(
        ex[schemas.BOX_LABEL_INDEX], keep)
    return ex


def crop_box(hw, scale, seed):
    """A random crop `[y, x, h, w]` keeping a `scale` fraction of each side.

    Args:
        hw: int [2] frame (height, width).
        scale: (min, max) fraction, drawn uniformly (one for both sides).
        seed: stateless seed [2].

    Returns:
        int32 [4].

    Example:

    >>> box = crop_box(tf.constant([100, 200]), (0.5, 0.5), tf.constant([1, 2]))
    >>> box.numpy()[2:].tolist()
    [50, 100]
    """
    hw = tf.cast(hw, tf.int32)
    s = tf.random.stateless_uniform([], samplers.make_seed(seed, 0),
                                    scale[0], scale[1], tf.float64)
    size = tf.maximum(tf.cast(tf.round(tf.cast(hw, tf.float64) * s),
                              tf.int32), 1)
    size = tf.minimum(size, hw)
    y = samplers._rand_int([], samplers.make_seed(seed, 1), 0,
                           hw[0] - size[0] + 1)
    x = samplers._rand_int([], samplers.make_seed(seed, 2), 0,
                           hw[1] - size[1] + 1)
    return tf.stack([y, x, size[0], size[1]])


def crop_boxes(boxes, hw, box):
    """Maps normalised (xmin, ymin, xmax, ymax) boxes into a pixel crop.

    Args:
        boxes: float32 [N, 4] normalised to the full frame.
        hw: int [2] the full frame's (height, width).
        box: int [4] crop `[y, x, h, w]` in pixels.

    Returns:
        float32 [N, 4] normalised to the crop and clipped to [0, 1].

    Example:

    >>> crop_boxes(tf.constant([[0.25, 0.0, 0.75, 1.0]]), [100, 100],
    ...            [0, 50, 100, 50]).numpy().tolist()
    [[0.0, 0.0, 0.5, 1.0]]
    """
    hw = tf.cast(hw, tf.float32)
    y, x, h, w = tf.unstack(tf.cast(box, tf.float32))
    scale = tf.stack([hw[1] / w, hw[0] / h, hw[1] / w, hw[0] / h])
    shift = tf.stack([x / w, y / h, x / w, y / h])
    return tf.clip_by_value(boxes * scale - shift, 0.0, 1.0)


def crop_stage(ex, *, config, training):
    """Training: random crop of the frames; boxes clipped, small ones
    dropped (with their labels). Evaluation: unchanged."""
    if not (training and config.crop):
        return ex
    frames = ex["frames"]
    hw = tf.shape(frames)[-3:-1]
    box = crop_box(hw, config.crop_scale, samplers.make_seed(ex["seed"], 1))
    ex["frames"] = video_ops.crop_frames(frames, box)
    boxes = crop_boxes(ex["boxes"], hw, box)
    size = boxes[:, 2:] - boxes[:, :2]
    ex["boxes"] = boxes
    keep = tf.reduce_all((size > 0) & (size >= config.min_box_size), axis=1)
    return _keep_boxes(ex, keep)


def resize_stage(ex, *, config):
    """Resizes the frames to `image_size` (float32)."""
    ex["frames"] = video_ops.resize_frames(ex["frames"],
                                           tuple(config.image_size))
    ex["frames"] = tf.ensure_shape(
        ex["frames"], [config.num_frames, *config.image_size, 3])
    return ex


def flip_boxes(boxes):
    """Mirrors normalised (xmin, ymin, xmax, ymax) boxes horizontally.

    Args:
        boxes: float [..., 4] normalised (xmin, ymin, xmax, ymax).

    Returns:
        The boxes of the mirrored image: `xmin' = 1 - xmax`,
        `xmax' = 1 - xmin`, y unchanged.

    Example:

    >>> flip_boxes(tf.constant([[0.1, 0.2, 0.4, 0.9]])).numpy().round(6)
    array([[0.6, 0.2, 0.9, 0.9]], dtype=float32)
    """
    xmin, ymin, xmax, ymax = tf.unstack(boxes, axis=-1)
    return tf.stack([1.0 - xmax, ymin, 1.0 - xmin, ymax], axis=-1)


def flip_stage(ex, *, config, training):
    """Training: horizontal flip of frames and boxes with probability 1/2."""
    if not (training and config.flip):
        return ex
    coin = tf.random.stateless_uniform(
        [], samplers.make_seed(ex["seed"], 2)) < 0.5
    ex["frames"], ex["boxes"] = tf.cond(
        coin,
        lambda: (video_ops.flip_left_right(ex["frames"]),
                 flip_boxes(ex["boxes"])),
        lambda: (ex["frames"], ex["boxes"]))
    return ex


def _column_table(config):
    """int32 [max_index + 1]: label index -> column (-1: ignored), or None."""
    if config.class_ids is None:
        return None
    ids = [int(i) for i in config.class_ids]
    table = np.full(max(ids), -1, np.int32)
    for column, action_id in enumerate(ids):
        table[action_id - 1] = column
    return tf.constant(table)


def multi_hot(labels, num_boxes, num_columns, table=None, *, where=()):
    """Ragged per-box label indices → a multi-hot matrix.

    Args:
        labels: int64 `tf.RaggedTensor` [N, None] of label indices.
        num_boxes: N.
        num_columns: columns of the output.
        table: optional int32 [M] mapping label index → column (-1 or an
            index >= M: the label is ignored); None: column = index, which
            must be in [0, num_columns).
        where: tensors naming the example in the error.

    Returns:
        float32 [N, num_columns].

    Example:

    >>> multi_hot(tf.ragged.constant([[0, 2], []], tf.int64), 2, 3).numpy()
    array([[1., 0., 1.],
           [0., 0., 0.]], dtype=float32)
    """
    values = tf.cast(labels.values, tf.int32)
    rows = tf.cast(labels.value_rowids(), tf.int32)
    if table is None:
        values = input_reader.require(
            tf.reduce_all((values >= 0) & (values < num_columns)),
            ["box/label/index outside [0, num_classes) in", *where, values],
            values)
    else:
        inside = (values >= 0) & (values < tf.size(table))
        values = tf.where(inside, tf.gather(table, tf.where(
            inside, values, 0)), -1)
        used = values >= 0
        values, rows = (tf.boolean_mask(values, used),
                        tf.boolean_mask(rows, used))
    counts = tf.scatter_nd(tf.stack([rows, values], 1),
                           tf.ones_like(values, tf.float32),
                           tf.stack([tf.cast(num_boxes, tf.int32),
                                     num_columns]))
    return tf.minimum(counts, 1.0)


def boxes_stage(ex, *, config):
    """Pads boxes to `max_boxes` with a mask and builds the label matrix;
    returns the output dict."""
    vid, stamp = ex[schemas.VIDEO_ID], ex[schemas.CLIP_TIMESTAMP]
    boxes = ex["boxes"]
    n = tf.shape(boxes)[0]
    m = config.max_boxes
    n = input_reader.require(n <= m, [
        "keyframe has more boxes than max_boxes =", m, "; video", vid,
        "timestamp", stamp, "boxes:", n], n)
    columns = config.label_columns
    labels = multi_hot(ex[schemas.BOX_LABEL_INDEX], n, columns,
                       _column_table(config), where=("video", vid,
                                                     "timestamp", stamp))
    pad = m - n
    yx_boxes = tf.gather(boxes, [1, 0, 3, 2], axis=1)
    return {
        "video_id": vid,
        "timestamp": stamp,
        "timestamp_text": ex[schemas.CLIP_TIMESTAMP_TEXT],
        "frames": ex["frames"],
        "frame_indices": ex["indices"],
        "frame_mask": tf.ensure_shape(ex["frame_mask"], [config.num_frames]),
        "keyframe_index": tf.constant(config.num_frames // 2, tf.int32),
        "boxes": tf.ensure_shape(tf.pad(yx_boxes, [[0, pad], [0, 0]]),
                                 [m, 4]),
        "box_mask": tf.ensure_shape(tf.range(m) < n, [m]),
        "labels": tf.ensure_shape(tf.pad(labels, [[0, pad], [0, 0]]),
                                  [m, columns]),
        "person_ids": tf.ensure_shape(tf.pad(
            tf.cast(ex[schemas.BOX_PERSON_ID], tf.int32), [[0, pad]],
            constant_values=-1), [m]),
        "num_boxes": n,
    }


def normalize_stage(ex, *, config):
    """Mean/std (BGR) normalisation of the frames."""
    ex["frames"] = video_ops.normalize(ex["frames"], config.mean, config.std,
                                       config.bgr)
    return ex


# --- Builder ----------------------------------------------------------------
def build_keyframe_boxes_pipeline(config, *, training, seed=0,
                                  batch_size=None):
    """The stages after reading, as a `StagedPipeline`.

    Args:
        config: a `KeyframeBoxesConfig`.
        training: training (random crop and flip) or evaluation.
        seed: int seed of every random choice (with the epoch, video id
            and timestamp).
        batch_size: per-replica batch size (default `config.batch_size`).

    Returns:
        `input_reader.StagedPipeline` mapping (epoch, record) pairs to
        batches.

    Example:

    >>> pipe = build_keyframe_boxes_pipeline(KeyframeBoxesConfig(),
    ...                                      training=False)
    >>> pipe.names[:4]
    ['parse', 'choose_frames', 'decode', 'crop']
    """
    det = (not training) if config.deterministic is None else \
        config.deterministic
    drop = training if config.drop_remainder is None else \
        config.drop_remainder
    batch_size = batch_size or config.batch_size
    m = functools.partial(input_reader.map_stage, deterministic=det)
    p = functools.partial

    def batch(ds):
        return ds.batch(batch_size, drop_remainder=drop,
                        num_parallel_calls=input_reader.AUTOTUNE,
                        deterministic=det)

    def prefetch(ds):
        return ds.prefetch(input_reader.AUTOTUNE)

    return input_reader.StagedPipeline([
        ("parse", m(parse_stage, name="parse")),
        ("choose_frames", m(p(choose_frames_stage, config=config, seed=seed),
                            name="choose_frames")),
        ("decode", m(p(decode_stage, config=config), name="decode")),
        ("crop", m(p(crop_stage, config=config, training=training),
                   name="crop")),
        ("resize", m(p(resize_stage, config=config), name="resize")),
        ("flip", m(p(flip_stage, config=config, training=training),
                   name="flip")),
        ("boxes", m(p(boxes_stage, config=config), name="boxes")),
        ("normalize", m(p(normalize_stage, config=config),
                        name="normalize")),
        ("batch", batch),
        ("prefetch", prefetch),
    ])


def make_keyframe_boxes_dataset(file_pattern, config, *, training, seed=0,
                                input_context=None, start_epoch=0,
                                num_epochs=1, pipeline=None):
    """Reads keyframe-boxes records into batches.

    Args:
        file_pattern: glob, comma-separated globs or list of TFRecord files.
        config: a `KeyframeBoxesConfig`.
        training: training or evaluation behaviour.
        seed: int seed; epoch e is a deterministic function of (seed, e).
        input_context: `tf.distribute.InputContext` (per-worker files and
            per-replica batch size).
        start_epoch: first epoch (resume).
        num_epochs: epochs to read; None repeats forever.
        pipeline: a modified `build_keyframe_boxes_pipeline` result, if any.

    Returns:
        A `tf.data.Dataset` of dicts (see the module docstring).

    Raises:
        DataError: the pattern matches no file.

    Bad data surfaces while iterating: a chosen frame that is not a JPEG,
    a record without frames, too many boxes or a label outside the classes
    raise `tf.errors.InvalidArgumentError` naming the video.

    Example:

    ```python
    for batch in make_keyframe_boxes_dataset(pattern, config,
                                             training=False):
        scores = model(batch["frames"], batch["boxes"])
    ```
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
        pipeline = build_keyframe_boxes_pipeline(
            config, training=training, seed=seed, batch_size=batch_size)
    ds = pipeline(reader.read(start_epoch, num_epochs))
    return input_reader.finalize(ds, deterministic=reader.deterministic,
                                 sharded=input_context is not None)
