"""Tests of `tfaction.layers.policy_stn.PolicySTN` (AdaFocus V2 policy).

The numerical check loads weights in the authors' PyTorch layout and names
(`encoder.0` conv, `encoder.1` BN2d, `encoder.4` Linear, `encoder.5` BN1d,
`gru`, `fc.0`) and compares the inference output with a NumPy statement of
their module (`tests/layers/adafocus_reference.py`).
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.layers import adafocus_reference as ref
from tfaction.layers.policy_stn import PolicySTN
from tfaction.layers.torch_gru import torch_gru_weights
from tfaction.testing import run_layer_test

KWARGS = {"hidden_units": 6, "conv_filters": 4, "stop_input_gradient": True}
DTYPES = {"locations": "float32", "states": "float32"}


def maps(shape=(2, 3, 3, 3, 5), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def bn_weights(w, name):
    return [w[f"{name}.{k}"] for k in ("weight", "bias", "running_mean",
                                       "running_var")]


def load_torch_weights(layer, w):
    """Assigns a state dict of the authors' `PolicySTN` to the layer."""
    layer.state_conv.kernel.assign(
        w["encoder.0.weight"].transpose(2, 3, 1, 0))
    layer.conv_bn.set_weights(bn_weights(w, "encoder.1"))
    layer.state_dense.set_weights([w["encoder.4.weight"].T,
                                   w["encoder.4.bias"]])
    layer.dense_bn.set_weights(bn_weights(w, "encoder.5"))
    layer.gru.set_weights(torch_gru_weights(
        *(w["gru." + k] for k in ("weight_ih_l0", "weight_hh_l0",
                                  "bias_ih_l0", "bias_hh_l0"))))
    layer.location.set_weights([w["fc.0.weight"].T, w["fc.0.bias"]])


def test_contract():
    out = run_layer_test(
        PolicySTN, KWARGS, maps(),
        expected_output_shape={"locations": (2, 3, 2), "states": (2, 3, 6)},
        expected_output_dtype=DTYPES, mixed_precision_output_dtype=DTYPES,
        # conv, BN (2), dense (2), BN (2), GRU (3), location (2)
        expected_num_trainable_weights=12,
        expected_num_non_trainable_weights=4)
    assert ((out["locations"] > 0) & (out["locations"] < 1)).all()


def test_matches_the_reference_module():
    rng = np.random.default_rng(1)
    x = maps((2, 4, 3, 2, 5), seed=2)
    w = ref.policy_stn_state(rng, channels=5, height=3, width=2, filters=4,
                             hidden=6)
    layer = PolicySTN(**KWARGS)
    layer.build(x.shape)
    load_torch_weights(layer, w)
    out = layer(x, training=False)
    np.testing.assert_allclose(out["locations"],
                               ref.policy_stn(x.astype(np.float64), w),
                               atol=1e-5)


def test_step_equals_sequence_in_inference():
    x = maps((2, 4, 3, 3, 5), seed=3)
    layer = PolicySTN(**KWARGS)
    whole = layer(x, training=False)
    state = layer.get_initial_state(2)
    for t in range(4):
        out = layer.step(x[:, t], state, training=False)
        state = out["state"]
        np.testing.assert_allclose(
            out["locations"], np.asarray(whole["locations"])[:, t], atol=1e-5)


def test_batch_norms_use_every_frame_in_training():
    x = maps((2, 3, 3, 3, 5), seed=4)
    layer = PolicySTN(**KWARGS)
    layer(x, training=True)
    moving = np.asarray(layer.conv_bn.moving_mean)
    conv = np.asarray(layer.state_conv(x.reshape(6, 3, 3, 5)))
    # PyTorch momentum 0.1 from the initial 0: 0.1 * mean over B*T*h*w.
    np.testing.assert_allclose(moving, 0.1 * conv.mean(axis=(0, 1, 2)),
                               atol=1e-6)


@pytest.mark.parametrize("stop", [True, False])
def test_input_gradient_is_stopped(stop):
    x = tf.constant(maps(seed=5))
    layer = PolicySTN(**dict(KWARGS, stop_input_gradient=stop))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x, training=True)["locations"])
    grad = tape.gradient(loss, [x] + layer.trainable_weights)
    assert (grad[0] is None) == stop
    assert all(g is not None for g in grad[1:])


def test_bad_inputs():
    with pytest.raises(ValueError, match="conv_filters"):
        PolicySTN(conv_filters=-1)
    with pytest.raises(ValueError, match="static h, w, C"):
        PolicySTN()(np.zeros((2, 3, 4, 5), "float32"))
