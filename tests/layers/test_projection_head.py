"""Tests of `tfaction.layers.projection_head`."""

import math

import numpy as np
import pytest

from tfaction.layers.l2_normalization import L2Normalization
from tfaction.layers.projection_head import ProjectionHead
from tfaction.testing import run_layer_test

# A bias followed by a training-mode batch norm gets a zero gradient (the
# batch mean removes it), as in the reference.
BIAS_BEFORE_BATCH_NORM = ("hidden/bias",)


def _inputs(seed=0, shape=(2, 5, 8)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _reference(head, x, training, normalize=True):
    """Linear -> BatchNorm1d over every vector -> ReLU -> Linear ->
    F.normalize, float64 numpy from the head's weights."""
    w = {v.path.split("/", 1)[1]: np.asarray(v, np.float64)
         for v in head.weights}
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    h = flat @ w["hidden/kernel"] + w["hidden/bias"]
    if training:   # batch statistics over all B * T vectors (biased var)
        mean, var = h.mean(0), h.var(0)
    else:
        mean = w["batch_norm/moving_mean"]
        var = w["batch_norm/moving_variance"]
    h = ((h - mean) / np.sqrt(var + 1e-5) * w["batch_norm/gamma"]
         + w["batch_norm/beta"])
    z = np.maximum(h, 0.0) @ w["output/kernel"] + w["output/bias"]
    if normalize:
        z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    return z.reshape(*x.shape[:-1], -1)


def test_layer_contract():
    z = run_layer_test(ProjectionHead,
                       {"hidden_units": 16, "output_units": 6,
                        "normalize": True, "momentum": 0.9,
                        "epsilon": 1e-5},
                       _inputs(), expected_output_shape=(2, 5, 6),
                       expected_output_dtype="float32",
                       expected_num_trainable_weights=6,
                       expected_num_non_trainable_weights=2,
                       float32_sublayers=(L2Normalization,),
                       mixed_precision_output_dtype="float32",
                       unused_weights=BIAS_BEFORE_BATCH_NORM)
    np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-6)


def test_layer_contract_unnormalised():
    run_layer_test(ProjectionHead, {"hidden_units": 8, "output_units": 4,
                                    "normalize": False},
                   _inputs(shape=(6, 8)), expected_output_shape=(6, 4),
                   expected_num_trainable_weights=6,
                   expected_num_non_trainable_weights=2,
                   run_saving_check=False,
                   unused_weights=BIAS_BEFORE_BATCH_NORM)


def test_matches_reference_in_both_modes():
    x = _inputs(1)
    head = ProjectionHead(hidden_units=12, output_units=6)
    head(x)
    rng = np.random.default_rng(2)
    head.batch_norm.moving_mean.assign(rng.normal(size=12))
    head.batch_norm.moving_variance.assign(rng.uniform(0.5, 2.0, size=12))
    head.batch_norm.gamma.assign(rng.uniform(0.5, 1.5, size=12))
    head.batch_norm.beta.assign(rng.normal(size=12))
    np.testing.assert_allclose(np.asarray(head(x, training=False)),
                               _reference(head, x, False), atol=1e-5)
    expected = _reference(head, x, True)
    np.testing.assert_allclose(np.asarray(head(x, training=True)), expected,
                               atol=1e-5)
    head = ProjectionHead(hidden_units=12, output_units=6, normalize=False)
    out = np.asarray(head(x, training=False))
    np.testing.assert_allclose(out, _reference(head, x, False, False),
                               atol=1e-5)
    assert not np.allclose(np.linalg.norm(out, axis=-1), 1.0)


def test_moving_statistics_use_pytorch_momentum():
    x = _inputs(3, shape=(10, 8))
    head = ProjectionHead(hidden_units=4, output_units=4)
    head(x)
    head(x, training=True)
    hidden = np.asarray(head.hidden(x), np.float64)
    np.testing.assert_allclose(np.asarray(head.batch_norm.moving_mean),
                               0.1 * hidden.mean(0), rtol=1e-5, atol=1e-6)


def test_pytorch_linear_initialisation():
    head = ProjectionHead(hidden_units=128, output_units=128)
    head(_inputs(shape=(4, 64)))
    for dense, fan_in in ((head.hidden, 64), (head.output_dense, 128)):
        bound = 1.0 / math.sqrt(fan_in)
        for weight in (dense.kernel, dense.bias):
            value = np.abs(np.asarray(weight)).max()
            assert 0.5 * bound < value <= bound


def test_rejects_bad_sizes():
    with pytest.raises(ValueError, match="units"):
        ProjectionHead(hidden_units=0)
