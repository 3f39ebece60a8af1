"""I3D weight import from DeepMind's TF1 checkpoints and keras-kinetics-i3d h5.

The files are written here with random values under the sources' own
names: TF1 checkpoints by a graph-mode `tf.compat.v1.train.Saver` whose
`var_list` maps DeepMind's variable names (`RGB/inception_i3d/Mixed_4f/
Branch_1/Conv3d_0b_3x3/conv_3d/w`, ...) to variables, as DeepMind's
`evaluate_sample.py` restores them (`tf.train.Checkpoint` would key them by
object path instead); HDF5 files in the Keras 2 `save_weights` layout of
dlpbc/keras-kinetics-i3d (`layer_names`, one group per layer with its
`weight_names`). The names come from this test's own statement of the
architecture (`deepmind_layers` in tests/models/test_i3d_backbone.py), not
from the module's tables.

Every imported weight is compared with the file's array, and the models'
outputs with an independent forward pass of DeepMind's graph built from the
checkpoint arrays with `tf.nn.conv3d`, `tf.nn.batch_normalization` and
`tf.nn.max_pool3d`.
"""

import math

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models.test_i3d_backbone import deepmind_layers
from tfaction import errors
from tfaction.checkpoints import i3d as ckpt
from tfaction.checkpoints.errors import CheckpointError
from tfaction.models.backbones import i3d

RGB = "RGB/inception_i3d/"
FLOW = "Flow/inception_i3d/"
LEAVES = ("conv_3d/w", "batch_norm/beta", "batch_norm/moving_mean",
          "batch_norm/moving_variance")
LOGITS = ("Logits/Conv3d_0c_1x1/conv_3d/w", "Logits/Conv3d_0c_1x1/conv_3d/b")


def unit_specs(in_channels=3, endpoints=None):
    """`[(scope, c_in, c_out, k)]` of the Unit3Ds of `endpoints`."""
    return [(scope, c_in, c_out, k)
            for name, kind, info, _ in deepmind_layers(in_channels)
            if kind != "pool" and (endpoints is None or name in endpoints)
            for scope, c_in, c_out, k, _ in info]


def deepmind_arrays(seed, in_channels=3, endpoints=None, logits=True):
    """Random values under DeepMind's names (without the stream scope)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for scope, c_in, c_out, k in unit_specs(in_channels, endpoints):
        fan_in = k ** 3 * c_in
        arrays[f"{scope}/conv_3d/w"] = rng.normal(
            0, math.sqrt(2.0 / fan_in), (k, k, k, c_in, c_out))
        arrays[f"{scope}/batch_norm/beta"] = rng.normal(0, 0.1, c_out)
        arrays[f"{scope}/batch_norm/moving_mean"] = rng.normal(0, 0.1, c_out)
        arrays[f"{scope}/batch_norm/moving_variance"] = rng.uniform(
            0.5, 1.5, c_out)
    if logits:
        arrays[LOGITS[0]] = rng.normal(0, 0.03, (1, 1, 1, 1024, 400))
        arrays[LOGITS[1]] = rng.normal(0, 0.1, 400)
    return {k: v.astype("float32") for k, v in arrays.items()}


def scoped(arrays, prefix):
    return {prefix + name: value for name, value in arrays.items()}


def write_tf1_checkpoint(prefix, arrays, global_step=True):
    """A TF1 (V2 format) checkpoint keyed exactly by `arrays`' names."""
    with tf.Graph().as_default():
        feed, var_list = {}, {}
        for name, value in arrays.items():
            # Fed, not embedded as graph constants (faster, no 2 GB limit).
            init = tf.compat.v1.placeholder(value.dtype, value.shape)
            feed[init] = value
            var_list[name] = tf.compat.v1.Variable(init, name=name)
        if global_step:
            var_list["global_step"] = tf.compat.v1.Variable(
                np.int64(1000), name="global_step")
        saver = tf.compat.v1.train.Saver(var_list)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer(), feed)
            return saver.save(sess, str(prefix), write_meta_graph=False)


def dlpbc_name(scope):
    """keras-kinetics-i3d's name of a unit, as its i3d_inception.py has it."""
    if "/" not in scope:
        return scope  # Conv3d_1a_7x7 ...
    block, branch, conv = scope.split("/")
    first = conv == "Conv3d_0a_1x1"
    slot = {"Branch_0": "0a", "Branch_1": "1a" if first else "1b",
            "Branch_2": "2a" if first else "2b", "Branch_3": "3b"}[branch]
    return f"Conv3d_{block[len('Mixed_'):]}_{slot}_{conv[-3:]}"


