"""Parity of the ActionFormer neck and heads with the authors' code.

Anchors: every actionformer_* bundle (the authors' PyTorch code, see each
bundle's README). The stored pyramid features and masks go through
`IdentityNeck`, `ClassificationHead` and `RegressionHead` with the stored
`state_dict` loaded by `load_head_weights`; the outputs must equal the
stored ones (channels-first there, channels-last here).
"""

import math

import numpy as np
import pytest

from tfaction.layers.classification_head import ClassificationHead
from tfaction.layers.identity_neck import IdentityNeck
from tfaction.layers.regression_head import RegressionHead
from tfaction.models.actionformer.head_weights import load_head_weights
from tests.models import parity



def _fpn_dim(config):
    return config["derived"].get(
        "embd_dim_total", config["config"]["model"]["fpn_dim"])


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


def _load(root):
    bundle = parity.load_bundle(root)
    num_levels, neck, cls_head, reg_head = _layers(bundle["config"])
    io = bundle["io"]
    feats = [parity.channels_last(io[f"fpn_feat_{l}"]) for l in range(num_levels)]
    masks = [io[f"fpn_mask_{l}"][:, 0] for l in range(num_levels)]
    neck(feats, mask=masks)
    cls_head(feats, mask=masks)
    reg_head(feats, mask=masks)
    keys = load_head_weights(bundle["weights"], neck=neck, cls_head=cls_head,
                             reg_head=reg_head)
    return bundle, (num_levels, neck, cls_head, reg_head, keys)


@pytest.fixture(scope="module")
def cases(actionformer_bundles):
    """[(bundle, (num_levels, neck, cls_head, reg_head, loaded keys))]."""
    return [_load(root) for root in actionformer_bundles]


@pytest.fixture(scope="module")
def bundle(cases):
    return cases[0][0]


def test_every_head_key_is_mapped(cases):
    for bundle, (num_levels, *_, keys) in cases:
        weights = bundle["weights"]
        expected = sorted(k for k in weights
                          if k.split(".")[0] in ("neck", "cls_head",
                                                 "reg_head"))
        assert keys == expected, bundle["name"]
        # one Scale per level, one LayerNorm per level in the neck
        assert sum(k.startswith("reg_head.scale.") for k in keys) == (
            num_levels)
        assert sum(k.startswith("neck.fpn_norms.") for k in keys) == (
            2 * num_levels)


def test_neck_parity(cases):
    for bundle, (num_levels, neck, *_) in cases:
        io, name = bundle["io"], bundle["name"]
        feats = [parity.channels_last(io[f"backbone_feat_{l}"])
                 for l in range(num_levels)]
        masks = [io[f"backbone_mask_{l}"][:, 0] for l in range(num_levels)]
        outs = neck(feats, mask=masks)
        for l in range(num_levels):
            parity.assert_parity(
                outs[l], parity.channels_last(io[f"fpn_feat_{l}"]),
                f"{name} fpn_feat_{l}")
            np.testing.assert_array_equal(io[f"fpn_mask_{l}"][:, 0],
                                          masks[l])


def _check_heads(cls_head, reg_head, feats, masks, ref, num_levels, name):
    logits = cls_head(feats, mask=masks)
    offsets = reg_head(feats, mask=masks)
    rels = []
    for l in range(num_levels):
        rels.append(parity.assert_parity(
            logits[l], parity.channels_last(ref[f"cls_logits_{l}"]),
            f"{name} cls_logits_{l}"))
        rels.append(parity.assert_parity(
            offsets[l], parity.channels_last(ref[f"offsets_{l}"]),
            f"{name} offsets_{l}"))
        # exactly zero at padded steps, as the reference
        pad = ~masks[l]
        np.testing.assert_array_equal(np.asarray(logits[l])[pad], 0.0)
        np.testing.assert_array_equal(np.asarray(offsets[l])[pad], 0.0)
    return max(rels)


