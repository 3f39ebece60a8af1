"""Tests of `tfaction.layers.CentreFrame`."""

import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.centre_frame import CentreFrame
from tfaction.testing import run_layer_test


@pytest.mark.parametrize("frames, index, want", [
    (16, None, 8), (5, None, 2), (1, None, 0), (16, 7, 7), (16, -1, 15)])
def test_picks_the_frame(frames, index, want):
    x = np.arange(frames, dtype="float32").reshape(1, frames, 1, 1, 1)
    out = CentreFrame(index)(x)
    assert out.shape == (1, 1, 1, 1) and float(out[0, 0, 0, 0]) == want


def test_dynamic_length_in_a_graph():
    layer = CentreFrame()
    fn = tf.function(layer, input_signature=[
        tf.TensorSpec((None, None, 2, 2, 3), tf.float32)])
    x = np.random.default_rng(0).normal(size=(2, 6, 2, 2, 3)).astype(
        "float32")
    np.testing.assert_array_equal(fn(x), x[:, 3])


def test_contract():
    x = np.random.default_rng(1).normal(size=(2, 4, 3, 3, 5)).astype(
        "float32")
    run_layer_test(CentreFrame, {"index": None}, x,
                   expected_output_shape=(2, 3, 3, 5),
                   expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0,
                   run_training_check=False)