def write_dlpbc_h5(path, arrays, top=True, model_weights=False,
                   in_channels=3):
    """keras-kinetics-i3d weights (Keras 2 `save_weights` layout)."""
    layers = [("input_1", [])]
    for name, kind, info, _ in deepmind_layers(in_channels):
        if kind == "pool":
            layers.append((name.replace("MaxPool3d", "MaxPool2d"), []))
            continue
        for scope, *_ in info:
            if f"{scope}/conv_3d/w" not in arrays:
                continue
            stem = dlpbc_name(scope)
            layers.append((f"{stem}_conv", [
                ("kernel:0", arrays[f"{scope}/conv_3d/w"])]))
            layers.append((f"{stem}_bn", [
                (leaf + ":0", arrays[f"{scope}/batch_norm/{leaf}"])
                for leaf in ("beta", "moving_mean", "moving_variance")]))
            layers.append((stem, []))  # the ReLU
        if kind == "mixed":
            layers.append((name, []))  # the concatenation
    if top:
        layers += [("global_avg_pool", []), ("dropout_1", []),
                   ("Conv3d_6a_1x1_conv", [("kernel:0", arrays[LOGITS[0]]),
                                           ("bias:0", arrays[LOGITS[1]])]),
                   ("reshape_1", []), ("lambda_1", [])]
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if model_weights else f
        root.attrs["layer_names"] = [n.encode() for n, _ in layers]
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.1.2"
        for layer_name, weights in layers:
            group = root.create_group(layer_name)
            names = [f"{layer_name}/{leaf}" for leaf, _ in weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, (_, value) in zip(names, weights):
                group.create_dataset(name, data=value)


def reference_forward(arrays, x, endpoints, prefix="", in_channels=3):
    """DeepMind's graph over `endpoints`, from the arrays, with tf.nn ops."""
    def unit(x, spec):
        scope, _, _, _, stride = spec

        def get(leaf):
            return arrays[f"{prefix}{scope}/{leaf}"]

        y = tf.nn.conv3d(x, get("conv_3d/w"), (1, *(stride,) * 3, 1),
                         "SAME")
        y = tf.nn.batch_normalization(
            y, get("batch_norm/moving_mean"),
            get("batch_norm/moving_variance"), get("batch_norm/beta"), None,
            1e-3)
        return tf.nn.relu(y)

    x = tf.constant(x)
    for name, kind, info, _ in deepmind_layers(in_channels):
        if name not in endpoints:
            continue
        if kind == "pool":
            size, stride = info
            x = tf.nn.max_pool3d(x, (1, *size, 1), (1, *stride, 1), "SAME")
        elif kind == "unit":
            x = unit(x, info[0])
        else:
            branch_3 = tf.nn.max_pool3d(x, (1, 3, 3, 3, 1), (1,) * 5, "SAME")
            x = tf.concat([unit(x, info[0]),
                           unit(unit(x, info[1]), info[2]),
                           unit(unit(x, info[3]), info[4]),
                           unit(branch_3, info[5])], axis=4)
    return x.numpy()


def assert_loaded(models, arrays, prefix=""):
    """Every I3D variable of `models` equals the file's array."""
    if not isinstance(models, (list, tuple)):
        models = [models]
    checked = 0
    for model in models:
        for unit in model.unit_layers():
            scope = i3d.UNIT_SCOPES[unit.name]
            variables = dict(zip(LEAVES, (
                unit.conv.kernel, unit.batch_norm.beta,
                unit.batch_norm.moving_mean, unit.batch_norm.moving_variance)))
            for leaf, variable in variables.items():
                want = arrays[f"{prefix}{scope}/{leaf}"]
                np.testing.assert_array_equal(
                    variable.numpy(), want.reshape(variable.shape),
                    err_msg=f"{unit.name} {leaf}")
                checked += 1
    return checked


def snapshot(models):
    return [w.numpy() for m in models for w in m.weights]


def assert_unchanged(models, before):
    for got, want in zip(snapshot(models), before):
        np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def arrays():
    return deepmind_arrays(seed=0)


@pytest.fixture(scope="module")
def rgb_checkpoint(tmp_path_factory, arrays):
    root = tmp_path_factory.mktemp("rgb_imagenet")
    return write_tf1_checkpoint(root / "model.ckpt", scoped(arrays, RGB))


@pytest.fixture
def models():
    keras.utils.set_random_seed(3)
    return i3d.build_i3d_trunk(), i3d.build_i3d_head()


def test_checkpoint_has_deepmind_names(rgb_checkpoint):
    shapes = tf.train.load_checkpoint(rgb_checkpoint) \
        .get_variable_to_shape_map()
    assert len(shapes) == 57 * 4 + 2 + 1  # units, Logits, global_step
    assert shapes[RGB + "Conv3d_1a_7x7/conv_3d/w"] == [7, 7, 7, 3, 64]
    assert shapes[RGB + "Mixed_5b/Branch_2/Conv3d_0a_3x3/batch_norm/beta"] \
        == [128]
    assert shapes[RGB + LOGITS[0]] == [1, 1, 1, 1024, 400]


def test_deepmind_checkpoint_into_trunk_and_head(rgb_checkpoint, arrays):
    trunk, head = i3d.build_i3d_trunk(), i3d.build_i3d_head()
    report = ckpt.load_i3d_checkpoint([trunk, head], rgb_checkpoint)
    assert report.scope == RGB
    assert len(report.loaded) == 57 * 4
    assert report.loaded[0] == RGB + "Conv3d_1a_7x7/conv_3d/w"
    assert report.unused == {RGB + LOGITS[0]: ckpt.LOGITS,
                             RGB + LOGITS[1]: ckpt.LOGITS,
                             "global_step": ckpt.OUTSIDE_SCOPE}
    assert report.unexpected == []
    assert "228 variables loaded" in report.summary()
    assert assert_loaded([trunk, head], arrays) == 57 * 4

    # The outputs are DeepMind's graph on the same arrays.
    rng = np.random.default_rng(1)
    clip = rng.uniform(-1, 1, (1, 8, 32, 32, 3)).astype("float32")
    want = reference_forward(arrays, clip, trunk.endpoints)
    assert want.shape == (1, 2, 2, 2, 832) and want.std() > 0.1
    np.testing.assert_allclose(trunk(clip), want, rtol=1e-4,
                               atol=1e-4 * np.abs(want).max())
    features = np.maximum(rng.normal(0, 1, (2, 4, 7, 7, 832)), 0)
    features = features.astype("float32")
    want = reference_forward(arrays, features, head.endpoints)
    assert want.shape == (2, 2, 4, 4, 1024) and want.std() > 0.1
    np.testing.assert_allclose(head(features), want, rtol=1e-4,
                               atol=1e-4 * np.abs(want).max())


def test_trunk_alone_reports_the_head_units_unused(rgb_checkpoint, arrays):
    trunk = i3d.build_i3d_trunk()
    report = ckpt.load_i3d_checkpoint(trunk, rgb_checkpoint, scope="RGB")
    assert len(report.loaded) == (3 + 7 * 6) * 4
    not_built = [k for k, why in report.unused.items()
                 if why == ckpt.NOT_IN_MODEL]
    assert len(not_built) == 2 * 6 * 4
    assert all("/Mixed_5" in k for k in not_built)
    assert_loaded(trunk, arrays)


def test_kinetics600_layout(tmp_path):
    # rgb_scratch_kin600: no stream scope, batch-norm vectors stored as
    # [1, 1, 1, 1, C], Momentum optimiser slots beside the variables.
    head_endpoints = ("MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")
    arrays = deepmind_arrays(seed=5, endpoints=head_endpoints)
    stored = {}
    for name, value in arrays.items():
        if "/batch_norm/" in name:
            value = value.reshape(1, 1, 1, 1, -1)
        stored[name] = value
        if name.endswith(("conv_3d/w", "batch_norm/beta", "conv_3d/b")):
            stored[name + "/Momentum"] = np.zeros_like(value)
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt", stored,
                                  global_step=False)
    head = i3d.build_i3d_head()
    report = ckpt.load_i3d_checkpoint(head, prefix)
    assert report.scope == ""
    assert len(report.loaded) == 12 * 4
    reasons = sorted(set(report.unused.values()))
    assert reasons == sorted([ckpt.LOGITS, ckpt.OPTIMIZER_SLOT])
    assert sum(why == ckpt.OPTIMIZER_SLOT
               for why in report.unused.values()) == 12 * 2 + 2
    assert_loaded(head, arrays)


