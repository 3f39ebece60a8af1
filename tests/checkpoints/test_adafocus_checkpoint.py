"""AdaFocus checkpoint import (`tfaction.checkpoints.adafocus`).

Each test writes (or builds) a checkpoint in the authors' key layout, as
stated here from their training scripts. V1 saves one state dict per
part: `glancer` (`net.` + torchvision MobileNet-V2, `net.classifier.1`),
`focuser` (`net.` + torchvision ResNet-50 with `net.fc`, and in stage 2 / 3
`policy.policy.*` / `policy.policy_old.*`), `fc` (`gru`, `fc`) and `policy`
(`ActorCritic`). V2 saves `{"state_dict": DataParallel state dict}` with
`module.global_CNN.` (tonylins MobileNet-V2, with its `classifier`),
`global_CNN_fc.1`, `local_CNN.` (torchvision ResNet-50 with `fc`),
`local_CNN_fc.1`, `policy_stn.` and `classifier.`.

After the import, each part is compared with an independent NumPy
statement of the authors' module on the same PyTorch tensors
(`tests/layers/adafocus_reference.py`, `tests/models/mobilenet_v2_
reference.py`), so names, layouts, transposes and gate orders are all
checked numerically.
"""

import functools

import numpy as np
import pytest

from tests.checkpoints.test_resnet50_checkpoint import draw
from tests.checkpoints.test_resnet50_checkpoint import torchvision_shapes
from tests.checkpoints.test_resnet50_checkpoint import write_pth
from tests.layers import adafocus_reference as ref
from tests.models import mobilenet_v2_reference as mobilenet_ref
from tfaction import errors
from tfaction.checkpoints import adafocus as ckpt
from tfaction.checkpoints.errors import CheckpointError
from tfaction.checkpoints.resnet50 import torchvision_targets
from tfaction.models.adafocus import AdaFocusV1
from tfaction.models.adafocus import AdaFocusV2
from tfaction.models.backbones.mobilenet_v2 import build_mobilenet_v2

T, S, P, C = 2, 32, 16, 4
GLANCE, FOCUS = 1280, 2048


def model_kwargs(**overrides):
    kwargs = dict(num_classes=C, num_frames=T, frame_size=S, patch_size=P,
                  glance_arch="mobilenet_v2", focus_arch="resnet50",
                  policy_hidden_units=6, classifier_hidden_units=8)
    kwargs.update(overrides)
    return kwargs


@functools.lru_cache(maxsize=1)
def _resnet_weights():
    rng = np.random.default_rng(123)
    return {k: draw(rng, k, s) for k, s in torchvision_shapes().items()}


def resnet_state(rng, prefix, classes=None):
    """A torchvision ResNet-50 state dict (drawn once: it is large)."""
    state = {prefix + k: v for k, v in _resnet_weights().items()}
    if classes is not None:  # the authors replace fc by their classifier
        state.update({prefix + k: v for k, v in ref.linear_state(
            rng, "fc", FOCUS, classes).items()})
    return state


def prefixed(prefix, state):
    return {prefix + k: v for k, v in state.items()}


def unprefixed(prefix, state):
    return {k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix)}


def v2_state(seed=0):
    rng = np.random.default_rng(seed)
    state = mobilenet_ref.random_state_dict(rng, "tonylins", "global_CNN.")
    state.update(ref.linear_state(rng, "global_CNN_fc.1", GLANCE, C))
    state.update(resnet_state(rng, "local_CNN."))
    state.update(ref.linear_state(rng, "local_CNN_fc.1", FOCUS, C))
    state.update(prefixed("policy_stn.", ref.policy_stn_state(
        rng, GLANCE, 1, 1, 64, 6)))
    state.update(prefixed("classifier.", ref.pooling_classifier_state(
        rng, GLANCE + FOCUS, 8, C, T)))
    return {"module." + k: v for k, v in state.items()}


def v1_checkpoint(seed=1, policy_entry=True):
    rng = np.random.default_rng(seed)
    glancer = mobilenet_ref.random_state_dict(rng, "torchvision", "net.")
    # The authors replace the ImageNet classifier by their own classes.
    glancer.update(ref.linear_state(rng, "net.classifier.1", GLANCE, C))
    policy = ref.actor_critic_state(rng, GLANCE, 1, 1, 32, 6, 49)
    focuser = resnet_state(rng, "net.", classes=C)
    focuser.update(prefixed("policy.policy.", policy))
    focuser.update(prefixed("policy.policy_old.", policy))
    checkpoint = {"epoch": 9, "glancer": glancer, "focuser": focuser,
                  "fc": ref.recurrent_classifier_state(
                      rng, GLANCE + FOCUS, 8, C)}
    if policy_entry:
        checkpoint["policy"] = policy
    return checkpoint


@pytest.fixture(scope="module")
def v2_model():
    return AdaFocusV2(**model_kwargs())


@pytest.fixture(scope="module")
def v1_model():
    return AdaFocusV1(**model_kwargs())


