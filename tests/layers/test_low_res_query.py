"""Tests of `tfaction.layers.low_res_query.LowResQuery`."""

import numpy as np
import pytest

from tfaction.layers import low_res_query
from tfaction.layers.low_res_query import LowResQuery
from tfaction.testing import run_layer_test
from tfaction.testing.docstring_checks import check_docstring_examples

SHAPE = (2, 3, 7, 7, 6)  # B, R, 7, 7, C


def _rois(shape=SHAPE, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_contract():
    run_layer_test(LowResQuery, {"units": 8}, _rois(),
                   expected_output_shape=(2, 3, 8),
                   expected_num_trainable_weights=2)


def test_matches_numpy():
    rois = _rois(seed=1)
    layer = LowResQuery(units=8)
    layer(rois)
    layer.projection.bias.assign(np.random.default_rng(2).normal(size=8))
    mean = rois.astype(np.float64).mean(axis=(2, 3))
    expected = mean @ np.asarray(layer.projection.kernel, np.float64) + \
        np.asarray(layer.projection.bias, np.float64)
    np.testing.assert_allclose(layer(rois).numpy(), expected, atol=1e-5)


def test_ignores_spatial_layout():
    rois = _rois(seed=3)
    layer = LowResQuery(units=8)
    swapped = rois.copy()
    swapped[:, :, [0, 6]] = rois[:, :, [6, 0]]
    np.testing.assert_allclose(layer(rois).numpy(), layer(swapped).numpy(),
                               atol=1e-6)


def test_mixed_precision_mean_in_float32():
    """Values whose float16 sum over 49 cells would overflow."""
    rois = np.full((1, 1, 7, 7, 2), 30000.0, "float32")
    layer = LowResQuery(units=2, dtype="mixed_float16")
    layer(rois)
    layer.projection.set_weights([np.eye(2, dtype="float32") * 1e-3,
                                  np.zeros(2, "float32")])
    out = layer(rois)
    assert out.dtype == "float16"
    np.testing.assert_allclose(out.numpy().astype(np.float64), 30.0,
                               rtol=1e-2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        LowResQuery(units=0)
    with pytest.raises(ValueError, match="S1, S2"):
        LowResQuery()(np.zeros((2, 7, 6), "float32"))


def test_docstring_example():
    check_docstring_examples(low_res_query)
