"""Tests of `tfaction.layers.channel_affine.ChannelAffine`.

`from_imagenet(mode)` is checked against keras.applications' own
`imagenet_utils.preprocess_input` on the pixels that the torchvision
normalisation came from.
"""

import keras
import numpy as np
import pytest

from tfaction import errors
from tfaction.layers.channel_affine import IMAGENET_MEAN
from tfaction.layers.channel_affine import IMAGENET_STD
from tfaction.layers.channel_affine import ChannelAffine
from tfaction.testing import run_layer_test


def test_channel_affine_contract():
    x = np.random.default_rng(0).normal(size=(2, 5, 4, 3)).astype("float32")
    out = run_layer_test(
        ChannelAffine, {"scale": [1.0, 2.0, 3.0], "offset": [0.0, -1.0, 5.0],
                        "reverse_channels": True}, x,
        expected_output_shape=(2, 5, 4, 3),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0)
    want = x[..., ::-1] * np.array([1.0, 2.0, 3.0]) + np.array([0, -1, 5])
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_from_imagenet_matches_keras_preprocess_input(mode):
    rgb = np.random.default_rng(1).uniform(0, 1, (2, 6, 5, 3))
    torchvision = ((rgb - IMAGENET_MEAN) / IMAGENET_STD).astype("float32")
    want = keras.applications.imagenet_utils.preprocess_input(
        (255.0 * rgb).astype("float32"), mode=mode)
    got = keras.ops.convert_to_numpy(
        ChannelAffine.from_imagenet(mode)(torchvision))
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-4)


def test_bad_arguments():
    with pytest.raises(errors.ConfigError, match="unknown keras.applications"):
        ChannelAffine.from_imagenet("bgr")
    with pytest.raises(errors.ConfigError, match="different lengths"):
        ChannelAffine([1.0, 2.0], [0.0, 0.0, 0.0])
    with pytest.raises(errors.ConfigError, match="scale must be a number"):
        ChannelAffine("x")
