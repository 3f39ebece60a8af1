import numpy as np
import pytest
import tensorflow as tf

from tfaction.losses.sigmoid_focal_loss import sigmoid_focal_loss


def _ref(y, x, alpha=0.25, gamma=2.0):
    y = y.astype(np.float64)
    x = x.astype(np.float64)
    p = 1 / (1 + np.exp(-x))
    ce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p_t = p * y + (1 - p) * (1 - y)
    a_t = alpha * y + (1 - alpha) * (1 - y)
    return a_t * (1 - p_t) ** gamma * ce


def test_matches_formula_with_mask_and_smoothing():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (2, 7, 4)).astype(np.float32)
    y = (rng.random((2, 7, 4)) < 0.3).astype(np.float32)
    m = rng.random((2, 7)) < 0.7
    got = float(sigmoid_focal_loss(y, x, mask=m))
    np.testing.assert_allclose(got, _ref(y, x)[m].sum(), rtol=1e-5)
    eps = 0.1
    ys = y * (1 - eps) + eps / 5
    got = float(sigmoid_focal_loss(y, x, mask=m, label_smoothing=eps))
    np.testing.assert_allclose(got, _ref(ys, x)[m].sum(), rtol=1e-5)
    none = np.asarray(sigmoid_focal_loss(y, x, mask=m, reduction="none"))
    assert none.shape == x.shape and not none[~m].any()
    mean = float(sigmoid_focal_loss(y, x, mask=m, reduction="mean"))
    np.testing.assert_allclose(mean, _ref(y, x)[m].sum() / (m.sum() * 4),
                               rtol=1e-5)


def test_large_logits_are_finite_and_gradient():
    x = tf.constant([[60.0, -60.0, 0.0]])
    y = tf.constant([[0.0, 1.0, 1.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = sigmoid_focal_loss(y, x)
    g = tape.gradient(loss, x)
    assert np.isfinite(float(loss)) and np.isfinite(g.numpy()).all()


def test_alpha_disabled_and_bad_reduction():
    x = np.array([[1.0]], np.float32)
    y = np.array([[1.0]], np.float32)
    np.testing.assert_allclose(float(sigmoid_focal_loss(y, x, alpha=-1)),
                               _ref(y, x, alpha=0.5).sum() * 2, rtol=1e-6)
    with pytest.raises(ValueError):
        sigmoid_focal_loss(y, x, reduction="avg")