def test_stream_scope_choice(tmp_path):
    endpoints = ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1")
    rgb = deepmind_arrays(seed=6, endpoints=endpoints, logits=False)
    flow = deepmind_arrays(seed=7, in_channels=2, endpoints=endpoints,
                           logits=False)
    prefix = write_tf1_checkpoint(tmp_path / "joint.ckpt",
                                  {**scoped(rgb, RGB), **scoped(flow, FLOW)})
    rgb_trunk = i3d.build_i3d_trunk(endpoint="Conv3d_2b_1x1")
    flow_trunk = i3d.build_i3d_trunk(endpoint="Conv3d_2b_1x1",
                                     input_channels=2)
    with pytest.raises(CheckpointError, match="several scopes.*'Flow/"):
        ckpt.load_i3d_checkpoint(rgb_trunk, prefix)
    report = ckpt.load_i3d_checkpoint(flow_trunk, prefix, scope="Flow")
    assert report.scope == FLOW
    assert_loaded(flow_trunk, flow)
    assert all(why == ckpt.OUTSIDE_SCOPE for k, why in report.unused.items()
               if k.startswith("RGB/"))
    ckpt.load_i3d_checkpoint(rgb_trunk, prefix, scope="RGB/inception_i3d")
    assert_loaded(rgb_trunk, rgb)
    # An RGB checkpoint does not fit a flow trunk: the first kernel's
    # shapes are named, nothing is assigned.
    before = snapshot([flow_trunk])
    with pytest.raises(CheckpointError) as info:
        ckpt.load_i3d_checkpoint(flow_trunk, prefix, scope="RGB")
    message = str(info.value)
    for part in ("joint.ckpt", RGB + "Conv3d_1a_7x7/conv_3d/w",
                 "(7, 7, 7, 2, 64)", "(7, 7, 7, 3, 64)"):
        assert part in message
    assert_unchanged([flow_trunk], before)
    with pytest.raises(CheckpointError, match="scope 'Nope'"):
        ckpt.load_i3d_checkpoint(rgb_trunk, prefix, scope="Nope")


