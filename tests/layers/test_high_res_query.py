"""Tests of `tfaction.layers.high_res_query.HighResQuery`."""

import numpy as np
import pytest

from tfaction.layers import high_res_query
from tfaction.layers.high_res_query import HighResQuery
from tfaction.testing import run_layer_test
from tfaction.testing.docstring_checks import check_docstring_examples

SHAPE = (2, 3, 7, 7, 6)  # B, R, 7, 7, C


def _rois(shape=SHAPE, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _w(variable):
    return np.asarray(variable, np.float64)


def numpy_query(layer, rois, activation=lambda x: x):
    """1x1 conv per cell, cells concatenated row-major, then linear."""
    *lead, s1, s2, _ = rois.shape
    cells = []
    for i in range(s1):
        for j in range(s2):
            cells.append(activation(
                rois[..., i, j, :].astype(np.float64)
                @ _w(layer.reduction.kernel) + _w(layer.reduction.bias)))
    flat = np.concatenate(cells, axis=-1)  # cell (i, j) at (i * s2 + j) * c
    return flat @ _w(layer.projection.kernel) + _w(layer.projection.bias)


def test_contract():
    run_layer_test(HighResQuery, {"units": 8, "reduction_channels": 4},
                   _rois(), expected_output_shape=(2, 3, 8),
                   expected_num_trainable_weights=4)


def test_contract_with_activation():
    run_layer_test(
        HighResQuery,
        {"units": 5, "reduction_channels": 3, "reduction_activation": "relu"},
        _rois((2, 2, 3, 4, 6)), expected_output_shape=(2, 2, 5),
        expected_num_trainable_weights=4, run_saving_check=False,
        run_mixed_precision_check=False)


@pytest.mark.parametrize("activation", [None, "relu"])
def test_matches_numpy(activation):
    rois = _rois(seed=1)
    layer = HighResQuery(units=8, reduction_channels=4,
                         reduction_activation=activation)
    layer(rois)
    rng = np.random.default_rng(2)
    layer.reduction.bias.assign(rng.normal(size=4))
    fn = (lambda x: x) if activation is None else (
        lambda x: np.maximum(x, 0.0))
    np.testing.assert_allclose(layer(rois).numpy(),
                               numpy_query(layer, rois, fn), atol=1e-5)


def test_keeps_spatial_layout():
    """Unlike an average, swapping two cells changes the query."""
    rois = _rois(seed=3)
    layer = HighResQuery(units=8, reduction_channels=4)
    swapped = rois.copy()
    swapped[:, :, [0, 6]] = rois[:, :, [6, 0]]
    assert np.abs(layer(rois).numpy() - layer(swapped).numpy()).max() > 1e-3


def test_proposals_are_independent():
    rois = _rois(seed=4)
    layer = HighResQuery(units=8, reduction_channels=4)
    ref = layer(rois).numpy()
    changed = rois.copy()
    changed[1, 0] += 5.0
    out = layer(changed).numpy()
    np.testing.assert_array_equal(out[0], ref[0])
    np.testing.assert_array_equal(out[1, 1:], ref[1, 1:])


def test_other_ranks():
    layer = HighResQuery(units=8, reduction_channels=4)
    assert tuple(layer(_rois((5, 7, 7, 6))).shape) == (5, 8)


def test_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        HighResQuery(units=0)
    with pytest.raises(ValueError, match="known"):
        HighResQuery().build((None, 3, None, 7, 6))


def test_docstring_example():
    check_docstring_examples(high_res_query)
