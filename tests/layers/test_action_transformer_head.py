"""Tests of `tfaction.layers.action_transformer_head.ActionTransformerHead`."""

import numpy as np
import pytest

from tfaction.layers import action_transformer_head
from tfaction.layers.action_transformer_head import ActionTransformerHead
from tfaction.testing import run_layer_test
from tfaction.testing.docstring_checks import check_docstring_examples
from tests.layers.test_action_transformer_unit import numpy_unit
from tests.layers.test_action_transformer_unit import randomise_norms
from tests.layers.test_action_transformer_unit import record_dense_calls

B, R, DQ = 2, 4, 6
T, H, W, C = 2, 3, 3, 5
KEY_DIM = 4
WEIGHTS_PER_UNIT = 13
VALID = np.array([[True] * R, [True, True, True, False]])


def _inputs(seed=0, r=R):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(B, r, DQ)).astype("float32")
    context = rng.normal(size=(B, T, H, W, C)).astype("float32")
    return query, context


def numpy_head(head, query, context):
    """Layers of concatenated heads, from the units' numpy reference."""
    x = query.astype(np.float64)
    for layer in range(head.num_layers):
        units = head.transformer_units[layer * head.num_heads:
                                       (layer + 1) * head.num_heads]
        x = np.concatenate([numpy_unit(u, x, context) for u in units], -1)
    return x


def test_contract_with_query_mask():
    query, context = _inputs()
    run_layer_test(
        ActionTransformerHead,
        {"num_heads": 2, "num_layers": 2, "key_dim": KEY_DIM,
         "ffn_units": 6},
        query, call_kwargs={"context": context}, mask=VALID,
        mask_argument="query_mask",
        expected_output_shape=(B, R, 2 * KEY_DIM),
        expected_num_trainable_weights=2 * 2 * WEIGHTS_PER_UNIT)


@pytest.mark.parametrize("ffn_input", ["attended", "query"])
def test_matches_numpy(ffn_input):
    """The paper's 2 heads x 3 layers: concatenation feeds the next layer."""
    query, context = _inputs(1)
    head = ActionTransformerHead(key_dim=KEY_DIM, ffn_units=5,
                                 ffn_input=ffn_input,
                                 layer_norm_epsilon=1e-3)
    head(query, context)
    randomise_norms(head)
    out = head(query, context).numpy()
    assert out.shape == (B, R, 2 * KEY_DIM)
    np.testing.assert_allclose(out, numpy_head(head, query, context),
                               atol=5e-5, rtol=5e-5)


def test_structure_and_own_key_value_per_head():
    query, context = _inputs()
    head = ActionTransformerHead(num_heads=3, num_layers=2, key_dim=KEY_DIM,
                                 ffn_units=5)
    head(query, context)
    units = head.transformer_units
    assert len(units) == 6
    assert len(head.trainable_weights) == 6 * WEIGHTS_PER_UNIT
    # layer 0 projects the 6-d query, layer 1 the 3 * 4-d concatenation
    assert [u.query_projection.kernel.shape[0] for u in units] == \
        [DQ] * 3 + [3 * KEY_DIM] * 3
    keys = [id(u.key_projection.kernel) for u in units]
    values = [id(u.value_projection.kernel) for u in units]
    assert len(set(keys)) == 6 and len(set(values)) == 6
    kernels = [np.asarray(u.key_projection.kernel) for u in units]
    assert not np.allclose(kernels[0], kernels[1])


def test_single_head_single_layer_is_a_unit():
    query, context = _inputs(2)
    head = ActionTransformerHead(num_heads=1, num_layers=1,
                                 key_dim=KEY_DIM, ffn_units=5)
    out = head(query, context).numpy()
    unit = head.transformer_units[0]
    np.testing.assert_allclose(out, unit(query, context).numpy())


def test_keys_values_computed_once_per_unit(monkeypatch):
    dense_calls = record_dense_calls(monkeypatch)
    query, context = _inputs(3, r=7)
    head = ActionTransformerHead(num_heads=2, num_layers=3,
                                 key_dim=KEY_DIM, ffn_units=5)
    head.build(query.shape, context.shape)
    dense_calls.clear()
    head(query, context)
    for name in ("key", "value"):
        shapes = [s for n, s in dense_calls if n == name]
        assert shapes == [context.shape] * 6, (name, shapes)


def test_proposals_are_independent():
    query, context = _inputs(4)
    head = ActionTransformerHead(key_dim=KEY_DIM, ffn_units=5)
    ref = head(query, context).numpy()
    changed = query.copy()
    changed[0, 1] = np.random.default_rng(5).normal(30, 50, DQ)
    out = head(changed, context).numpy()
    others = np.ones((B, R), bool)
    others[0, 1] = False
    np.testing.assert_allclose(out[others], ref[others], atol=1e-6)
    assert np.abs(out[0, 1] - ref[0, 1]).max() > 1e-3
    masked = head(changed, context, query_mask=VALID).numpy()
    np.testing.assert_allclose(masked[VALID & others], ref[VALID & others],
                               atol=1e-6)
    assert np.all(masked[~VALID] == 0.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        ActionTransformerHead(num_heads=0)
    with pytest.raises(ValueError, match="ffn_input"):
        ActionTransformerHead(ffn_input="x")


def test_docstring_example():
    check_docstring_examples(action_transformer_head)
