"""tfaction.losses.smooth_l1_loss: TF OD API smooth L1 (summed Huber)."""

import doctest

import keras
import numpy as np
import pytest

from tfaction.losses import smooth_l1_loss as module
from tfaction.losses.smooth_l1_loss import smooth_l1_loss


def test_docstrings():
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_matches_numpy_and_keras_huber_times_code_size():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(3, 7, 4)).astype("float32")
    p = rng.normal(scale=2.0, size=(3, 7, 4)).astype("float32")
    w = (rng.random((3, 7)) < 0.5).astype("float32")
    d = np.abs(p - t).astype(np.float64)
    ref = np.where(d <= 1.0, 0.5 * d * d, d - 0.5).sum(-1) * w
    got = np.asarray(smooth_l1_loss(t, p, w))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # Keras' Huber averages over the code axis: x 4 gives the API's sum.
    keras_huber = np.asarray(keras.losses.huber(t, p, delta=1.0))
    np.testing.assert_allclose(np.asarray(smooth_l1_loss(t, p)),
                               4.0 * keras_huber, rtol=1e-5, atol=1e-6)
    assert float(smooth_l1_loss(t, p, w, reduction="sum")) == \
        pytest.approx(ref.sum(), rel=1e-5)


def test_delta_and_errors():
    got = smooth_l1_loss(np.zeros((1, 1)), np.array([[3.0]]), delta=2.0)
    assert float(got[0]) == pytest.approx(2.0 * (3.0 - 1.0))
    with pytest.raises(ValueError, match="reduction"):
        smooth_l1_loss(np.zeros((1, 4)), np.zeros((1, 4)), reduction="mean")
    with pytest.raises(ValueError, match="delta"):
        smooth_l1_loss(np.zeros((1, 4)), np.zeros((1, 4)), delta=0.0)
