"""VGG16 trunk: architecture, pre-ReLU endpoint, Keras and TF-slim loaders."""

import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.models.backbones import vgg16

CONVS = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2",
         "block3_conv1", "block3_conv2", "block3_conv3", "block4_conv1",
         "block4_conv2", "block4_conv3", "block5_conv1", "block5_conv2",
         "block5_conv3"]


@pytest.fixture(scope="module")
def reference():
    """`keras.applications.VGG16` without top, random (never downloaded)."""
    keras.utils.set_random_seed(0)
    return keras.applications.VGG16(weights=None, include_top=False)


@pytest.fixture(scope="module")
def ref_weights(reference):
    return {name: reference.get_layer(name).get_weights() for name in CONVS}


@pytest.fixture(scope="module")
def files(tmp_path_factory, reference, ref_weights):
    """The reference weights in every format the loaders accept."""
    root = tmp_path_factory.mktemp("vgg16")
    out = {"weights_h5": root / "notop.weights.h5",
           "model_h5": root / "model.h5",
           "keras2_notop_h5": root / "keras2_notop.h5",
           "keras_archive": root / "model.keras"}
    reference.save_weights(out["weights_h5"])
    reference.save(out["model_h5"])  # legacy full-model HDF5
    reference.save(out["keras_archive"])
    write_keras2_h5(out["keras2_notop_h5"], ref_weights)
    return out


def write_keras2_h5(path, weights):
    """Writes the layout of Keras' downloadable `..._notop.h5` files."""
    with h5py.File(path, "w") as f:
        names = list(weights)
        f.attrs["layer_names"] = [n.encode() for n in names]
        for name in names:
            group = f.create_group(name)
            leaves = [f"{name}/kernel:0", f"{name}/bias:0"]
            group.attrs["weight_names"] = [w.encode() for w in leaves]
            for leaf, value in zip(leaves, weights[name]):
                group[leaf] = value


def slim_name(layer_name):
    block, conv = layer_name[5], layer_name[-1]
    return f"vgg_16/conv{block}/conv{block}_{conv}"


def write_slim_checkpoint(prefix, weights):
    """A TF1 checkpoint with TF-slim VGG16 variable names.

    `tf.train.Checkpoint` names variables by object path, so the graph-mode
    `tf.compat.v1.train.Saver` writes the names slim used.
    """
    with tf.Graph().as_default():
        variables, feed = [], {}
        for layer_name, (kernel, bias) in weights.items():
            with tf.compat.v1.variable_scope(slim_name(layer_name)):
                for leaf, value in (("weights", kernel), ("biases", bias)):
                    # Fed, not embedded as constants: 10x faster.
                    init = tf.compat.v1.placeholder(value.dtype, value.shape)
                    feed[init] = value
                    variables.append(tf.compat.v1.get_variable(
                        leaf, initializer=init))
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer(), feed)
            return saver.save(sess, str(prefix))


def assert_weights(trunk, weights, names=CONVS):
    for name in names:
        kernel, bias = trunk.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel, weights[name][0], err_msg=name)
        np.testing.assert_array_equal(bias, weights[name][1], err_msg=name)


def images(shape, channels=3, batch=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-120, 130, (batch, *shape, channels)).astype("float32")


def test_architecture_matches_keras_applications(reference):
    trunk = vgg16.build_vgg16_trunk()
    ref_layers = [layer for layer in reference.layers[1:]
                  if layer.name != "block5_pool"]  # no pool after conv5_3
    assert [layer.name for layer in trunk.layers[1:]] == [
        layer.name for layer in ref_layers]
    assert trunk.count_params() == reference.count_params() == 14_714_688
    for ours, ref in zip(trunk.layers[1:], ref_layers):
        assert type(ours) is type(ref)
        assert ([tuple(w.shape) for w in ours.weights]
                == [tuple(w.shape) for w in ref.weights]), ours.name
        ours_cfg, ref_cfg = ours.get_config(), ref.get_config()
        for key in ("kernel_size", "strides", "padding", "pool_size",
                    "filters", "dilation_rate"):
            assert ours_cfg.get(key) == ref_cfg.get(key), (ours.name, key)
        want = ("linear" if ours.name == "block5_conv3"
                else ref_cfg.get("activation"))
        assert ours_cfg.get("activation") == want, ours.name
    assert trunk.output_shape == (None, None, None, 512)
    assert vgg16.conv_layer_names(trunk) == CONVS
    assert vgg16.conv5_layer_names(trunk) == CONVS[-3:]
    post = vgg16.build_vgg16_trunk(pre_relu=False)
    assert post.get_layer("block5_conv3").get_config()["activation"] == "relu"


