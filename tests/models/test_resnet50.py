"""ResNet-50 (torchvision v1.5 and keras.applications v1 layouts): shapes,
names, strides, freezing by stage, the Keras model contract, mixed precision.

Numerical parity with torchvision itself is checked in
tests/checkpoints/test_resnet50_checkpoint.py (stored torchvision outputs),
and the v1 layout against `keras.applications.ResNet50` there too.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checkpoints.test_resnet50_checkpoint import torchvision_shapes
from tfaction import errors
from tfaction.checkpoints.resnet50 import torchvision_targets
from tfaction.layers.frozen_batch_normalization import FrozenBatchNormalization
from tfaction.layers.fused_batch_normalization import FusedBatchNormalization
from tfaction.models.backbones import resnet50
from tfaction.models.backbones.resnet50 import ResNet50
from tfaction.models.backbones.resnet50 import build_resnet50
from tfaction.testing import run_model_test

STRIDES = {"conv1": 2, "maxpool": 4, "layer1": 4, "layer2": 8, "layer3": 16,
           "layer4": 32}
CHANNELS = {"conv1": 64, "maxpool": 64, "layer1": 256, "layer2": 512,
            "layer3": 1024, "layer4": 2048}


def images(n=1, h=64, w=48, seed=0):
    return np.random.default_rng(seed).standard_normal(
        (n, h, w, 3)).astype("float32")


def randomize(model, seed=0):
    """Random weights and batch-norm statistics, in torchvision-name order."""
    rng = np.random.default_rng(seed)
    for name, variable in torchvision_targets(model).items():
        shape = tuple(variable.shape)
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(".weight") and len(shape) == 1:
            value = rng.uniform(0.5, 1.0, shape)
        elif len(shape) == 4:
            value = rng.standard_normal(shape) / math.sqrt(np.prod(shape[:3]))
        else:
            value = rng.normal(0.0, 0.1, shape)
        variable.assign(value.astype("float32"))


@pytest.fixture(scope="module")
def v15():
    model = build_resnet50()
    randomize(model)
    return model


@pytest.fixture(scope="module")
def carl():
    """CARL's frame encoder: conv1 ... layer3 frozen, layer4 trained."""
    model = build_resnet50(frozen_stages=3)
    randomize(model, seed=1)
    return model


def test_names_are_torchvision_state_dict_names(v15):
    expected = {k for k in torchvision_shapes(fc=False)
                if not k.endswith("num_batches_tracked")}
    targets = torchvision_targets(v15)
    assert set(targets) == expected and len(targets) == 265
    for name, variable in targets.items():
        shape = torchvision_shapes()[name]
        if len(shape) == 4:  # OIHW -> HWIO
            shape = (shape[2], shape[3], shape[1], shape[0])
        assert tuple(variable.shape) == shape, name
    assert v15.count_params() == 23_561_152  # torchvision: 25,557,032 - fc
    # Conv layers are named like the torchvision modules they stand for.
    assert v15.get_layer("layer3_0_downsample_0").strides == (2, 2)
    assert isinstance(v15.get_layer("layer3_0_downsample_1"),
                      keras.layers.BatchNormalization)


@pytest.mark.parametrize("h,w", [(64, 48), (57, 43)])
def test_endpoint_shapes_and_strides(v15, h, w):
    features = v15.endpoint_model()(images(2, h, w))
    assert list(features) == list(STRIDES)
    for name, stride in STRIDES.items():
        size = tuple(features[name].shape)
        # PyTorch's floor((n + 2p - k) / s) + 1 is ceil(n / s) here.
        assert size == (2, math.ceil(h / stride), math.ceil(w / stride),
                        CHANNELS[name]), name
    assert v15.output_shape == (None, None, None, 2048)
    assert resnet50.ENDPOINT_STRIDES["layer4"] == 32


