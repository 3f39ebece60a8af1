"""Tests of the TFRecord schemas (builders and graph-mode parsers)."""

import numpy as np
import pytest
import tensorflow as tf

from tfaction.data import schemas


def _jpeg(value, channels=3):
    return tf.io.encode_jpeg(np.full((8, 8, channels), value,
                                     np.uint8)).numpy()


def test_frames_round_trip_rgb_and_flow():
    ex = schemas.frames_example(
        "brush_hair/1", num_frames=3, fps=30.0, duration=0.1,
        label_index=[4, 7], label_text=["a", "b"],
        images=[_jpeg(i) for i in range(3)],
        flow_x=[_jpeg(1, 1)] * 2, flow_y=[_jpeg(2, 1)] * 2, subset="train",
        source="brush_hair/x.avi")
    record = ex.SerializeToString()
    out = schemas.parse_frames(record, modalities=("rgb", "flow"))
    assert out[schemas.VIDEO_ID].numpy() == b"brush_hair/1"
    assert int(out[schemas.VIDEO_NUM_FRAMES]) == 3
    assert out[schemas.CLIP_LABEL_INDEX].numpy().tolist() == [4, 7]
    assert out[schemas.CLIP_LABEL_TEXT].numpy().tolist() == [b"a", b"b"]
    assert out[schemas.IMAGE_ENCODED].shape == (3,)
    assert out[schemas.FLOW_X_ENCODED].shape == (2,)
    assert out[schemas.VIDEO_SUBSET].numpy() == b"train"
    assert out[schemas.VIDEO_SOURCE].numpy() == b"brush_hair/x.avi"
    rgb_only = schemas.parse_frames(record)
    assert schemas.FLOW_X_ENCODED not in rgb_only
    with pytest.raises(ValueError, match="unknown modalities"):
        schemas.parse_frames(record, modalities=("depth",))


def test_frames_parse_in_graph_defaults():
    ex = schemas.frames_example("v", num_frames=1, images=[_jpeg(0)])
    ds = tf.data.Dataset.from_tensors(ex.SerializeToString())
    out = next(iter(ds.map(schemas.parse_frames)))
    assert float(out[schemas.VIDEO_FPS]) == -1.0
    assert out[schemas.CLIP_LABEL_INDEX].shape == (0,)


@pytest.mark.parametrize("encoding", schemas.FEATURE_ENCODINGS)
def test_feature_sequence_round_trip(encoding):
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((7, 5)).astype(np.float32)
    segments = [[0.1, 0.30000000000000004], [1.0 / 3.0, 2.5]]
    ex = schemas.feature_sequence_example(
        "v1", feats, fps=29.97, duration=12.5, stride=4, window=16,
        segments=segments, label_index=[3, 1], label_string=["x", "y"],
        encoding=encoding)
    out = schemas.parse_feature_sequence(ex.SerializeToString(),
                                         feature_dim=5, encoding=encoding)
    np.testing.assert_array_equal(out["features"].numpy(), feats)
    # The float64 copy keeps annotation seconds exact.
    assert out["segments"].numpy().tolist() == segments
    assert out[schemas.SEGMENT_LABEL_INDEX].numpy().tolist() == [3, 1]
    assert int(out[schemas.FEATURE_LENGTH]) == 7
    assert float(out[schemas.FEATURE_STRIDE]) == 4.0
    assert out["features"].dtype == tf.float32


def test_feature_sequence_float16_storage_and_no_segments():
    feats = np.arange(12, dtype=np.float32).reshape(4, 3) / 8
    ex = schemas.feature_sequence_example("v", feats, fps=1, duration=4,
                                          stride=1, window=1,
                                          dtype=np.float16)
    out = schemas.parse_feature_sequence(ex.SerializeToString(),
                                         feature_dim=3, dtype=tf.float16)
    np.testing.assert_array_equal(out["features"].numpy(), feats)
    assert out["segments"].shape == (0, 2)


def test_feature_sequence_errors():
    with pytest.raises(ValueError, match="encoding"):
        schemas.feature_sequence_example("v", np.zeros((2, 2)), fps=1,
                                         duration=1, stride=1, window=1,
                                         encoding="npy")
    with pytest.raises(ValueError, match=r"\[T, C\]"):
        schemas.feature_sequence_example("v", np.zeros(3), fps=1,
                                         duration=1, stride=1, window=1)
    ex = schemas.feature_sequence_example("v", np.zeros((2, 4)), fps=1,
                                          duration=1, stride=1, window=1,
                                          encoding="floats")
    with pytest.raises(tf.errors.InvalidArgumentError):
        schemas.parse_feature_sequence(ex.SerializeToString(),
                                       feature_dim=3, encoding="floats")


def test_keyframe_boxes_ragged_labels():
    ex = schemas.keyframe_boxes_example(
        "ava/v", timestamp=902.0, boxes=[[0.1, 0.2, 0.5, 0.9],
                                         [0.0, 0.0, 1.0, 1.0]],
        labels=[[1, 12], [79]], person_ids=[3, 4], images=[_jpeg(0)] * 2,
        fps=30)
    out = schemas.parse_keyframe_boxes(ex.SerializeToString())
    np.testing.assert_allclose(out["boxes"].numpy()[0], [0.1, 0.2, 0.5, 0.9])
    assert out[schemas.BOX_LABEL_INDEX].to_list() == [[1, 12], [79]]
    assert out[schemas.BOX_PERSON_ID].numpy().tolist() == [3, 4]
    assert int(out[schemas.VIDEO_NUM_FRAMES]) == 2
    with pytest.raises(ValueError, match="2 boxes but 1 label lists"):
        schemas.keyframe_boxes_example("v", timestamp=0,
                                       boxes=np.zeros((2, 4)), labels=[[1]])


def test_frame_labels_round_trip_and_mismatch():
    ex = schemas.frame_labels_example("pour/1", images=[_jpeg(0)] * 3,
                                      frame_labels=[0, 0, 1])
    out = schemas.parse_frame_labels(ex.SerializeToString())
    assert out[schemas.FRAME_LABEL_INDEX].numpy().tolist() == [0, 0, 1]
    assert int(out[schemas.VIDEO_NUM_FRAMES]) == 3
    with pytest.raises(ValueError, match="3 frames but 2 frame labels"):
        schemas.frame_labels_example("v", images=[_jpeg(0)] * 3,
                                     frame_labels=[0, 1])
