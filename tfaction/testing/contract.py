"""`run_layer_test` / `run_model_test`: the whole Keras layer / model contract.

In the spirit of keras-hub's `TestCase.run_layer_test`, but as plain
functions that raise `AssertionError`, so they work from pytest and from
`tf.test.TestCase` alike. `run_layer_test` runs, in this order (cheap first):

1. config: `get_config()` holds every constructor argument with its value,
   is JSON-serialisable, and `from_config(c).get_config() == c`;
2. registration under `keras.saving.register_keras_serializable(package=...)`
   and a `serialize_keras_object` → `deserialize_keras_object` round trip
   (`config_checks`);
3. build three ways (`build()`, symbolic `keras.Input`, eager call): output
   shapes/dtypes, weight counts, every sublayer built in `build()`, no weights
   created in `call()` (`build_checks`);
4. masking (when `mask` is given): changing inputs at padded steps does not
   change valid outputs; a Keras mask reaches `call` and propagates
   (`masking_checks`);
5. XLA: the layer's `supports_jit` equals the declared `supports_jit`; if true,
   `tf.function(jit_compile=True)` matches eager (`jit_checks`);
6. mixed precision (`mixed_float16`, `mixed_bfloat16`, per layer and global):
   outputs in the compute dtype, variables float32, sublayers inherit the
   policy, values close to float32; the global policy is restored
   (`mixed_precision_checks`);
7. `.keras` save / `load_model(safe_mode=True)` with no `custom_objects`
   (`saving_checks`);
8. one compiled `fit` step (`jit_compile=supports_jit`) changes weights
   (`training_checks`).

The calling convention of `input_data`, `call_kwargs` and `mask` is
described in `call_inputs`.

Example:

```python
from tfaction.testing import run_layer_test

def test_local_attention():
    run_layer_test(
        LocalSelfAttention,
        init_kwargs={"num_heads": 2, "window_size": 5},
        input_data=np.random.rand(2, 12, 8).astype("float32"),
        mask=np.arange(12)[None] < np.array([[12], [7]]),
        expected_output_shape=(2, 12, 8),
        expected_num_trainable_weights=8)
```
"""

import keras

from tfaction.testing import assertions
from tfaction.testing import build_checks
from tfaction.testing import config_checks
from tfaction.testing import jit_checks
from tfaction.testing import masking_checks
from tfaction.testing import mixed_precision_checks
from tfaction.testing import saving_checks
from tfaction.testing import training_checks
from tfaction.testing.call_inputs import CallInputs


