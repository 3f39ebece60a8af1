"""ResNet-50 weight import: torchvision `.pth` files and keras.applications h5.

Parity with torchvision: each case of `tests/anchors/resnet50_torchvision*`
(and `$TFACTION_ANCHORS/resnet50_torchvision*`) stores the outputs of
torchvision's own `resnet50()` (conv1, maxpool, layer1 ... layer4) for
weights drawn by a documented NumPy recipe (the folder's README). The test
draws the same weights with NumPy from this file's own statement of
torchvision's state-dict names and shapes, writes them as a torchvision
`.pth` zip (`crafted`, no PyTorch), loads that through
`load_resnet50_checkpoint` and compares every stage output. This checks the
v1.5 layout, PyTorch's symmetric padding, the OIHW -> HWIO conversion and
the names at once.

keras.applications (v1): a `keras.applications.ResNet50` with random
weights is written in the legacy HDF5 layout of the Keras ImageNet files
(and as a Keras 3 `.weights.h5`), loaded into a `variant="v1"` model by
name, and the outputs are compared with the application's own.

The other tests use a model cut at layer1 and small files: the places a
ResNet-50 can hide in a checkpoint (prefixes, nesting, `nn.Sequential`
children, CARL's split, momentum copies), all-or-nothing errors naming the
key, and the report of unused tensors.
"""

import json
import math
import time

import h5py
import keras
import numpy as np
import pytest

from tests.checkpoints import crafted
from tests.conftest import anchors_path
from tests.conftest import bundle_dirs
from tfaction import errors
from tfaction.checkpoints import resnet50 as ckpt
from tfaction.checkpoints.errors import CheckpointError
from tfaction.models.backbones.resnet50 import build_resnet50

# torchvision resnet50: (blocks, width) of layer1 ... layer4 (this test's
# own statement of the architecture, not the module's tables).
TORCHVISION_STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))
STAGE_OUTPUTS = ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4")
TOLERANCE = 1e-4


def torchvision_shapes(num_stages=4, fc=True):
    """`{state-dict key: PyTorch shape}` of torchvision's `resnet50()`."""
    shapes = {}

    def bn(name, c):
        shapes.update({f"{name}.weight": (c,), f"{name}.bias": (c,),
                       f"{name}.running_mean": (c,),
                       f"{name}.running_var": (c,),
                       f"{name}.num_batches_tracked": ()})

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    c_in = 64
    for s, (blocks, width) in enumerate(TORCHVISION_STAGES[:num_stages], 1):
        for b in range(blocks):
            p = f"layer{s}.{b}."
            shapes[p + "conv1.weight"] = (width, c_in, 1, 1)
            bn(p + "bn1", width)
            shapes[p + "conv2.weight"] = (width, width, 3, 3)
            bn(p + "bn2", width)
            shapes[p + "conv3.weight"] = (4 * width, width, 1, 1)
            bn(p + "bn3", 4 * width)
            if b == 0:
                shapes[p + "downsample.0.weight"] = (4 * width, c_in, 1, 1)
                bn(p + "downsample.1", 4 * width)
            c_in = 4 * width
    if fc:
        shapes["fc.weight"] = (1000, 2048)
        shapes["fc.bias"] = (1000,)
    return shapes


def draw(rng, key, shape):
    """One tensor of the anchors' recipe (see the folder's README)."""
    if key.endswith(".num_batches_tracked"):
        return np.zeros(shape, np.int64)
    if key.endswith(".running_mean"):
        value = rng.normal(0.0, 0.1, shape)
    elif key.endswith(".running_var"):
        value = rng.uniform(0.5, 1.5, shape)
    elif key.endswith(".bias"):
        value = rng.normal(0.0, 0.1, shape)
    elif key.endswith(".weight") and len(shape) == 1:
        value = rng.uniform(0.5, 1.0, shape)
    else:
        value = rng.standard_normal(shape) / math.sqrt(
            int(np.prod(shape[1:])))
    return value.astype(np.float32)


def recipe_weights(seed, input_shape, shapes=None):
    """The recipe's state dict (sorted-key order) and its NCHW input."""
    shapes = torchvision_shapes() if shapes is None else shapes
    rng = np.random.default_rng(seed)
    state = {key: draw(rng, key, shapes[key]) for key in sorted(shapes)}
    return state, rng.standard_normal(tuple(input_shape)).astype(np.float32)


# --- writing torch.save files without PyTorch ------------------------------

_STORAGES = {np.dtype("float32"): "FloatStorage",
             np.dtype("int64"): "LongStorage"}


