"""Tests of `tfaction.layers.scale.Scale`."""

import numpy as np

from tfaction.layers.scale import Scale
from tfaction.testing import run_layer_test


def test_scale_contract():
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype("float32")
    out = run_layer_test(Scale, {"init_value": 1.0}, x,
                         expected_output_shape=(2, 6, 3),
                         expected_num_trainable_weights=1,
                         expected_num_non_trainable_weights=0)
    np.testing.assert_allclose(out, x, rtol=0, atol=0)


def test_scale_default_init_and_value():
    layer = Scale()
    x = np.arange(6, dtype="float32").reshape(1, 3, 2)
    np.testing.assert_array_equal(layer(x), x)  # init 1.0
    assert layer.scale.shape == ()
    layer.scale.assign(2.5)
    np.testing.assert_allclose(layer(x), 2.5 * x)
    assert Scale(init_value=0.5).get_config()["init_value"] == 0.5
