"""TFRecord schemas: `tf.train.SequenceExample` builders and parsers.

One schema per kind of content (RGB frames, optical flow, feature
sequences, keyframe boxes, frame labels). Keys follow the DMVR / Model
Garden / MediaSequence convention. Builders turn numpy/python values into a
`tf.train.SequenceExample`; parsers turn a serialized record into a dict of
tensors keyed by the same strings, usable inside `tf.data` (graph mode).

| schema | builder | parser |
|---|---|---|
| RGB frames / optical flow | `frames_example` | `parse_frames` |
| feature sequences | `feature_sequence_example` | `parse_feature_sequence` |
| keyframe boxes (AVA) | `keyframe_boxes_example` | `parse_keyframe_boxes` |
| frame labels (CARL) | `frame_labels_example` | `parse_frame_labels` |

Feature sequences are stored either as a float feature list
(`FEATURE_ENCODING_FLOATS`, the default: the standard SequenceExample layout,
the faster one end to end in `benchmarks/data_pipeline.py`) or as one
serialized tensor in the context (`FEATURE_ENCODING_TENSOR`: less parse CPU,
and the only encoding that can store float16, halving the size of
disk-bound datasets).
"""

import numpy as np
import tensorflow as tf

# --- Shared context keys ----------------------------------------------------
VIDEO_ID = "video/id"
VIDEO_NUM_FRAMES = "video/num_frames"
VIDEO_FPS = "video/fps"
VIDEO_DURATION = "video/duration"
VIDEO_SUBSET = "video/subset"
VIDEO_SOURCE = "video/source"  # original file name when `video/id` is renamed
CLIP_LABEL_INDEX = "clip/label/index"
CLIP_LABEL_TEXT = "clip/label/text"

# --- Frames -----------------------------------------------------------------
IMAGE_ENCODED = "image/encoded"
FLOW_X_ENCODED = "flow/x/encoded"
FLOW_Y_ENCODED = "flow/y/encoded"

# --- Feature sequences ------------------------------------------------------
FEATURE_STRIDE = "feature/stride"
FEATURE_WINDOW = "feature/window"
FEATURE_DIM = "feature/dim"
FEATURE_LENGTH = "feature/length"
FEATURE_SERIALIZED = "feature/serialized"
FEATURE_FLOATS = "feature/floats"
SEGMENT_START = "segment/start"
SEGMENT_END = "segment/end"
SEGMENT_LABEL_INDEX = "segment/label/index"
SEGMENT_LABEL_STRING = "segment/label/string"
# The same (start, end) pairs as little-endian float64 bytes [S, 2]: float lists
# hold float32 only, and annotation times must read back exactly.
SEGMENT_FLOAT64 = "segment/float64"

FEATURE_ENCODING_TENSOR = "tensor"
FEATURE_ENCODING_FLOATS = "floats"
FEATURE_ENCODINGS = (FEATURE_ENCODING_TENSOR, FEATURE_ENCODING_FLOATS)

# --- Keyframe boxes (AVA) ---------------------------------------------------
CLIP_TIMESTAMP = "clip/timestamp"  # keyframe time as in the CSV (seconds)
CLIP_TIMESTAMP_TEXT = "clip/timestamp/text"  # the CSV's text ("0902")
CLIP_KEYFRAME_INDEX = "clip/keyframe_index"  # keyframe's position in frames
# Edge padding: the first / last n stored frames repeat the video's first /
# last frame because the clip window reaches before its start / after its end.
CLIP_PADDED_BEFORE = "clip/padded/before"
CLIP_PADDED_AFTER = "clip/padded/after"
BOX_XMIN = "box/xmin"
BOX_YMIN = "box/ymin"
BOX_XMAX = "box/xmax"
BOX_YMAX = "box/ymax"
BOX_LABEL_INDEX = "box/label/index"  # flat over boxes; see row lengths
BOX_LABEL_ROW_LENGTHS = "box/label/row_lengths"  # labels per box
BOX_NUM_LABELS = BOX_LABEL_ROW_LENGTHS  # older name of the same key
BOX_PERSON_ID = "box/person_id"

