"""`tfaction.ops.fused_batch_norm`: batch norm as one fused kernel.

Training mode must give NumPy's batch statistics (the unbiased variance
returned) and normalisation, inference mode the normalisation by the given
statistics, for rank-4 and rank-5 inputs, with and without scale / offset.
"""

import keras
import numpy as np
import pytest

from tfaction.ops import fused_batch_norm
from tfaction.testing.docstring_checks import check_docstring_examples

RNG = np.random.default_rng(0)
X4 = RNG.normal(2.0, 3.0, (2, 5, 4, 3)).astype("float32")
X5 = RNG.normal(-1.0, 2.0, (2, 3, 4, 5, 3)).astype("float32")
GAMMA = np.array([0.5, 1.5, 2.0], "float32")
BETA = np.array([-1.0, 0.0, 0.25], "float32")


@pytest.mark.parametrize("x", [X4, X5], ids=["rank4", "rank5"])
@pytest.mark.parametrize("affine", [True, False])
def test_training_mode_uses_batch_statistics(x, affine):
    scale, offset = (GAMMA, BETA) if affine else (None, None)
    y, mean, variance = fused_batch_norm.normalize(x, scale, offset, 1e-5)
    axes = tuple(range(x.ndim - 1))
    want_mean, want_var = x.mean(axes), x.var(axes)
    want = (x - want_mean) / np.sqrt(want_var + 1e-5)
    if affine:
        want = want * GAMMA + BETA
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-5)
    n = x.size // x.shape[-1]
    np.testing.assert_allclose(variance, want_var * n / (n - 1), rtol=1e-5)
    assert y.shape == x.shape


@pytest.mark.parametrize("x", [X4, X5], ids=["rank4", "rank5"])
def test_inference_mode_uses_given_statistics(x):
    mean = np.array([1.0, -2.0, 0.5], "float32")
    variance = np.array([4.0, 0.25, 9.0], "float32")
    y, m, v = fused_batch_norm.normalize(x, GAMMA, BETA, 1e-3, mean=mean,
                                         variance=variance)
    want = (x - mean) / np.sqrt(variance + 1e-3) * GAMMA + BETA
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(m, mean)
    np.testing.assert_array_equal(v, variance)


def test_fusable_cases():
    assert fused_batch_norm.fusable(X4, -1) and fused_batch_norm.fusable(X5, 4)
    assert not fused_batch_norm.fusable(X4, 1)  # not the last axis
    assert not fused_batch_norm.fusable(X4[:, 0, 0], -1)  # rank 2
    assert not fused_batch_norm.fusable(
        keras.KerasTensor((2, 4, 4, None)), -1)  # unknown channels


def test_docstring_examples():
    check_docstring_examples(fused_batch_norm)
