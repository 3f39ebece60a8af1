"""Tests of `tfaction.layers.identity_neck.IdentityNeck`."""

import numpy as np
import pytest

from tfaction.layers.identity_neck import IdentityNeck
from tfaction.testing import check_masking
from tfaction.testing import run_layer_test
from tfaction.testing.call_inputs import CallInputs


def _levels(rng, batch=2, steps=(8, 4), channels=6):
    return [rng.normal(size=(batch, t, channels)).astype("float32")
            for t in steps]


def test_identity_neck_contract():
    rng = np.random.default_rng(0)
    feats = _levels(rng)
    run_layer_test(IdentityNeck, {"num_levels": 2}, feats,
                   expected_output_shape=[(2, 8, 6), (2, 4, 6)],
                   expected_num_trainable_weights=4,
                   expected_num_non_trainable_weights=0)


def test_identity_neck_is_per_level_layer_norm():
    rng = np.random.default_rng(1)
    feats = _levels(rng)
    neck = IdentityNeck(num_levels=2)
    masks = [np.ones((2, 8), bool), np.array([[1, 1, 1, 1], [1, 1, 0, 0]],
                                             bool)]
    neck(feats, mask=masks)
    neck.norms[1].gamma.assign(np.full(6, 2.0, "float32"))
    neck.norms[1].beta.assign(np.full(6, 0.5, "float32"))
    outs = neck(feats, mask=masks)
    for level, (x, y) in enumerate(zip(feats, outs)):
        mean = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True)  # biased, as PyTorch
        ref = (x - mean) / np.sqrt(var + 1e-5)
        if level == 1:
            ref = 2.0 * ref + 0.5
        np.testing.assert_allclose(y, ref, atol=1e-5, rtol=1e-5)
    assert neck.norms[0].epsilon == 1e-5
    # the mask passes through unchanged
    assert neck.compute_mask(feats, masks) is masks


def test_identity_neck_padding_does_not_leak():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 8, 6)).astype("float32")
    mask = np.arange(8)[None] < np.array([[8], [5]])
    check_masking(IdentityNeck, {"num_levels": 1},
                  CallInputs.from_test_args([x], mask=mask), mask)


def test_identity_neck_without_ln_is_identity():
    x = [np.ones((1, 4, 3), "float32")]
    neck = IdentityNeck(num_levels=1, with_ln=False)
    np.testing.assert_array_equal(neck(x)[0], x[0])
    assert not neck.weights


def test_identity_neck_rejects_wrong_level_count():
    with pytest.raises(ValueError, match="2 levels"):
        IdentityNeck(num_levels=2)([np.ones((1, 4, 3), "float32")])
