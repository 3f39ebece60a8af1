"""Tests of `tfaction.layers.region_proposal_head.RegionProposalHead`."""

import doctest

import keras
import numpy as np
import tensorflow as tf

from tfaction.layers import region_proposal_head
from tfaction.layers.region_proposal_head import RegionProposalHead
from tfaction.ops import anchors as anchor_ops
from tfaction.testing import run_layer_test


def test_docstrings():
    result = doctest.testmod(region_proposal_head)
    assert result.failed == 0 and result.attempted > 0


def test_layer_contract():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype("float32")
    run_layer_test(
        RegionProposalHead,
        {"num_anchors_per_location": 3, "filters": 8, "kernel_size": 3},
        x, expected_output_shape=((2, 36), (2, 36, 4)),
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=0)


def test_output_order_matches_the_anchor_grid():
    keras.utils.set_random_seed(1)
    a, h, w = 4, 3, 5
    head = RegionProposalHead(num_anchors_per_location=a, filters=6,
                              kernel_initializer="glorot_uniform")
    x = np.random.default_rng(1).normal(size=(2, h, w, 7)).astype("float32")
    logits, deltas = head(x)
    hidden = head.activation(head.rpn_conv(x))
    maps = np.asarray(head.objectness_conv(hidden))      # [B, H, W, A]
    box_maps = np.asarray(head.box_conv(hidden))         # [B, H, W, 4A]
    anchors = np.asarray(anchor_ops.grid_anchors(
        h, w, h * 16, w * 16, scales=(0.5, 1.0), aspect_ratios=(1.0, 2.0),
        normalize=False))
    assert anchors.shape[0] == logits.shape[1] == h * w * a
    for i in range(h):
        for j in range(w):
            for k in range(a):
                row = (i * w + j) * a + k
                np.testing.assert_allclose(logits[:, row], maps[:, i, j, k],
                                           rtol=1e-6, atol=1e-7)
                np.testing.assert_allclose(
                    deltas[:, row], box_maps[:, i, j, 4 * k:4 * k + 4],
                    rtol=1e-6, atol=1e-7)
                centre = (anchors[row, :2] + anchors[row, 2:]) / 2
                np.testing.assert_allclose(centre, [16 * i, 16 * j])


def test_tf_od_api_initialisation_and_activation():
    keras.utils.set_random_seed(2)
    head = RegionProposalHead(filters=64)
    head.build((None, 5, 5, 32))
    assert head.activation is keras.activations.relu6
    for conv in (head.rpn_conv, head.objectness_conv, head.box_conv):
        kernel = np.asarray(conv.kernel)
        assert np.abs(kernel).max() <= 0.02 + 1e-7       # truncated at 2 sd
        # sd of N(0, 0.01) truncated at +-2 sd is 0.00880.
        assert abs(kernel.std() - 0.0088) < 0.0008
        np.testing.assert_array_equal(conv.bias, 0.0)
    assert head.rpn_conv.kernel.shape == (3, 3, 32, 64)
    assert head.objectness_conv.kernel.shape == (1, 1, 64, 12)
    assert head.box_conv.kernel.shape == (1, 1, 64, 48)


def test_dynamic_spatial_size():
    head = RegionProposalHead(num_anchors_per_location=2, filters=4)
    fn = tf.function(head, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.float32)])
    for shape in ((1, 2, 3, 3), (2, 4, 4, 3)):
        logits, deltas = fn(np.ones(shape, "float32"))
        rows = shape[1] * shape[2] * 2
        assert tuple(logits.shape) == (shape[0], rows)
        assert tuple(deltas.shape) == (shape[0], rows, 4)
