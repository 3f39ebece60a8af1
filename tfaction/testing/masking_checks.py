"""Masking checks (contract step 4): padding never leaks; Keras masks flow.

Float inputs aligned with the mask get large random values at padded steps;
outputs at valid positions must not change. A layer that supports Keras
masking must also give the same output when the mask arrives attached to its
input, and propagate the mask it computes.

Example:

```python
mask = np.arange(6)[None] < np.array([[6], [4]])
inputs = CallInputs.from_test_args(x, mask=mask)
check_masking(MaskedConv1D, {"filters": 4, "kernel_size": 3}, inputs, mask)
```
"""

import inspect

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfaction.testing import assertions
from tfaction.testing import call_inputs


class _AttachMask(keras.layers.Layer):
    """Test probe: returns `inputs[0]` with `inputs[1]` as its Keras mask."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return ops.copy(inputs[0])

    def compute_mask(self, inputs, previous_mask=None):
        return ops.cast(inputs[1], "bool")


class _ReadMask(keras.layers.Layer):
    """Test probe: outputs the Keras mask it receives ([B, 0] if none)."""

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.zeros((ops.shape(inputs)[0], 0), "int8")
        return ops.cast(mask, "int8")

    def compute_mask(self, inputs, previous_mask=None):
        return None


def _is_aligned(x, mask):
    """Whether `x` is a float input whose leading dims equal `mask.shape`."""
    return (call_inputs.is_float(x)
            and tuple(x.shape[:np.ndim(mask)]) == np.shape(mask))


def check_mask_aligned(inputs, mask, what=None):
    """Asserts some float input is aligned with `mask` (can be perturbed).

    Args:
        inputs: a `CallInputs`.
        mask: boolean array [B, T, ...].
        what: prefix of the failure message (e.g. the layer name).
    """
    prefix = "" if what is None else f"{what}: "
    assert any(_is_aligned(x, mask) for x in inputs.flat_tensors()), (
        f"{prefix}no float input has leading dimensions {np.shape(mask)} "
        "equal to the mask's, so padding cannot be perturbed")


def _valid_positions(output, mask, valid_output_mask):
    if valid_output_mask is not None:
        valid = np.asarray(valid_output_mask, bool)
    elif tuple(output.shape[:mask.ndim]) == mask.shape:
        valid = mask
    else:  # no step axis: the whole output must ignore padded steps
        return np.ones(output.shape, bool)
    valid = valid.reshape(valid.shape + (1,) * (output.ndim - valid.ndim))
    return np.broadcast_to(valid, output.shape)


def check_masking(layer_cls, init_kwargs, inputs, mask, *,
                  mask_argument="mask", valid_output_mask=None,
                  expected_output_mask=None, atol=1e-5, rtol=1e-5, seed=0):
    """Asserts padded steps never leak into valid outputs; checks Keras masks.

    Float inputs whose leading dimensions equal `mask.shape` get large random
    values at padded (False) steps; outputs at valid positions must not
    change. Valid positions: `valid_output_mask` if given (one array for all
    outputs), else `mask` for outputs whose leading dims equal its shape, else
    the whole output (e.g. pooled over time).

    If the layer supports Keras masking (`supports_masking`) and has a single
    tensor input, the mask is also delivered as a Keras mask in a functional
    model: the output must be the same and the propagated mask must equal
    `expected_output_mask` (default: `layer.compute_mask(inputs, mask)`).

    Args:
        layer_cls, init_kwargs: the layer.
        inputs: a `CallInputs` that already holds the mask.
        mask: boolean array [B, T, ...], True = valid step.
        mask_argument: name of the call argument receiving the mask.
        valid_output_mask: see above.
        expected_output_mask: expected Keras output mask, or `None`.
        atol, rtol: tolerances; seed: for the perturbation.
    """
    name = assertions.class_name(layer_cls)
    mask = np.asarray(mask, bool)
    rng = np.random.default_rng(seed)
    layer = layer_cls(**init_kwargs)
    reference = keras.tree.map_structure(assertions.to_numpy,
                                         inputs.as_tf().call(layer))

    def perturb(x):
        x = np.asarray(x)
        if not _is_aligned(x, mask):
            return x
        noise = rng.normal(0.0, 100.0, x.shape).astype(x.dtype) + 50
        keep = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
        return np.where(keep, x, noise)

    assert mask_argument in inputs.kwargs
    check_mask_aligned(inputs, mask, name)
    perturbed = inputs.map_tensors(perturb)
    outputs = keras.tree.map_structure(assertions.to_numpy,
                                       perturbed.as_tf().call(layer))
    for i, (ref, out) in enumerate(zip(keras.tree.flatten(reference),
                                       keras.tree.flatten(outputs))):
        valid = _valid_positions(ref, mask, valid_output_mask)
        assert np.isfinite(out[valid].astype(np.float64)).all(), (
            f"{name}: padded steps leak into output {i}: valid outputs "
            "become non-finite when padded inputs change")
        diff = np.abs(out[valid].astype(np.float64) - ref[valid])
        bound = atol + rtol * np.abs(ref[valid])
        assert (diff <= bound).all(), (
            f"{name}: padded steps leak into output {i}: changing inputs at "
            f"masked positions changed valid outputs by up to {diff.max():.3g}")

    _check_keras_mask(layer, inputs, mask, mask_argument, reference,
                      expected_output_mask, atol, rtol)


def _check_keras_mask(layer, inputs, mask, mask_argument, reference,
                      expected_output_mask, atol, rtol):
    name = type(layer).__name__
    if not layer.supports_masking:
        assert expected_output_mask is None, (
            f"{name}: expected_output_mask given, but the layer does not "
            "support Keras masking (override compute_mask or set "
            "supports_masking = True)")
        return
    data = inputs.args[0] if inputs.args else None
    others = [k for k, v in inputs.kwargs.items()
              if k != mask_argument and any(
                  call_inputs.is_tensor(x) for x in keras.tree.flatten(v))]
    computed = layer.compute_mask(
        tf.convert_to_tensor(data) if call_inputs.is_tensor(data) else data,
        tf.constant(mask))
    if expected_output_mask is not None:
        assert computed is not None, f"{name}.compute_mask() returned None"
        np.testing.assert_array_equal(
            assertions.to_numpy(computed),
            np.asarray(expected_output_mask, bool),
            err_msg=f"{name}.compute_mask()")
    single = (call_inputs.is_tensor(data) and not others
              and mask_argument == "mask"
              and "mask" in inspect.signature(layer.call).parameters
              and len(keras.tree.flatten(reference)) == 1)
    if not single:
        return
    # Deliver the mask the Keras way: attached to the input tensor.
    x_in = keras.Input(shape=data.shape[1:], dtype=call_inputs.dtype_of(data))
    m_in = keras.Input(shape=mask.shape[1:], dtype="bool")
    constants = {k: v for k, v in inputs.kwargs.items() if k != mask_argument}
    y = layer(_AttachMask()([x_in, m_in]), **constants)
    model = keras.Model([x_in, m_in], [y, _ReadMask()(y)])
    y_val, propagated = model([tf.constant(data), tf.constant(mask)])
    assertions.assert_close(y_val, reference, atol, rtol,
                            f"{name} with the mask given as a Keras mask")
    propagated = assertions.to_numpy(propagated)
    if computed is None:
        assert propagated.size == 0, (
            f"{name}: compute_mask() is None but a mask propagated")
    else:
        assert propagated.shape == tuple(computed.shape), (
            f"{name}: no Keras mask propagated to the output (expected "
            f"shape {tuple(computed.shape)})")
        np.testing.assert_array_equal(propagated.astype(bool),
                                      assertions.to_numpy(computed),
                                      err_msg=f"{name}: propagated mask")