# --- Frame labels (CARL) ----------------------------------------------------
FRAME_LABEL_INDEX = "frame/label/index"


# --- tf.train.Feature helpers -----------------------------------------------
def _bytes(values):
    values = [v.encode("utf-8") if isinstance(v, str) else bytes(v)
              for v in values]
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(
        value=np.asarray(values, np.float32).ravel()))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(
        value=np.asarray(values, np.int64).ravel()))


def _feature_list(features):
    return tf.train.FeatureList(feature=list(features))


def _video_context(video_id, num_frames, fps, duration, subset=None,
                   source=None):
    context = {
        VIDEO_ID: _bytes([video_id]),
        VIDEO_NUM_FRAMES: _ints([num_frames]),
        VIDEO_FPS: _floats([fps]),
        VIDEO_DURATION: _floats([duration]),
    }
    if subset is not None:
        context[VIDEO_SUBSET] = _bytes([subset])
    if source is not None:
        context[VIDEO_SOURCE] = _bytes([source])
    return context


def _video_context_spec():
    return {
        VIDEO_ID: tf.io.FixedLenFeature([], tf.string),
        VIDEO_NUM_FRAMES: tf.io.FixedLenFeature([], tf.int64, -1),
        VIDEO_FPS: tf.io.FixedLenFeature([], tf.float32, -1.0),
        VIDEO_DURATION: tf.io.FixedLenFeature([], tf.float32, -1.0),
        VIDEO_SUBSET: tf.io.FixedLenFeature([], tf.string, ""),
        VIDEO_SOURCE: tf.io.FixedLenFeature([], tf.string, ""),
    }


def _to_dense(parsed):
    return {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v
            for k, v in parsed.items()}


# --- Frames -----------------------------------------------------------------
def frames_example(video_id, *, num_frames, fps=-1.0, duration=-1.0,
                   label_index=(), label_text=(), images=None, flow_x=None,
                   flow_y=None, subset=None, source=None):
    """Builds a frames SequenceExample (RGB and/or optical flow JPEGs).

    Args:
        video_id: unique video id (str).
        num_frames: number of RGB frames of the video.
        fps: frame rate, or -1 when unknown.
        duration: duration in seconds, or -1 when unknown.
        label_index: class indices (several for multi-label).
        label_text: class names, parallel to `label_index`.
        images: list of JPEG bytes, one per frame, or None.
        flow_x: list of JPEG bytes (horizontal flow), or None.
        flow_y: list of JPEG bytes (vertical flow), or None.
        subset: optional subset name (e.g. "train").
        source: optional original file name when `video_id` is renamed.

    Returns:
        A `tf.train.SequenceExample`.
    """
    context = _video_context(video_id, num_frames, fps, duration, subset,
                             source)
    context[CLIP_LABEL_INDEX] = _ints(label_index)
    context[CLIP_LABEL_TEXT] = _bytes(label_text)
    lists = {}
    for key, frames in ((IMAGE_ENCODED, images), (FLOW_X_ENCODED, flow_x),
                        (FLOW_Y_ENCODED, flow_y)):
        if frames is not None:
            lists[key] = _feature_list(_bytes([f]) for f in frames)
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=lists))


