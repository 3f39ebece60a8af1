"""Tests of `tfaction.layers.classification_head.ClassificationHead`."""

import math

import numpy as np
import pytest

from tfaction.layers.classification_head import ClassificationHead
from tfaction.testing import run_layer_test
from tests.layers import padding

KWARGS = {"num_classes": 3, "head_dim": 8, "kernel_size": 3,
          "num_layers": 3, "with_ln": True, "prior_prob": 0.01,
          "empty_classes": [2], "epsilon": 1e-5}


def test_classification_head_contract():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 10, 6)).astype("float32")
    lengths = np.array([10, 6])
    # As in the reference, the k=3 convs read padded inputs at the last
    # num_layers * (k // 2) = 3 valid steps; every other valid step must
    # ignore padding.
    reach = np.where(lengths == 10, 10, lengths - 3)
    out = run_layer_test(
        ClassificationHead, KWARGS, x, mask=padding.length_mask(lengths, 10),
        valid_output_mask=padding.length_mask(reach, 10),
        expected_output_shape=(2, 10, 3),
        # 2 kernels (no bias: LN follows), 2 x LN (gamma, beta),
        # classifier kernel + bias
        expected_num_trainable_weights=2 + 4 + 2,
        expected_num_non_trainable_weights=0)
    np.testing.assert_array_equal(out[1, 6:], 0.0)  # padded logits are 0


def test_classification_head_init():
    head = ClassificationHead(**KWARGS)
    head.build((None, None, 6))
    bias = np.asarray(head.classifier.bias)
    np.testing.assert_allclose(bias[:2], -math.log(99.0), rtol=1e-6)
    np.testing.assert_allclose(bias[:2], -4.59512, atol=1e-5)
    np.testing.assert_allclose(bias[2], -math.log((1 - 1e-6) / 1e-6),
                               rtol=1e-6)  # empty class: about -13.8
    for conv in head.convs:
        assert conv.bias is None  # LayerNorm follows
        bound = 1.0 / math.sqrt(conv.kernel.shape[0] * conv.kernel.shape[1])
        assert np.abs(np.asarray(conv.kernel)).max() <= bound
    assert [n.epsilon for n in head.norms] == [1e-5, 1e-5]
    no_prior = ClassificationHead(3, 8, prior_prob=0.0)
    no_prior.build((None, None, 6))
    np.testing.assert_array_equal(no_prior.classifier.bias, 0.0)
    no_ln = ClassificationHead(3, 8, with_ln=False)
    no_ln.build((None, None, 6))
    assert all(c.bias is not None for c in no_ln.convs) and not no_ln.norms


def test_classification_head_shared_across_levels():
    rng = np.random.default_rng(1)
    feats = [rng.normal(size=(2, t, 6)).astype("float32") for t in (8, 4)]
    masks = [padding.length_mask([8, 5], 8), padding.length_mask([4, 3], 4)]
    head = ClassificationHead(**KWARGS)
    outs = head(feats, mask=masks)
    assert [tuple(o.shape) for o in outs] == [(2, 8, 3), (2, 4, 3)]
    assert head.compute_output_shape([(2, 8, 6), (2, 4, 6)]) == [
        (2, 8, 3), (2, 4, 3)]
    for x, m, o in zip(feats, masks, outs):  # same weights for every level
        np.testing.assert_allclose(head(x, mask=m), o, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(o)[~m], 0.0)


def test_classification_head_padding_reaches_only_the_boundary():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 12, 6)).astype("float32")
    mask = padding.length_mask([7], 12)
    head = ClassificationHead(**KWARGS)
    ref = np.asarray(head(x, mask=mask))
    y = x.copy()
    y[:, 7:] = 100.0
    out = np.asarray(head(y, mask=mask))
    np.testing.assert_allclose(out[:, :4], ref[:, :4], atol=1e-6)
    assert np.abs(out[:, 6] - ref[:, 6]).max() > 1e-3  # reference leak


def test_classification_head_rejects_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        ClassificationHead(3, 8, kernel_size=4)
    with pytest.raises(ValueError, match="empty_classes"):
        ClassificationHead(3, 8, empty_classes=[3])
