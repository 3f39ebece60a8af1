"""The ActionVLAD classifier: trunk -> NetVLAD -> linear, stages, contract."""

import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.layers import NetVLAD
from tfaction.models.actionvlad.model import ActionVLAD
from tfaction.testing import run_model_test

CROP = (32, 40)


def small_kwargs(channels=3, num_classes=5, clusters=4):
    return dict(num_classes=num_classes, trunk="small",
                input_channels=channels, filters=(8, 16),
                num_clusters=clusters, crop_size=CROP,
                trunk_weight_decay=1e-4, classifier_weight_decay=2e-5)


def small_model(**kwargs):
    return ActionVLAD(**small_kwargs(**kwargs))


def frames(batch=2, steps=3, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, steps, *CROP, channels)).astype("float32")


def test_pools_all_frames_into_one_vector():
    model = small_model()
    x = frames(steps=3)
    logits = model(x)
    assert logits.shape == (2, 5) and logits.dtype == "float32"
    # The same computation by hand: trunk per frame, NetVLAD on [B, T, ...].
    trunk = model.trunk_model
    feats = trunk(x.reshape(-1, *x.shape[2:]))
    feats = tf.reshape(feats, [2, 3, *feats.shape[1:]])
    want = model.get_layer("classifier")(model.get_layer("netvlad")(feats))
    np.testing.assert_allclose(logits, want, atol=1e-5)
    # Any number of frames (test-time crops are concatenated along T); the
    # order of frames does not matter (orderless pooling).
    longer = np.concatenate([x, x[:, ::-1]], axis=1)
    assert model(longer).shape == (2, 5)
    np.testing.assert_allclose(model(x[:, ::-1]), logits, atol=1e-5)


def test_pre_relu_endpoint_and_classifier_init():
    model = small_model(num_classes=64)
    trunk = model.trunk_model
    assert trunk.layers[-1].name == "block2_conv1"
    assert trunk(frames()[0]).numpy().min() < 0  # linear last conv
    kernel = model.get_layer("classifier").kernel.numpy()
    assert abs(kernel.std() - 0.01 * 0.88) < 0.002  # truncated normal 0.01
    assert np.abs(kernel).max() <= 0.02 + 1e-7
    # L2 on conv and classifier kernels, none on NetVLAD.
    assert len(model.losses) == 3


@pytest.mark.parametrize("groups, trainable", [
    (("classifier",), {"classifier"}),
    (("classifier", "netvlad", "last_block"),
     {"classifier", "netvlad", "block2_conv1"}),
    (("all",), {"classifier", "netvlad", "block1_conv1", "block2_conv1"}),
])
def test_trainable_groups_of_the_stages(groups, trainable):
    model = small_model()
    model.set_trainable_groups(groups)
    owners = {v.path.split("/")[-2] for v in model.trainable_variables}
    assert owners == trainable
    netvlad = model.get_layer("netvlad")
    assert (len(netvlad.trainable_variables) == 3) == ("netvlad" in trainable)


def test_unknown_names_are_config_errors():
    with pytest.raises(errors.ConfigError, match="unknown trainable group"):
        small_model().set_trainable_groups(("conv9",))
    with pytest.raises(errors.ConfigError, match="unknown ActionVLAD trunk"):
        ActionVLAD(5, trunk="resnet")


def test_flow_input_channels_and_centres():
    model = small_model(channels=10)
    assert model.input_shape == (None, None, *CROP, 10)
    netvlad = model.get_layer("netvlad")
    assert isinstance(netvlad, NetVLAD)
    centers = np.random.default_rng(1).normal(size=(4, 16)).astype("float32")
    netvlad.set_centers(centers)
    np.testing.assert_allclose(netvlad.assignment_kernel.numpy(),
                               2000.0 * centers.T, rtol=1e-6)


@pytest.mark.parametrize("dtype", [None, "mixed_float16"])
def test_model_contract(dtype):
    """Config round trip, registration, shapes, XLA and `.keras` reload; the
    logits stay float32 under a mixed policy."""
    kwargs = small_kwargs()
    if dtype is not None:
        kwargs["dtype"] = dtype
    logits = run_model_test(
        ActionVLAD, kwargs, frames(steps=3), expected_output_shape=(2, 5),
        expected_output_dtype="float32")
    assert np.isfinite(logits).all()
