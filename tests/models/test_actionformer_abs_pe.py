"""`ActionFormer` with and without the absolute position encoding.

For every actionformer_* bundle, the model is built from its `config.json`
twice, with `use_abs_pe` as stored and switched, and the same weights are
loaded into both (the position table is a non-persistent buffer in the
reference, so the state dict is the same). The encoding must be the only
difference between the two. Parity of the encoding itself with the
authors' code is checked on the bundles that use it (backbone and model
parity tests); the layer against the reference formula in
`tests/layers/test_sinusoid_position_encoding.py`.
"""

import numpy as np
import pytest

from tfaction.errors import ConfigError
from tfaction.models.actionformer.model import ActionFormer
from tfaction.models.actionformer.reference import load_reference_weights
from tfaction.models.actionformer.reference import (
    model_kwargs_from_reference_config)
from tests.models import parity


def _case(root):
    bundle = parity.load_bundle(root)
    config = bundle["config"]["config"]
    model_cfg = dict(config["model"], train_cfg=dict(config["train_cfg"]))
    weights = bundle["weights"]
    stored = ActionFormer.from_reference_config(model_cfg, name="stored")
    load_reference_weights(stored, weights)
    switched = ActionFormer.from_reference_config(
        dict(model_cfg, use_abs_pe=not model_cfg["use_abs_pe"]),
        name="switched")
    assert load_reference_weights(switched, weights) == sorted(weights)
    with_pe, plain = ((stored, switched) if stored.use_abs_pe
                      else (switched, stored))
    io = bundle["io"]
    inputs = {"features": parity.channels_last(io["input"]).astype("float32"),
              "mask": io["mask"][:, 0, :]}
    return model_cfg, plain, with_pe, inputs


@pytest.fixture(scope="module")
def cases(actionformer_bundles):
    return [_case(root) for root in actionformer_bundles]


@pytest.fixture(scope="module")
def models(cases):
    return cases[0]


def test_reference_config_accepts_use_abs_pe(cases):
    for model_cfg, plain, with_pe, _ in cases:
        assert with_pe.use_abs_pe and not plain.use_abs_pe
        assert (with_pe.backbone.position_encoding.max_length
                == model_cfg["max_seq_len"])
        assert plain.backbone.position_encoding is None
        assert with_pe.count_params() == plain.count_params()
    model_cfg = cases[0][0]
    cfg = dict(model_cfg, use_abs_pe=True)
    del cfg["max_seq_len"]
    with pytest.raises(ConfigError, match="max_seq_len"):
        model_kwargs_from_reference_config(cfg)
    with pytest.raises(ValueError, match="max_seq_len"):
        ActionFormer(input_dim=8, num_classes=2, embed_dim=16, head_dim=16,
                     use_abs_pe=True)


def test_position_encoding_is_the_only_difference(cases):
    for _, plain, with_pe, inputs in cases:
        want = plain(inputs, training=False)
        got = with_pe(inputs, training=False)
        assert np.abs(got["cls_logits"] - want["cls_logits"]).max() > 1e-3
        layer = with_pe.backbone.position_encoding
        table = layer._table
        try:
            layer._table = np.zeros_like(table)
            zeroed = with_pe(inputs, training=False)
        finally:
            layer._table = table
        for key in want:
            np.testing.assert_array_equal(zeroed[key], want[key],
                                          err_msg=key)


def test_lengths(models):
    _, _, model, inputs = models
    valid = model.max_seq_len + 1  # longer: inference resamples the table
    t = model.padded_length(valid)
    assert t > model.max_seq_len
    long = {"features": np.zeros((1, t, model.input_dim), "float32"),
            "mask": np.arange(t)[None] < valid}
    out = model(long, training=False)
    assert np.isfinite(out["cls_logits"]).all()
    with pytest.raises(ValueError, match=f"{t} is longer than max_seq_len"):
        model(long, training=True)
    model(inputs, training=True)  # T = max_seq_len trains