def _pickled(value, storages):
    if isinstance(value, dict):
        return crafted.dict_of({k: _pickled(v, storages)
                                for k, v in value.items()})
    if isinstance(value, str):
        return crafted.unicode(value)
    if isinstance(value, int):
        return crafted.integer(value)
    value = np.ascontiguousarray(value)
    key = str(len(storages))
    storages[key] = value.astype(value.dtype.newbyteorder("<")).tobytes()
    strides = [int(np.prod(value.shape[i + 1:]))
               for i in range(value.ndim)]
    return crafted.tensor(key, value.size, value.shape, strides,
                          storage=_STORAGES[value.dtype])


def write_pth(path, tree):
    """`torch.save(tree)` of a nested dict of arrays / str / int."""
    storages = {}
    body = crafted.pickle_of(_pickled(tree, storages))
    return crafted.write(path, crafted.archive(body, storages))


# --- parity with torchvision ------------------------------------------------


def parity_cases():
    """Every `*.npz` of the `resnet50_torchvision*` anchors folders."""
    dirs = bundle_dirs(anchors_path(), "resnet50_torchvision",
                       ("README.md",))
    cases = sorted(p for d in dirs for p in d.glob("*.npz"))
    if not cases:
        pytest.fail(f"no case file in {dirs}")
    return cases


def test_torchvision_parity(tmp_path):
    errors_seen = {}
    for case in parity_cases():
        with np.load(case, allow_pickle=False) as stored:
            stored = dict(stored)
        recipe = json.loads(str(stored["recipe"]))
        start = time.perf_counter()
        state, x = recipe_weights(recipe["seed"], recipe["input_shape_nchw"])
        # The regenerated weights are the ones torchvision ran with.
        assert list(stored["checksum_keys"]) == sorted(state)
        sums = np.array([np.asarray(state[k], np.float64).sum()
                         for k in stored["checksum_keys"]])
        np.testing.assert_allclose(sums, stored["checksums"], rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_array_equal(x.transpose(0, 2, 3, 1),
                                      stored["input"])

        path = write_pth(tmp_path / f"{case.stem}.pth", state)
        del state
        model = build_resnet50()
        report = ckpt.load_resnet50_checkpoint(model, path)
        assert report.source == "the bare state dict, prefix '' " \
                                "(torchvision names)"
        assert len(report.loaded) == 265
        counters = {k for k in torchvision_shapes()
                    if k.endswith("num_batches_tracked")}
        assert report.unused == {
            "fc.bias": ckpt.CLASSIFIER, "fc.weight": ckpt.CLASSIFIER,
            **{k: ckpt.BATCH_COUNTER for k in sorted(counters)}}

        outputs = model.endpoint_model()(stored["input"], training=False)
        for name in STAGE_OUTPUTS:
            got = keras.ops.convert_to_numpy(outputs[name])
            assert got.shape == stored[name].shape, name
            error = float(np.abs(got - stored[name]).max())
            errors_seen[f"{case.stem}/{name}"] = error
            assert error <= TOLERANCE, (case.name, name, error)
        # The check can tell: Keras "same" padding (asymmetric for stride 2
        # on even sizes) gives another conv1 with the same kernel.
        same = keras.layers.Conv2D(64, 7, strides=2, padding="same",
                                   use_bias=False)
        same.build((None, None, None, 3))
        same.kernel.assign(model.get_layer("conv1").kernel)
        shifted = keras.ops.convert_to_numpy(same(stored["input"]))
        assert np.abs(shifted - stored["conv1"]).max() > 0.1
        print(f"{case.name}: max abs error per stage "
              f"{ {k: f'{v:.2e}' for k, v in errors_seen.items()} } "
              f"({time.perf_counter() - start:.1f} s)")


# --- finding the ResNet-50 in a checkpoint -----------------------------------

# A model cut at layer1 needs the stem and layer1; later tensors are only
# reported, never read, so they are stand-ins of shape (1,) here.
LAYER1_SHAPES = torchvision_shapes(num_stages=1, fc=False)


def small_state(seed=0):
    """A full torchvision key set: real stem + layer1, stand-ins after."""
    state, _ = recipe_weights(seed, (1, 3, 8, 8), shapes=LAYER1_SHAPES)
    for key in torchvision_shapes():
        if key not in state:
            state[key] = (np.zeros((), np.int64)
                          if key.endswith("num_batches_tracked")
                          else np.full((1,), 7.0, np.float32))
    return state


@pytest.fixture(scope="module")
def layer1_model():
    return build_resnet50(endpoint="layer1")


def assert_loaded(model, state):
    """The model's weights equal `state` (torchvision names, converted)."""
    targets = ckpt.torchvision_targets(model)
    for name, variable in targets.items():
        want = state[name]
        want = want.transpose(2, 3, 1, 0) if want.ndim == 4 else want
        np.testing.assert_array_equal(variable.numpy(), want, err_msg=name)


def prefixed(state, prefix):
    return {prefix + k: v for k, v in state.items()}


def sequential(state, prefix):
    """`nn.Sequential(*resnet.children())` names: 0 conv1, 1 bn1, 4-7
    layer1-4, 9 fc."""
    index = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6,
             "layer4": 7, "fc": 9}
    out = {}
    for k, v in state.items():
        head, _, tail = k.partition(".")
        out[f"{prefix}{index[head]}.{tail}"] = v
    return out


