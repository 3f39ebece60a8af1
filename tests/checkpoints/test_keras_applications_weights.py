"""keras.applications ImageNet weights as the alternative trunk weights.

CARL (`task.model.trunk_variant="v1"`) and AdaFocus V2
(`task.model.glance_variant` / `focus_variant = "keras"`) can start from
keras.applications' ResNet50 (v1) and MobileNetV2 ImageNet files instead
of the torchvision / authors' `.pth` files. Nothing is downloaded: a
`keras.applications.ResNet50` / `MobileNetV2(alpha=1.0)` without top gets
random weights and batch-norm statistics and is written
(1) with Keras 3's `save_weights`, then renamed to the name of the file
Keras downloads (`resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`,
`mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5`), and
(2) in the legacy HDF5 layout of those downloads (`layer_names` /
`weight_names`, MobileNetV2's depthwise kernels as `depthwise_kernel`).

Parity: tfaction's trunk with the file loaded, fed torchvision-normalised
RGB (`input_normalization="imagenet"`, what the recipes' data pipelines
give), equals the keras.applications model fed
`keras.applications.<model>.preprocess_input` of the same pixels (caffe
BGR for ResNet50, `x / 127.5 - 1` for MobileNetV2) to 1e-4 in float32.
Then a CARL and an AdaFocus config pointing at such files build the
model with the weights in place, and the variant / file mismatches are
refused naming both keys.
"""

import math
import shutil

import h5py
import keras
import numpy as np
import pytest

from tests.checkpoints.test_resnet50_checkpoint import write_keras_legacy_h5
from tests.tasks.test_adafocus_task import make_config as adafocus_config_of
from tests.tasks.test_carl_task import make_config as carl_config_of
from tfaction import errors
from tfaction import tasks
from tfaction.checkpoints import adafocus as adafocus_ckpt
from tfaction.checkpoints import resnet50 as resnet50_ckpt
from tfaction.checkpoints.errors import CheckpointError
from tfaction.data.formats.adafocus_lists import convert_adafocus_lists
from tfaction.data.formats.tcc import convert_tcc
from tfaction.data.synthetic.adafocus import generate_adafocus
from tfaction.data.synthetic.tcc import generate_tcc
from tfaction.models.backbones.mobilenet_v2 import build_mobilenet_v2
from tfaction.models.backbones.resnet50 import build_resnet50
from tfaction.tasks import adafocus_config
from tfaction.tasks import carl_config

RESNET50_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
MOBILENET_V2_FILE = ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_"
                     "224_no_top.h5")
# torchvision's ImageNet normalisation (this test's own statement).
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
TOLERANCE = 1e-4


def randomize(app, seed, gain=1.0):
    """Random kernels (unit-variance outputs), biases and batch-norm
    statistics (scales `gain * U(0.5, 1)`, enough to keep the features of
    order 1), so that a wrong layer, layout or padding shows."""
    rng = np.random.default_rng(seed)
    for layer in app.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([gain * rng.uniform(0.5, 1.0, c),
                               rng.normal(0, .1, c),
                               rng.normal(0, .1, c), rng.uniform(.5, 1.5, c)])
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            k = layer.kernel.shape
            layer.set_weights([rng.standard_normal(k) / 3.0])
        elif isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel.shape
            kernel = rng.standard_normal(k) / math.sqrt(np.prod(k[:3]))
            layer.set_weights([kernel] + [rng.normal(0, 0.1, k[-1])] * (
                len(layer.weights) - 1))
    return app


def saved_as_download(app, folder, name):
    """Keras 3 `save_weights`, renamed to the download's legacy name."""
    app.save_weights(folder / "app.weights.h5")
    return shutil.move(folder / "app.weights.h5", folder / name)


def pixels(seed, size):
    rgb = np.random.default_rng(seed).uniform(0, 1, (2, *size, 3))
    return rgb.astype("float32")


def imagenet(rgb):
    return ((rgb - MEAN) / STD).astype("float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_resnet50")
    app = randomize(keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(None, None, 3)), 3,
        gain=0.7)
    return app, saved_as_download(app, folder, RESNET50_FILE)


@pytest.fixture(scope="module")
def mobilenet_v2_files(tmp_path_factory):
    """The application and its weights in both layouts."""
    folder = tmp_path_factory.mktemp("keras_mobilenet_v2")
    app = randomize(keras.applications.MobileNetV2(
        weights=None, include_top=False, alpha=1.0,
        input_shape=(None, None, 3)), 4, gain=1.5)
    (folder / "legacy").mkdir()
    legacy = write_keras_legacy_h5(folder / "legacy" / MOBILENET_V2_FILE,
                                   app, top=False)
    # Keras 2 named the depthwise kernels "depthwise_kernel".
    with h5py.File(legacy, "r+") as f:
        for name in [n for n in f if n.endswith("depthwise")]:
            f.move(f"{name}/{name}/kernel:0",
                   f"{name}/{name}/depthwise_kernel:0")
            f[name].attrs["weight_names"] = [
                f"{name}/depthwise_kernel:0".encode()]
    return app, {"legacy": legacy,
                 "save_weights": saved_as_download(app, folder,
                                                   MOBILENET_V2_FILE)}