def parse_frames(serialized, modalities=("rgb",)):
    """Parses a frames record; JPEGs stay encoded (decode after sampling).

    Args:
        serialized: scalar string tensor, one serialized SequenceExample.
        modalities: any of "rgb" (`image/encoded`) and "flow"
            (`flow/x/encoded`, `flow/y/encoded`).

    Returns:
        Dict of tensors: the video context keys, `clip/label/index` [L] int64,
        `clip/label/text` [L] string, and the encoded frame lists [N] string
        for the requested modalities.
    """
    unknown = set(modalities) - {"rgb", "flow"}
    if unknown:
        raise ValueError(f"unknown modalities {sorted(unknown)}; "
                         "expected 'rgb' and/or 'flow'")
    context_spec = _video_context_spec()
    context_spec[CLIP_LABEL_INDEX] = tf.io.VarLenFeature(tf.int64)
    context_spec[CLIP_LABEL_TEXT] = tf.io.VarLenFeature(tf.string)
    keys = []
    if "rgb" in modalities:
        keys.append(IMAGE_ENCODED)
    if "flow" in modalities:
        keys += [FLOW_X_ENCODED, FLOW_Y_ENCODED]
    sequence_spec = {k: tf.io.FixedLenSequenceFeature([], tf.string)
                     for k in keys}
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec,
        sequence_features=sequence_spec)
    return {**_to_dense(context), **sequence}


# --- Feature sequences ------------------------------------------------------
def feature_sequence_example(video_id, features, *, fps, duration, stride,
                             window, segments=(), label_index=(),
                             label_string=(), subset=None, num_frames=-1,
                             encoding=FEATURE_ENCODING_FLOATS,
                             dtype=np.float32):
    """Builds a feature-sequence SequenceExample (temporal localisation).

    Args:
        video_id: unique video id (str).
        features: array [T, C] of per-step features.
        fps: frame rate of the video the features were extracted from.
        duration: video duration in seconds.
        stride: feature stride in frames (may be fractional after resampling).
        window: frames per feature window (`num_frames` in ActionFormer).
        segments: array [S, 2] of (start, end) in seconds.
        label_index: [S] class indices.
        label_string: [S] class names.
        subset: optional subset name.
        num_frames: number of video frames, or -1 when unknown.
        encoding: `FEATURE_ENCODING_FLOATS` or `FEATURE_ENCODING_TENSOR`.
        dtype: storage dtype for the tensor encoding (float32 or float16);
            float lists hold float32 only.

    Returns:
        A `tf.train.SequenceExample`.
    """
    if encoding not in FEATURE_ENCODINGS:
        raise ValueError(f"encoding must be one of {FEATURE_ENCODINGS}, "
                         f"got {encoding!r}")
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be [T, C], got shape "
                         f"{features.shape}")
    segments = np.asarray(segments, np.float64).reshape(-1, 2)
    context = _video_context(video_id, num_frames, fps, duration, subset)
    context.update({
        FEATURE_STRIDE: _floats([stride]),
        FEATURE_WINDOW: _floats([window]),
        FEATURE_DIM: _ints([features.shape[1]]),
        FEATURE_LENGTH: _ints([features.shape[0]]),
        SEGMENT_START: _floats(segments[:, 0]),
        SEGMENT_END: _floats(segments[:, 1]),
        SEGMENT_FLOAT64: _bytes([segments.astype("<f8").tobytes()]),
        SEGMENT_LABEL_INDEX: _ints(label_index),
        SEGMENT_LABEL_STRING: _bytes(label_string),
    })
    lists = {}
    if encoding == FEATURE_ENCODING_TENSOR:
        # Same bytes as `tf.io.serialize_tensor`, without an eager op per video.
        proto = tf.make_tensor_proto(features.astype(dtype))
        context[FEATURE_SERIALIZED] = _bytes([proto.SerializeToString()])
    else:
        lists[FEATURE_FLOATS] = _feature_list(_floats(row)
                                              for row in features)
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=lists))


