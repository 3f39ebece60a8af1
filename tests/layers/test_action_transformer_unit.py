"""Tests of `tfaction.layers.action_transformer_unit.ActionTransformerUnit`."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers import action_transformer_unit
from tfaction.layers.action_transformer_unit import ActionTransformerUnit
from tfaction.layers.positionwise_dense import PositionwiseDense
from tfaction.testing import run_layer_test
from tfaction.testing.docstring_checks import check_docstring_examples

B, R, DQ = 2, 4, 6
T, H, W, C = 2, 3, 3, 5   # T != R: the mask [B, R] only aligns with query
KEY_DIM, FFN = 8, 8
# query (kernel, bias), key (kernel), value (kernel, bias), 2 LayerNorms
# (gamma, beta), FFN (2 x kernel, bias)
NUM_WEIGHTS = 2 + 1 + 2 + 2 * 2 + 2 * 2
VALID = np.array([[True] * R, [True, True, False, False]])


def _inputs(seed=0, b=B, r=R, dq=DQ, t=T, h=H, w=W, c=C):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(b, r, dq)).astype("float32")
    context = rng.normal(size=(b, t, h, w, c)).astype("float32")
    return query, context


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _w(variable):
    return np.asarray(variable, np.float64)


def numpy_unit(unit, query, context):
    """The Tx unit in float64 numpy from `unit`'s weights (no dropout)."""
    q = query.astype(np.float64) @ _w(unit.query_projection.kernel) + \
        _w(unit.query_projection.bias)
    cells = context.reshape(context.shape[0], -1, context.shape[-1])
    cells = cells.astype(np.float64)
    k = cells @ _w(unit.key_projection.kernel)
    v = cells @ _w(unit.value_projection.kernel) + \
        _w(unit.value_projection.bias)
    logits = np.einsum("brd,bnd->brn", q, k) / np.sqrt(unit.key_dim)
    logits -= logits.max(-1, keepdims=True)
    attn = np.exp(logits)
    attn /= attn.sum(-1, keepdims=True)
    a = np.einsum("brn,bnd->brd", attn, v)
    eps = unit.layer_norm_epsilon
    q1 = _layer_norm(q + a, _w(unit.attention_norm.gamma),
                     _w(unit.attention_norm.beta), eps)
    x = q1 if unit.ffn_input == "attended" else q
    hidden = np.maximum(x @ _w(unit.ffn_hidden.kernel)
                        + _w(unit.ffn_hidden.bias), 0.0)
    ffn = hidden @ _w(unit.ffn_output.kernel) + _w(unit.ffn_output.bias)
    return _layer_norm(q1 + ffn, _w(unit.output_norm.gamma),
                       _w(unit.output_norm.beta), eps)


def randomise_norms(layer, seed=0):
    """Non-trivial LayerNorm gamma / beta (defaults 1 / 0 hide bugs)."""
    rng = np.random.default_rng(seed)
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        if isinstance(sub, keras.layers.LayerNormalization):
            sub.gamma.assign(rng.uniform(0.5, 1.5, sub.gamma.shape))
            sub.beta.assign(rng.normal(0.0, 0.5, sub.beta.shape))


def record_dense_calls(monkeypatch):
    """Patches the unit's dense layers' `call` to record (layer name,
    input shape) per call.

    Returns:
        The list the calls are appended to.
    """
    calls = []
    original = PositionwiseDense.call

    @functools.wraps(original)
    def spy(self, inputs, *args, **kwargs):
        calls.append((self.name, tuple(inputs.shape)))
        return original(self, inputs, *args, **kwargs)

    monkeypatch.setattr(PositionwiseDense, "call", spy)
    return calls


@pytest.fixture
def dense_calls(monkeypatch):
    return record_dense_calls(monkeypatch)


def test_contract_with_query_mask():
    query, context = _inputs()
    run_layer_test(
        ActionTransformerUnit, {"key_dim": KEY_DIM, "ffn_units": FFN},
        query, call_kwargs={"context": context}, mask=VALID,
        mask_argument="query_mask",
        expected_output_shape=(B, R, KEY_DIM),
        expected_num_trainable_weights=NUM_WEIGHTS)


def test_contract_literal_equation():
    query, context = _inputs(1)
    run_layer_test(
        ActionTransformerUnit,
        {"key_dim": 4, "ffn_units": 6, "dropout": 0.1, "ffn_input": "query",
         "layer_norm_epsilon": 1e-6},
        query, call_kwargs={"context": context},
        expected_output_shape=(B, R, 4),
        expected_num_trainable_weights=NUM_WEIGHTS,
        run_saving_check=False, run_mixed_precision_check=False)


@pytest.mark.parametrize("ffn_input", ["attended", "query"])
def test_matches_numpy(ffn_input):
    query, context = _inputs(2)
    unit = ActionTransformerUnit(KEY_DIM, FFN, ffn_input=ffn_input,
                                 layer_norm_epsilon=1e-3)
    unit(query, context)
    randomise_norms(unit)
    out = unit(query, context, training=False).numpy()
    np.testing.assert_allclose(out, numpy_unit(unit, query, context),
                               atol=2e-5, rtol=2e-5)