# --- trunk parity --------------------------------------------------------


def test_resnet50_v1_equals_keras_applications(resnet50_file):
    app, path = resnet50_file
    model = build_resnet50(variant="v1", input_normalization="imagenet")
    report = resnet50_ckpt.load_keras_resnet50_weights(model, path)
    assert len(report.loaded) == 53 * 2 + 53 * 4 and report.unused == {}
    rgb = pixels(0, (64, 64))
    want = numpy(app(keras.applications.resnet50.preprocess_input(
        255.0 * rgb), training=False))
    got = numpy(model(imagenet(rgb), training=False))
    assert got.shape == want.shape == (2, 2, 2, 2048)
    assert np.abs(want).max() > 1.0  # not a vanishing signal
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
    # The conversion is the only difference from the native v1 model.
    assert model.get_layer("input_conversion").reverse_channels
    assert "input_conversion" not in [
        layer.name for layer in build_resnet50(variant="v1.5").layers]


@pytest.mark.parametrize("layout", ["save_weights", "legacy"])
def test_mobilenet_v2_keras_variant_equals_keras_applications(
        mobilenet_v2_files, layout):
    app, paths = mobilenet_v2_files
    model = build_mobilenet_v2(variant="keras",
                               input_normalization="imagenet")
    report = adafocus_ckpt.load_keras_mobilenet_v2_weights(model,
                                                           paths[layout])
    assert len(report.loaded) == 52 + 52 * 4 and report.unused == {}
    assert ("block_1_depthwise/depthwise_kernel" if layout == "legacy"
            else "block_1_depthwise/kernel") in report.loaded
    rgb = pixels(1, (64, 64))
    want = numpy(app(keras.applications.mobilenet_v2.preprocess_input(
        255.0 * rgb), training=False))
    got = numpy(model(imagenet(rgb), training=False))
    assert got.shape == want.shape == (2, 2, 2, 1280)
    assert np.abs(want).max() > 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
    # Odd sizes on the way (50 -> 25 -> 13 ...): keras.applications built
    # for that static size pads its strided convs TF-"same", as we do.
    static = keras.applications.MobileNetV2(
        weights=None, include_top=False, alpha=1.0, input_shape=(50, 50, 3))
    static.set_weights(app.get_weights())
    rgb = pixels(2, (50, 50))
    want = numpy(static(keras.applications.mobilenet_v2.preprocess_input(
        255.0 * rgb), training=False))
    np.testing.assert_allclose(numpy(model(imagenet(rgb), training=False)),
                               want, rtol=0, atol=TOLERANCE)
    # torchvision's layout (symmetric padding, epsilon 1e-5) is another
    # function of the same weights.
    torchvision = build_mobilenet_v2(input_normalization="imagenet")
    for ours, theirs in zip(torchvision.weights, model.weights):
        ours.assign(theirs)
    other = numpy(torchvision(imagenet(rgb), training=False))
    assert np.abs(other - want).max() > 0.1


def test_keras_mobilenet_v2_names():
    names = {layer.name: adafocus_ckpt.keras_mobilenet_v2_name(
        layer.name, layer.name.startswith("features_1_"))
        for layer in build_mobilenet_v2(variant="keras").layers
        if layer.weights}
    app = keras.applications.MobileNetV2(weights=None, include_top=False,
                                         input_shape=(None, None, 3))
    assert sorted(names.values()) == sorted(
        layer.name for layer in app.layers if layer.weights)
    with pytest.raises(ValueError, match="not a conv or batch-norm"):
        adafocus_ckpt.keras_mobilenet_v2_name("features_3_add")


