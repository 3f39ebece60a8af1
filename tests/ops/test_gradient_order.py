"""Tests of `tfaction.ops.gradient_order.after_upstream`."""

import tensorflow as tf

from tfaction.layers import channel_layer_norm
from tfaction.layers.channel_layer_norm import ChannelLayerNorm
from tfaction.ops import gelu as gelu_module
from tfaction.ops import gradient_order
from tfaction.ops.gradient_order import after_upstream
from tfaction.testing.docstring_checks import check_docstring_examples
from tests.ops.training_peak import ACTIVATION_MIB, residual_stack_peak_mib


def test_eager_tensors_pass_through():
    a, b = tf.constant(1.0), tf.constant(2.0)
    assert after_upstream(tf.constant(0.0), a, b) == (a, b)


def test_traced_tensors_wait_for_the_upstream_gradient():
    seen = {}

    @tf.function
    def fn(upstream, x):
        (xr,) = after_upstream(upstream, x)
        seen["op"] = xr.op
        seen["upstream"] = upstream.op
        return xr * 2.0

    assert float(fn(tf.constant(0.0), tf.constant(3.0))) == 6.0
    assert seen["op"].type == "Identity"
    assert seen["upstream"] in seen["op"].control_inputs


def _peak_mib(ordered, monkeypatch):
    identity = lambda upstream, *tensors: tensors  # noqa: E731
    for module in (gelu_module, channel_layer_norm):
        monkeypatch.setattr(module, "after_upstream",
                            after_upstream if ordered else identity)
    norms = [ChannelLayerNorm() for _ in range(8)]
    return residual_stack_peak_mib(
        lambda i, h, w: gelu_module.gelu(tf.matmul(norms[i](h), w)))


def test_ordering_lowers_the_training_peak(monkeypatch):
    """8 residual LayerNorm + matmul + GELU layers on 16 MB activations:
    without the ordering the executor recomputes LayerNorm's normalised
    input and GELU's derivative during the forward pass and holds them
    (measured: ~3 activations more at the peak)."""
    ordered = _peak_mib(True, monkeypatch)
    unordered = _peak_mib(False, monkeypatch)
    assert ordered < unordered - ACTIVATION_MIB, (ordered, unordered)


def test_docstring_examples():
    check_docstring_examples(gradient_order)
