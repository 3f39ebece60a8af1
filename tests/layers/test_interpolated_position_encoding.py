"""Tests of `tfaction.layers.interpolated_position_encoding`."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.interpolated_position_encoding import (
    InterpolatedPositionEncoding)
from tfaction.testing import run_layer_test


def _reference_table(length, channels, train_length):
    """CARL's sin/cos table written out element by element: the exponent
    of channel i is i / d for odd channels too; positions are 0..S-1 at the
    training length, else numpy's linspace over [0, train_length - 1]."""
    if length == train_length:
        positions = [float(s) for s in range(length)]
    else:
        positions = list(np.linspace(0.0, train_length - 1, num=length))
    table = np.zeros((length, channels))
    for s, pos in enumerate(positions):
        for i in range(channels):
            angle = pos / math.pow(10000.0, i / channels)
            table[s, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    return table


def test_layer_contract():
    x = np.random.default_rng(0).normal(size=(2, 6, 8)).astype("float32")
    run_layer_test(InterpolatedPositionEncoding, {"train_length": 6}, x,
                   expected_output_shape=(2, 6, 8),
                   expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0,
                   mixed_precision_tolerance=1e-2)


@pytest.mark.parametrize("train_length, channels, length", [
    (8, 6, 8),      # training length: integer positions
    (8, 6, 5),      # shorter: fractional positions 0, 1.75, ...
    (8, 6, 13),     # longer: positions spread over [0, 7]
    (8, 5, 8),      # odd number of channels
    (240, 256, 240), (240, 256, 1000), (80, 256, 37),
    (5, 4, 1),      # a single step: position 0
    (1, 4, 3)])     # train_length 1: every position 0
def test_matches_reference_table(train_length, channels, length):
    x = np.random.default_rng(1).normal(
        size=(2, length, channels)).astype("float32")
    layer = InterpolatedPositionEncoding(train_length)
    expected = x + _reference_table(length, channels,
                                    train_length).astype(np.float32)[None]
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=0,
                               atol=2e-6)


def test_odd_channel_exponent_quirk():
    # Channel 1 of position p is cos(p / 10000^(1/d)), not cos(p) (the
    # Vaswani table's pairing of channels 0 and 1 on one frequency).
    channels, pos = 8, 5
    layer = InterpolatedPositionEncoding(10)
    table = np.asarray(layer(np.zeros((1, 10, channels), "float32")))[0]
    np.testing.assert_allclose(
        table[pos, 1], math.cos(pos / 10000.0 ** (1 / channels)), atol=1e-6)
    assert abs(table[pos, 1] - math.cos(pos)) > 0.1
    np.testing.assert_allclose(
        table[pos, 2], math.sin(pos / 10000.0 ** (2 / channels)), atol=1e-6)


def test_positions():
    layer = InterpolatedPositionEncoding(8)
    np.testing.assert_array_equal(np.asarray(layer.positions(8)),
                                  np.arange(8.0))
    np.testing.assert_array_equal(np.asarray(layer.positions(5)),
                                  np.linspace(0.0, 7.0, 5))
    np.testing.assert_array_equal(np.asarray(layer.positions(1)), [0.0])
    np.testing.assert_array_equal(np.asarray(layer.positions(2)), [0.0, 7.0])


def test_dynamic_length_matches_static():
    layer = InterpolatedPositionEncoding(6)
    fn = tf.function(layer, input_signature=[
        tf.TensorSpec((None, None, 4), tf.float32)])
    for length in (6, 9, 3):
        x = np.random.default_rng(length).normal(
            size=(1, length, 4)).astype("float32")
        np.testing.assert_array_equal(np.asarray(fn(x)),
                                      np.asarray(layer(x)))


def test_half_precision_adds_rounded_table():
    layer = InterpolatedPositionEncoding(4, dtype="mixed_float16")
    x = np.zeros((1, 7, 6), "float16")
    out = layer(x)
    assert out.dtype == "float16"
    expected = _reference_table(7, 6, 4).astype(np.float16)
    np.testing.assert_array_equal(np.asarray(out)[0], expected)


def test_rejects_bad_train_length():
    with pytest.raises(ValueError, match="train_length"):
        InterpolatedPositionEncoding(0)
