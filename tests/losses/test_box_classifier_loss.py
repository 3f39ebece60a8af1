"""tfaction.losses.box_classifier_loss: second-stage multi-label loss."""

import doctest

import numpy as np
import pytest

from tfaction.losses import box_classifier_loss as module
from tfaction.losses.box_classifier_loss import box_classifier_loss
from tfaction.ops import detection_targets


def _np_bce(y, x):
    x = x.astype(np.float64)
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def test_docstrings():
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_matches_numpy_reference_on_assigned_targets():
    rng = np.random.default_rng(0)
    b, r, g, c = 2, 12, 3, 5
    lo = rng.uniform(0, 0.5, (b, r, 2))
    proposals = np.concatenate([lo, lo + rng.uniform(0.1, 0.5, (b, r, 2))],
                               -1).astype("float32")
    gt = proposals[:, :g] + rng.uniform(-0.02, 0.02, (b, g, 4)).astype(
        "float32")
    gt_mask = np.array([[True, True, False], [True, False, False]])
    classes = (rng.random((b, g, c)) < 0.4).astype("float32")
    mask = np.ones((b, r), bool)
    mask[1, 8:] = False                              # padded proposals
    t = detection_targets.box_classifier_targets(proposals, mask, gt,
                                                 gt_mask, classes)
    t = {k: np.asarray(v) for k, v in t.items()}
    logits = rng.normal(size=(b, r, c + 1)).astype("float32")
    deltas = rng.normal(size=(b, r, 4)).astype("float32")
    out = box_classifier_loss(logits, deltas, t, reduction="none")
    valid = mask.astype(np.float64)
    norm = valid.sum(1)
    cls = (_np_bce(t["class_targets"], logits).sum(-1) * valid).sum(1)
    d = np.abs(deltas.astype(np.float64) - t["box_targets"])
    sl1 = np.where(d <= 1, 0.5 * d * d, d - 0.5).sum(-1)
    loc = (sl1 * t["box_weights"]).sum(1)
    np.testing.assert_allclose(out["classification_loss"], cls / norm,
                               rtol=1e-5)
    np.testing.assert_allclose(out["localization_loss"], 2 * loc / norm,
                               rtol=1e-5)
    assert t["box_weights"][1, 8:].sum() == 0 and t["box_weights"].sum() > 0
    mean = box_classifier_loss(logits, deltas, t)
    assert float(mean["classification_loss"]) == pytest.approx(
        np.mean(cls / norm), rel=1e-5)


def test_padding_is_ignored_and_empty_image_is_zero():
    t = {"class_targets": np.zeros((1, 3, 2), "float32"),
         "class_weights": np.zeros((1, 3), "float32"),
         "box_targets": np.zeros((1, 3, 4), "float32"),
         "box_weights": np.ones((1, 3), "float32")}   # ignored: not valid
    out = box_classifier_loss(np.full((1, 3, 2), 5.0, "float32"),
                              np.ones((1, 3, 4), "float32"), t)
    assert float(out["classification_loss"]) == 0.0
    assert float(out["localization_loss"]) == 0.0
