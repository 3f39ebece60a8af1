"""Tests of `tfaction.models.actionformer.postprocessing`."""

import numpy as np
import pytest
import tensorflow as tf

from tfaction.models.actionformer import decoding
from tfaction.models.actionformer.postprocessing import VideoPostprocessor
from tfaction.models.actionformer.postprocessing import split_points
from tfaction.ops.soft_nms import soft_nms

STRIDES = [1, 2, 4, 8]
SETTINGS = dict(pre_nms_thresh=0.001, pre_nms_topk=50, duration_thresh=0.05)
NMS = dict(iou_threshold=0.1, min_score=0.001, max_seg_num=20,
           method="gaussian", multiclass=True, sigma=0.5, voting_thresh=0.0)


def _outputs(length, num_classes, seed):
    rng = np.random.default_rng(seed)
    points = sum(-(-length // s) for s in STRIDES)
    logits = rng.normal(-1.0, 2.0, (points, num_classes)).astype(np.float32)
    offsets = rng.uniform(0.0, 4.0, (points, 2)).astype(np.float32)
    mask = np.concatenate([np.arange(-(-length // s)) < 0.8 * length / s
                           for s in STRIDES])
    return logits, offsets, mask


def _eager(logits, offsets, mask, video, nms):
    """The same steps, one by one: static level sizes, eager decoding."""
    sizes = [-(-(logits.shape[0] * 8 // 15) // s) for s in STRIDES]
    split = lambda x: np.split(x, np.cumsum(sizes)[:-1])  # noqa: E731
    segs, scores, labels = decoding.decode_candidates(
        split(logits), split(offsets), STRIDES, masks=split(mask),
        **SETTINGS)
    segs, scores, labels = soft_nms(segs.numpy(), scores.numpy(),
                                    labels.numpy(), **nms)
    seconds = decoding.grid_to_seconds(
        tf.constant(segs), video["fps"], video["feature_stride"],
        video["feature_window"], video["duration"])
    return seconds.numpy(), scores, labels


@pytest.mark.parametrize("multiclass", [True, False])
def test_matches_the_eager_steps_with_one_trace(multiclass):
    nms = dict(NMS, multiclass=multiclass,
               voting_thresh=0.0 if multiclass else 0.7)
    post = VideoPostprocessor(STRIDES, **SETTINGS, **nms)
    video = dict(fps=30.0, duration=9.5, feature_stride=4.0,
                 feature_window=16.0)
    for seed, length in enumerate([64, 40, 64]):  # two point counts
        logits, offsets, mask = _outputs(length, 3, seed)
        got = post(logits, offsets, mask, **video)
        want = _eager(logits, offsets, mask, video, nms)
        assert got[0].dtype == np.float32 and got[2].dtype == np.int64
        assert len(got[1]) > 0
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    assert post.decode.experimental_get_tracing_count() == 1


def test_grid_to_seconds_host_path_equals_the_tensor_path():
    segs = np.array([[-3.0, 1.7], [2.25, 700.0], [10.1, 11.3]], np.float32)
    host = decoding.grid_to_seconds(segs, 29.97, 4, 16, 24.13)
    assert isinstance(host, np.ndarray) and host.dtype == np.float32
    graph = decoding.grid_to_seconds(tf.constant(segs), 29.97, 4, 16, 24.13)
    np.testing.assert_array_equal(host, graph.numpy())
    assert host.min() == 0.0 and host.max() == np.float32(24.13)


def test_split_points_names_a_count_that_is_no_pyramid():
    assert [int(x.shape[0]) for x in split_points(tf.zeros([15, 2]),
                                                  STRIDES)] == [8, 4, 2, 1]
    fn = tf.function(lambda x: split_points(x, STRIDES),
                     input_signature=[tf.TensorSpec([None, 2])])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="does not form a pyramid with strides"):
        fn(tf.zeros([13, 2]))  # no T gives 13 points
