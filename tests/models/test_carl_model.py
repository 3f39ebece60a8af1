"""Tests of `tfaction.models.carl.model`: the CARL model on tiny shapes."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.layers.pre_ln_transformer_encoder import PreLNTransformerEncoder
from tfaction.layers.projection_head import ProjectionHead
from tfaction.models.carl.model import CARL
from tfaction.models.carl.model import build_frame_trunk
from tfaction.testing import run_model_test

CROP = (16, 16)
NUM_FRAMES = 4
LENGTHS = np.array([[4], [2]])


def small_kwargs(**overrides):
    kwargs = dict(num_layers=2, trunk="small", num_frames=NUM_FRAMES,
                  crop_size=CROP, small_filters=(4, 8), fc_units=(16, 16),
                  hidden_size=8, num_heads=2, ffn_units=16, dropout=0.1,
                  embedding_size=6, projection_hidden_units=8,
                  normalize_embeddings=True, identical_layer_init=True)
    kwargs.update(overrides)
    return kwargs


def inputs(steps=NUM_FRAMES, seed=0, lengths=LENGTHS):
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(2, steps, *CROP, 3)).astype("float32")
    mask = np.arange(steps)[None] < np.minimum(lengths, steps)
    return {"frames": frames, "mask": mask}


def test_model_contract():
    out = run_model_test(CARL, small_kwargs(), inputs(),
                         expected_output_shape={"embeddings": (2, 4, 6),
                                                "projections": (2, 4, 6)},
                         expected_output_dtype={"embeddings": "float32",
                                                "projections": "float32"})
    for key in ("embeddings", "projections"):
        np.testing.assert_allclose(np.linalg.norm(out[key], axis=-1), 1.0,
                                   atol=1e-5)


def test_layers_and_sizes():
    model = CARL(**small_kwargs())
    assert isinstance(model.transformer, PreLNTransformerEncoder)
    assert isinstance(model.projection_head, ProjectionHead)
    assert model.get_layer("fc1").kernel.shape == (8, 16)
    assert model.get_layer("fc2_bn").momentum == 0.9
    assert model.get_layer("fc2_bn").epsilon == 1e-5
    assert model.get_layer("frame_projection").kernel.shape == (16, 8)
    assert model.get_layer("embedding").kernel.shape == (8, 6)
    assert model.get_layer("position_encoding").train_length == NUM_FRAMES
    assert model.transformer.num_layers == 2
    # The transformer layers start from identical weights.
    a, b = model.transformer.encoder_layers
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    model = CARL(**small_kwargs(identical_layer_init=False))
    a, b = model.transformer.encoder_layers
    assert not np.array_equal(a.query.kernel, b.query.kernel)


def test_padded_frames_do_not_change_valid_frames_in_inference():
    model = CARL(**small_kwargs())
    data = inputs()
    reference = model(data, training=False)
    perturbed = dict(data)
    noise = np.random.default_rng(5).normal(
        50.0, 100.0, data["frames"].shape).astype("float32")
    perturbed["frames"] = np.where(data["mask"][..., None, None, None],
                                   data["frames"], noise)
    out = model(perturbed, training=False)
    valid = data["mask"]
    for key in ("embeddings", "projections"):
        np.testing.assert_allclose(np.asarray(out[key])[valid],
                                   np.asarray(reference[key])[valid],
                                   rtol=1e-5, atol=1e-5)
        assert not np.allclose(np.asarray(out[key])[~valid],
                               np.asarray(reference[key])[~valid])


def test_padded_frames_enter_training_batch_statistics():
    # As in the reference: training-mode batch norms pool all B * T frames,
    # so padded frames change valid frames' outputs (dropout off here).
    model = CARL(**small_kwargs(dropout=0.0))
    data = inputs()
    perturbed = dict(data)
    perturbed["frames"] = np.where(data["mask"][..., None, None, None],
                                   data["frames"], 10.0 * data["frames"])
    a = np.asarray(model(data, training=True)["embeddings"])
    b = np.asarray(model(perturbed, training=True)["embeddings"])
    assert not np.allclose(a[data["mask"]], b[data["mask"]], atol=1e-4)


def _position_table(length, channels, train_length):
    """CARL's table: exponent i / d on every channel, linspace positions."""
    positions = (np.arange(length, dtype=np.float64)
                 if length == train_length
                 else np.linspace(0.0, train_length - 1, length))
    exponent = np.arange(channels) / channels
    angle = positions[:, None] / 10000.0 ** exponent[None]
    return np.where(np.arange(channels)[None] % 2 == 1, np.cos(angle),
                    np.sin(angle))


