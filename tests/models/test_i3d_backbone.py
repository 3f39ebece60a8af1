"""I3D trunk and head: layer list, endpoint shapes, parameters, saving, dtype.

The architecture is re-stated here, independently of the module's tables,
from DeepMind's `InceptionI3d._build` (deepmind/kinetics-i3d `i3d.py`):
every Unit3D with its scope, input and output channels and kernel, every
pool with its size and stride. Parameter counts follow from it (conv
kernels without bias; batch norm beta + moving mean + moving variance per
channel) and agree with the variable shapes of DeepMind's rgb_imagenet
checkpoint (12,294,544 values without Logits: 7,533,248 up to Mixed_4f,
4,761,296 for MaxPool3d_5a_2x2..Mixed_5c).
"""

import math

import keras
import numpy as np
import pytest

from tfaction import errors
from tfaction.models.backbones import i3d
from tfaction.testing import run_model_test

# (block, [b0, b1a, b1b, b2a, b2b, b3]) as in DeepMind's i3d.py.
MIXED = [("Mixed_3b", [64, 96, 128, 16, 32, 32]),
         ("Mixed_3c", [128, 128, 192, 32, 96, 64]),
         ("Mixed_4b", [192, 96, 208, 16, 48, 64]),
         ("Mixed_4c", [160, 112, 224, 24, 64, 64]),
         ("Mixed_4d", [128, 128, 256, 24, 64, 64]),
         ("Mixed_4e", [112, 144, 288, 32, 64, 64]),
         ("Mixed_4f", [256, 160, 320, 32, 128, 128]),
         ("Mixed_5b", [256, 160, 320, 32, 128, 128]),
         ("Mixed_5c", [384, 192, 384, 48, 128, 128])]


def deepmind_layers(in_channels=3):
    """`[(endpoint, kind, info)]` in DeepMind's order.

    kind "unit": info = [(scope, c_in, c_out, kernel, stride)];
    kind "pool": info = (size, stride); the endpoint's output channels are
    tracked in `channels`.
    """
    layers, c = [], in_channels
    for name, out, k, s in [("Conv3d_1a_7x7", 64, 7, 2),
                            ("MaxPool3d_2a_3x3", None, (1, 3, 3), (1, 2, 2)),
                            ("Conv3d_2b_1x1", 64, 1, 1),
                            ("Conv3d_2c_3x3", 192, 3, 1),
                            ("MaxPool3d_3a_3x3", None, (1, 3, 3), (1, 2, 2))]:
        if out is None:
            layers.append((name, "pool", (k, s), c))
        else:
            layers.append((name, "unit", [(name, c, out, k, s)], out))
            c = out
    for block, w in MIXED:
        if block == "Mixed_4b":
            layers.append(("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2)),
                           c))
        if block == "Mixed_5b":
            layers.append(("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2)),
                           c))
        quirk = "Conv3d_0a_3x3" if block == "Mixed_5b" else "Conv3d_0b_3x3"
        units = [(f"{block}/Branch_0/Conv3d_0a_1x1", c, w[0], 1, 1),
                 (f"{block}/Branch_1/Conv3d_0a_1x1", c, w[1], 1, 1),
                 (f"{block}/Branch_1/Conv3d_0b_3x3", w[1], w[2], 3, 1),
                 (f"{block}/Branch_2/Conv3d_0a_1x1", c, w[3], 1, 1),
                 (f"{block}/Branch_2/{quirk}", w[3], w[4], 3, 1),
                 (f"{block}/Branch_3/Conv3d_0b_1x1", c, w[5], 1, 1)]
        c = w[0] + w[2] + w[4] + w[5]
        layers.append((block, "mixed", units, c))
    return layers


ENDPOINTS = [name for name, _, _, _ in deepmind_layers()]


def expected_params(first, last, in_channels=3):
    """(trainable, total) parameters of endpoints first..last."""
    trainable = total = 0
    names = ENDPOINTS[ENDPOINTS.index(first):ENDPOINTS.index(last) + 1]
    for name, kind, info, _ in deepmind_layers(in_channels):
        if name not in names or kind == "pool":
            continue
        for _, c_in, c_out, k, _ in info:
            kernel = k ** 3 * c_in * c_out
            trainable += kernel + c_out  # conv kernel + beta
            total += kernel + 3 * c_out  # + moving mean and variance
    return trainable, total


def count(weights):
    return sum(math.prod(w.shape) for w in weights)