def parse_feature_sequence(serialized, *, feature_dim,
                           encoding=FEATURE_ENCODING_FLOATS,
                           dtype=tf.float32):
    """Parses a feature-sequence record.

    Args:
        serialized: scalar string tensor.
        feature_dim: C, the feature dimension (static).
        encoding: how the features were stored (see module docstring).
        dtype: storage dtype of the tensor encoding.

    Returns:
        Dict of tensors: video context keys, `feature/stride`,
        `feature/window`, `feature/dim`, `feature/length`, `segment/start`
        [S], `segment/end` [S] (float32), `segment/label/index` [S] int64,
        `segment/label/string` [S], `segments` [S, 2] float64 (the exact
        seconds), and `features` [T, C] float32.
    """
    if encoding not in FEATURE_ENCODINGS:
        raise ValueError(f"encoding must be one of {FEATURE_ENCODINGS}, "
                         f"got {encoding!r}")
    context_spec = _video_context_spec()
    context_spec.update({
        FEATURE_STRIDE: tf.io.FixedLenFeature([], tf.float32),
        FEATURE_WINDOW: tf.io.FixedLenFeature([], tf.float32),
        FEATURE_DIM: tf.io.FixedLenFeature([], tf.int64),
        FEATURE_LENGTH: tf.io.FixedLenFeature([], tf.int64),
        SEGMENT_START: tf.io.VarLenFeature(tf.float32),
        SEGMENT_END: tf.io.VarLenFeature(tf.float32),
        SEGMENT_LABEL_INDEX: tf.io.VarLenFeature(tf.int64),
        SEGMENT_LABEL_STRING: tf.io.VarLenFeature(tf.string),
        SEGMENT_FLOAT64: tf.io.FixedLenFeature([], tf.string, ""),
    })
    sequence_spec = {}
    if encoding == FEATURE_ENCODING_TENSOR:
        context_spec[FEATURE_SERIALIZED] = tf.io.FixedLenFeature([],
                                                                 tf.string)
    else:
        sequence_spec[FEATURE_FLOATS] = tf.io.FixedLenSequenceFeature(
            [feature_dim], tf.float32)
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec,
        sequence_features=sequence_spec)
    out = _to_dense(context)
    exact = tf.reshape(tf.io.decode_raw(out.pop(SEGMENT_FLOAT64), tf.float64,
                                        little_endian=True), [-1, 2])
    approx = tf.cast(tf.stack([out[SEGMENT_START], out[SEGMENT_END]], -1),
                     tf.float64)
    # Records from other writers may lack the exact copy.
    out["segments"] = tf.cond(tf.shape(exact)[0] == tf.shape(approx)[0],
                              lambda: exact, lambda: approx)
    if encoding == FEATURE_ENCODING_TENSOR:
        features = tf.io.parse_tensor(out.pop(FEATURE_SERIALIZED), dtype)
        features = tf.cast(features, tf.float32)
    else:
        features = sequence[FEATURE_FLOATS]
    out["features"] = tf.ensure_shape(features, [None, feature_dim])
    return out