def test_pre_relu_endpoint_equals_applications_pre_activation(
        reference, ref_weights):
    trunk = vgg16.build_vgg16_trunk()
    for name in CONVS:
        trunk.get_layer(name).set_weights(ref_weights[name])
    x = images((48, 64), batch=2)
    ours = trunk(x).numpy()
    assert ours.shape == (2, 3, 4, 512)
    taps = keras.Model(reference.input,
                       [reference.get_layer("block5_conv2").output,
                        reference.get_layer("block5_conv3").output])
    conv5_2, conv5_3 = (t.numpy() for t in taps(x))
    kernel, bias = ref_weights["block5_conv3"]
    pre = tf.nn.conv2d(conv5_2, kernel, 1, "SAME") + bias
    scale = np.abs(pre).max()
    np.testing.assert_allclose(ours, pre, atol=1e-5 * scale)
    np.testing.assert_allclose(np.maximum(ours, 0), conv5_3,
                               atol=1e-5 * scale)
    assert (ours < 0).mean() > 0.1  # really before the ReLU


def test_conv4_3_endpoint(reference, ref_weights):
    trunk = vgg16.build_vgg16_trunk(endpoint="conv4_3")
    assert trunk.layers[-1].name == "block4_conv3"
    assert vgg16.conv_layer_names(trunk) == CONVS[:10]
    assert vgg16.conv5_layer_names(trunk) == []
    for name in CONVS[:10]:
        trunk.get_layer(name).set_weights(ref_weights[name])
    x = images((48, 64))
    ours = trunk(x).numpy()
    assert ours.shape == (1, 6, 8, 512)
    tap = keras.Model(reference.input,
                      reference.get_layer("block4_conv3").output)
    np.testing.assert_allclose(np.maximum(ours, 0), tap(x),
                               atol=1e-5 * np.abs(ours).max())
    assert ours.min() < 0


@pytest.mark.parametrize("kind", ["weights_h5", "model_h5", "keras2_notop_h5",
                                  "keras_archive"])
def test_loads_keras_weights_exactly(files, ref_weights, kind):
    trunk = vgg16.build_vgg16_trunk()
    loaded = vgg16.load_keras_vgg16_weights(trunk, files[kind])
    assert loaded == CONVS
    assert_weights(trunk, ref_weights)


def test_keras_weights_into_conv4_3_trunk_ignore_block5(files, ref_weights):
    trunk = vgg16.build_vgg16_trunk(endpoint="conv4_3")
    assert vgg16.load_keras_vgg16_weights(
        trunk, files["weights_h5"]) == CONVS[:10]
    assert_weights(trunk, ref_weights, CONVS[:10])


def test_adapt_first_conv_kernel():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 3, 8)).astype("float32")
    flow = vgg16.adapt_first_conv_kernel(kernel, 20)
    assert flow.shape == (3, 3, 20, 8) and flow.dtype == np.float32
    mean = kernel.mean(axis=2)
    for c in range(20):
        np.testing.assert_allclose(flow[:, :, c], mean, rtol=1e-6)
    with pytest.raises(errors.ConfigError):
        vgg16.adapt_first_conv_kernel(kernel[0], 20)


def expected_flow(ref_weights, channels=20):
    want = dict(ref_weights)
    kernel, bias = ref_weights["block1_conv1"]
    want["block1_conv1"] = [
        np.repeat(kernel.mean(axis=2, keepdims=True), channels, axis=2),
        bias]
    return want