def test_loaders_refuse_the_other_layout(mobilenet_v2_files, resnet50_file,
                                         tmp_path):
    _, paths = mobilenet_v2_files
    torchvision = build_mobilenet_v2()
    with pytest.raises(errors.ConfigError, match="variant='keras'"):
        adafocus_ckpt.load_keras_mobilenet_v2_weights(torchvision,
                                                      paths["legacy"])
    keras_variant = build_mobilenet_v2(variant="keras")
    with pytest.raises(errors.ConfigError, match="variant='torchvision'"):
        adafocus_ckpt.load_mobilenet_v2_checkpoint(keras_variant, {})
    before = [np.array(v) for v in keras_variant.weights]
    # A ResNet50 file is no MobileNetV2 file: named, nothing assigned.
    with pytest.raises(CheckpointError, match=(
            f"{RESNET50_FILE}: not a keras.applications.MobileNetV2 "
            f"weights file")):
        adafocus_ckpt.load_keras_mobilenet_v2_weights(keras_variant,
                                                      resnet50_file[1])
    with pytest.raises(CheckpointError, match="not found"):
        adafocus_ckpt.load_keras_mobilenet_v2_weights(
            keras_variant, tmp_path / MOBILENET_V2_FILE)
    assert all(np.array_equal(b, v) for b, v in zip(before,
                                                    keras_variant.weights))


# --- CARL --------------------------------------------------------------


@pytest.fixture(scope="module")
def carl_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("carl_keras_weights")
    generate_tcc(root / "raw", num_videos=4, seed=3, size=32, min_frames=12,
                 max_frames=14, val_every=2)
    convert_tcc(str(root / "raw" / "*.tfrecord"), str(root / "records"),
                num_shards=1)
    return root / "records"


def test_carl_config_builds_the_v1_trunk_from_keras_weights(
        carl_dataset, resnet50_file):
    app, path = resnet50_file
    config = carl_config_of(carl_dataset)
    task = config.task
    task.train_from_scratch = False
    task.model.trunk = "resnet50"
    task.model.trunk_variant = "v1"
    task.trunk_weights = str(path)
    model = tasks.build_task(config).build_model()
    trunk = model.trunk_model
    assert trunk.variant == "v1" and trunk.frozen_stages == 3
    for ours, theirs in (("conv1", "conv1_conv"),
                         ("layer4_2_bn3", "conv5_block3_3_bn"),
                         ("layer2_0_downsample_0", "conv3_block1_0_conv")):
        for mine, keras_weight in zip(trunk.get_layer(ours).weights,
                                      app.get_layer(theirs).weights):
            np.testing.assert_array_equal(np.array(mine),
                                          np.array(keras_weight))
    # The recipe's frames (ImageNet-normalised RGB) get keras' caffe input.
    rgb = pixels(3, (32, 32))
    want = numpy(app(keras.applications.resnet50.preprocess_input(
        255.0 * rgb), training=False))
    np.testing.assert_allclose(numpy(trunk(imagenet(rgb), training=False)),
                               want, rtol=0, atol=TOLERANCE)


def test_carl_config_refuses_mismatched_weights(carl_dataset):
    def refused(variant, weights, match):
        config = carl_config_of(carl_dataset)
        config.task.model.trunk = "resnet50"
        config.task.model.trunk_variant = variant
        config.task.trunk_weights = weights
        with pytest.raises(errors.ConfigError, match=match):
            carl_config.validate(config.task)

    both = r"task.trunk_weights=.*task.model.trunk_variant="
    refused("v1.5", RESNET50_FILE, both + "'v1.5'.* Set task.model."
            "trunk_variant='v1'")
    refused("v1", "BYOL_1000.pth", both + "'v1' builds keras.applications")
    refused("v2", "", r"task.model.trunk_variant='v2' must be one of")
    config = carl_config_of(carl_dataset)
    config.task.model.trunk = "resnet50"
    config.task.model.trunk_variant = "v1"
    config.task.views.mean = (0.5, 0.5, 0.5)
    with pytest.raises(errors.ConfigError,
                       match=r"task.views.mean=\(0.5, 0.5, 0.5\) must be "
                             r"ImageNet's"):
        carl_config.validate(config.task)


# --- AdaFocus V2 --------------------------------------------------------


@pytest.fixture(scope="module")
def adafocus_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("adafocus_keras_weights")
    generate_adafocus(root / "raw", num_videos=4, seed=2, num_classes=2,
                      height=37, width=37, num_distractors=1, min_frames=4,
                      max_frames=5)
    raw = root / "raw"
    convert_adafocus_lists(
        [raw / "actnet_train_split.txt", raw / "actnet_val_split.txt"],
        raw / "frames", root / "records", dataset="actnet",
        class_list=raw / "classInd.txt")
    return root


def keras_trunks_config(dataset, glance_arch, glance_file, focus_file):
    config = adafocus_config_of(dataset)
    task = config.task
    task.train_from_scratch = False
    task.model.glance_arch = glance_arch
    task.model.focus_arch = "resnet50"
    task.model.glance_variant = "keras"
    task.model.focus_variant = "keras"
    task.glance_weights = str(glance_file)
    task.focus_weights = str(focus_file)
    return config