@pytest.fixture(scope="module")
def trunk():
    keras.utils.set_random_seed(0)
    return i3d.build_i3d_trunk()


@pytest.fixture(scope="module")
def head():
    keras.utils.set_random_seed(1)
    return i3d.build_i3d_head()


def test_endpoints_and_units_follow_deepmind(trunk, head):
    assert list(i3d.ENDPOINTS) == ENDPOINTS
    assert trunk.endpoints == ENDPOINTS[:13]
    assert head.endpoints == ["MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c"]
    scopes = [scope for _, kind, info, _ in deepmind_layers()
              if kind != "pool" for scope, *_ in info]
    assert list(i3d.UNIT_SCOPES.values()) == scopes
    assert list(i3d.UNIT_SCOPES) == [s.replace("/", "_") for s in scopes]
    assert "Mixed_5b/Branch_2/Conv3d_0a_3x3" in scopes  # DeepMind's quirk
    units = {layer.name: layer
             for layer in trunk.unit_layers() + head.unit_layers()}
    assert list(units) == list(i3d.UNIT_SCOPES)
    for name, kind, info, channels in deepmind_layers():
        model = trunk if name in trunk.endpoints else head
        layer = model.get_layer(name)  # every endpoint is a named layer
        assert i3d.ENDPOINT_CHANNELS[name] == channels
        if kind == "pool":
            assert isinstance(layer, keras.layers.MaxPooling3D)
            config = layer.get_config()
            assert tuple(config["pool_size"]) == tuple(info[0]), name
            assert tuple(config["strides"]) == tuple(info[1]), name
            assert config["padding"] == "same"
            continue
        for scope, c_in, c_out, k, s in info:
            unit = units[scope.replace("/", "_")]
            assert tuple(unit.conv.kernel.shape) == (k, k, k, c_in, c_out)
            assert unit.strides == (s, s, s)
            conv = unit.conv.get_config()
            assert conv["padding"] == "same" and not conv["use_bias"]
            bn = unit.batch_norm
            assert bn.center and not bn.scale and bn.epsilon == 1e-3
            assert keras.activations.serialize(unit.activation) == "relu"
        if kind == "mixed":
            pool = model.get_layer(f"{name}_Branch_3_MaxPool3d_0a_3x3")
            config = pool.get_config()
            assert tuple(config["pool_size"]) == (3, 3, 3)
            assert tuple(config["strides"]) == (1, 1, 1)
            assert isinstance(layer, keras.layers.Concatenate)


def test_parameter_counts(trunk, head):
    want_trunk = expected_params("Conv3d_1a_7x7", "Mixed_4f")
    want_head = expected_params("MaxPool3d_5a_2x2", "Mixed_5c")
    assert (count(trunk.trainable_weights), trunk.count_params()) == want_trunk
    assert (count(head.trainable_weights), head.count_params()) == want_head
    # The same totals as the shapes of DeepMind's rgb_imagenet checkpoint.
    assert want_trunk == (7_523_264, 7_533_248)
    assert want_head == (4_756_720, 4_761_296)
    # Only beta trains in the batch norms; the statistics are frozen.
    trainable = {w.path.rsplit("/", 1)[-1] for w in trunk.trainable_weights}
    assert trainable == {"kernel", "beta"}
    flow = i3d.build_i3d_trunk(endpoint="Conv3d_1a_7x7", input_channels=2)
    assert flow.count_params() == expected_params(
        "Conv3d_1a_7x7", "Conv3d_1a_7x7", in_channels=2)[1]


def expected_shape(t, h, w, endpoint):
    """Output shape of `endpoint` for a clip [t, h, w] (SAME: ceil)."""
    for name, kind, info, channels in deepmind_layers():
        stride = info[1] if kind == "pool" else info[0][4]
        stride = (stride,) * 3 if isinstance(stride, int) else stride
        t, h, w = (math.ceil(n / s) for n, s in zip((t, h, w), stride))
        if name == endpoint:
            return (t, h, w, channels)
    raise KeyError(endpoint)


