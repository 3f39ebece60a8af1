"""Backbone parity with the authors' PyTorch code (anchors/actionformer_*)."""

import json

import numpy as np
import pytest

from tfaction.layers.conv_transformer_backbone import ConvTransformerBackbone
from tfaction.models.actionformer.backbone_weights import (
    load_backbone_state_dict)
from tests.models import parity



def _cases(anchors_dir):
    cases = sorted(p for p in anchors_dir.glob("actionformer*")
                   if (p / "io.npz").is_file() and (p / "weights.npz").is_file()
                   and (p / "config.json").is_file())
    assert cases, f"no actionformer anchor bundle under {anchors_dir}"
    return cases


def _backbone_from_config(config):
    model = config["config"]["model"]
    train = config["config"]["train_cfg"]
    assert model["backbone_type"] == "convTransformer"
    assert not model["use_abs_pe"], "use_abs_pe is not supported yet"
    assert model["scale_factor"] == 2
    assert not isinstance(model["input_dim"], (list, tuple))
    windows = config["derived"]["mha_win_size"]
    return ConvTransformerBackbone(
        embed_dim=model["embd_dim"], num_heads=model["n_head"],
        embed_kernel_size=model["embd_kernel_size"],
        arch=model["backbone_arch"], window_size=windows,
        embed_with_ln=model["embd_with_ln"], dropout=train["dropout"],
        drop_path_rate=train["droppath"])


def test_backbone_matches_reference(anchors_dir):
    for case in _cases(anchors_dir):
        config = json.loads((case / "config.json").read_text())
        io = np.load(case / "io.npz")
        weights = np.load(case / "weights.npz")
        x = parity.channels_last(io["input"]).astype("float32")
        mask = io["mask"][:, 0, :]

        backbone = _backbone_from_config(config)
        backbone.build(x.shape)
        loaded = load_backbone_state_dict(backbone, weights)
        assert len(loaded) == len(
            [k for k in weights.files if k.startswith("backbone.")])
        assert len(loaded) == len(backbone.weights)

        feats, masks = backbone(x, mask=mask, training=False)
        num_levels = 1 + config["config"]["model"]["backbone_arch"][2]
        assert len(feats) == len(masks) == num_levels
        errors = []
        for level in range(num_levels):
            want = parity.channels_last(io[f"backbone_feat_{level}"])
            want_mask = io[f"backbone_mask_{level}"][:, 0, :]
            np.testing.assert_array_equal(masks[level].numpy(), want_mask,
                                          err_msg=f"{case.name} mask {level}")
            errors.append(parity.assert_parity(
                feats[level].numpy(), want, f"{case.name} level {level}"))
        print(f"{case.name}: max relative error per level "
              + ", ".join(f"{e:.2e}" for e in errors))


def test_mapping_rejects_mismatch(anchors_dir):
    case = _cases(anchors_dir)[0]
    config = json.loads((case / "config.json").read_text())
    weights = dict(np.load(case / "weights.npz"))
    backbone = _backbone_from_config(config)
    with pytest.raises(ValueError, match="build"):
        load_backbone_state_dict(backbone, weights)
    backbone.build((None, 256, config["config"]["model"]["input_dim"]))
    before = [w.numpy().copy() for w in backbone.weights]
    broken = dict(weights)
    del broken["backbone.stem.0.ln1.weight"]
    broken["backbone.pos_embd"] = np.zeros((1, 32, 256), "float32")
    with pytest.raises(ValueError, match="missing key.*unexpected keys"):
        load_backbone_state_dict(backbone, broken)
    for w, b in zip(backbone.weights, before):  # nothing assigned
        np.testing.assert_array_equal(w.numpy(), b)
