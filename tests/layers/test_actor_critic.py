"""Tests of `tfaction.layers.actor_critic.ActorCritic` (AdaFocus V1 policy).

The numerical check loads weights in the authors' PyTorch layout and names
into the layer and compares with a NumPy statement of their module
(`tests/layers/adafocus_reference.py`): conv 1x1 -> ReLU -> channels-first
flatten -> Linear -> ReLU -> GRU -> actor softmax / critic.
"""

import math

import numpy as np
import pytest

from tests.layers import adafocus_reference as ref
from tfaction.layers.actor_critic import ActorCritic
from tfaction.layers.actor_critic import grid_locations
from tfaction.layers.torch_gru import torch_gru_weights
from tfaction.testing import run_layer_test

KWARGS = {"grid_size": 3, "hidden_units": 6, "conv_filters": 4}
DTYPES = {"logits": "float32", "values": "float32", "actions": "int32",
          "locations": "float32", "states": "float32"}


def maps(shape=(2, 3, 3, 3, 5), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def load_torch_weights(layer, w):
    """Assigns a state dict of the authors' `ActorCritic` to the layer."""
    layer.state_conv.kernel.assign(
        w["state_encoder.0.weight"].transpose(2, 3, 1, 0))
    layer.state_dense.set_weights([w["state_encoder.3.weight"].T,
                                   w["state_encoder.3.bias"]])
    layer.gru.set_weights(torch_gru_weights(
        *(w["gru." + k] for k in ("weight_ih_l0", "weight_hh_l0",
                                  "bias_ih_l0", "bias_hh_l0"))))
    layer.actor.set_weights([w["actor.0.weight"].T, w["actor.0.bias"]])
    layer.critic.set_weights([w["critic.0.weight"].T, w["critic.0.bias"]])


def test_contract():
    run_layer_test(
        ActorCritic, KWARGS, maps(),
        expected_output_shape={"logits": (2, 3, 9), "values": (2, 3),
                               "actions": (2, 3), "locations": (2, 3, 2),
                               "states": (2, 3, 6)},
        expected_output_dtype=DTYPES, mixed_precision_output_dtype=DTYPES,
        # conv kernel, dense (2), GRU (3), actor (2), critic (2)
        expected_num_trainable_weights=10,
        expected_num_non_trainable_weights=0)


def test_matches_the_reference_module():
    rng = np.random.default_rng(1)
    x = maps((2, 4, 3, 2, 5), seed=2)
    w = ref.actor_critic_state(rng, channels=5, height=3, width=2, filters=4,
                               hidden=6, actions=9)
    layer = ActorCritic(**KWARGS)
    layer.build(x.shape)
    load_torch_weights(layer, w)
    out = layer(x)
    probs, values = ref.actor_critic(x.astype(np.float64), w)
    logits = np.asarray(out["logits"])
    got = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(got / got.sum(-1, keepdims=True), probs,
                               atol=1e-5)
    np.testing.assert_allclose(out["values"], values, atol=1e-5)
    np.testing.assert_array_equal(out["actions"], probs.argmax(-1))
    np.testing.assert_array_equal(
        out["locations"], grid_locations(3)[probs.argmax(-1)])


def test_step_equals_sequence_and_continues_a_state():
    x = maps((2, 4, 3, 3, 5), seed=3)
    layer = ActorCritic(**KWARGS)
    whole = layer(x)
    state = layer.get_initial_state(2)
    for t in range(4):
        out = layer.step(x[:, t], state)
        state = out["state"]
        for key in ("logits", "values", "locations", "actions"):
            np.testing.assert_allclose(out[key], np.asarray(whole[key])[:, t],
                                       atol=1e-5, err_msg=key)
        np.testing.assert_allclose(state, np.asarray(whole["states"])[:, t],
                                   atol=1e-5)
    # A sequence call from a state continues the first call.
    tail = layer(x[:, 2:], initial_state=np.asarray(whole["states"])[:, 1])
    np.testing.assert_allclose(tail["logits"],
                               np.asarray(whole["logits"])[:, 2:], atol=1e-5)


def test_grid_and_initialisation():
    grid = grid_locations(7)
    assert grid.shape == (49, 2) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[8], np.float32([1 / 6, 1 / 6]))
    np.testing.assert_array_equal(grid[48], [1.0, 1.0])
    # The authors' action 13 is row 1, column 6 (row-major).
    np.testing.assert_array_equal(grid[13], np.float32([1 / 6, 1.0]))
    layer = ActorCritic(grid_size=7, hidden_units=16, conv_filters=4)
    layer.build((None, None, 2, 2, 8))
    assert layer.num_actions == 49
    bounds = {"state_conv": 1 / math.sqrt(8),
              "state_dense": 1 / math.sqrt(4 * 2 * 2),
              "gru": 1 / math.sqrt(16), "actor": 1 / math.sqrt(16)}
    for name, bound in bounds.items():
        for v in getattr(layer, name).weights:
            values = np.asarray(v)
            assert np.abs(values).max() <= bound, v.path
            assert np.abs(values).max() > 0.5 * bound, v.path


def test_bad_inputs():
    with pytest.raises(ValueError, match="grid_size"):
        ActorCritic(grid_size=1)
    with pytest.raises(ValueError, match="hidden_units"):
        ActorCritic(hidden_units=0)
    with pytest.raises(ValueError, match="static h, w, C"):
        ActorCritic()(np.zeros((2, 3, 5), "float32"))