@pytest.fixture(scope="module")
def v2_file(tmp_path_factory):
    state = v2_state()
    path = write_pth(tmp_path_factory.mktemp("v2") / "actnet_p16.pth.tar",
                     {"state_dict": state})
    return path, {k[len("module."):]: v for k, v in state.items()}


@pytest.fixture(scope="module")
def v1_file(tmp_path_factory):
    checkpoint = v1_checkpoint()
    path = write_pth(tmp_path_factory.mktemp("v1") / "s3_checkpoint.pth.tar",
                     checkpoint)
    return path, checkpoint


def check_resnet(trunk, state, prefix):
    for key, variable in torchvision_targets(trunk).items():
        want = state[prefix + key]
        want = want.transpose(2, 3, 1, 0) if want.ndim == 4 else want
        np.testing.assert_array_equal(np.asarray(variable), want, key)


def test_v2_checkpoint(v2_file, v2_model):
    path, state = v2_file
    model = v2_model
    report = ckpt.load_adafocus_v2_checkpoint(model, path)
    assert report.parts == ("glance", "glance_head", "focus", "focus_head",
                            "policy", "classifier")
    assert "tonylins MobileNet-V2" in report.source
    counters = {k for k in state if k.endswith("num_batches_tracked")}
    assert report.unused == dict(sorted(
        {**{k: ckpt.BATCH_COUNTER for k in counters},
         "global_CNN.classifier.weight": ckpt.IMAGENET_CLASSIFIER,
         "global_CNN.classifier.bias": ckpt.IMAGENET_CLASSIFIER,
         "local_CNN.fc.weight": ckpt.IMAGENET_CLASSIFIER,
         "local_CNN.fc.bias": ckpt.IMAGENET_CLASSIFIER}.items()))
    assert len(report.loaded) + len(report.unused) == len(state)

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, S, S, 3)).astype("float32")
    want = mobilenet_ref.features(x, state, "tonylins", "global_CNN.")
    np.testing.assert_allclose(model.glance(x, training=False), want,
                               atol=2e-4 * np.abs(want).max())
    check_resnet(model.focus, state, "local_CNN.")
    maps = rng.standard_normal((2, T, 1, 1, GLANCE)).astype("float32")
    np.testing.assert_allclose(
        model.policy(maps, training=False)["locations"],
        ref.policy_stn(maps.astype(np.float64),
                       unprefixed("policy_stn.", state)), atol=1e-5)
    feats = rng.standard_normal((2, T, GLANCE + FOCUS)).astype("float32")
    np.testing.assert_allclose(
        model.classifier(feats, training=False),
        ref.pooling_classifier(feats.astype(np.float64),
                               unprefixed("classifier.", state)), atol=1e-4)
    np.testing.assert_array_equal(model.glance_head.kernel,
                                  state["global_CNN_fc.1.weight"].T)
    np.testing.assert_array_equal(model.focus_head.bias,
                                  state["local_CNN_fc.1.bias"])
    out = model({"frames": rng.standard_normal((1, T, S, S, 3)).astype(
        "float32")}, training=False)
    assert all(np.isfinite(np.asarray(v)).all() for v in out.values())


def test_v1_checkpoint(v1_file, v1_model):
    path, checkpoint = v1_file
    model = v1_model
    report = ckpt.load_adafocus_v1_checkpoint(model, path)
    assert report.parts == ("glance", "glance_head", "focus", "focus_head",
                            "classifier", "policy")
    focuser = checkpoint["focuser"]
    assert {k for k, why in report.unused.items()
            if why == ckpt.POLICY_OLD} == {
        f"focuser/{k}" for k in focuser if k.startswith("policy.policy_old.")}
    assert {k for k, why in report.unused.items()
            if why == ckpt.POLICY_IN_FOCUSER} == {
        f"focuser/{k}" for k in focuser if k.startswith("policy.policy.")}

    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, S, S, 3)).astype("float32")
    want = mobilenet_ref.features(x, checkpoint["glancer"], "torchvision",
                                  "net.")
    np.testing.assert_allclose(model.glance(x, training=False), want,
                               atol=2e-4 * np.abs(want).max())
    check_resnet(model.focus, focuser, "net.")
    np.testing.assert_array_equal(model.focus_head.kernel,
                                  focuser["net.fc.weight"].T)
    np.testing.assert_array_equal(
        model.glance_head.kernel, checkpoint["glancer"][
            "net.classifier.1.weight"].T)
    maps = rng.standard_normal((2, T, 1, 1, GLANCE)).astype("float32")
    probs, values = ref.actor_critic(maps.astype(np.float64),
                                     checkpoint["policy"])
    out = model.policy(maps)
    logits = np.asarray(out["logits"], np.float64)
    got = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(got / got.sum(-1, keepdims=True), probs,
                               atol=1e-5)
    np.testing.assert_allclose(out["values"], values, atol=1e-5)
    feats = rng.standard_normal((2, T, GLANCE + FOCUS)).astype("float32")
    logits, _ = ref.recurrent_classifier(feats.astype(np.float64),
                                         checkpoint["fc"])
    np.testing.assert_allclose(model.classifier(feats)["logits"], logits,
                               atol=1e-4)


