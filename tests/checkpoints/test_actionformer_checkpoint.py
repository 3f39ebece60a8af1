"""The authors' `epoch_001.pth.tar` loaded into `ActionFormer`.

Anchors: the `actionformer_*` bundles holding `epoch_001.pth.tar` (written
by the authors' `train.py`; its `state_dict_ema` is the bundle's
`weights.npz`). A model built from the bundle's `config.json` and loaded
from the file must reproduce the bundle's network outputs (`io.npz`,
`inference.npz`) at the model parity tests' tolerance; loading is
all-or-nothing.
"""

import numpy as np
import pytest

from tests.models import parity
from tfaction.checkpoints import CheckpointError
from tfaction.checkpoints import load_torch_checkpoint
from tfaction.checkpoints.actionformer import load_actionformer_checkpoint
from tfaction.models.actionformer.model import ActionFormer
from tfaction.models.actionformer.reference import reference_weight_entries


def _model(bundle, **changes):
    cfg = bundle["config"]["config"]
    return ActionFormer.from_reference_config(
        dict(cfg["model"], **changes), train_cfg=cfg["train_cfg"])


@pytest.fixture(scope="module")
def cases(checkpoint_bundles):
    """[(bundle, model loaded from the checkpoint's EMA copy, checkpoint)]."""
    out = []
    for root in checkpoint_bundles:
        bundle = parity.load_bundle(root)
        model = _model(bundle)
        path = root / "epoch_001.pth.tar"
        keys = load_actionformer_checkpoint(model, path)
        assert keys == sorted(bundle["weights"])
        out.append((bundle, model, load_torch_checkpoint(path)))
    return out


def _assert_holds(model, weights):
    for key, variable, convert in reference_weight_entries(model):
        np.testing.assert_array_equal(np.asarray(variable),
                                      convert(weights[key]), err_msg=key)


def _snapshot(model):
    return [np.array(v) for v in model.weights]


def _assert_unchanged(model, before):
    for variable, value in zip(model.weights, before):
        np.testing.assert_array_equal(np.array(variable), value,
                                      err_msg=variable.path)


def _inputs(data):
    return {"features": parity.channels_last(data["input"]).astype("float32"),
            "mask": data["mask"][:, 0, :]}


def test_ema_copy_is_the_bundle_weights(cases):
    for bundle, model, _ in cases:
        _assert_holds(model, bundle["weights"])


def test_network_outputs_match_the_authors(cases):
    for bundle, model, _ in cases:
        io, inf = bundle["io"], bundle["inference"]
        out = model.forward_levels(_inputs(io), training=False)
        out_eval = model.forward_levels(_inputs(inf), training=False)
        for level in range(model.num_levels):
            for got, ref, name in (
                    (out["backbone_features"], io, "backbone_feat"),
                    (out["fpn_features"], io, "fpn_feat"),
                    (out["cls_logits"], io, "cls_logits"),
                    (out["offsets"], io, "offsets"),
                    (out_eval["cls_logits"], inf, "cls_logits"),
                    (out_eval["offsets"], inf, "offsets")):
                parity.assert_parity(
                    got[level], parity.channels_last(ref[f"{name}_{level}"]),
                    f"{bundle['name']} {name}_{level}")


def test_model_copy(cases):
    bundle, _, checkpoint = cases[0]
    model = _model(bundle)
    load_actionformer_checkpoint(model, checkpoint, weights="model")
    raw = {k[len("module."):]: v for k, v in checkpoint["state_dict"].items()}
    _assert_holds(model, raw)
    with pytest.raises(ValueError, match="expected one of"):
        load_actionformer_checkpoint(model, checkpoint, weights="best")


def test_shape_mismatch_with_the_file_changes_nothing(cases):
    bundle, _, _ = cases[0]
    classes = bundle["config"]["config"]["model"]["num_classes"]
    model = _model(bundle, num_classes=classes + 1)
    before = _snapshot(model)
    path = bundle["root"] / "epoch_001.pth.tar"
    with pytest.raises(CheckpointError) as info:
        load_actionformer_checkpoint(model, path)
    message = str(info.value)
    assert "epoch_001.pth.tar" in message and "state_dict_ema" in message
    assert "cls_head.cls_head.conv.weight" in message
    _assert_unchanged(model, before)


def test_bad_state_dicts_change_nothing(cases):
    bundle, _, checkpoint = cases[0]
    model = _model(bundle)
    before = _snapshot(model)
    ema = checkpoint["state_dict_ema"]
    key = "module.reg_head.offset_head.conv.weight"
    broken = {
        "reshaped": dict(ema, **{key: ema[key][:, :, :2]}),
        "missing": {k: v for k, v in ema.items() if k != key},
        "unexpected": dict(ema, **{"module.extra.weight": np.zeros(1)}),
    }
    for what, state in broken.items():
        with pytest.raises(CheckpointError, match="does not match") as info:
            load_actionformer_checkpoint(
                model, dict(checkpoint, state_dict_ema=state))
        name = "extra.weight" if what == "unexpected" else key[7:]
        assert name in str(info.value), what
        _assert_unchanged(model, before)
    without_ema = {k: v for k, v in checkpoint.items()
                   if k != "state_dict_ema"}
    with pytest.raises(CheckpointError, match="no such entry.*state_dict:"):
        load_actionformer_checkpoint(model, without_ema)
    _assert_unchanged(model, before)