@pytest.mark.parametrize("steps", [NUM_FRAMES, 7, 3])
def test_positions_interpolated_at_other_lengths(steps):
    model = CARL(**small_kwargs())
    probe = keras.Model(model.input, [
        model.get_layer("frame_projection").output,
        model.get_layer("position_encoding").output])
    before, after = probe(inputs(steps=steps), training=False)
    added = np.asarray(after) - np.asarray(before)
    expected = _position_table(steps, 8, NUM_FRAMES)
    np.testing.assert_allclose(added, np.broadcast_to(expected, added.shape),
                               atol=1e-5)
    out = model(inputs(steps=steps), training=False)
    assert out["embeddings"].shape == (2, steps, 6)


def test_unnormalised_embeddings():
    model = CARL(**small_kwargs(normalize_embeddings=False))
    out = model(inputs(), training=False)
    assert out["embeddings"].dtype == "float32"
    assert not np.allclose(np.linalg.norm(out["embeddings"], axis=-1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(out["projections"], axis=-1),
                               1.0, atol=1e-5)
    emb = model.embedding_model()(inputs(), training=False)
    np.testing.assert_allclose(np.asarray(emb), out["embeddings"], atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    reference = CARL(**small_kwargs())
    model = CARL(**small_kwargs(), dtype=policy)
    model.set_weights(reference.get_weights())
    compute = keras.dtype_policies.DTypePolicy(policy).compute_dtype
    assert model.get_layer("fc1").compute_dtype == compute
    assert model.transformer.encoder_layers[0].query.compute_dtype == compute
    assert all(v.dtype == "float32" for v in model.weights)
    data = inputs()
    out = model(data, training=False)
    expected = reference(data, training=False)
    for key in ("embeddings", "projections"):
        assert out[key].dtype == "float32"
        np.testing.assert_allclose(np.linalg.norm(out[key], axis=-1), 1.0,
                                   atol=1e-5)
        np.testing.assert_allclose(out[key], expected[key], atol=0.1)


def test_gradients_reach_every_trainable_weight():
    model = CARL(**small_kwargs())
    data = inputs()
    with tf.GradientTape() as tape:
        out = model(data, training=True)
        loss = tf.reduce_sum(out["projections"][..., 0]) + tf.reduce_sum(
            out["embeddings"][..., 0])
    grads = tape.gradient(loss, model.trainable_weights)
    # Biases followed by a training-mode batch norm get no gradient.
    before_bn = {"fc1/bias", "fc2/bias", "projection_head/hidden/bias"}
    missing = [v.path for v, g in zip(model.trainable_weights, grads)
               if (g is None or not np.any(np.asarray(g)))
               and v.path not in before_bn]
    assert not missing
    trunk_ids = {id(v) for v in model.trunk_model.trainable_weights}
    assert trunk_ids and trunk_ids <= {id(v) for v in
                                       model.trainable_weights}


def test_resnet50_trunk_shapes():
    trunk = build_frame_trunk("resnet50")
    assert trunk.output_shape == (None, None, None, 2048)
    # conv1 ... layer3 frozen, layer4 trained.
    trainable = {v.path.split("_")[0] for v in trunk.trainable_weights}
    assert trainable == {"layer4"}
    model = CARL(**small_kwargs(trunk="resnet50", crop_size=(32, 32),
                                num_layers=1))
    frames = np.zeros((1, 2, 32, 32, 3), "float32")
    out = model({"frames": frames, "mask": np.ones((1, 2), bool)})
    assert out["embeddings"].shape == (1, 2, 6)
    assert model.get_layer("fc1").kernel.shape == (2048, 16)


def test_default_sizes_are_carl():
    kwargs = small_kwargs()
    defaults = CARL.__init__.__defaults__
    names = CARL.__init__.__code__.co_varnames[1:1 + len(defaults)]
    config = dict(zip(names, defaults))
    assert config["fc_units"] == (512, 512)
    assert (config["hidden_size"], config["num_heads"], config["ffn_units"],
            config["embedding_size"], config["projection_hidden_units"]) == (
                256, 8, 1024, 128, 128)
    assert math.isclose(config["dropout"], 0.1)
    assert kwargs["trunk"] == "small" and config["trunk"] == "resnet50"


def test_rejects_bad_config():
    with pytest.raises(errors.ConfigError, match="trunk"):
        CARL(**small_kwargs(trunk="vgg16"))
    with pytest.raises(errors.ConfigError, match="divisible"):
        CARL(**small_kwargs(num_heads=3))
    with pytest.raises(errors.ConfigError, match="num_frames"):
        CARL(**small_kwargs(num_frames=0))


def test_dynamic_length_graph_matches_eager():
    # model.predict / serving trace T as unknown: positions computed in-graph.
    model = CARL(**small_kwargs())
    fn = tf.function(lambda x: model(x, training=False), input_signature=[{
        "frames": tf.TensorSpec((None, None, *CROP, 3), tf.float32),
        "mask": tf.TensorSpec((None, None), tf.bool)}])
    for steps in (NUM_FRAMES, 7):
        data = inputs(steps=steps)
        graph, eager = fn(data), model(data, training=False)
        for key in ("embeddings", "projections"):
            np.testing.assert_allclose(graph[key], eager[key], atol=1e-6)


@pytest.mark.parametrize("normalize", [True, False])
def test_two_part_forward_equals_the_model(normalize):
    """`frame_features` + `embed_frame_features` = the model's inference
    `embeddings` (what `embed_whole_videos` relies on)."""
    model = CARL(**small_kwargs(normalize_embeddings=normalize))
    x = inputs(steps=5, lengths=np.array([[5], [5]]))
    full = model(x, training=False)["embeddings"]
    frames = tf.reshape(x["frames"], [10, *CROP, 3])
    features = tf.reshape(model.frame_features(frames), [2, 5, -1])
    assert features.shape == (2, 5, 8)
    parts = model.embed_frame_features(features, x["mask"])
    np.testing.assert_allclose(parts, full, atol=1e-6)


def test_whole_videos_trunk_batches_give_the_same_embeddings():
    """Trunk calls of a few frames (the authors' backbone blocks) leave
    the embeddings unchanged, eager and in a graph, for chunks that do
    not divide evenly."""
    from tfaction.models.carl.whole_videos import embed_whole_videos

    model = CARL(**small_kwargs())
    rng = np.random.default_rng(3)
    frames = tf.constant(rng.normal(size=(2, 11, *CROP, 3)), tf.float32)
    lengths = tf.constant([11, 6])
    whole = embed_whole_videos(model, frames, lengths, 5)
    assert not np.allclose(whole[0, :6], whole[1, :6])
    graph = tf.function(lambda f, n: embed_whole_videos(
        model, f, n, 5, frames_per_trunk_batch=4))
    for batched in (embed_whole_videos(model, frames, lengths, 5,
                                       frames_per_trunk_batch=2),
                    graph(frames, lengths)):
        np.testing.assert_allclose(batched, whole, atol=1e-6)
    np.testing.assert_array_equal(whole[1, 6:], 0.0)