def carl_model_state(state, layer=3):
    """CARL's `model_state`: backbone children up to `layer`, the rest in
    `res_finetune`, plus its embedder (`models/transformer.py`)."""
    index = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6,
             "layer4": 7}
    out = {"embed.embedding_layer.weight": np.ones((128, 256), np.float32)}
    for k, v in state.items():
        head, _, tail = k.partition(".")
        if head == "fc":
            continue
        if index[head] <= 3 + layer:
            out[f"backbone.{index[head]}.{tail}"] = v
        elif layer == 3:  # res_finetune = layer4
            out[f"res_finetune.{tail}"] = v
        else:  # layer 2: res_finetune = Sequential(layer3, layer4)
            out[f"res_finetune.{index[head] - 6}.{tail}"] = v
    return out


def layouts():
    """(id, checkpoint tree, expected source, unused reasons of extras)."""
    other = small_state(seed=1)  # a momentum copy: other values
    head = {"w": np.ones((4, 2048), np.float32)}
    return [
        ("torchvision", lambda s: s, "the bare state dict, prefix ''"),
        ("dataparallel", lambda s: {"epoch": 3, "state_dict": prefixed(
            s, "module.")}, "entry 'state_dict', prefix 'module.'"),
        # BYOL as released for CARL (BYOL_1000.pth): entry `model`, online
        # encoder `module.encoder.`, momentum copy `module.encoder_k.`.
        ("byol_carl", lambda s: {"model": {
            **prefixed(s, "module.encoder."),
            **prefixed(other, "module.encoder_k."),
            **prefixed(head, "module.predictor.")}},
         "entry 'model', prefix 'module.encoder.'"),
        # MoCo v2: `state_dict`, `module.encoder_q.` / `module.encoder_k.`.
        ("mocov2", lambda s: {"arch": "resnet50", "state_dict": {
            **prefixed(s, "module.encoder_q."),
            **prefixed(other, "module.encoder_k.")}},
         "entry 'state_dict', prefix 'module.encoder_q.'"),
        # SimCLR (lightning-bolts): `encoder.` and `momentum_encoder.`-free.
        ("simclr", lambda s: {"state_dict": {
            **prefixed(s, "encoder."), **prefixed(head, "projection.")}},
         "entry 'state_dict', prefix 'encoder.'"),
        ("nested_backbone", lambda s: {"ema": {"model": prefixed(
            s, "backbone.body.")}}, "entry 'ema/model', prefix "
         "'backbone.body.'"),
        # An encoder saved as nn.Sequential(*resnet.children()), nested
        # under an online network.
        ("sequential", lambda s: {"online_network_state_dict": {
            **sequential(s, "encoder."), **prefixed(head, "projetion.")}},
         "entry 'online_network_state_dict', prefix 'encoder.'"),
        ("carl_layer3", lambda s: {"epoch": 60,
                                   "model_state": carl_model_state(s, 3)},
         "entry 'model_state', prefix 'backbone.'"),
        ("carl_layer2", lambda s: {"model_state": carl_model_state(s, 2)},
         "entry 'model_state', prefix 'backbone.'"),
    ]


@pytest.mark.parametrize("name,make,source",
                         layouts(), ids=[c[0] for c in layouts()])
