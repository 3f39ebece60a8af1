"""AdaFocus V1 and V2 models on tiny shapes: contract, parts, gradients.

Small trunks ("small") keep the tests fast; the MobileNet-V2 glance and the
ResNet-50 focus are checked in their own tests and in the checkpoint
import test.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.layers.actor_critic import ActorCritic
from tfaction.layers.actor_critic import grid_locations
from tfaction.layers.frame_resize import FrameResize
from tfaction.layers.policy_stn import PolicySTN
from tfaction.layers.pooling_classifier import PoolingClassifier
from tfaction.layers.recurrent_classifier import RecurrentClassifier
from tfaction.models.adafocus import AdaFocusV1
from tfaction.models.adafocus import AdaFocusV2
from tfaction.testing import run_model_test

T, S, P, C = 3, 24, 12, 5


def tiny(**overrides):
    kwargs = dict(num_classes=C, num_frames=T, frame_size=[S, S], patch_size=P,
                  glance_arch="small", focus_arch="small",
                  small_filters=[4, 8, 8], policy_hidden_units=8,
                  classifier_hidden_units=8)
    kwargs.update(overrides)
    return kwargs


def frames(batch=2, seed=0):
    return {"frames": np.random.default_rng(seed).normal(
        size=(batch, T, S, S, 3)).astype("float32")}


def test_v2_contract():
    shapes = {"logits": (2, T, C), "glance_logits": (2, T, C),
              "focus_logits": (2, T, C), "locations": (2, T, 2)}
    out = run_model_test(AdaFocusV2, tiny(dropout=0.2, head_dropout=0.2),
                         frames(), expected_output_shape=shapes,
                         expected_output_dtype={k: "float32" for k in shapes})
    assert ((out["locations"] > 0) & (out["locations"] < 1)).all()


def test_v1_contract():
    shapes = {"logits": (2, T, C), "policy_logits": (2, T, 49),
              "values": (2, T), "actions": (2, T), "locations": (2, T, 2),
              "glance_logits": (2, T, C), "focus_logits": (2, T, C)}
    dtypes = {k: "float32" for k in shapes}
    dtypes["actions"] = "int32"
    out = run_model_test(AdaFocusV1, tiny(grid_size=7, dropout=0.5), frames(),
                         expected_output_shape=shapes,
                         expected_output_dtype=dtypes)
    np.testing.assert_array_equal(out["locations"],
                                  grid_locations(7)[out["actions"]])
    np.testing.assert_array_equal(out["actions"],
                                  out["policy_logits"].argmax(-1))


@pytest.mark.parametrize("cls", [AdaFocusV1, AdaFocusV2])
def test_mixed_precision(cls):
    model = cls(**tiny(), dtype="mixed_float16")
    assert model.get_layer("policy").compute_dtype == "float16"
    assert all(v.dtype == "float32" for v in model.weights)
    out = model(frames(), training=False)
    for key, value in out.items():
        assert value.dtype in ("float32", "int32"), key
        assert np.isfinite(np.asarray(value, "float64")).all(), key


def test_v2_layers_and_parts():
    model = AdaFocusV2(**tiny())
    assert isinstance(model.policy, PolicySTN)
    assert isinstance(model.classifier, PoolingClassifier)
    assert model.classifier.num_segments == T
    assert model.policy.stop_input_gradient
    assert model.get_layer("patch_crop").mode == "bilinear"
    data = frames(seed=1)
    out = model(data, training=False)
    # The patch model at the policy's locations is the model.
    patched = model.patch_model()({"frames": data["frames"],
                                   "locations": np.asarray(out["locations"])},
                                  training=False)
    for key in ("logits", "glance_logits", "focus_logits"):
        np.testing.assert_allclose(patched[key], out[key], atol=1e-5)
    # The training model's policy pass is the model; its random pass is the
    # patch model at the random locations.
    random = np.random.default_rng(2).random((2, T, 2)).astype("float32")
    both = model.training_model()({"frames": data["frames"],
                                   "random_locations": random},
                                  training=False)
    np.testing.assert_allclose(both["logits"], out["logits"], atol=1e-5)
    at_random = model.patch_model()({"frames": data["frames"],
                                     "locations": random}, training=False)
    np.testing.assert_allclose(both["random_logits"], at_random["logits"],
                               atol=1e-5)
    np.testing.assert_allclose(both["random_focus_logits"],
                               at_random["focus_logits"], atol=1e-5)


def test_v2_gradients_reach_the_policy_through_the_crop_only():
    model = AdaFocusV2(**tiny())
    training = model.training_model()
    data = frames(seed=3)
    random = np.random.default_rng(4).random((2, T, 2)).astype("float32")
    inputs = {"frames": tf.constant(data["frames"]),
              "random_locations": tf.constant(random)}
    policy = model.policy.trainable_weights
    glance = model.glance.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        out = training(inputs, training=True)
        logits_loss = tf.reduce_sum(out["logits"] ** 2)
        location_loss = tf.reduce_sum(out["locations"])
        random_loss = tf.reduce_sum(out["random_logits"] ** 2)
    # The classification loss trains the policy through the bilinear crop.
    grads = tape.gradient(logits_loss, policy)
    assert all(g is not None and np.abs(np.asarray(g)).sum() > 0
               for g in grads)
    # The policy's input is detached: nothing flows into the glance from it.
    assert all(g is None for g in tape.gradient(location_loss, glance))
    assert all(g is not None for g in tape.gradient(location_loss, policy))
    # The random pass does not involve the policy.
    assert all(g is None for g in tape.gradient(random_loss, policy))


def test_v1_layers_and_parts():
    model = AdaFocusV1(**tiny(glance_size=16))
    assert isinstance(model.policy, ActorCritic)
    assert isinstance(model.classifier, RecurrentClassifier)
    resize = model.get_layer("glance_resize")
    assert isinstance(resize, FrameResize) and resize.method == "nearest"
    assert model.get_layer("patch_crop").mode == "integer"
    data = frames(seed=5)
    out = model(data, training=False)
    glance = model.glance_model()(data, training=False)
    assert tuple(glance["maps"].shape)[:2] == (2, T)
    policy = model.policy(glance["maps"])
    np.testing.assert_allclose(policy["logits"], out["policy_logits"],
                               atol=1e-5)
    patched = model.patch_model()({"frames": data["frames"],
                                   "locations": np.asarray(out["locations"])},
                                  training=False)
    np.testing.assert_allclose(patched["logits"], out["logits"], atol=1e-5)
    focus = model.focus_model()({"frames": data["frames"],
                                 "locations": np.asarray(out["locations"])},
                                training=False)
    joint = np.concatenate([glance["features"], focus], axis=-1)
    np.testing.assert_allclose(patched["features"], joint, atol=1e-5)
    # Reward baseline: one classifier step from the previous state.
    states = np.asarray(patched["states"])
    previous = np.concatenate([np.zeros_like(states[:, :1]),
                               states[:, :-1]], axis=1)
    step = model.classifier.step(joint.reshape(2 * T, -1),
                                 previous.reshape(2 * T, -1))
    np.testing.assert_allclose(np.asarray(step["logits"]).reshape(2, T, C),
                               out["logits"], atol=1e-5)
    # Stage 0: frame classifiers on glance-size and full frames.
    assert tuple(model.glance_classifier()(
        np.zeros((4, 16, 16, 3), "float32")).shape) == (4, C)
    assert tuple(model.focus_classifier()(
        data["frames"][0]).shape) == (T, C)


def test_v1_policy_gets_no_gradient_from_the_integer_crop():
    model = AdaFocusV1(**tiny())
    x = tf.constant(frames(seed=6)["frames"])
    with tf.GradientTape() as tape:
        out = model({"frames": x}, training=True)
        loss = tf.reduce_sum(out["logits"] ** 2)
    grads = tape.gradient(loss, model.policy.trainable_weights
                          + model.focus.trainable_weights)
    n = len(model.policy.trainable_weights)
    assert all(g is None for g in grads[:n])
    assert all(g is not None for g in grads[n:])


@pytest.mark.parametrize("cls", [AdaFocusV1, AdaFocusV2])
def test_config_errors(cls):
    with pytest.raises(errors.ConfigError, match="exceeds the frame"):
        cls(**tiny(patch_size=S + 1))
    with pytest.raises(errors.ConfigError, match="glance_arch"):
        cls(**tiny(glance_arch="vgg"))
    with pytest.raises(errors.ConfigError, match="focus_arch"):
        cls(**tiny(focus_arch="mobilenet_v2"))
    with pytest.raises(errors.ConfigError, match="dropout"):
        cls(**tiny(dropout=1.5))
    with pytest.raises(errors.ConfigError, match="empty"):
        cls(**tiny(small_filters=[4, 8, 8, 8, 8, 8, 8]))


def test_gflops_match_the_papers_per_frame_figures():
    """AdaFocus V2's per-frame GFLOPs (MACs, `ops/early_exit.py`): 1.101 /
    1.685 / 2.436 / 3.353 for MobileNet-V2 + ResNet-50 at P = 96 / 128 /
    160 / 192, and 27.0 per 16-frame video at P = 128."""
    from tfaction.models.adafocus import flops

    model = AdaFocusV2(num_classes=200, patch_size=128)
    gflops = flops.adafocus_v2_gflops(model)
    assert gflops["per_frame"] == pytest.approx(1.685, abs=5e-4)
    assert gflops["per_video"] == pytest.approx(27.0, abs=0.05)
    assert gflops["glance"] == pytest.approx(0.2995, abs=1e-4)
    rest = gflops["per_frame"] - gflops["focus"]
    for size, published in ((96, 1.101), (160, 2.436), (192, 3.353)):
        focus = flops.trunk_macs(model.focus, (size, size)) / 1e9
        assert rest + focus == pytest.approx(published, abs=1e-3), size


@pytest.mark.parametrize("cls", [AdaFocusV1, AdaFocusV2])
def test_keras_variant_trunks_round_trip(cls):
    """Both models build keras.applications-layout trunks (for its ImageNet
    weights) and keep the variants in their config."""
    model = cls(num_classes=3, num_frames=2, frame_size=64, patch_size=32,
                glance_arch="mobilenet_v2", focus_arch="small",
                small_filters=(4, 8), policy_hidden_units=8,
                classifier_hidden_units=8, glance_variant="keras")
    config = model.get_config()
    assert (config["glance_variant"], config["focus_variant"]) == (
        "keras", "torchvision")
    glance = model.get_layer("glance")
    epsilons = {layer.epsilon for layer in glance.layers
                if hasattr(layer, "epsilon")}
    assert epsilons == {1e-3}, epsilons  # keras' BN; torchvision's is 1e-5
    again = cls.from_config(config)
    assert again.get_config()["glance_variant"] == "keras"
    with pytest.raises(errors.ConfigError, match="glance_variant"):
        cls(num_classes=3, num_frames=2, frame_size=64, patch_size=32,
            glance_arch="mobilenet_v2", focus_arch="small",
            small_filters=(4, 8), glance_variant="tf")
