"""Tests of `tfaction.layers.BoxAxis`."""

import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.box_axis import BoxAxis
from tfaction.testing import run_layer_test


def test_merge_then_split_is_the_identity_with_dynamic_sizes():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype("float32")

    @tf.function(input_signature=[tf.TensorSpec((None, None, 4, 5))])
    def round_trip(t):
        folded = BoxAxis("merge")(t)
        return folded, BoxAxis("split")([folded * 2.0, t])

    folded, back = round_trip(x)
    np.testing.assert_array_equal(folded, x.reshape(6, 4, 5))
    np.testing.assert_array_equal(back, 2 * x)


def test_contract():
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    run_layer_test(BoxAxis, {"mode": "merge"}, x,
                   expected_output_shape=(6, 4),
                   expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0,
                   run_training_check=False)


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        BoxAxis("fold")
