"""Tests of `tfaction.layers.pooling_classifier.PoolingClassifier`.

The numerical check loads a state dict in the authors' names
(`mlp.layers.0`, `mlp.layers.1`, `classifiers.{t}.1`) and compares the
inference output with a NumPy statement of their module.
"""

import math

import numpy as np
import pytest

from tests.layers import adafocus_reference as ref
from tfaction.layers.pooling_classifier import PoolingClassifier
from tfaction.testing import run_layer_test

KWARGS = {"num_classes": 5, "num_segments": 4, "hidden_units": 8,
          "dropout": 0.2}


def features(shape=(2, 4, 7), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def load_torch_weights(layer, w, segments):
    layer.embedding.set_weights([w["mlp.layers.0.weight"].T,
                                 w["mlp.layers.0.bias"]])
    layer.embedding_bn.set_weights([w[f"mlp.layers.1.{k}"] for k in (
        "weight", "bias", "running_mean", "running_var")])
    layer.head_kernel.assign(np.stack(
        [w[f"classifiers.{t}.1.weight"].T for t in range(segments)]))
    layer.head_bias.assign(np.stack(
        [w[f"classifiers.{t}.1.bias"] for t in range(segments)]))


def test_contract():
    run_layer_test(
        PoolingClassifier, KWARGS, features(),
        expected_output_shape=(2, 4, 5), expected_output_dtype="float32",
        mixed_precision_output_dtype="float32",
        # embedding (2), BN gamma / beta, head kernel and bias
        expected_num_trainable_weights=6,
        expected_num_non_trainable_weights=2)


def test_matches_the_reference_module():
    rng = np.random.default_rng(1)
    x = features(seed=2)
    w = ref.pooling_classifier_state(rng, inputs=7, hidden=8, classes=5,
                                     segments=4)
    layer = PoolingClassifier(**KWARGS)
    layer.build(x.shape)
    load_torch_weights(layer, w, 4)
    want = ref.pooling_classifier(x.astype(np.float64), w)
    np.testing.assert_allclose(layer(x, training=False), want, atol=1e-5)
    # A prefix of the video uses the first heads: the same logits.
    np.testing.assert_allclose(layer(x[:, :2], training=False),
                               want[:, :2], atol=1e-5)


def test_cumulative_max_makes_later_steps_see_earlier_frames():
    layer = PoolingClassifier(3, num_segments=3, hidden_units=4, dropout=0.0)
    x = features((1, 3, 5), seed=3)
    base = np.asarray(layer(x, training=False))
    y = x.copy()
    y[:, 2] += 5.0  # changes only the last step
    out = np.asarray(layer(y, training=False))
    np.testing.assert_array_equal(out[:, :2], base[:, :2])
    changed = []
    for scale in (100.0, -100.0):  # one of them raises some embedding unit
        z = x.copy()
        z[:, 0] *= scale  # the first frame reaches every step
        changed.append(not np.allclose(
            np.asarray(layer(z, training=False))[:, 2], base[:, 2]))
    assert any(changed)


def test_initialisation():
    layer = PoolingClassifier(3, num_segments=2, hidden_units=16)
    layer.build((None, 2, 9))
    bound = 1 / math.sqrt(16)
    for v in (layer.head_kernel, layer.head_bias):
        assert np.abs(np.asarray(v)).max() <= bound
        assert np.abs(np.asarray(v)).max() > 0.5 * bound
    assert np.abs(np.asarray(layer.embedding.kernel)).max() <= 1 / 3
    assert layer.embedding_bn.momentum == 0.9
    assert layer.embedding_bn.epsilon == 1e-5


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 heads"):
        PoolingClassifier(3, num_segments=2)(np.zeros((1, 3, 4), "float32"))
    with pytest.raises(ValueError, match="static T and D"):
        PoolingClassifier(3).build((None, None, 4))
    with pytest.raises(ValueError, match="dropout"):
        PoolingClassifier(3, dropout=-0.1)
