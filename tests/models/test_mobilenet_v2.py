"""MobileNet-V2 in torchvision's layout: names, shapes, numerics, padding.

Numerical parity: random weights in torchvision's state-dict layout
(`tests/models/mobilenet_v2_reference.py`, written from the PyTorch module
definitions) are assigned by name and the features compared with a NumPy
statement of the module, on even (32) and odd (33) input sizes.

keras.applications: its `MobileNetV2` with the same weights (epsilon set to
1e-5) equals this model on odd input sizes, where its `correct_pad` and
"same" padding are symmetric, and differs on even sizes, where they pad 0
before and 1 after (the half-pixel shift that makes it unusable for the
torchvision / AdaFocus weights).
"""

import keras
import numpy as np
import pytest

from tests.models import mobilenet_v2_reference as ref
from tfaction import errors
from tfaction.checkpoints.adafocus import mobilenet_v2_targets
from tfaction.models.backbones.mobilenet_v2 import MobileNetV2
from tfaction.models.backbones.mobilenet_v2 import block_table
from tfaction.models.backbones.mobilenet_v2 import build_mobilenet_v2
from tfaction.models.backbones.mobilenet_v2 import make_divisible
from tfaction.testing import run_model_test


@pytest.fixture(scope="module")
def loaded():
    """A width-1.0 model holding random torchvision-layout weights."""
    model = build_mobilenet_v2()
    state = ref.random_state_dict(np.random.default_rng(0))
    convert = {"conv": lambda a: a.transpose(2, 3, 1, 0),
               "depthwise": lambda a: a.transpose(2, 3, 0, 1),
               "bn": lambda a: a}
    for key, (variable, kind) in mobilenet_v2_targets(model).items():
        variable.assign(convert[kind](state[key]))
    return model, state


def test_names_and_shapes_are_torchvision_and_tonylins():
    model = build_mobilenet_v2()
    for layout in ("torchvision", "tonylins"):
        want = {k: s for k, s in ref.state_dict_shapes(
            layout, classifier=False).items()
            if not k.endswith("num_batches_tracked")}
        targets = mobilenet_v2_targets(model, layout)
        assert set(targets) == set(want), layout
        for key, (variable, kind) in targets.items():
            shape = want[key]
            if kind == "conv":
                shape = (shape[2], shape[3], shape[1], shape[0])
            elif kind == "depthwise":
                shape = (shape[2], shape[3], shape[0], shape[1])
            assert tuple(variable.shape) == shape, key
    # torchvision: 3,504,872 parameters, 1,281,000 of them in the classifier.
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == \
        3_504_872 - 1_281_000
    assert model.get_layer("features_14_conv_1_0").strides == (2, 2)
    assert isinstance(model.get_layer("features_14_conv_1_0_pad"),
                      keras.layers.ZeroPadding2D)
    assert model.get_layer("features_3_add") is not None
    bn = model.get_layer("features_18_1")
    assert (bn.momentum, bn.epsilon) == (0.9, 1e-5)


@pytest.mark.parametrize("size", [32, 33])
def test_matches_the_pytorch_module(loaded, size):
    model, state = loaded
    x = np.random.default_rng(size).standard_normal(
        (2, size, size, 3)).astype("float32")
    want = ref.features(x, state)
    got = np.asarray(model(x, training=False))
    assert got.shape == want.shape == (2, 1, 1, 1280) if size == 32 else \
        got.shape == want.shape == (2, 2, 2, 1280)
    np.testing.assert_allclose(got, want, atol=2e-4 * np.abs(want).max(),
                               rtol=0)


def _keras_application(model, size):
    app = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=1.0, include_top=False,
        weights=None)
    ours = [l for l in model.layers if l.weights]
    theirs = [l for l in app.layers if l.weights]
    assert len(ours) == len(theirs) == 104
    for a, b in zip(ours, theirs):
        b.set_weights(a.get_weights())
        if isinstance(b, keras.layers.BatchNormalization):
            b.epsilon = 1e-5
    return app


def test_keras_application_pads_asymmetrically(loaded):
    model, _ = loaded
    rng = np.random.default_rng(7)
    for size, same in ((33, True), (32, False)):
        x = rng.standard_normal((1, size, size, 3)).astype("float32")
        app = _keras_application(model, size)
        # The stem's output (first strided conv) and the last feature map.
        ours = keras.Model(model.input, [model.get_layer("features_0_2").output,
                                         model.output])(x, training=False)
        theirs = keras.Model(app.input, [app.get_layer("Conv1_relu").output,
                                         app.output])(x, training=False)
        for a, b, shift in zip(ours, theirs, (0.3, 1e-3)):
            a, b = np.asarray(a), np.asarray(b)
            scale = np.abs(a).max()
            if same:
                np.testing.assert_allclose(b, a, atol=1e-4 * scale)
            else:  # every pixel shifted by half a pixel
                assert np.abs(b - a).max() > shift * scale


def test_model_contract():
    x = np.random.default_rng(0).standard_normal(
        (2, 40, 24, 3)).astype("float32")
    run_model_test(MobileNetV2, {"width_multiplier": 0.25,
                                 "input_channels": 3}, x,
                   expected_output_shape=(2, 2, 1, 1280))


def test_widths_and_mixed_precision():
    assert make_divisible(32 * 0.25) == 8
    assert make_divisible(1280 * 1.4) == 1792
    assert [b[2] for b in block_table(0.5)][:4] == [8, 16, 16, 16]
    wide = build_mobilenet_v2(1.4, dtype="mixed_float16")
    assert wide.last_channels == 1792
    assert all(v.dtype == "float32" for v in wide.weights)
    out = wide(np.zeros((1, 32, 32, 3), "float32"))
    assert out.dtype == "float16" and tuple(out.shape) == (1, 1, 1, 1792)
    with pytest.raises(errors.ConfigError, match="width_multiplier"):
        MobileNetV2(width_multiplier=0)