def assert_same_weights(trunk, app):
    """Every weight of `trunk` equals its keras.applications layer's."""
    def keras_name(name):
        if trunk.__class__.__name__ == "ResNet50":
            return resnet50_ckpt.keras_applications_name(name)
        return adafocus_ckpt.keras_mobilenet_v2_name(
            name, name.startswith("features_1_"))

    layers = [layer for layer in trunk.layers if layer.weights]
    assert len(layers) == len([a for a in app.layers if a.weights])
    for layer in layers:
        theirs = app.get_layer(keras_name(layer.name)).weights
        assert len(layer.weights) == len(theirs)
        for mine, keras_weight in zip(layer.weights, theirs):
            np.testing.assert_array_equal(np.array(mine),
                                          np.array(keras_weight))


@pytest.mark.parametrize("glance_arch", ["mobilenet_v2", "resnet50"])
def test_adafocus_config_builds_keras_trunks(adafocus_dataset, resnet50_file,
                                            mobilenet_v2_files, glance_arch):
    resnet_app, resnet_path = resnet50_file
    mobilenet_app, mobilenet_paths = mobilenet_v2_files
    glance_app, glance_path = (
        (mobilenet_app, mobilenet_paths["legacy"])
        if glance_arch == "mobilenet_v2" else (resnet_app, resnet_path))
    config = keras_trunks_config(adafocus_dataset, glance_arch, glance_path,
                                 resnet_path)
    model = tasks.build_task(config).build_model()
    assert_same_weights(model.focus, resnet_app)
    assert_same_weights(model.glance, glance_app)
    preprocess = (keras.applications.mobilenet_v2.preprocess_input
                  if glance_arch == "mobilenet_v2"
                  else keras.applications.resnet50.preprocess_input)
    rgb = pixels(5, (32, 32))
    np.testing.assert_allclose(
        numpy(model.glance(imagenet(rgb), training=False)),
        numpy(glance_app(preprocess(255.0 * rgb), training=False)),
        rtol=0, atol=TOLERANCE)


def test_adafocus_config_refuses_mismatched_weights(adafocus_dataset):
    def refused(change, match):
        config = keras_trunks_config(adafocus_dataset, "mobilenet_v2",
                                     MOBILENET_V2_FILE, RESNET50_FILE)
        change(config.task)
        with pytest.raises(errors.ConfigError, match=match):
            adafocus_config.validate(config.task)

    refused(lambda t: setattr(t.model, "glance_variant", "torchvision"),
            r"task.glance_weights='mobilenet_v2_.*_no_top.h5' holds "
            r"keras.applications' weights, but task.model.glance_variant="
            r"'torchvision'; set task.model.glance_variant='keras'")
    refused(lambda t: setattr(t, "focus_weights", "resnet50-19c8e357.pth"),
            r"task.focus_weights='resnet50-19c8e357.pth' holds PyTorch .*"
            r"task.model.focus_variant='keras'; set task.model."
            r"focus_variant='torchvision'")
    refused(lambda t: setattr(t.model, "focus_variant", "tf"),
            r"task.model.focus_variant='tf' must be one of")
    refused(lambda t: setattr(t, "adafocus_weights", "actnet_p128.pth.tar"),
            r"task.adafocus_weights .*task.model.glance_variant='keras'")
    refused(lambda t: setattr(t.frames, "std", (1.0, 1.0, 1.0)),
            r"task.frames.std=\(1.0, 1.0, 1.0\) must be ImageNet's")


# --- the variants as models ------------------------------------------------


@pytest.mark.parametrize("build", [
    lambda: build_resnet50(variant="v1", endpoint="layer1",
                           input_normalization="imagenet"),
    lambda: build_mobilenet_v2(0.25, variant="keras",
                               input_normalization="imagenet")],
    ids=["resnet50_v1", "mobilenet_v2_keras"])
def test_keras_variants_round_trip(tmp_path, build):
    model = build()
    x = imagenet(pixels(6, (32, 32)))
    model.save(tmp_path / "trunk.keras")
    again = keras.models.load_model(tmp_path / "trunk.keras", safe_mode=True)
    assert again.get_config() == model.get_config()
    np.testing.assert_allclose(numpy(again(x)), numpy(model(x)), rtol=0,
                               atol=1e-6)


def test_variant_arguments_are_checked():
    with pytest.raises(errors.ConfigError, match="input_normalization 'tf'"):
        build_resnet50(variant="v1", input_normalization="tf")
    with pytest.raises(errors.ConfigError, match="input_channels=2"):
        build_resnet50(variant="v1", input_normalization="imagenet",
                       input_channels=2)
    with pytest.raises(errors.ConfigError, match="variant 'tf'"):
        build_mobilenet_v2(variant="tf")
    with pytest.raises(errors.ConfigError, match="input_normalization"):
        build_mobilenet_v2(input_normalization="caffe")