def run_layer_test(layer_cls, init_kwargs, input_data, *, call_kwargs=None,
                   mask=None, mask_argument="mask", valid_output_mask=None,
                   expected_output_mask=None, expected_output_shape=None,
                   expected_output_dtype=None,
                   expected_num_trainable_weights=None,
                   expected_num_non_trainable_weights=None,
                   supports_jit=True, registered_package="tfaction",
                   float32_sublayers=(), mixed_precision_output_dtype=None,
                   mixed_precision_tolerance=0.1, run_training_check=True,
                   run_mixed_precision_check=True, run_saving_check=True,
                   atol=1e-5, rtol=1e-5, jit_atol=1e-4, jit_rtol=1e-4,
                   unused_weights=()):
    """Runs every check of the Keras layer contract; raises AssertionError.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments (without `dtype`).
        input_data: first positional call argument (array or list/tuple
            structure), or a dict of keyword arguments.
        call_kwargs: more call arguments; arrays among them are inputs.
        mask: boolean [B, T, ...] (True = valid), passed as
            `call_kwargs[mask_argument]`; enables the leak check.
        mask_argument: call argument that receives `mask`.
        valid_output_mask: output positions that must ignore padding (see
            `check_masking`); default derived from `mask`.
        expected_output_mask: expected Keras mask of the output (requires
            Keras mask support).
        expected_output_shape: full output shape with batch, or a structure.
        expected_output_dtype: dtype or structure; default: compute dtype
            for float outputs.
        expected_num_trainable_weights: count including sublayers.
        expected_num_non_trainable_weights: count including sublayers.
        supports_jit: whether the layer compiles with XLA. `False` asserts
            the layer declares `supports_jit = False` (never skipped
            silently); XLA is then not tried.
        registered_package: expected `register_keras_serializable` package.
        float32_sublayers: sublayer classes/names kept in float32 on purpose.
        mixed_precision_output_dtype: expected output dtype(s) under mixed
            policies; default: the compute dtype.
        mixed_precision_tolerance: atol = rtol of mixed vs float32 outputs
            (same weights); `None` skips the comparison.
        run_training_check, run_mixed_precision_check, run_saving_check:
            explicit opt-outs of the slower checks.
        atol, rtol: tolerances of exact-math comparisons (masking, reload).
        jit_atol, jit_rtol: tolerances XLA vs eager.
        unused_weights: substrings of trainable-weight paths the training
            step may leave unchanged on purpose (every other trainable
            weight must move).

    Returns:
        The eager outputs of the layer on `input_data` (numpy structure).

    Example:

    >>> run_layer_test(MaskedConv1D, {"filters": 4, "kernel_size": 3},
    ...                np.ones((2, 6, 3), "float32"),
    ...                mask=np.arange(6)[None] < np.array([[6], [4]]),
    ...                expected_output_shape=(2, 6, 4))
    """
    inputs = CallInputs.from_test_args(input_data, call_kwargs, mask,
                                       mask_argument)
    if mask is not None:  # a test-setup error, reported before any call
        masking_checks.check_mask_aligned(inputs, mask)
    config_checks.check_config(layer_cls, init_kwargs)
    config_checks.check_registered(layer_cls, registered_package)
    config_checks.check_serialization(layer_cls, init_kwargs)
    outputs = build_checks.check_build(
        layer_cls, init_kwargs, inputs,
        expected_output_shape=expected_output_shape,
        expected_output_dtype=expected_output_dtype,
        expected_num_trainable_weights=expected_num_trainable_weights,
        expected_num_non_trainable_weights=expected_num_non_trainable_weights)
    if mask is not None:
        masking_checks.check_masking(
            layer_cls, init_kwargs, inputs, mask,
            mask_argument=mask_argument, valid_output_mask=valid_output_mask,
            expected_output_mask=expected_output_mask, atol=atol, rtol=rtol)
    else:
        assert expected_output_mask is None, (
            "expected_output_mask needs a mask")
    jit_checks.check_jit(layer_cls, init_kwargs, inputs,
                         supports_jit=supports_jit, atol=jit_atol,
                         rtol=jit_rtol)
    if run_mixed_precision_check:
        mixed_precision_checks.check_mixed_precision(
            layer_cls, init_kwargs, inputs,
            float32_sublayers=float32_sublayers,
            output_dtype=mixed_precision_output_dtype,
            tolerance=mixed_precision_tolerance)
    if run_saving_check:
        saving_checks.check_keras_saving(layer_cls, init_kwargs, inputs,
                                         atol=atol, rtol=rtol)
    if run_training_check:
        training_checks.check_training(layer_cls, init_kwargs, inputs,
                                       supports_jit=supports_jit,
                                       unused_weights=unused_weights)
    return outputs


def run_model_test(model_cls, init_kwargs, input_data, *,
                   expected_output_shape=None, expected_output_dtype=None,
                   supports_jit=True, registered_package="tfaction",
                   run_saving_check=True, atol=1e-5, rtol=1e-5,
                   jit_atol=1e-4, jit_rtol=1e-4):
    """The model-level contract: config, registration, shapes, XLA, `.keras`.

    `input_data` is the model's single positional input (a dict stays a
    dict, as Keras models take it). Mixed precision and masking are covered
    by the layers' own tests.

    Args:
        model_cls: a `keras.Model` subclass (e.g. a functional backbone).
        init_kwargs: constructor arguments.
        input_data: array or structure (list / dict) of arrays.
        expected_output_shape, expected_output_dtype: as in
            `run_layer_test`.
        supports_jit: every sublayer must report the same; when true the
            model's XLA output must equal eager.
        registered_package: expected registration package.
        run_saving_check: `.keras` save / reload (safe mode) equality.
        atol, rtol, jit_atol, jit_rtol: tolerances.

    Returns:
        The eager outputs (numpy structure).

    Example:

    >>> run_model_test(ActionFormerBackbone, {"input_dim": 32, ...},
    ...                {"features": x, "mask": m}, expected_output_shape=...)
    """
    inputs = CallInputs.from_test_args(input_data, unpack_dict=False)
    config_checks.check_config(model_cls, init_kwargs)
    config_checks.check_registered(model_cls, registered_package)
    model = model_cls(**init_kwargs)
    outputs = inputs.as_tf().call(model)
    assertions.check_outputs(assertions.class_name(model_cls), outputs,
                             expected_output_shape, expected_output_dtype,
                             model.compute_dtype)
    jit_checks.check_jit(model, None, inputs, supports_jit=supports_jit,
                         atol=jit_atol, rtol=jit_rtol)
    if run_saving_check:
        saving_checks.check_model_saving(model, inputs, outputs, atol=atol,
                                         rtol=rtol)
    return keras.tree.map_structure(assertions.to_numpy, outputs)