def test_flow_trunk_from_keras_rgb_weights(files, ref_weights):
    trunk = vgg16.build_vgg16_trunk(input_channels=20)
    vgg16.load_keras_vgg16_weights(trunk, files["keras2_notop_h5"])
    got = trunk.get_layer("block1_conv1").kernel.numpy()
    want = expected_flow(ref_weights)
    np.testing.assert_allclose(got, want["block1_conv1"][0], atol=1e-7)
    assert_weights(trunk, ref_weights, CONVS[1:])
    assert trunk(images((32, 32), channels=20)).shape == (1, 2, 2, 512)


@pytest.fixture(scope="module")
def slim_ckpt(tmp_path_factory, ref_weights):
    root = tmp_path_factory.mktemp("slim")
    return write_slim_checkpoint(root / "model.ckpt", ref_weights)


def test_loads_slim_checkpoint(slim_ckpt, ref_weights):
    reader = tf.train.load_checkpoint(slim_ckpt)
    assert "vgg_16/conv5/conv5_3/weights" in reader.get_variable_to_shape_map()
    trunk = vgg16.build_vgg16_trunk()
    assert vgg16.load_slim_vgg16_checkpoint(trunk, slim_ckpt) == CONVS
    assert_weights(trunk, ref_weights)
    # A checkpoint directory works as well as a prefix.
    other = vgg16.build_vgg16_trunk(endpoint="conv4_3")
    vgg16.load_slim_vgg16_checkpoint(other, os.path.dirname(slim_ckpt))
    assert_weights(other, ref_weights, CONVS[:10])


def test_slim_flow_checkpoints(tmp_path, slim_ckpt, ref_weights):
    # RGB checkpoint -> flow trunk: cross-modality average.
    trunk = vgg16.build_vgg16_trunk(input_channels=20, endpoint="conv4_3")
    vgg16.load_slim_vgg16_checkpoint(trunk, slim_ckpt)
    want = expected_flow(ref_weights)
    np.testing.assert_allclose(trunk.get_layer("block1_conv1").kernel,
                               want["block1_conv1"][0], atol=1e-7)
    assert_weights(trunk, ref_weights, CONVS[1:10])
    # A flow checkpoint (20-channel conv1_1) loads as it is.
    rng = np.random.default_rng(2)
    flow_weights = {name: ref_weights[name] for name in CONVS[:10]}
    flow_weights["block1_conv1"] = [
        rng.normal(size=(3, 3, 20, 64)).astype("float32"),
        ref_weights["block1_conv1"][1]]
    prefix = write_slim_checkpoint(tmp_path / "flow.ckpt", flow_weights)
    vgg16.load_slim_vgg16_checkpoint(trunk, prefix)
    assert_weights(trunk, flow_weights, CONVS[:10])


def test_missing_files(tmp_path):
    trunk = vgg16.build_vgg16_trunk(endpoint="conv4_3")
    missing = tmp_path / "nope.h5"
    with pytest.raises(errors.MalformedFileError, match="nope.h5"):
        vgg16.load_keras_vgg16_weights(trunk, missing)
    with pytest.raises(errors.MalformedFileError, match="nope.ckpt"):
        vgg16.load_slim_vgg16_checkpoint(trunk, tmp_path / "nope.ckpt")
    garbage = tmp_path / "garbage.h5"
    garbage.write_text("not weights")
    with pytest.raises(errors.MalformedFileError, match="garbage.h5"):
        vgg16.load_keras_vgg16_weights(trunk, garbage)


