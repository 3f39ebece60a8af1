"""`VideoPostprocessor`: one video's ActionFormer outputs -> detections in seconds."""

import numpy as np
import tensorflow as tf

from tfaction.models.actionformer import decoding
from tfaction.models.actionformer.model import pyramid_sizes
from tfaction.ops.soft_nms import soft_nms


def split_points(tensor, strides):
    """Splits a level-concatenated `[P, ...]` into its levels, in graph.

    The level sizes follow from the point count `P` (`pyramid_sizes`);
    `P` may be dynamic (unknown when traced).

    Args:
        tensor: `[P, ...]` tensor, levels concatenated in `strides` order.
        strides: the model's `fpn_strides`.

    Returns:
        A list of `len(strides)` tensors `[T_l, ...]`.

    Example:

    >>> levels = split_points(tf.zeros([7, 3]), [1, 2, 4])  # 4 + 2 + 1 points
    >>> [int(x.shape[0]) for x in levels]
    [4, 2, 1]
    """
    top = int(strides[-1])
    points = tf.shape(tensor)[0]
    sizes = tf.stack(pyramid_sizes(points, strides))
    check = tf.debugging.assert_equal(
        tf.reduce_sum(sizes), points,
        message=f"the point count does not form a pyramid with strides "
                f"{list(strides)} (expected sum_l ceil(T / s_l) points for "
                f"a length T that is a multiple of {top})")
    with tf.control_dependencies([check]):
        return tf.split(tensor, sizes, num=len(strides))


class VideoPostprocessor:
    """Detections of one video: decoding, Soft-NMS and seconds, on the host.

    The evaluation path of the ActionFormer recipe (the reference's
    `inference_single_video` + `postprocessing`, one video at a time):
    `decoding.decode_candidates` runs in one `tf.function` traced once for
    every point count (eagerly, its dozens of small ops per level cost more
    than the network at ActivityNet's length), then the reference's
    Soft-NMS (`tfaction.ops.soft_nms.soft_nms`, NumPy) and
    `decoding.grid_to_seconds` (its NumPy path).

    Args:
        strides: the model's `fpn_strides`.
        pre_nms_thresh, pre_nms_topk, duration_thresh: candidate selection
            (`decoding.decode_candidates`).
        iou_threshold, min_score, max_seg_num, method, multiclass, sigma,
            voting_thresh: Soft-NMS (`tfaction.ops.soft_nms.soft_nms`).

    Call arguments:
        cls_logits: `[P, K]` logits of one video, levels concatenated.
        offsets: `[P, 2]` offsets.
        mask: `[P]` boolean, True at valid points.
        fps, duration, feature_stride, feature_window: the video's
            (`decoding.grid_to_seconds`).

    Returns:
        `(segments [N, 2] float32 seconds, scores [N] float32,
        labels [N] int64)` NumPy arrays, by descending score.

    Example:

    >>> post = VideoPostprocessor([1, 2, 4], max_seg_num=10)
    >>> logits = np.full([7, 1], 2.0, "float32")
    >>> segs, scores, labels = post(logits, np.ones([7, 2], "float32"),
    ...                             np.ones([7], bool), fps=1.0, duration=8.0,
    ...                             feature_stride=1, feature_window=1)
    >>> # segs: [N, 2] in seconds within [0, 8]
    """

    def __init__(self, strides, *, pre_nms_thresh=0.001, pre_nms_topk=2000,
                 duration_thresh=0.05, iou_threshold=0.1, min_score=0.001,
                 max_seg_num=200, method="gaussian", multiclass=True,
                 sigma=0.5, voting_thresh=0.0):
        self.strides = [int(s) for s in strides]
        self.nms_kwargs = dict(
            iou_threshold=float(iou_threshold), min_score=float(min_score),
            max_seg_num=int(max_seg_num), method=method,
            multiclass=bool(multiclass), sigma=float(sigma),
            voting_thresh=float(voting_thresh))
        levels = self.strides
        select = dict(pre_nms_thresh=float(pre_nms_thresh),
                      pre_nms_topk=int(pre_nms_topk),
                      duration_thresh=float(duration_thresh))

        # One trace for every video: the point and class axes are unknown.
        @tf.function(jit_compile=False, input_signature=[
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([None, 2], tf.float32),
            tf.TensorSpec([None], tf.bool)])
        def decode(cls_logits, offsets, mask):
            return decoding.decode_candidates(
                split_points(cls_logits, levels),
                split_points(offsets, levels), levels,
                masks=split_points(mask, levels), **select)

        self.decode = decode

    def __call__(self, cls_logits, offsets, mask, *, fps, duration,
                 feature_stride, feature_window):
        segs, scores, labels = self.decode(
            np.asarray(cls_logits, np.float32),
            np.asarray(offsets, np.float32), np.asarray(mask, bool))
        segs, scores, labels = soft_nms(segs.numpy(), scores.numpy(),
                                        labels.numpy(), **self.nms_kwargs)
        return (decoding.grid_to_seconds(segs, fps, feature_stride,
                                         feature_window, duration),
                np.asarray(scores, np.float32), np.asarray(labels, np.int64))
