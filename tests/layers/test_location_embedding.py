"""Tests of `tfaction.layers.location_embedding.LocationEmbedding`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers import location_embedding
from tfaction.layers.location_embedding import LocationEmbedding
from tfaction.testing import run_layer_test
from tfaction.testing.docstring_checks import check_docstring_examples

SHAPE = (2, 3, 4, 5, 6)  # B, T, H, W, C


def _features(shape=SHAPE, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _w(variable):
    return np.asarray(variable, np.float64)


def _mlp(hidden, output, x):
    h = np.maximum(x @ _w(hidden.kernel) + _w(hidden.bias), 0.0)
    return h @ _w(output.kernel) + _w(output.bias)


def numpy_embedding(layer, x):
    """Reference from the layer's weights, cell by cell."""
    b, t, h, w, _ = x.shape
    out = []
    for ti in range(t):
        for hi in range(h):
            for wi in range(w):
                hc = (hi - (h - 1) / 2) / h
                wc = (wi - (w - 1) / 2) / w
                tc = (ti - (t - 1) / 2) / t
                s = _mlp(layer.spatial_hidden, layer.spatial_output,
                         np.array([hc, wc]))
                tt = _mlp(layer.temporal_hidden, layer.temporal_output,
                          np.array([tc]))
                out.append(np.concatenate([s, tt]))
    emb = np.array(out).reshape(t, h, w, -1)
    emb = np.broadcast_to(emb, (b,) + emb.shape)
    return np.concatenate([x.astype(np.float64), emb], -1)


def test_contract():
    run_layer_test(LocationEmbedding, {}, _features(),
                   expected_output_shape=SHAPE[:-1] + (6 + 16,),
                   expected_num_trainable_weights=8)


def test_contract_other_widths():
    run_layer_test(
        LocationEmbedding,
        {"spatial_units": (3, 5), "temporal_units": (2, 4),
         "activation": "tanh"},
        _features((1, 2, 3, 3, 4)), expected_output_shape=(1, 2, 3, 3, 13),
        expected_num_trainable_weights=8, run_saving_check=False,
        run_training_check=False)


@pytest.mark.parametrize("size,expected", [
    (1, [0.0]),
    (4, [-0.375, -0.125, 0.125, 0.375]),
    (5, [-0.4, -0.2, 0.0, 0.2, 0.4]),
])
def test_coordinate_normalisation(size, expected):
    """`(i - (n - 1) / 2) / n`: centred, scaled by the size."""
    coords = location_embedding._centred_coordinates(size)
    np.testing.assert_allclose(np.asarray(coords), expected, atol=1e-7)


def test_matches_numpy():
    x = _features(seed=1)
    layer = LocationEmbedding()
    layer(x)
    # non-zero biases, so that a wrong coordinate shows up anywhere
    rng = np.random.default_rng(2)
    for sub in (layer.spatial_hidden, layer.spatial_output,
                layer.temporal_hidden, layer.temporal_output):
        sub.bias.assign(rng.normal(size=sub.bias.shape))
    out = layer(x).numpy()
    np.testing.assert_allclose(out, numpy_embedding(layer, x), atol=1e-5)
    np.testing.assert_array_equal(out[..., :6], x)  # features untouched


def test_spatial_and_temporal_parts():
    """Spatial channels vary only with (h, w), temporal only with t."""
    layer = LocationEmbedding()
    layer(_features())
    # Positive hidden biases keep the small MLPs' ReLUs on near the
    # centre: with zero biases an unlucky draw can switch them all off on
    # one side and make the embedding constant there.
    rng = np.random.default_rng(3)
    for sub in (layer.spatial_hidden, layer.temporal_hidden):
        sub.bias.assign(rng.uniform(0.5, 1.0, size=sub.bias.shape))
    out = layer(_features()).numpy()
    spatial, temporal = out[..., 6:14], out[..., 14:]
    np.testing.assert_allclose(
        spatial, np.broadcast_to(spatial[:1, :1], spatial.shape), atol=1e-6)
    np.testing.assert_allclose(
        temporal, np.broadcast_to(temporal[:1, :, :1, :1], temporal.shape),
        atol=1e-6)
    assert np.abs(spatial[0, 0, 0, 0] - spatial[0, 0, 1, 1]).max() > 1e-4
    assert np.abs(temporal[0, 0, 0, 0] - temporal[0, 1, 0, 0]).max() > 1e-4
    # and embeddings do not depend on the features
    other = LocationEmbedding()
    other(_features())
    layer = LocationEmbedding()
    layer(_features())
    layer.set_weights(other.get_weights())
    np.testing.assert_allclose(layer(_features(seed=3)).numpy()[..., 6:],
                               other(_features()).numpy()[..., 6:],
                               atol=1e-6)


def test_dynamic_shapes():
    layer = LocationEmbedding()
    fn = tf.function(
        lambda x: layer(x),
        input_signature=[tf.TensorSpec((None, None, None, None, 6))])
    for shape in [(1, 2, 3, 4, 6), (2, 5, 1, 2, 6)]:
        x = _features(shape, seed=4)
        out = fn(x).numpy()
        assert out.shape == shape[:-1] + (22,)
        np.testing.assert_allclose(out, numpy_embedding(layer, x),
                                   atol=1e-5)
    symbolic = layer(keras.Input((None, None, None, 6)))
    assert tuple(symbolic.shape) == (None, None, None, None, 22)


def test_bad_arguments():
    with pytest.raises(ValueError, match="spatial_units"):
        LocationEmbedding(spatial_units=(4,))
    with pytest.raises(ValueError, match="temporal_units"):
        LocationEmbedding(temporal_units=(4, 0))
    with pytest.raises(ValueError, match=r"\[B, T, H, W, C\]"):
        LocationEmbedding()(np.zeros((2, 3, 4, 6), "float32"))


def test_docstring_example():
    check_docstring_examples(location_embedding)
