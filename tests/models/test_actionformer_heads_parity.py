"""Parity of the ActionFormer neck and heads with the authors' code.

Anchor: `anchors/actionformer_small` (official PyTorch code at commit
61ea7eb, see its README). The stored pyramid features and masks go through
`IdentityNeck`, `ClassificationHead` and `RegressionHead` with the stored
`state_dict` loaded by `load_head_weights`; the outputs must equal the
stored ones (channels-first there, channels-last here).
"""

import json
import math

import numpy as np
import pytest

from tfaction.layers.classification_head import ClassificationHead
from tfaction.layers.identity_neck import IdentityNeck
from tfaction.layers.regression_head import RegressionHead
from tfaction.models.actionformer.head_weights import load_head_weights
from tests.models import parity



@pytest.fixture(scope="module")
def bundle(anchors_dir):
    root = anchors_dir / "actionformer_small"
    with open(root / "config.json") as f:
        config = json.load(f)
    return {"config": config,
            "weights": dict(np.load(root / "weights.npz")),
            "io": dict(np.load(root / "io.npz")),
            "inference": dict(np.load(root / "inference.npz"))}


def _layers(config):
    model, train = config["config"]["model"], config["config"]["train_cfg"]
    num_levels = len(config["derived"]["fpn_strides"])
    assert model["fpn_type"] == "identity"
    neck = IdentityNeck(num_levels, with_ln=model["fpn_with_ln"])
    head_kwargs = dict(head_dim=model["head_dim"],
                       kernel_size=model["head_kernel_size"],
                       num_layers=model["head_num_layers"],
                       with_ln=model["head_with_ln"])
    cls_head = ClassificationHead(
        model["num_classes"], prior_prob=train["cls_prior_prob"],
        empty_classes=train["head_empty_cls"], **head_kwargs)
    reg_head = RegressionHead(num_levels, **head_kwargs)
    return num_levels, neck, cls_head, reg_head


@pytest.fixture(scope="module")
def loaded(bundle):
    num_levels, neck, cls_head, reg_head = _layers(bundle["config"])
    io = bundle["io"]
    feats = [parity.channels_last(io[f"fpn_feat_{l}"]) for l in range(num_levels)]
    masks = [io[f"fpn_mask_{l}"][:, 0] for l in range(num_levels)]
    neck(feats, mask=masks)
    cls_head(feats, mask=masks)
    reg_head(feats, mask=masks)
    keys = load_head_weights(bundle["weights"], neck=neck, cls_head=cls_head,
                             reg_head=reg_head)
    return num_levels, neck, cls_head, reg_head, keys


def test_every_head_key_is_mapped(bundle, loaded):
    *_, keys = loaded
    expected = sorted(k for k in bundle["weights"]
                      if k.split(".")[0] in ("neck", "cls_head", "reg_head"))
    assert keys == expected
    assert len(keys) == 12 + 8 + 14


def test_neck_parity(bundle, loaded):
    num_levels, neck, *_ = loaded
    io = bundle["io"]
    feats = [parity.channels_last(io[f"backbone_feat_{l}"]) for l in range(num_levels)]
    masks = [io[f"backbone_mask_{l}"][:, 0] for l in range(num_levels)]
    outs = neck(feats, mask=masks)
    for l in range(num_levels):
        parity.assert_parity(outs[l], parity.channels_last(io[f"fpn_feat_{l}"]), f"fpn_feat_{l}")
        np.testing.assert_array_equal(io[f"fpn_mask_{l}"][:, 0], masks[l])


def _check_heads(cls_head, reg_head, feats, masks, ref, num_levels):
    logits = cls_head(feats, mask=masks)
    offsets = reg_head(feats, mask=masks)
    rels = []
    for l in range(num_levels):
        rels.append(parity.assert_parity(logits[l], parity.channels_last(ref[f"cls_logits_{l}"]),
                                   f"cls_logits_{l}"))
        rels.append(parity.assert_parity(offsets[l], parity.channels_last(ref[f"offsets_{l}"]),
                                   f"offsets_{l}"))
        # exactly zero at padded steps, as the reference
        pad = ~masks[l]
        np.testing.assert_array_equal(np.asarray(logits[l])[pad], 0.0)
        np.testing.assert_array_equal(np.asarray(offsets[l])[pad], 0.0)
    return max(rels)


def test_heads_parity_train_batch(bundle, loaded):
    num_levels, _, cls_head, reg_head, _ = loaded
    io = bundle["io"]
    feats = [parity.channels_last(io[f"fpn_feat_{l}"]) for l in range(num_levels)]
    masks = [io[f"fpn_mask_{l}"][:, 0] for l in range(num_levels)]
    assert masks[0][1].sum() == 181  # video 1 is padded: boundary steps
    _check_heads(cls_head, reg_head, feats, masks, io, num_levels)


def test_heads_parity_eval(bundle, loaded):
    """Eval-mode outputs of `video_b_eval` (same features as io video 1).

    `inference.npz` stores no pyramid features; the stored eval-mode
    network equals train mode to 2.4e-6 here (no dropout / drop-path), so
    io's row 1 features with the inference masks must give the stored
    eval logits and offsets.
    """
    num_levels, _, cls_head, reg_head, _ = loaded
    io, inf = bundle["io"], bundle["inference"]
    feats = [parity.channels_last(io[f"fpn_feat_{l}"])[1:2] for l in range(num_levels)]
    masks = [inf[f"fpn_mask_{l}"][:, 0] for l in range(num_levels)]
    for l in range(num_levels):
        np.testing.assert_array_equal(masks[l], io[f"fpn_mask_{l}"][1:2, 0])
    _check_heads(cls_head, reg_head, feats, masks, inf, num_levels)


def test_untrained_head_initialisation(bundle):
    _, neck, cls_head, reg_head = _layers(bundle["config"])
    cls_head.build((None, None, 32))
    reg_head.build((None, None, 32))
    prior = bundle["config"]["config"]["train_cfg"]["cls_prior_prob"]
    np.testing.assert_allclose(cls_head.classifier.bias,
                               -math.log((1 - prior) / prior), rtol=1e-6)
    np.testing.assert_array_equal(
        [float(s.scale) for s in reg_head.scales], 1.0)


def test_load_rejects_mismatches(bundle):
    num_levels, neck, cls_head, reg_head = _layers(bundle["config"])
    x = [np.zeros((1, 256 // 2**l, 32), "float32") for l in range(num_levels)]
    cls_head(x)
    reg_head(x)
    weights = dict(bundle["weights"])
    del weights["reg_head.scale.5.scale"]
    with pytest.raises(ValueError, match="missing"):
        load_head_weights(weights, reg_head=reg_head)
    weights = dict(bundle["weights"])
    weights["cls_head.cls_head.conv.weight"] = np.zeros((4, 32, 3),
                                                         "float32")
    with pytest.raises(ValueError, match="shape"):
        load_head_weights(weights, cls_head=cls_head)
    weights = dict(bundle["weights"])
    weights["cls_head.extra.weight"] = np.zeros((1,), "float32")
    with pytest.raises(ValueError, match="not used"):
        load_head_weights(weights, cls_head=cls_head)
