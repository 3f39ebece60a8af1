"""Backbone parity with the authors' PyTorch code (every actionformer_*
bundle): the backbone built from the bundle's `config.json` alone, loaded
with its `weights.npz`, gives the stored per-level features and masks, and
every intermediate the bundle stores (per-feature projections, embedding,
position encoding, stem and branch blocks)."""

import json

import numpy as np
import pytest

from tfaction.layers.conv_transformer_backbone import ConvTransformerBackbone
from tfaction.models.actionformer.backbone_weights import (
    load_backbone_state_dict)
from tfaction.models.actionformer.reference import (
    model_kwargs_from_reference_config)
from tests.models import parity

_BACKBONE_KEYS = ("embed_dim", "num_heads", "embed_kernel_size", "arch",
                  "window_size", "embed_with_ln", "dropout",
                  "drop_path_rate", "use_abs_pe", "max_seq_len",
                  "input_splits", "projection_dims")


def _backbone_from_config(config):
    cfg = config["config"]
    kwargs = model_kwargs_from_reference_config(cfg["model"],
                                                cfg["train_cfg"])
    return ConvTransformerBackbone(**{k: kwargs[k] for k in _BACKBONE_KEYS})


def _input_dim(config):
    dim = config["config"]["model"]["input_dim"]
    return sum(dim) if isinstance(dim, list) else dim


def _stored_intermediates(backbone, x, mask):
    """The backbone's sub-steps in the reference's order, by bundle key."""
    out = {}
    m = mask
    h = x * mask[:, :, None]
    if backbone.projections:
        splits = np.cumsum(backbone.input_splits)[:-1]
        parts = np.split(h, splits, axis=-1)
        projected = []
        for i, (proj, part) in enumerate(zip(backbone.projections, parts)):
            projected.append(proj(part, m)[0])
            out[f"proj_{i}_out"] = projected[-1]
        h = np.concatenate(projected, axis=-1)
    for i, conv in enumerate(backbone.embed_convs):
        h, m = conv(h, m)
        if backbone.embed_with_ln:
            h = backbone.embed_norms[i](h)
        h = np.maximum(h, 0.0)
    out["embd_out"], out["embd_out_mask"] = h, m
    if backbone.position_encoding is not None:
        h = backbone.position_encoding(h, mask=m, training=False)
        out["pe_out"] = h
    for i, block in enumerate(backbone.stem):
        h, m = block(h, m, training=False)
        out[f"stem_{i}_out"], out[f"stem_{i}_mask"] = h, m
    for i, block in enumerate(backbone.branch):
        h, m = block(h, m, training=False)
        out[f"branch_{i}_out"], out[f"branch_{i}_mask"] = h, m
    return out


def test_backbone_matches_reference(actionformer_bundles):
    for case in actionformer_bundles:
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

        steps = _stored_intermediates(backbone, x, mask)
        stored = [k for k in steps if k in io.files]
        assert "embd_out" in stored and "stem_0_out" in stored, case.name
        for key in stored:
            if key.endswith("_mask"):
                np.testing.assert_array_equal(
                    steps[key], io[key][:, 0], err_msg=f"{case.name} {key}")
            else:
                parity.assert_parity(steps[key],
                                     parity.channels_last(io[key]),
                                     f"{case.name} {key}")


def test_mapping_rejects_mismatch(actionformer_bundles):
    case = actionformer_bundles[0]
    config = json.loads((case / "config.json").read_text())
    weights = dict(np.load(case / "weights.npz"))
    backbone = _backbone_from_config(config)
    with pytest.raises(ValueError, match="build"):
        load_backbone_state_dict(backbone, weights)
    backbone.build((None, config["config"]["model"]["max_seq_len"],
                    _input_dim(config)))
    before = [w.numpy().copy() for w in backbone.weights]
    broken = dict(weights)
    del broken["backbone.stem.0.ln1.weight"]
    broken["backbone.pos_embd"] = np.zeros((1, 4, 8), "float32")
    with pytest.raises(ValueError, match="missing key.*unexpected keys"):
        load_backbone_state_dict(backbone, broken)
    for w, b in zip(backbone.weights, before):  # nothing assigned
        np.testing.assert_array_equal(w.numpy(), b)


def test_position_table_is_the_reference_buffer(actionformer_bundles):
    """The table the reference adds (`pos_embd`, stored by the bundles that
    use it) to the last bit, at the training length (no resampling)."""
    checked = 0
    for case in actionformer_bundles:
        config = json.loads((case / "config.json").read_text())
        with np.load(case / "io.npz") as io:
            if "pos_embd" not in io.files:
                continue
            want = io["pos_embd"][0].T                     # [T, C]
        backbone = _backbone_from_config(config)
        backbone.build((None, want.shape[0], _input_dim(config)))
        table = backbone.position_encoding._table[:want.shape[0]]
        np.testing.assert_array_equal(table, want, err_msg=case.name)
        checked += 1
    assert checked, "no bundle stores its position table"
