"""Tests of `tfaction.layers.layer_scale.LayerScale`."""

import numpy as np
import pytest

from tfaction.layers.layer_scale import LayerScale
from tfaction.testing import run_layer_test


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_contract(rate):
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    run_layer_test(LayerScale, {"init_value": 0.5, "drop_path_rate": rate,
                                "seed": 3},
                   x, expected_output_shape=(3, 5, 4),
                   expected_num_trainable_weights=1)


def test_inference_is_scaling_and_init():
    x = np.random.default_rng(1).normal(size=(2, 7, 6)).astype("float32")
    layer = LayerScale(drop_path_rate=0.5)
    y = layer(x, training=False).numpy()
    np.testing.assert_allclose(layer.scale.numpy(), 1e-4)
    np.testing.assert_allclose(y, x * 1e-4, rtol=1e-6)


def test_training_drops_whole_samples_and_rescales():
    rate = 0.4
    x = np.ones((4000, 3, 2), "float32")
    layer = LayerScale(init_value=1.0, drop_path_rate=rate, seed=7)
    y = layer(x, training=True).numpy()
    per_sample = y.reshape(len(x), -1)
    # every sample is either fully dropped or fully kept and rescaled
    assert np.all(per_sample == per_sample[:, :1])
    values = np.unique(per_sample)
    np.testing.assert_allclose(values, [0.0, 1.0 / (1.0 - rate)], rtol=1e-6)
    kept = (per_sample[:, 0] > 0).mean()
    assert abs(kept - (1.0 - rate)) < 0.03
    # unbiased in expectation
    assert abs(y.mean() - 1.0) < 0.05


def test_bad_rate():
    with pytest.raises(ValueError, match="drop_path_rate"):
        LayerScale(drop_path_rate=1.0)