def test_ffn_input_switch_changes_result():
    """The two FFN inputs are really different computations."""
    query, context = _inputs(3)
    attended = ActionTransformerUnit(KEY_DIM, FFN)
    attended(query, context)
    literal = ActionTransformerUnit(KEY_DIM, FFN, ffn_input="query")
    literal(query, context)
    literal.set_weights(attended.get_weights())
    diff = np.abs(attended(query, context).numpy()
                  - literal(query, context).numpy())
    assert diff.max() > 1e-3


def test_training_applies_dropout():
    query, context = _inputs(4)
    unit = ActionTransformerUnit(KEY_DIM, FFN, dropout=0.5)
    inference = unit(query, context).numpy()
    np.testing.assert_array_equal(unit(query, context).numpy(), inference)
    assert not np.allclose(unit(query, context, training=True).numpy(),
                           inference)


def test_float32_softmax_under_mixed_float16():
    """Logits far beyond float16's range (~1.3e5 > 65504) stay finite.

    Queries, keys and values are exactly representable in float16; only
    their products overflow, so a float16 logit/softmax gives inf / NaN.
    """
    d = 4
    unit = ActionTransformerUnit(d, d, dropout=0.0, dtype="mixed_float16",
                                 layer_norm_epsilon=1e-3)
    rng = np.random.default_rng(5)
    query = np.array([[[250.0] * d, [-250.0, 250.0, -250.0, 250.0]]],
                     "float32")
    context = rng.integers(-250, 251, size=(1, 2, 3, 3, d)).astype("float32")
    unit(query, context)
    eye = np.eye(d, dtype="float32")
    unit.query_projection.set_weights([eye, np.zeros(d, "float32")])
    unit.key_projection.set_weights([eye])
    unit.value_projection.set_weights([eye, np.zeros(d, "float32")])
    randomise_norms(unit)
    logits = np.einsum("rd,nd->rn", query[0], context.reshape(-1, d)) / 2
    assert np.abs(logits).max() > 65504  # the test really overflows float16
    out = unit(query, context)
    assert out.dtype == "float16"
    out = out.numpy().astype(np.float64)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, numpy_unit(unit, query, context),
                               atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("num_proposals", [1, 6])
def test_keys_values_computed_once_per_clip(dense_calls, num_proposals):
    """K and V are one projection of the context, whatever R is.

    A per-proposal loop would call them R times; tiling the context per
    proposal would give them a [B * R, ...] or [B, R, ...] input.
    """
    query, context = _inputs(6, r=num_proposals)
    unit = ActionTransformerUnit(KEY_DIM, FFN, name="unit")
    unit.build(query.shape, context.shape)
    dense_calls.clear()
    unit(query, context)
    for name in ("key", "value"):
        shapes = [s for n, s in dense_calls if n == name]
        assert shapes == [context.shape], (name, shapes)
    assert [s for n, s in dense_calls if n == "query"] == [query.shape]


def test_proposals_are_independent():
    """Changing (or padding) one proposal never changes another's output."""
    query, context = _inputs(7)
    unit = ActionTransformerUnit(KEY_DIM, FFN)
    ref = unit(query, context).numpy()
    changed = query.copy()
    changed[1, 2] = np.random.default_rng(8).normal(30, 50, DQ)
    out = unit(changed, context).numpy()
    np.testing.assert_allclose(np.delete(out[1], 2, axis=0),
                               np.delete(ref[1], 2, axis=0), atol=1e-6)
    np.testing.assert_allclose(out[0], ref[0], atol=1e-6)
    assert np.abs(out[1, 2] - ref[1, 2]).max() > 1e-3
    # Masking a proposal zeroes it and leaves the others unchanged.
    masked = unit(changed, context, query_mask=VALID).numpy()
    np.testing.assert_allclose(masked[VALID], ref[VALID], atol=1e-6)
    assert np.all(masked[~VALID] == 0.0)


def test_clips_are_independent():
    query, context = _inputs(9)
    unit = ActionTransformerUnit(KEY_DIM, FFN)
    ref = unit(query, context).numpy()
    changed = context.copy()
    changed[1] += 3.0
    out = unit(query, changed).numpy()
    np.testing.assert_allclose(out[0], ref[0], atol=1e-6)
    assert np.abs(out[1] - ref[1]).max() > 1e-3


def test_dynamic_shapes():
    """Unknown R, T, H, W: one traced function serves several shapes."""
    unit = ActionTransformerUnit(KEY_DIM, FFN)
    fn = tf.function(
        lambda q, c: unit(q, c),
        input_signature=[tf.TensorSpec((None, None, DQ)),
                         tf.TensorSpec((None, None, None, None, C))])
    for shape in [(1, 3, 2, 4, 5), (2, 5, 1, 3, 2)]:
        b, r, t, h, w = shape
        query, context = _inputs(10, b=b, r=r, t=t, h=h, w=w)
        np.testing.assert_allclose(fn(query, context).numpy(),
                                   unit(query, context).numpy(), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="ffn_input"):
        ActionTransformerUnit(ffn_input="Q")
    with pytest.raises(ValueError, match="dropout"):
        ActionTransformerUnit(dropout=1.0)
    with pytest.raises(ValueError, match="key_dim"):
        ActionTransformerUnit(key_dim=0)
    query, context = _inputs()
    with pytest.raises(ValueError, match="context"):
        ActionTransformerUnit(4, 4)(query, context[:, 0])


def test_docstring_example():
    check_docstring_examples(action_transformer_unit)