@pytest.fixture(scope="module")
def small_arrays():
    """Stem units up to Conv3d_2b_1x1 and the head's units."""
    endpoints = ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Mixed_5b", "Mixed_5c")
    return deepmind_arrays(seed=8, endpoints=endpoints)


def small_models():
    return [i3d.build_i3d_trunk(endpoint="Conv3d_2b_1x1"),
            i3d.build_i3d_head()]


def test_mismatch_and_missing_change_nothing(tmp_path, small_arrays):
    models = small_models()
    before = snapshot(models)
    # A head kernel of the wrong shape: neither model is touched.
    bad = dict(small_arrays)
    key = "Mixed_5c/Branch_1/Conv3d_0b_3x3/conv_3d/w"
    bad[key] = bad[key][..., :100]
    prefix = write_tf1_checkpoint(tmp_path / "bad.ckpt", scoped(bad, RGB))
    with pytest.raises(CheckpointError) as info:
        ckpt.load_i3d_checkpoint(models, prefix)
    message = str(info.value)
    for part in ("bad.ckpt", RGB + key, "Mixed_5c_Branch_1_Conv3d_0b_3x3",
                 "(3, 3, 3, 192, 384)", "(3, 3, 3, 192, 100)"):
        assert part in message
    assert_unchanged(models, before)
    # A missing statistic (of DeepMind's quirky Mixed_5b conv).
    short = dict(small_arrays)
    key = "Mixed_5b/Branch_2/Conv3d_0a_3x3/batch_norm/moving_variance"
    del short[key]
    prefix = write_tf1_checkpoint(tmp_path / "short.ckpt",
                                  scoped(short, RGB))
    with pytest.raises(CheckpointError, match=f"short.ckpt.*{RGB + key}"):
        ckpt.load_i3d_checkpoint(models, prefix)
    assert_unchanged(models, before)
    # Unreadable paths.
    with pytest.raises(CheckpointError, match="nope.ckpt"):
        ckpt.load_i3d_checkpoint(models, tmp_path / "nope.ckpt")
    assert isinstance(CheckpointError("x"), errors.DataError)


def test_dlpbc_names():
    names = [ckpt.keras_i3d_layer_name(s) for s in i3d.UNIT_SCOPES.values()]
    assert names == [dlpbc_name(s) for s in i3d.UNIT_SCOPES.values()]
    assert names[:4] == ["Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3",
                         "Conv3d_3b_0a_1x1"]
    assert "Conv3d_5b_2b_3x3" in names and "Conv3d_4f_3b_1x1" in names
    assert len(set(names)) == 57


