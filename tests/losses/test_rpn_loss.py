"""tfaction.losses.rpn_loss: TF OD API RPN loss normalisation."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

from tfaction.losses import rpn_loss as module
from tfaction.losses.rpn_loss import rpn_loss


def _np_bce(y, x):
    x = x.astype(np.float64)
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def _np_sl1(t, p):
    d = np.abs(p.astype(np.float64) - t)
    return np.where(d <= 1.0, 0.5 * d * d, d - 0.5).sum(-1)


def _case(seed):
    rng = np.random.default_rng(seed)
    b, n = 3, 40
    objectness = (rng.random((b, n)) < 0.2).astype("float32")
    sampled = (rng.random((b, n)) < 0.5).astype("float32")
    sampled[2] = 0.0                        # an image with nothing sampled
    targets = {"objectness": objectness, "objectness_weights": sampled,
               "box_targets": rng.normal(size=(b, n, 4)).astype("float32"),
               "box_weights": sampled * objectness,
               "match": np.zeros((b, n), "int32")}
    logits = rng.normal(scale=3.0, size=(b, n)).astype("float32")
    deltas = rng.normal(size=(b, n, 4)).astype("float32")
    return logits, deltas, targets


def test_docstrings():
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_matches_numpy_reference():
    logits, deltas, t = _case(0)
    norm = np.maximum(t["objectness_weights"].sum(1), 1.0)
    obj = (_np_bce(t["objectness"], logits) * t["objectness_weights"]).sum(1)
    loc = (_np_sl1(t["box_targets"], deltas) * t["box_weights"]).sum(1)
    per_image = rpn_loss(logits, deltas, t, reduction="none")
    np.testing.assert_allclose(per_image["objectness_loss"], obj / norm,
                               rtol=1e-5)
    np.testing.assert_allclose(per_image["localization_loss"],
                               2.0 * loc / norm, rtol=1e-5)
    assert float(per_image["objectness_loss"][2]) == 0.0
    mean = rpn_loss(logits, deltas, t, localization_weight=1.0,
                    objectness_weight=3.0)
    assert float(mean["objectness_loss"]) == pytest.approx(
        3.0 * np.mean(obj / norm), rel=1e-5)
    assert float(mean["localization_loss"]) == pytest.approx(
        np.mean(loc / norm), rel=1e-5)
    total = rpn_loss(logits, deltas, t, reduction="sum")
    assert float(total["objectness_loss"]) == pytest.approx(
        np.sum(obj / norm), rel=1e-5)


def test_one_logit_equals_two_way_softmax():
    # The API's 2-way softmax on [background, object] logits.
    logits, deltas, t = _case(1)
    two_way = tf.nn.softmax_cross_entropy_with_logits(
        tf.one_hot(tf.cast(t["objectness"], tf.int32), 2),
        tf.stack([tf.zeros_like(logits), logits], -1))
    norm = np.maximum(t["objectness_weights"].sum(1), 1.0)
    ref = (np.asarray(two_way) * t["objectness_weights"]).sum(1) / norm
    got = rpn_loss(logits, deltas, t, reduction="none")["objectness_loss"]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)


def test_mixed_precision_inputs_reduce_in_float32():
    logits, deltas, t = _case(2)
    out = rpn_loss(logits.astype("float16"), deltas.astype("float16"), t)
    assert out["objectness_loss"].dtype == tf.float32
    with pytest.raises(ValueError, match="reduction"):
        rpn_loss(logits, deltas, t, reduction="batch")