def test_endpoint_shapes(trunk, head):
    clip = np.random.default_rng(0).normal(size=(2, 8, 64, 64, 3))
    taps = keras.Model(trunk.input,
                       [trunk.get_layer(n).output for n in trunk.endpoints])
    outputs = taps(clip.astype("float32"))
    for name, out in zip(trunk.endpoints, outputs):
        assert tuple(out.shape) == (2, *expected_shape(8, 64, 64, name)), name
    assert tuple(outputs[-1].shape) == (2, 2, 4, 4, 832)  # T/4, H/16, W/16
    # Dynamic T/H/W; odd sizes round up; the paper's 64x400x400 clip.
    assert trunk.input_shape == (None, None, None, None, 3)
    assert trunk.output_shape == (None, None, None, None, 832)
    assert tuple(trunk(np.zeros((1, 5, 50, 36, 3), "float32")).shape) == (
        1, 2, 4, 3, 832)
    assert tuple(trunk.compute_output_shape((1, 64, 400, 400, 3))) == (
        1, 16, 25, 25, 832)
    # The head on an ST-RoIPool tube: 16x7x7 -> 8x4x4x1024 (as the paper).
    assert tuple(head.compute_output_shape((3, 16, 7, 7, 832))) == (
        3, 8, 4, 4, 1024)
    features = np.random.default_rng(1).normal(size=(2, 4, 7, 7, 832))
    taps = keras.Model(head.input,
                       [head.get_layer(n).output for n in head.endpoints])
    shapes = [tuple(o.shape) for o in taps(features.astype("float32"))]
    assert shapes == [(2, 2, 4, 4, 832), (2, 2, 4, 4, 832),
                      (2, 2, 4, 4, 1024)]
    assert head.input_shape == (None, None, None, None, 832)


def test_trunk_then_head_is_the_whole_network(trunk, head):
    whole = i3d.InceptionI3D("Mixed_5c")
    assert len(whole.weights) == len(trunk.weights) + len(head.weights)
    for model in (trunk, head):
        for layer in model.unit_layers():
            whole.get_layer(layer.name).set_weights(layer.get_weights())
    clip = np.random.default_rng(2).normal(size=(1, 8, 32, 32, 3))
    clip = clip.astype("float32")
    np.testing.assert_allclose(whole(clip), head(trunk(clip)), rtol=1e-5,
                               atol=1e-5)
    # Frozen batch norm: training mode computes the same function.
    np.testing.assert_array_equal(trunk(clip, training=True),
                                  trunk(clip, training=False))


def test_model_contract_and_keras_round_trip(tmp_path, trunk, head):
    # Config, registration, call, XLA vs eager and .keras reload (safe mode)
    # for a short slice; the full trunk and head are reloaded below.
    run_model_test(i3d.InceptionI3D,
                   {"final_endpoint": "Mixed_3b", "name": "i3d_stem"},
                   np.random.default_rng(3).normal(
                       size=(1, 4, 16, 16, 3)).astype("float32"),
                   expected_output_shape=(1, 2, 2, 2, 256))
    clip = np.random.default_rng(4).normal(size=(1, 8, 32, 32, 3))
    features = np.random.default_rng(5).normal(size=(1, 2, 3, 3, 832))
    for model, x in ((trunk, clip), (head, features)):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        restored = keras.models.load_model(path, safe_mode=True)
        assert type(restored) is i3d.InceptionI3D
        assert restored.get_config() == model.get_config()
        x = x.astype("float32")
        np.testing.assert_allclose(restored(x), model(x), rtol=1e-6,
                                   atol=1e-6)
        for a, b in zip(restored.non_trainable_weights,
                        model.non_trainable_weights):
            assert a.path == b.path
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.fixture
def global_policy():
    previous = keras.config.dtype_policy()
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy(previous)


def test_mixed_precision(trunk, global_policy):
    model = i3d.build_i3d_trunk(endpoint="Mixed_3c", dtype="mixed_float16")
    assert keras.config.dtype_policy().name == "float32"
    for layer in model.layers[1:]:
        # No float16 MaxPool3D kernel on CPU: pools run (exactly) in float32.
        want = ("float32" if isinstance(layer, keras.layers.MaxPooling3D)
                else "mixed_float16")
        assert layer.dtype_policy.name == want, layer.name
    assert all(w.dtype == "float32" for w in model.weights)
    for layer in model.unit_layers():
        layer.set_weights(trunk.get_layer(layer.name).get_weights())
    reference = keras.Model(trunk.input, trunk.get_layer("Mixed_3c").output)
    clip = np.random.default_rng(6).uniform(-1, 1, (1, 8, 32, 32, 3))
    clip = clip.astype("float32")
    out = model(clip)
    assert out.dtype == "float16"
    want = reference(clip).numpy()
    np.testing.assert_allclose(out.numpy().astype("float32"), want,
                               atol=0.05 * np.abs(want).max(), rtol=0.05)
    # The global policy reaches every layer (the head starts with a pool).
    for policy, compute in (("mixed_bfloat16", "bfloat16"),
                            ("mixed_float16", "float16")):
        global_policy(policy)
        head = i3d.build_i3d_head()
        unit = head.get_layer("Mixed_5c_Branch_0_Conv3d_0a_1x1")
        assert unit.compute_dtype == compute
        assert unit.batch_norm.dtype_policy.name == policy
        out = head(np.ones((1, 2, 2, 2, 832), compute))
        assert out.dtype == compute and out.shape == (1, 1, 1, 1, 1024)