def test_heads_parity_train_batch(cases):
    for bundle, (num_levels, _, cls_head, reg_head, _) in cases:
        io = bundle["io"]
        feats = [parity.channels_last(io[f"fpn_feat_{l}"])
                 for l in range(num_levels)]
        masks = [io[f"fpn_mask_{l}"][:, 0] for l in range(num_levels)]
        _check_heads(cls_head, reg_head, feats, masks, io, num_levels,
                     bundle["name"])


def _eval_pyramid(bundle, num_levels):
    """The evaluation video's pyramid features and masks.

    Taken from `inference.npz` when the bundle stores them; otherwise the
    evaluation video is a copy of a training video (same features), whose
    `io.npz` row then holds its pyramid (eval mode equals train mode when
    dropout and drop path are off, as in every bundle).
    """
    io, inf = bundle["io"], bundle["inference"]
    if "fpn_feat_0" in inf:
        return ([parity.channels_last(inf[f"fpn_feat_{l}"])
                 for l in range(num_levels)],
                [inf[f"fpn_mask_{l}"][:, 0] for l in range(num_levels)])
    rows = [i for i in range(parity.batch_size(io))
            if io[f"feats_{i}"].shape == inf["feats"].shape
            and np.array_equal(io[f"feats_{i}"], inf["feats"])]
    assert rows, (f"{bundle['name']}: inference.npz stores no pyramid and "
                  f"its video is none of the training videos")
    row = rows[0]
    masks = [inf[f"fpn_mask_{l}"][:, 0] for l in range(num_levels)]
    for l in range(num_levels):
        np.testing.assert_array_equal(masks[l],
                                      io[f"fpn_mask_{l}"][row:row + 1, 0])
    return ([parity.channels_last(io[f"fpn_feat_{l}"])[row:row + 1]
             for l in range(num_levels)], masks)


def test_heads_parity_eval(cases):
    """Eval-mode logits and offsets of the evaluation video."""
    for bundle, (num_levels, _, cls_head, reg_head, _) in cases:
        feats, masks = _eval_pyramid(bundle, num_levels)
        _check_heads(cls_head, reg_head, feats, masks, bundle["inference"],
                     num_levels, bundle["name"])


def test_untrained_head_initialisation(bundle):
    _, neck, cls_head, reg_head = _layers(bundle["config"])
    dim = _fpn_dim(bundle["config"])
    cls_head.build((None, None, dim))
    reg_head.build((None, None, dim))
    prior = bundle["config"]["config"]["train_cfg"]["cls_prior_prob"]
    np.testing.assert_allclose(cls_head.classifier.bias,
                               -math.log((1 - prior) / prior), rtol=1e-6)
    np.testing.assert_array_equal(
        [float(s.scale) for s in reg_head.scales], 1.0)


def test_load_rejects_mismatches(bundle):
    num_levels, neck, cls_head, reg_head = _layers(bundle["config"])
    dim = _fpn_dim(bundle["config"])
    x = [np.zeros((1, 2 ** (num_levels - l), dim), "float32")
         for l in range(num_levels)]
    cls_head(x)
    reg_head(x)
    weights = dict(bundle["weights"])
    del weights[f"reg_head.scale.{num_levels - 1}.scale"]
    with pytest.raises(ValueError, match="missing"):
        load_head_weights(weights, reg_head=reg_head)
    weights = dict(bundle["weights"])
    shape = weights["cls_head.cls_head.conv.weight"].shape
    weights["cls_head.cls_head.conv.weight"] = np.zeros(
        (shape[0] + 1,) + shape[1:], "float32")
    with pytest.raises(ValueError, match="shape"):
        load_head_weights(weights, cls_head=cls_head)
    weights = dict(bundle["weights"])
    weights["cls_head.extra.weight"] = np.zeros((1,), "float32")
    with pytest.raises(ValueError, match="not used"):
        load_head_weights(weights, cls_head=cls_head)
