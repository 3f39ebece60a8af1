"""Layers and a model that follow the contract pass `tfaction.testing`."""

import functools

import keras
import numpy as np

from tests.testing import toy_layers as toys
from tfaction.testing import run_layer_test
from tfaction.testing import run_model_test

run = functools.partial(run_layer_test, registered_package=toys.PACKAGE)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 6, 3)).astype("float32")
MASK = toys.lengths_mask([6, 4], 6)


def test_masked_sequence_layer_passes():
    out = run(toys.MaskedStepDense, {"units": 4, "activation": "gelu"}, X,
              mask=MASK, expected_output_mask=MASK,
              expected_output_shape=(2, 6, 4),
              expected_num_trainable_weights=4,
              expected_num_non_trainable_weights=0)
    assert out.shape == (2, 6, 4)
    np.testing.assert_array_equal(out[1, 4:], 0.0)


def test_pooling_layer_with_batchnorm_and_dropout_passes():
    run(toys.MaskedPoolHead, {"num_classes": 5, "dropout": 0.2}, X,
        mask=MASK, expected_output_shape=(2, 5),
        expected_num_trainable_weights=4,
        expected_num_non_trainable_weights=2)


def test_keyword_inputs_pass():
    inputs = {"query": X, "context": RNG.normal(size=(2, 9, 5))
              .astype("float32")}
    run(toys.ContextGate, {"units": 3}, inputs,
        expected_output_shape=(2, 6, 3), expected_num_trainable_weights=2)


def test_layer_that_declares_no_xla_passes():
    out = run(toys.HostRank, {}, X, supports_jit=False,
              expected_output_shape=(2, 6, 3))
    # Each row holds the ranks 0, 1, 2 in some order.
    np.testing.assert_array_equal(np.sort(out, -1),
                                  np.broadcast_to([0.0, 1.0, 2.0], out.shape))


def test_global_policy_is_restored():
    before = keras.config.dtype_policy().name
    run(toys.MaskedStepDense, {"units": 2}, X, run_training_check=False,
        run_saving_check=False)
    assert keras.config.dtype_policy().name == before == "float32"


def test_model_passes():
    out = run_model_test(toys.TinyClassifier,
                         {"feature_dim": 3, "num_classes": 4}, X,
                         registered_package=toys.PACKAGE,
                         expected_output_shape=(2, 4))
    assert out.shape == (2, 4)
