"""Tests of `tfaction.layers.recurrent_classifier.RecurrentClassifier` and
of the PyTorch GRU conversion (`tfaction.layers.torch_gru`).

The numerical check loads an `nn.GRU` + `nn.Linear` state dict in the
authors' names (`gru.weight_ih_l0`, ..., `fc.weight`) and compares with a
NumPy statement of PyTorch's GRU equations (gates r, z, n).
"""

import math

import numpy as np
import pytest

from tests.layers import adafocus_reference as ref
from tfaction.layers.recurrent_classifier import RecurrentClassifier
from tfaction.layers.torch_gru import torch_gru_weights
from tfaction.testing import run_layer_test

KWARGS = {"num_classes": 5, "hidden_units": 6, "dropout": 0.5}
DTYPES = {"logits": "float32", "states": "float32"}


def features(shape=(2, 4, 7), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def load_torch_weights(layer, w):
    layer.gru.set_weights(torch_gru_weights(
        *(w["gru." + k] for k in ("weight_ih_l0", "weight_hh_l0",
                                  "bias_ih_l0", "bias_hh_l0"))))
    layer.classifier.set_weights([w["fc.weight"].T, w["fc.bias"]])


def test_contract():
    run_layer_test(
        RecurrentClassifier, KWARGS, features(),
        expected_output_shape={"logits": (2, 4, 5), "states": (2, 4, 6)},
        expected_output_dtype=DTYPES, mixed_precision_output_dtype=DTYPES,
        expected_num_trainable_weights=5,
        expected_num_non_trainable_weights=0)


def test_matches_pytorch_gru_equations():
    rng = np.random.default_rng(1)
    x = features(seed=2)
    w = ref.recurrent_classifier_state(rng, inputs=7, hidden=6, classes=5)
    layer = RecurrentClassifier(**KWARGS)
    layer.build(x.shape)
    load_torch_weights(layer, w)
    logits, states = ref.recurrent_classifier(x.astype(np.float64), w)
    out = layer(x, training=False)
    np.testing.assert_allclose(out["logits"], logits, atol=1e-5)
    np.testing.assert_allclose(out["states"], states, atol=1e-5)
    # A wrong gate order (PyTorch's blocks loaded as they are) differs.
    wrong = [np.asarray(w["gru.weight_ih_l0"]).T,
             np.asarray(w["gru.weight_hh_l0"]).T,
             np.stack([w["gru.bias_ih_l0"], w["gru.bias_hh_l0"]])]
    layer.gru.set_weights(wrong)
    assert np.abs(np.asarray(layer(x)["logits"]) - logits).max() > 1e-2


def test_step_scores_without_advancing_as_the_reward_baseline():
    rng = np.random.default_rng(3)
    x, other = features(seed=4), features(seed=5)
    w = ref.recurrent_classifier_state(rng, inputs=7, hidden=6, classes=5)
    layer = RecurrentClassifier(**KWARGS)
    layer.build(x.shape)
    load_torch_weights(layer, w)
    whole = layer(x)
    state = layer.get_initial_state(2)
    for t in range(4):
        # Baseline: another frame from the same previous state.
        baseline = layer.step(other[:, t], state)
        h0 = np.asarray(state, np.float64)
        want, _ = ref.recurrent_classifier(
            other[:, t:t + 1].astype(np.float64), w, h0=h0)
        np.testing.assert_allclose(baseline["logits"], want[:, 0], atol=1e-5)
        out = layer.step(x[:, t], state)
        state = out["state"]
        np.testing.assert_allclose(out["logits"],
                                   np.asarray(whole["logits"])[:, t],
                                   atol=1e-5)


def test_dropout_only_in_training_and_init():
    x = features(seed=6)
    layer = RecurrentClassifier(5, hidden_units=6, dropout=0.8)
    a = np.asarray(layer(x, training=False)["logits"])
    np.testing.assert_array_equal(a, layer(x, training=False)["logits"])
    b = layer(x, training=True)
    assert not np.allclose(a, b["logits"])
    np.testing.assert_allclose(b["states"], layer(x)["states"])  # no dropout
    bound = 1 / math.sqrt(6)
    for v in layer.weights:
        assert np.abs(np.asarray(v)).max() <= bound, v.path


def test_torch_gru_weights_rejects_bad_shapes():
    with pytest.raises(ValueError, match="weight_hh"):
        torch_gru_weights(np.zeros((6, 3)), np.zeros((5, 2)), np.zeros(6),
                          np.zeros(6))
    with pytest.raises(ValueError, match="disagree"):
        torch_gru_weights(np.zeros((6, 3)), np.zeros((6, 2)), np.zeros(5),
                          np.zeros(6))


def test_bad_arguments():
    with pytest.raises(ValueError, match="dropout"):
        RecurrentClassifier(3, dropout=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        RecurrentClassifier(0)
    with pytest.raises(ValueError, match=r"\[B, T, D\]"):
        RecurrentClassifier(3)(np.zeros((2, 3), "float32"))