def test_finds_the_resnet(tmp_path, layer1_model, name, make, source):
    state = small_state()
    path = write_pth(tmp_path / f"{name}.pth", make(state))
    report = ckpt.load_resnet50_checkpoint(layer1_model, path)
    assert report.source.startswith(source), report.source
    assert_loaded(layer1_model, state)
    assert len(report.loaded) == len(ckpt.torchvision_targets(layer1_model))
    reasons = set(report.unused.values())
    assert ckpt.NOT_IN_MODEL in reasons  # layer2 ... layer4
    assert ckpt.UNEXPECTED not in reasons
    for key, why in report.unused.items():
        if "encoder_k." in key or "predictor" in key or "projection" in key \
                or "projetion" in key or key.startswith("embed."):
            assert why == ckpt.OUTSIDE, key
        elif key.endswith("num_batches_tracked"):
            assert why == ckpt.BATCH_COUNTER, key
    classifier = sorted(k for k, why in report.unused.items()
                        if why == ckpt.CLASSIFIER)
    if name not in ("carl_layer3", "carl_layer2"):  # fc (or child 9)
        assert [k.split(".")[-1] for k in classifier] == ["bias", "weight"]
    else:
        # Both stages after layer1 were recognised as ResNet-50 tensors.
        assert report.unused["res_finetune.0.conv1.weight" if name ==
                             "carl_layer3" else
                             "res_finetune.1.0.conv1.weight"] == \
            ckpt.NOT_IN_MODEL


def test_prefix_and_key_choose_among_several(tmp_path, layer1_model):
    first, second = small_state(seed=2), small_state(seed=3)
    tree = {"student": prefixed(first, "net."),
            "teacher_ema": prefixed(second, "net.")}
    path = write_pth(tmp_path / "two.pth", tree)
    with pytest.raises(CheckpointError, match="several ResNet-50s") as e:
        ckpt.load_resnet50_checkpoint(layer1_model, path)
    assert "'student'" in str(e.value) and "'teacher_ema'" in str(e.value)
    ckpt.load_resnet50_checkpoint(layer1_model, path, key="teacher_ema")
    assert_loaded(layer1_model, second)
    ckpt.load_resnet50_checkpoint(layer1_model, path, key="student",
                                  prefix="net")
    assert_loaded(layer1_model, first)
    # An already loaded checkpoint (a mapping) works too.
    ckpt.load_resnet50_checkpoint(layer1_model, tree["teacher_ema"],
                                  prefix="net.")
    assert_loaded(layer1_model, second)


def test_no_resnet_in_the_file(tmp_path, layer1_model):
    path = write_pth(tmp_path / "other.pth",
                     {"model": {"conv.weight": np.ones((2, 2), "float32")}})
    with pytest.raises(CheckpointError, match="no ResNet-50 state dict") as e:
        ckpt.load_resnet50_checkpoint(layer1_model, path)
    assert "model: dict of 1 entries" in str(e.value)
    with pytest.raises(CheckpointError, match="prefix 'nope.'"):
        ckpt.load_resnet50_checkpoint(layer1_model, small_state(),
                                      prefix="nope")


# --- all-or-nothing errors -------------------------------------------------


def _snapshot(model):
    return [w.numpy().copy() for w in model.weights]


def _unchanged(model, before):
    return all(np.array_equal(a, w.numpy())
               for a, w in zip(before, model.weights))


@pytest.mark.parametrize("damage,key,match", [
    ("shape", "module.layer1.1.conv2.weight",
     r"layer1\.1\.conv2\.weight: expected shape \(64, 64, 3, 3\), got "
     r"\(64, 64, 1, 1\)"),
    ("missing", "module.layer1.2.bn3.running_var", "tensor missing"),
    ("unexpected", "module.layer3.6.conv1.weight", "unexpected tensor"),
], ids=["shape", "missing", "unexpected"])
def test_errors_name_the_key_and_assign_nothing(tmp_path, layer1_model,
                                                damage, key, match):
    ckpt.load_resnet50_checkpoint(layer1_model, small_state(seed=4))
    before = _snapshot(layer1_model)
    state = prefixed(small_state(seed=5), "module.")
    if damage == "shape":
        state[key] = state[key][:, :, :1, :1].copy()
    elif damage == "missing":
        del state[key]
    else:  # a ResNet-101 has 23 blocks in layer3
        state[key] = np.ones((256, 1024, 1, 1), np.float32)
    path = write_pth(tmp_path / "bad.pth", {"state_dict": state})
    with pytest.raises(CheckpointError, match=match) as e:
        ckpt.load_resnet50_checkpoint(layer1_model, path)
    assert f"key {key!r}" in str(e.value) and str(path) in str(e.value)
    assert _unchanged(layer1_model, before)
    if damage == "unexpected":
        report = ckpt.load_resnet50_checkpoint(layer1_model, path,
                                               strict=False)
        assert report.unexpected == [key]
        assert_loaded(layer1_model, small_state(seed=5))