def test_padding_is_symmetric(v15):
    strided = 0
    for layer in v15.layers:
        if isinstance(layer, (keras.layers.Conv2D,
                              keras.layers.MaxPooling2D)):
            k = (layer.kernel_size if isinstance(layer, keras.layers.Conv2D)
                 else layer.pool_size)[0]
            if layer.strides[0] > 1:
                # Explicit k // 2 on both sides: Keras' "same" would pad
                # 0 / 1 at stride 2.
                assert layer.padding == "valid", layer.name
                if k > 1:
                    strided += 1
                    pad = v15.get_layer(f"{layer.name}_pad").padding
                    assert pad == ((k // 2, k // 2), (k // 2, k // 2)), (
                        layer.name)
            else:
                # "same" at stride 1 pads (k - 1) / 2 on both sides.
                assert layer.padding == "same", layer.name
                assert f"{layer.name}_pad" not in [l.name for l in v15.layers]
    assert strided == 5  # conv1, maxpool, layer2..4's first conv2


def test_stride_1_same_equals_explicit_symmetric_padding(v15):
    for layer in v15.layers:
        if (isinstance(layer, keras.layers.Conv2D) and layer.strides[0] == 1
                and layer.kernel_size[0] == 3):
            break
    k = keras.ops.convert_to_tensor(layer.kernel)
    inputs = keras.random.normal((2, 15, 12, k.shape[2]), seed=1)
    same = layer(inputs)
    padded = keras.ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
    valid = keras.ops.conv(padded, k, strides=1, padding="valid")
    np.testing.assert_allclose(same, valid, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("endpoint", resnet50.ENDPOINTS)
def test_endpoints(endpoint):
    model = ResNet50(endpoint=endpoint)
    out = model(images(1, 40, 40))
    stride = STRIDES[endpoint]
    assert tuple(out.shape) == (1, math.ceil(40 / stride),
                                math.ceil(40 / stride), CHANNELS[endpoint])
    assert model.endpoints[-1] == endpoint


def test_v1_differs_from_v15_where_expected(v15):
    v1 = build_resnet50(variant="v1", endpoint="layer2")
    # v1 (keras.applications): the stride in the first 1x1, conv biases.
    assert v1.get_layer("layer2_0_conv1").strides == (2, 2)
    assert v1.get_layer("layer2_0_conv2").strides == (1, 1)
    assert v15.get_layer("layer2_0_conv1").strides == (1, 1)
    assert v15.get_layer("layer2_0_conv2").strides == (2, 2)
    assert v1.get_layer("layer1_0_conv1").use_bias
    assert not v15.get_layer("layer1_0_conv1").use_bias
    assert v1.get_layer("bn1").epsilon == pytest.approx(1.001e-5)
    assert v15.get_layer("bn1").epsilon == pytest.approx(1e-5)
    # Same weights (zero biases): equal up to layer1 (all stride 1 after
    # the stem), different from layer2 on, with equal shapes.
    for layer in v1.layers:
        if layer.weights:
            source = v15.get_layer(layer.name)
            for v in layer.weights:
                v.assign(getattr(source, v.path.split("/")[-1]).numpy()
                         if v.path.split("/")[-1] != "bias"
                         or isinstance(layer, keras.layers.BatchNormalization)
                         else np.zeros(v.shape, "float32"))
    x = images()
    a = v15.endpoint_model(["layer1", "layer2"])(x)
    b = v1.endpoint_model(["layer1", "layer2"])(x)
    np.testing.assert_allclose(a["layer1"], b["layer1"], atol=1e-4)
    assert a["layer2"].shape == b["layer2"].shape
    assert np.abs(np.asarray(a["layer2"]) - np.asarray(b["layer2"])).max() > .1


def test_frozen_stages_freeze_weights_and_statistics(carl):
    for layer in carl.layers:
        stage = resnet50.stage_of(layer.name)
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.trainable == (stage == 4), layer.name
        if "bn" in layer.name or "downsample_1" in layer.name:
            if stage < 4:
                assert isinstance(layer, FrozenBatchNormalization)
                assert not layer.trainable and layer.scale, layer.name
            else:
                assert type(layer) is FusedBatchNormalization
                assert layer.momentum == pytest.approx(0.9)
    trainable = {v.path.split("/")[0] for v in carl.trainable_weights}
    assert trainable and {resnet50.stage_of(n) for n in trainable} == {4}
    # layer4: 10 convs (3 blocks x 3 + shortcut) and their 10 batch norms.
    assert len(carl.trainable_weights) == 10 + 10 * 2

    moving = {v.path: v.numpy().copy() for v in carl.non_trainable_weights}
    stem = carl.endpoint_model(["layer3"])
    x = images(2, 32, 32)
    before = np.asarray(stem(x)["layer3"])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(carl(x, training=True) ** 2)
    grads = tape.gradient(loss, carl.trainable_weights)
    assert all(g is not None for g in grads)
    # Frozen stages: the same function in training mode, statistics kept;
    # layer4 batch norms: batch statistics, moving averages updated.
    np.testing.assert_array_equal(
        np.asarray(stem(x, training=True)["layer3"]), before)
    for v in carl.non_trainable_weights:
        stage = resnet50.stage_of(v.path.split("/")[0])
        changed = not np.array_equal(moving[v.path], v.numpy())
        assert changed == (stage == 4 and "moving" in v.path), v.path
        v.assign(moving[v.path])


def test_frozen_stages_stay_frozen_when_made_trainable():
    model = build_resnet50(endpoint="layer1", frozen_stages=0)
    model.trainable = True  # e.g. a user unfreezing everything
    stats = [v.numpy().copy() for v in model.get_layer("bn1").weights[2:]]
    model(images(2, 32, 32), training=True)
    for v, old in zip(model.get_layer("bn1").weights[2:], stats):
        np.testing.assert_array_equal(v.numpy(), old)


def test_frozen_batch_norm_everywhere():
    model = build_resnet50(endpoint="layer2", frozen_stages=0,
                           frozen_batch_norm=True)
    norms = [layer for layer in model.layers
             if isinstance(layer, FrozenBatchNormalization)]
    assert len(norms) == 1 + 3 * 3 + 1 + 4 * 3 + 1
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in model.layers)
    assert [layer.trainable for layer in norms[:1]] == [False]
    assert all(layer.trainable for layer in norms[1:])
    x = images(2, 32, 32)
    np.testing.assert_array_equal(model(x, training=True),
                                  model(x, training=False))
    trainable = {v.path.split("/")[-1] for v in model.trainable_weights}
    assert trainable == {"kernel", "gamma", "beta"}


def test_weight_decay_on_trainable_convs():
    model = build_resnet50(endpoint="layer1", frozen_stages=0,
                           weight_decay=1e-4)
    model(images(1, 16, 16))
    assert len(model.losses) == 10  # layer1: 3 blocks x 3 convs + shortcut


@pytest.mark.parametrize("kwargs,match", [
    ({"variant": "v2"}, "variant"),
    ({"endpoint": "layer5"}, "endpoint"),
    ({"frozen_stages": 4, "endpoint": "layer3"}, "frozen_stages"),
    ({"frozen_stages": -2}, "frozen_stages"),
    ({"weight_decay": -1.0}, "weight_decay"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(errors.ConfigError, match=match):
        build_resnet50(**kwargs)


def test_model_contract():
    # Config round trip, registration, XLA == eager, .keras reload in safe
    # mode with frozen stages and both kinds of batch norm.
    run_model_test(ResNet50,
                   {"endpoint": "layer2", "frozen_stages": 1,
                    "name": "resnet50_small"},
                   images(1, 32, 32), expected_output_shape=(1, 4, 4, 512))


def test_keras_round_trip_keeps_freezing(tmp_path, carl):
    path = tmp_path / "carl_encoder.keras"
    carl.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    assert type(restored) is ResNet50
    assert restored.get_config() == carl.get_config()
    assert [v.path for v in restored.trainable_weights] == \
        [v.path for v in carl.trainable_weights]
    x = images(1, 32, 32)
    np.testing.assert_allclose(restored(x), carl(x), rtol=1e-6, atol=1e-6)


def test_mixed_precision(v15):
    model = build_resnet50(endpoint="layer3", frozen_stages=2,
                           dtype="mixed_float16")
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(v15.get_layer(layer.name).get_weights())
    assert all(v.dtype == "float32" for v in model.weights)
    x = images(1, 64, 48)
    out = model(x, training=False)
    assert out.dtype == "float16"
    want = np.asarray(v15.endpoint_model(["layer3"])(x)["layer3"])
    got = np.asarray(out, "float32")
    assert np.isfinite(got).all()
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
    # Training mode: float32 batch statistics in the trainable stages.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(model(x, training=True), "float32"))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.isfinite(np.asarray(g)).all()
               for g in grads)
