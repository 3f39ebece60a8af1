import numpy as np
import pytest
import tensorflow as tf

from tfaction.losses.ctr_diou_loss_1d import ctr_diou_loss_1d


def _ref(g, p):
    g = g.astype(np.float64)
    p = p.astype(np.float64)
    inter = np.minimum(p[..., 0], g[..., 0]) + np.minimum(p[..., 1], g[..., 1])
    union = p.sum(-1) + g.sum(-1) - inter
    c = np.maximum(p[..., 0], g[..., 0]) + np.maximum(p[..., 1], g[..., 1])
    rho = 0.5 * (p[..., 1] - p[..., 0] - g[..., 1] + g[..., 0])
    iou = inter / np.maximum(union, 1e-8)
    return 1 - iou + (rho / np.maximum(c, 1e-8)) ** 2


def test_matches_formula():
    rng = np.random.default_rng(1)
    g = rng.uniform(0, 5, (3, 9, 2)).astype(np.float32)
    p = rng.uniform(0, 5, (3, 9, 2)).astype(np.float32)
    m = rng.random((3, 9)) < 0.5
    np.testing.assert_allclose(float(ctr_diou_loss_1d(g, p, mask=m)),
                               _ref(g, p)[m].sum(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ctr_diou_loss_1d(g, p)),
                               _ref(g, p).sum(), rtol=1e-5)
    none = np.asarray(ctr_diou_loss_1d(g, p, mask=m, reduction="none"))
    np.testing.assert_allclose(none[m], _ref(g, p)[m], rtol=1e-5)
    assert not none[~m].any()


def test_identical_is_zero_and_degenerate_finite():
    g = np.array([[1.0, 2.0], [0.0, 0.0]], np.float32)
    out = np.asarray(ctr_diou_loss_1d(g, g, reduction="none"))
    np.testing.assert_allclose(out, [0.0, 1.0], atol=1e-7)


def test_no_positive_keeps_gradient_connected():
    p = tf.Variable(np.ones((4, 2), np.float32))
    with tf.GradientTape() as tape:
        loss = ctr_diou_loss_1d(tf.zeros((4, 2)), p,
                                mask=tf.zeros((4,), tf.bool))
    g = tape.gradient(loss, p)
    assert float(loss) == 0.0 and g is not None
    assert not g.numpy().any()
    with pytest.raises(ValueError):
        ctr_diou_loss_1d(tf.zeros((4, 2)), p, reduction="avg")
