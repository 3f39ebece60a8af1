"""Tests of `tfaction.layers.positionwise_dense.PositionwiseDense`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers import positionwise_dense
from tfaction.layers.positionwise_dense import PositionwiseDense
from tfaction.testing import run_layer_test
from tfaction.testing.docstring_checks import check_docstring_examples


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 3, 2, 2, 4)])
def test_contract(shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    run_layer_test(PositionwiseDense, {"units": 6, "activation": "relu"}, x,
                   expected_output_shape=shape[:-1] + (6,),
                   expected_num_trainable_weights=2)


@pytest.mark.parametrize("shape,use_bias", [((4, 7, 5), True),
                                            ((2, 3, 4, 5), False),
                                            ((6, 5), True)])
def test_same_outputs_and_gradients_as_dense(shape, use_bias):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    w = tf.constant(rng.normal(size=shape[:-1] + (3,)).astype("float32"))
    ours = PositionwiseDense(3, use_bias=use_bias, activation="gelu")
    dense = keras.layers.Dense(3, use_bias=use_bias, activation="gelu")
    ours.build(shape)
    dense.build(shape)
    dense.set_weights([rng.normal(size=v.shape).astype("float32")
                       for v in dense.weights])
    ours.set_weights(dense.get_weights())
    results = []
    for layer in (ours, dense):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * w)
        results.append([layer(x)] + tape.gradient(
            loss, [x] + layer.trainable_weights))
    for a, b in zip(*results):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5,
                                   atol=1e-5)


def test_kernel_gradient_is_one_two_dimensional_product():
    """The traced gradient has no batched product and no reduction over
    per-example kernel gradients (what Dense's broadcast product has)."""
    x = tf.zeros((4, 7, 5))

    def op_types(layer):
        layer.build(x.shape)

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(x))
            return tape.gradient(loss, layer.kernel)

        graph = step.get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    assert "BatchMatMulV2" in op_types(keras.layers.Dense(3))
    ours = op_types(PositionwiseDense(3))
    assert "BatchMatMulV2" not in ours and "MatMul" in ours


def test_docstring_examples():
    check_docstring_examples(positionwise_dense)