def test_keras_h5_into_trunk_and_head(tmp_path, arrays, models):
    path = tmp_path / "rgb_inception_i3d_imagenet_and_kinetics.h5"
    write_dlpbc_h5(path, arrays, top=True)
    trunk, head = models
    report = ckpt.load_keras_i3d_weights([trunk, head], path)
    assert report.scope is None
    assert len(report.loaded) == 57 * 4
    assert list(report.loaded[:4]) == [
        "Conv3d_1a_7x7_conv/kernel:0", "Conv3d_1a_7x7_bn/beta:0",
        "Conv3d_1a_7x7_bn/moving_mean:0",
        "Conv3d_1a_7x7_bn/moving_variance:0"]
    assert report.unused == {"Conv3d_6a_1x1_conv/bias:0": ckpt.LOGITS,
                             "Conv3d_6a_1x1_conv/kernel:0": ckpt.LOGITS}
    assert report.unexpected == []
    assert_loaded([trunk, head], arrays)
    clip = np.random.default_rng(9).uniform(-1, 1, (1, 8, 32, 32, 3))
    clip = clip.astype("float32")
    np.testing.assert_allclose(
        trunk(clip), reference_forward(arrays, clip, trunk.endpoints),
        rtol=1e-4, atol=1e-4)


def test_keras_h5_full_model_layout_and_errors(tmp_path, small_arrays):
    models = small_models()
    # A full-model file (weights under model_weights), without the top.
    path = tmp_path / "no_top.h5"
    write_dlpbc_h5(path, small_arrays, top=False, model_weights=True)
    report = ckpt.load_keras_i3d_weights(models, path)
    assert report.unused == {}
    assert_loaded(models, small_arrays)

    before = snapshot(models)
    bad = dict(small_arrays)
    key = "Mixed_5b/Branch_2/Conv3d_0a_3x3/batch_norm/beta"
    bad[key] = bad[key][:-1]
    write_dlpbc_h5(tmp_path / "bad.h5", bad)
    with pytest.raises(CheckpointError) as info:
        ckpt.load_keras_i3d_weights(models, tmp_path / "bad.h5")
    message = str(info.value)
    for part in ("bad.h5", "Conv3d_5b_2b_3x3_bn", "beta", "(128,)",
                 "(127,)"):
        assert part in message
    assert_unchanged(models, before)

    short = {k: v for k, v in small_arrays.items()
             if not k.startswith("Mixed_5c/Branch_3/")}
    write_dlpbc_h5(tmp_path / "short.h5", short)
    with pytest.raises(CheckpointError,
                       match="short.h5.*Conv3d_5c_3b_1x1_conv/kernel"):
        ckpt.load_keras_i3d_weights(models, tmp_path / "short.h5")
    assert_unchanged(models, before)

    with pytest.raises(CheckpointError, match="nope.h5"):
        ckpt.load_keras_i3d_weights(models, tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(CheckpointError, match="text.h5"):
        ckpt.load_keras_i3d_weights(models, tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(CheckpointError, match="layer_names"):
        ckpt.load_keras_i3d_weights(models, tmp_path / "other.h5")
    assert_unchanged(models, before)


class _Holder(keras.layers.Layer):
    def __init__(self, trunk, head):
        super().__init__()
        self.trunk = trunk
        self.heads = [head]


def test_finds_units_in_nested_models(tmp_path, small_arrays):
    trunk, head = small_models()
    clips = keras.Input((None, None, None, 3))
    outer = keras.Model(clips, trunk(clips), name="outer")
    report = ckpt.load_i3d_checkpoint(
        [outer, head],
        write_tf1_checkpoint(tmp_path / "m.ckpt", scoped(small_arrays, RGB)))
    assert len(report.loaded) == (2 + 12) * 4
    assert_loaded([trunk, head], small_arrays)
    # A layer holding the models as attributes (as a detector model may).
    holder = _Holder(trunk, head)
    assert list(ckpt.find_units(holder)) == list(i3d.UNIT_SCOPES)[:2] + list(
        i3d.UNIT_SCOPES)[-12:]
    # The same model reached twice is one set of units ...
    assert list(ckpt.find_units([trunk, outer])) == list(
        ckpt.find_units(trunk))
    # ... two networks with the same unit names are ambiguous.
    other = i3d.build_i3d_trunk(endpoint="Conv3d_1a_7x7", input_channels=2)
    with pytest.raises(errors.ConfigError, match="occurs twice"):
        ckpt.find_units([trunk, other])
    with pytest.raises(errors.ConfigError, match="no I3D Unit3D"):
        ckpt.find_units(keras.Sequential([keras.layers.Dense(2)]))