def test_keras_file_errors_name_file_layer_and_shapes(tmp_path, ref_weights):
    trunk = vgg16.build_vgg16_trunk()
    before = trunk.get_weights()
    bad = dict(ref_weights)
    bad["block3_conv2"] = [ref_weights["block3_conv2"][0][:, :, :128],
                           ref_weights["block3_conv2"][1]]
    write_keras2_h5(tmp_path / "bad.h5", bad)
    with pytest.raises(errors.MalformedFileError) as info:
        vgg16.load_keras_vgg16_weights(trunk, tmp_path / "bad.h5")
    message = str(info.value)
    for part in ("bad.h5", "block3_conv2", "(3, 3, 256, 256)",
                 "(3, 3, 128, 256)"):
        assert part in message
    # Nothing was assigned: the load is all or nothing.
    for got, want in zip(trunk.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    # A 1-channel first layer is neither RGB nor the trunk's channels.
    bad = dict(ref_weights)
    bad["block1_conv1"] = [ref_weights["block1_conv1"][0][:, :, :1],
                           ref_weights["block1_conv1"][1]]
    write_keras2_h5(tmp_path / "gray.h5", bad)
    with pytest.raises(errors.MalformedFileError,
                       match=r"block1_conv1.*\(3, 3, 3, 64\).*\(3, 3, 1, 64\)"):
        vgg16.load_keras_vgg16_weights(trunk, tmp_path / "gray.h5")
    partial = {name: ref_weights[name] for name in CONVS[:-1]}
    write_keras2_h5(tmp_path / "short.h5", partial)
    with pytest.raises(errors.MalformedFileError,
                       match="short.h5.*block5_conv3"):
        vgg16.load_keras_vgg16_weights(trunk, tmp_path / "short.h5")


def test_slim_errors_name_checkpoint_variable_and_shapes(tmp_path,
                                                         ref_weights):
    trunk = vgg16.build_vgg16_trunk(endpoint="conv4_3")
    small = {name: ref_weights[name] for name in CONVS[:10]}
    small["block2_conv2"] = [ref_weights["block2_conv2"][0],
                             ref_weights["block2_conv2"][1][:7]]
    prefix = write_slim_checkpoint(tmp_path / "bad.ckpt", small)
    with pytest.raises(errors.MalformedFileError) as info:
        vgg16.load_slim_vgg16_checkpoint(trunk, prefix)
    message = str(info.value)
    for part in ("bad.ckpt", "vgg_16/conv2/conv2_2/biases", "(128,)",
                 "(7,)"):
        assert part in message
    del small["block4_conv3"]
    prefix = write_slim_checkpoint(tmp_path / "short.ckpt", small)
    with pytest.raises(errors.MalformedFileError,
                       match="short.ckpt.*vgg_16/conv4/conv4_3/weights"):
        vgg16.load_slim_vgg16_checkpoint(trunk, prefix)


@pytest.fixture
def mixed_float16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def test_mixed_float16(mixed_float16, files, ref_weights):
    trunk = vgg16.build_vgg16_trunk(endpoint="conv4_3")
    conv = trunk.get_layer("block1_conv1")
    assert conv.compute_dtype == "float16"
    assert conv.kernel.dtype == "float32"
    vgg16.load_keras_vgg16_weights(trunk, files["weights_h5"])
    assert_weights(trunk, ref_weights, CONVS[:10])
    out = trunk(images((32, 32)))
    assert out.dtype == "float16" and out.shape == (1, 4, 4, 512)
    assert np.isfinite(out.numpy()).all()


def test_explicit_dtype_policy_and_bad_config():
    trunk = vgg16.build_vgg16_trunk(endpoint="conv4_3",
                                    dtype="mixed_bfloat16")
    assert trunk.get_layer("block4_conv3").compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(errors.ConfigError, match="conv3_3"):
        vgg16.build_vgg16_trunk(endpoint="conv3_3")


def test_weight_decay_regularises_kernels_only():
    assert vgg16.build_vgg16_trunk(endpoint="conv4_3").losses == []
    trunk = vgg16.build_vgg16_trunk(endpoint="conv4_3", weight_decay=2e-5)
    losses = trunk.losses
    assert len(losses) == 10  # one per conv kernel, none on biases
    want = sum(2e-5 * np.sum(np.square(trunk.get_layer(n).kernel.numpy()))
               for n in CONVS[:10])
    np.testing.assert_allclose(sum(float(v) for v in losses), want,
                               rtol=1e-5)