def test_variant_checks(tmp_path):
    with pytest.raises(errors.ConfigError, match="variant='v1.5'"):
        ckpt.load_resnet50_checkpoint(
            build_resnet50(variant="v1", endpoint="maxpool"), small_state())
    with pytest.raises(errors.ConfigError, match="variant='v1'"):
        ckpt.load_keras_resnet50_weights(build_resnet50(endpoint="maxpool"),
                                         tmp_path / "x.h5")


def test_finds_the_resnet_inside_a_larger_model(layer1_model):
    images = keras.Input((None, None, 3))
    features = layer1_model(images)
    outer = keras.Model(images, keras.layers.GlobalAveragePooling2D()(
        features))
    state = small_state(seed=6)
    ckpt.load_resnet50_checkpoint(outer, state)
    assert_loaded(layer1_model, state)


# --- keras.applications weights (v1) ---------------------------------------


@pytest.fixture(scope="module")
def keras_app():
    """keras.applications.ResNet50 (no top) with random weights and
    statistics, and a 48x40 input."""
    app = keras.applications.ResNet50(weights=None, include_top=False,
                                      input_shape=(None, None, 3))
    rng = np.random.default_rng(7)
    for layer in app.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.0, c), rng.normal(0, .1, c),
                               rng.normal(0, .1, c), rng.uniform(.5, 1.5, c)])
        elif isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel.shape
            layer.set_weights([
                rng.standard_normal(k) / math.sqrt(np.prod(k[:3])),
                rng.normal(0, 0.1, k[-1])])
    x = rng.standard_normal((1, 48, 40, 3)).astype("float32")
    return app, x


def write_keras_legacy_h5(path, app, top=True, skip=()):
    """The layout of keras.applications' ImageNet `.h5` files."""
    layers = [(layer.name, [(w.path.split("/")[-1] + ":0", w.numpy())
                            for w in layer.weights])
              for layer in app.layers if layer.name not in skip]
    if top:
        layers.append(("avg_pool", []))
        layers.append(("predictions", [("kernel:0", np.zeros((2048, 3))),
                                       ("bias:0", np.zeros(3))]))
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n, _ in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer_name, weights in layers:
            group = f.create_group(layer_name)
            names = [f"{layer_name}/{leaf}" for leaf, _ in weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, (_, value) in zip(names, weights):
                group.create_dataset(name, data=value)
    return path


def test_keras_applications_h5_parity(tmp_path, keras_app):
    app, x = keras_app
    want = keras.ops.convert_to_numpy(app(x, training=False))
    path = write_keras_legacy_h5(tmp_path / "resnet50_notop.h5", app)
    model = build_resnet50(variant="v1")
    report = ckpt.load_keras_resnet50_weights(model, path)
    assert len(report.loaded) == 53 * 2 + 53 * 4
    assert report.unused == {"predictions/bias": ckpt.CLASSIFIER,
                             "predictions/kernel": ckpt.CLASSIFIER}
    got = keras.ops.convert_to_numpy(model(x, training=False))
    assert got.shape == want.shape == (1, 2, 2, 2048)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)

    # A Keras 3 `.weights.h5` of the application goes through Keras' loader.
    weights_path = tmp_path / "app.weights.h5"
    app.save_weights(weights_path)
    again = build_resnet50(variant="v1", endpoint="layer2")
    report = ckpt.load_keras_resnet50_weights(again, weights_path)
    assert report.unused["conv5_block3_3_bn/moving_variance"] == \
        ckpt.NOT_IN_MODEL
    layer2 = keras.Model(app.input, app.get_layer("conv3_block4_out").output)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)),
                               keras.ops.convert_to_numpy(layer2(x)),
                               atol=1e-4, rtol=0)


def test_keras_applications_h5_errors(tmp_path, keras_app):
    app, _ = keras_app
    model = build_resnet50(variant="v1", endpoint="layer1")
    before = _snapshot(model)
    path = write_keras_legacy_h5(tmp_path / "partial.h5", app, top=False,
                                 skip=("conv2_block3_2_bn",))
    with pytest.raises(CheckpointError, match="weight missing") as e:
        ckpt.load_keras_resnet50_weights(model, path)
    assert "key 'conv2_block3_2_bn/gamma'" in str(e.value)
    assert _unchanged(model, before)
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_keras_resnet50_weights(model, tmp_path / "absent.h5")
    assert ckpt.keras_applications_name("layer3_5_bn2") == "conv4_block6_2_bn"