def test_weight_decay_and_frozen_statistics_in_training():
    model = i3d.build_i3d_trunk(endpoint="Mixed_3b", weight_decay=1e-4)
    assert len(model.losses) == 3 + 6  # one L2 term per conv kernel
    assert i3d.build_i3d_trunk(endpoint="Mixed_3b").losses == []
    stats = [w.numpy() for w in model.non_trainable_weights]
    betas = {w.path: w.numpy() for w in model.trainable_weights
             if w.path.endswith("beta")}
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    clip = np.random.default_rng(7).normal(size=(2, 4, 16, 16, 3))
    model.fit(clip.astype("float32"), np.zeros((2, 2, 2, 2, 256), "float32"),
              epochs=1, verbose=0)
    for before, w in zip(stats, model.non_trainable_weights):
        np.testing.assert_array_equal(w.numpy(), before, err_msg=w.path)
    after = {w.path: w.numpy() for w in model.trainable_weights}
    moved = [p for p, before in betas.items()
             if not np.array_equal(before, after[p])]
    assert len(moved) == len(betas) == 9, "batch-norm offsets did not train"


def test_bad_configuration():
    with pytest.raises(errors.ConfigError, match="Mixed_6a"):
        i3d.build_i3d_trunk(endpoint="Mixed_6a")
    with pytest.raises(errors.ConfigError, match="comes before"):
        i3d.InceptionI3D("Mixed_3b", first_endpoint="Mixed_4b")
    with pytest.raises(errors.ConfigError, match="832 channels"):
        i3d.InceptionI3D("Mixed_5c", first_endpoint="MaxPool3d_5a_2x2",
                         input_channels=3)
    with pytest.raises(errors.ConfigError, match="head would be empty"):
        i3d.build_i3d_head(trunk_endpoint="Mixed_5c")
    with pytest.raises(errors.ConfigError, match="weight_decay"):
        i3d.build_i3d_trunk(weight_decay=-1.0)
    # A head after another cut takes that endpoint's channels.
    head = i3d.build_i3d_head(trunk_endpoint="Mixed_4e",
                              final_endpoint="Mixed_4f")
    assert head.input_shape == (None, None, None, None, 528)
    assert head.endpoints == ["Mixed_4f"]


def test_width_multiplier_keeps_topology_and_scales_channels(tmp_path):
    """A narrow I3D (CPU-sized recipes) keeps names, strides and the unit
    count; every unit has round(m * filters) filters; it round-trips."""
    from tfaction.models.backbones import i3d

    small = i3d.build_i3d_trunk(width_multiplier=0.125)
    assert [u.name for u in small.unit_layers()] == [
        name for name in i3d.UNIT_SCOPES if not name.startswith("Mixed_5")]
    out = small(np.zeros((1, 8, 32, 32, 3), "float32"))
    assert tuple(out.shape) == (1, 2, 2, 2, 104)
    assert i3d.endpoint_channels("Mixed_4f", 0.125) == 104
    conv = small.get_layer("Mixed_4f_Branch_1_Conv3d_0b_3x3")
    assert conv.filters == 40  # 320 / 8
    head = i3d.build_i3d_head(width_multiplier=0.125)
    assert tuple(head(out).shape) == (1, 1, 1, 1, 128)
    path = str(tmp_path / "small.keras")
    small.save(path)
    again = keras.models.load_model(path, safe_mode=True)
    assert again.width_multiplier == 0.125
    np.testing.assert_allclose(
        again(np.ones((1, 8, 32, 32, 3), "float32")),
        small(np.ones((1, 8, 32, 32, 3), "float32")), atol=1e-6)
    with pytest.raises(errors.ConfigError, match="width_multiplier"):
        i3d.build_i3d_trunk(width_multiplier=0)