def test_v1_parts_and_the_policy_inside_the_focuser(v1_model):
    checkpoint = v1_checkpoint(seed=2, policy_entry=False)
    model = v1_model
    classifier_before = [np.asarray(v) for v in model.classifier.weights]
    report = ckpt.load_adafocus_v1_checkpoint(model, checkpoint,
                                              parts=["focuser", "policy"])
    assert report.path is None
    assert report.parts == ("focus", "focus_head", "policy")
    assert "policy from 'focuser' (policy.policy.*)" in report.source
    for before, after in zip(classifier_before, model.classifier.weights):
        np.testing.assert_array_equal(before, after)  # not requested
    np.testing.assert_array_equal(
        model.policy.actor.kernel,
        checkpoint["focuser"]["policy.policy.actor.0.weight"].T)
    # A stage-1 file: random patches, no policy anywhere.
    stage1 = v1_checkpoint(seed=3, policy_entry=False)
    stage1["focuser"] = {k: v for k, v in stage1["focuser"].items()
                         if not k.startswith("policy.")}
    stage1["policy"] = None
    report = ckpt.load_adafocus_v1_checkpoint(model, stage1)
    assert "policy" not in report.parts
    with pytest.raises(CheckpointError, match="absent"):
        ckpt.load_adafocus_v1_checkpoint(model, stage1, parts=["policy"])
    with pytest.raises(errors.ConfigError, match="unknown AdaFocus V1"):
        ckpt.load_adafocus_v1_checkpoint(model, stage1, parts=["glance"])


def test_errors_leave_the_model_unchanged(v2_model):
    state = v2_state(seed=4)
    model = v2_model
    before = [np.asarray(v).copy() for v in model.weights]

    def unchanged():
        for b, v in zip(before, model.weights):
            np.testing.assert_array_equal(b, np.asarray(v), v.path)

    missing = dict(state)
    del missing["module.policy_stn.gru.bias_hh_l0"]
    with pytest.raises(CheckpointError, match="policy_stn.gru.bias_hh_l0"):
        ckpt.load_adafocus_v2_checkpoint(model, {"state_dict": missing})
    unchanged()
    wrong = dict(state)
    wrong["module.classifier.classifiers.1.1.weight"] = np.zeros(
        (C + 1, 8), np.float32)
    with pytest.raises(CheckpointError, match="classifier"):
        ckpt.load_adafocus_v2_checkpoint(model, {"state_dict": wrong})
    unchanged()
    extra = dict(state)
    extra["module.classifier.classifiers.2.1.weight"] = np.zeros(
        (C, 8), np.float32)  # a third head: the file has more frames
    with pytest.raises(CheckpointError, match="unexpected"):
        ckpt.load_adafocus_v2_checkpoint(model, {"state_dict": extra})
    unchanged()
    report = ckpt.load_adafocus_v2_checkpoint(model, {"state_dict": extra},
                                              strict=False)
    assert report.unused["classifier.classifiers.2.1.weight"] == \
        ckpt.UNEXPECTED
    with pytest.raises(CheckpointError, match="no such entry"):
        ckpt.load_adafocus_v2_checkpoint(model, {"model": state})
    small = AdaFocusV2(**model_kwargs(glance_arch="small",
                                      small_filters=[4, 8]))
    with pytest.raises(errors.ConfigError, match="no counterpart"):
        ckpt.load_adafocus_v2_checkpoint(small, {"state_dict": state})


def test_mobilenet_v2_imagenet_files(v2_model):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, S, S, 3)).astype("float32")
    model = v2_model.glance
    for layout in ("torchvision", "tonylins"):
        state = mobilenet_ref.random_state_dict(rng, layout)
        report = ckpt.load_mobilenet_v2_checkpoint(model, state)
        assert layout in report.source
        head = ("classifier.1." if layout == "torchvision"
                else "classifier.")
        assert report.unused[head + "weight"] == ckpt.IMAGENET_CLASSIFIER
        want = mobilenet_ref.features(x, state, layout)
        np.testing.assert_allclose(model(x, training=False), want,
                                   atol=2e-4 * np.abs(want).max())
    # Found inside a model, under a prefix and an entry.
    report = ckpt.load_mobilenet_v2_checkpoint(
        v2_model, {"model": {"module.backbone." + k: v
                             for k, v in state.items()}})
    assert report.source == ("entry 'model', prefix 'backbone.' "
                             "(tonylins)")
    with pytest.raises(CheckpointError, match="no MobileNet-V2"):
        ckpt.load_mobilenet_v2_checkpoint(
            model, {"features.0.0.weight": state["features.0.0.weight"]})
    with pytest.raises(errors.ConfigError, match="one tfaction MobileNetV2"):
        ckpt.load_mobilenet_v2_checkpoint(build_mobilenet_v2(0.25).get_layer(
            "features_0_0"), state)