# --- Keyframe boxes (AVA) ---------------------------------------------------
def keyframe_boxes_example(video_id, *, timestamp, boxes, labels,
                           person_ids=None, images=(), fps=-1.0,
                           num_frames=None, keyframe_index=None,
                           timestamp_text=None, padded=(0, 0),
                           duration=-1.0, subset=None, source=None):
    """Builds an AVA-style keyframe record (boxes + multi-label actions).

    One record per annotated keyframe: the person boxes of the keyframe,
    each with its list of action labels (a ragged matrix stored as the
    flat `box/label/index` plus `box/label/row_lengths`), and the JPEG
    frames of a clip window around the keyframe.

    Args:
        video_id: unique video id.
        timestamp: keyframe time in seconds (as in the annotation CSV).
        boxes: array [N, 4] of normalised (xmin, ymin, xmax, ymax).
        labels: list of N lists of class indices (multi-label per box).
        person_ids: [N] ints, or None (-1 each).
        images: JPEG bytes of the clip frames around the keyframe.
        fps: frame rate of `images`, or -1.
        num_frames: number of frames in `images` (defaults to len(images)).
        keyframe_index: position of the keyframe in `images` (default
            `len(images) // 2`).
        timestamp_text: the timestamp as written in the CSV (default
            `repr` of `timestamp`), to rebuild the evaluator's keyframe key.
        padded: (before, after): how many of the first / last frames are
            copies of the video's first / last frame (the window reached
            past the video's ends).
        duration: duration of the source video in seconds, or -1.
        subset: optional subset name.
        source: optional source video file name.

    Returns:
        A `tf.train.SequenceExample`.

    Example:

    >>> ex = keyframe_boxes_example("v", timestamp=902, boxes=[[0, 0, 1, 1]],
    ...                             labels=[[11, 78]], person_ids=[0])
    >>> list(ex.context.feature[BOX_LABEL_ROW_LENGTHS].int64_list.value)
    [2]
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(labels) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(labels)} label lists")
    images = list(images)
    num_frames = len(images) if num_frames is None else num_frames
    keyframe_index = (len(images) // 2 if keyframe_index is None
                      else keyframe_index)
    person_ids = ([-1] * len(boxes) if person_ids is None
                  else list(person_ids))
    if len(person_ids) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(person_ids)} "
                         "person ids")
    if timestamp_text is None:
        timestamp_text = repr(float(timestamp))
    context = _video_context(video_id, num_frames, fps, duration, subset,
                             source)
    context.update({
        CLIP_TIMESTAMP: _floats([timestamp]),
        CLIP_TIMESTAMP_TEXT: _bytes([timestamp_text]),
        CLIP_KEYFRAME_INDEX: _ints([keyframe_index]),
        CLIP_PADDED_BEFORE: _ints([padded[0]]),
        CLIP_PADDED_AFTER: _ints([padded[1]]),
        BOX_XMIN: _floats(boxes[:, 0]),
        BOX_YMIN: _floats(boxes[:, 1]),
        BOX_XMAX: _floats(boxes[:, 2]),
        BOX_YMAX: _floats(boxes[:, 3]),
        BOX_LABEL_INDEX: _ints([c for row in labels for c in row]),
        BOX_LABEL_ROW_LENGTHS: _ints([len(row) for row in labels]),
        BOX_PERSON_ID: _ints(person_ids),
    })
    lists = {IMAGE_ENCODED: _feature_list(_bytes([f]) for f in images)}
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=lists))


def parse_keyframe_boxes(serialized):
    """Parses a keyframe-boxes record; JPEGs stay encoded.

    Args:
        serialized: scalar string tensor, one serialized SequenceExample.

    Returns:
        Dict with the video context keys, `clip/timestamp` float32,
        `clip/timestamp/text` string, `clip/keyframe_index` int64 (-1 when
        absent), `clip/padded/before`, `clip/padded/after` int64, `boxes`
        [N, 4] float32 (xmin, ymin, xmax, ymax), `box/label/index` as a
        `tf.RaggedTensor` [N, None] int64, `box/person_id` [N] and
        `image/encoded` [F] string.

    Example:

    >>> ex = keyframe_boxes_example("v", timestamp=2, boxes=[[0, 0, 1, 1]],
    ...                             labels=[[3]])
    >>> parse_keyframe_boxes(ex.SerializeToString())["boxes"].shape
    TensorShape([1, 4])
    """
    context_spec = _video_context_spec()
    context_spec.update({
        CLIP_TIMESTAMP: tf.io.FixedLenFeature([], tf.float32),
        CLIP_TIMESTAMP_TEXT: tf.io.FixedLenFeature([], tf.string, ""),
        CLIP_KEYFRAME_INDEX: tf.io.FixedLenFeature([], tf.int64, -1),
        CLIP_PADDED_BEFORE: tf.io.FixedLenFeature([], tf.int64, 0),
        CLIP_PADDED_AFTER: tf.io.FixedLenFeature([], tf.int64, 0),
    })
    for key in (BOX_XMIN, BOX_YMIN, BOX_XMAX, BOX_YMAX):
        context_spec[key] = tf.io.VarLenFeature(tf.float32)
    for key in (BOX_LABEL_INDEX, BOX_LABEL_ROW_LENGTHS, BOX_PERSON_ID):
        context_spec[key] = tf.io.VarLenFeature(tf.int64)
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec,
        sequence_features={
            IMAGE_ENCODED: tf.io.FixedLenSequenceFeature([], tf.string)})
    out = _to_dense(context)
    out["boxes"] = tf.reshape(tf.stack(
        [out.pop(k) for k in (BOX_XMIN, BOX_YMIN, BOX_XMAX, BOX_YMAX)], -1),
        [-1, 4])
    out[BOX_LABEL_INDEX] = tf.RaggedTensor.from_row_lengths(
        out[BOX_LABEL_INDEX], out.pop(BOX_LABEL_ROW_LENGTHS))
    out.update(sequence)
    return out


# --- Frame labels (CARL) ----------------------------------------------------
def frame_labels_example(video_id, *, images, frame_labels, fps=-1.0,
                         duration=-1.0, subset=None, label_index=(),
                         label_text=(), source=None):
    """Builds a frame-labelled record (one phase label per frame).

    One record per video: every frame as JPEG bytes (`image/encoded`) and
    its phase label (`frame/label/index`, -1 for an unlabelled frame), with
    the video's action class in `clip/label/index` / `clip/label/text` when
    it has one (written only when given).

    Args:
        video_id: unique video id.
        images: JPEG bytes, one per frame.
        frame_labels: [N] per-frame class (phase) indices.
        fps: frame rate, or -1.
        duration: seconds, or -1.
        subset: optional subset name.
        label_index: the video's action class indices (usually one).
        label_text: the action class names, parallel to `label_index`.
        source: optional original name when `video_id` differs from it.

    Returns:
        A `tf.train.SequenceExample`.

    Example:

    >>> ex = frame_labels_example("v", images=[b"a", b"b"],
    ...                           frame_labels=[0, 1], label_index=[3],
    ...                           label_text=["golf_swing"])
    >>> list(ex.context.feature[CLIP_LABEL_INDEX].int64_list.value)
    [3]
    """
    images = list(images)
    frame_labels = np.asarray(frame_labels, np.int64).ravel()
    if len(frame_labels) != len(images):
        raise ValueError(f"{len(images)} frames but {len(frame_labels)} "
                         "frame labels")
    label_index, label_text = list(label_index), list(label_text)
    if label_text and len(label_text) != len(label_index):
        raise ValueError(f"{len(label_index)} label indices but "
                         f"{len(label_text)} label texts")
    context = _video_context(video_id, len(images), fps, duration, subset,
                             source)
    if label_index:
        context[CLIP_LABEL_INDEX] = _ints(label_index)
        context[CLIP_LABEL_TEXT] = _bytes(label_text)
    lists = {
        IMAGE_ENCODED: _feature_list(_bytes([f]) for f in images),
        FRAME_LABEL_INDEX: _feature_list(_ints([c]) for c in frame_labels),
    }
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=lists))


def parse_frame_labels(serialized):
    """Parses a frame-labelled record; JPEGs stay encoded.

    Returns:
        Dict with the video context keys, `clip/label/index` [A] int64 and
        `clip/label/text` [A] string (A = 0 when the video has no action
        class), `image/encoded` [N] string and `frame/label/index` [N]
        int64.
    """
    context_spec = _video_context_spec()
    context_spec[CLIP_LABEL_INDEX] = tf.io.VarLenFeature(tf.int64)
    context_spec[CLIP_LABEL_TEXT] = tf.io.VarLenFeature(tf.string)
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec,
        sequence_features={
            IMAGE_ENCODED: tf.io.FixedLenSequenceFeature([], tf.string),
            FRAME_LABEL_INDEX: tf.io.FixedLenSequenceFeature([], tf.int64),
        })
    return {**_to_dense(context), **sequence}
