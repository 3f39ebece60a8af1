"""Build checks (contract step 3): the layer built three ways.

`build()` explicitly, an eager call, and a symbolic call (functional API)
must give the expected output shapes/dtypes and weight counts; `build()`
must build every sublayer, and `call()` must create no weight.

Example:

```python
inputs = CallInputs.from_test_args(np.ones((2, 6, 3), "float32"))
check_build(MaskedConv1D, {"filters": 4, "kernel_size": 3}, inputs,
            expected_output_shape=(2, 6, 4),
            expected_num_trainable_weights=2)
```
"""

import inspect

import keras

from tfaction.testing import assertions
from tfaction.testing import call_inputs


def _build_kwargs(layer, inputs):
    """Shapes for an explicit `build()`, matched as Keras matches them."""
    bound = inspect.signature(layer.call).bind(*inputs.args, **inputs.kwargs)
    shapes = {}
    for name, value in bound.arguments.items():
        tensors = [x for x in keras.tree.flatten(value)
                   if call_inputs.is_tensor(x)]
        if not tensors or name == "mask" or name.endswith("_mask"):
            continue
        shapes[f"{name}_shape"] = keras.tree.map_structure(
            lambda x: tuple(x.shape) if call_inputs.is_tensor(x) else x,
            value)
    params = [p for p in inspect.signature(layer.build).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(params) <= 1:  # build(input_shape): the first tensor argument
        return {params[0].name: next(iter(shapes.values()))} if params else {}
    return {p.name: shapes[p.name] for p in params if p.name in shapes}


def _weight_counts(layer):
    return len(layer.trainable_weights), len(layer.non_trainable_weights)


def check_build(layer_cls, init_kwargs, inputs, *, expected_output_shape=None,
                expected_output_dtype=None, expected_num_trainable_weights=None,
                expected_num_non_trainable_weights=None):
    """Builds the layer three ways and checks shapes, dtypes, weights.

    Args:
        layer_cls, init_kwargs: the layer.
        inputs: a `CallInputs`.
        expected_output_shape: full shape (with batch) or a structure of
            shapes; `None` checks that the three ways agree.
        expected_output_dtype: dtype or structure; `None` = compute dtype for
            float outputs.
        expected_num_trainable_weights, expected_num_non_trainable_weights:
            counts including sublayers, or `None`.

    Returns:
        The eager outputs (numpy).
    """
    name = assertions.class_name(layer_cls)
    eager_inputs = inputs.as_tf()

    def check_weights(layer, how):
        trainable, non_trainable = _weight_counts(layer)
        for got, want, kind in (
                (trainable, expected_num_trainable_weights, "trainable"),
                (non_trainable, expected_num_non_trainable_weights,
                 "non-trainable")):
            assert want is None or got == want, (
                f"{name} built by {how}: {got} {kind} weights, expected "
                f"{want}")

    # (a) Explicit build(): every weight and sublayer must exist afterwards.
    layer = layer_cls(**init_kwargs)
    layer.build(**_build_kwargs(layer, inputs))
    assert layer.built, f"{name}.build() did not set self.built"
    unbuilt = [sub.name for sub in assertions.sublayers(layer)
               if not sub.built]
    assert not unbuilt, (
        f"{name}.build() left sublayers unbuilt: {unbuilt}; build each one "
        "explicitly in build()")
    check_weights(layer, "build()")
    counts = _weight_counts(layer)
    try:
        eager_inputs.call(layer)
    except Exception as e:  # Keras refuses new state after build
        raise AssertionError(
            f"{name}: calling the layer after an explicit build() failed "
            f"({type(e).__name__}: {str(e)[:300]}); create all state in "
            "build()") from e
    assert _weight_counts(layer) == counts, (
        f"{name}: call() created weights after build(): {counts} -> "
        f"{_weight_counts(layer)} (trainable, non-trainable)")

    # (b) Eager call on a fresh layer.
    layer = layer_cls(**init_kwargs)
    outputs = eager_inputs.call(layer)
    assertions.check_outputs(f"{name} (eager)", outputs,
                             expected_output_shape, expected_output_dtype,
                             layer.compute_dtype)
    check_weights(layer, "an eager call")
    if expected_output_shape is None:
        expected_output_shape = keras.tree.map_structure(
            lambda x: tuple(x.shape), outputs)
    _check_compute_output_shape(name, layer, inputs, outputs)

    # (c) Symbolic call (functional API) with an unknown batch size.
    layer = layer_cls(**init_kwargs)
    _, symbolic = inputs.symbolic()
    assertions.check_outputs(f"{name} (symbolic)", symbolic.call(layer),
                             expected_output_shape, expected_output_dtype,
                             layer.compute_dtype, symbolic=True)
    check_weights(layer, "a symbolic call")
    return keras.tree.map_structure(assertions.to_numpy, outputs)


def _check_compute_output_shape(name, layer, inputs, outputs):
    """A layer's own `compute_output_shape` gives its outputs' shapes."""
    if type(layer).compute_output_shape is keras.layers.Layer.compute_output_shape:
        return  # not defined: Keras traces `call` instead
    first = inputs.args[0]
    shape = (tuple(first.shape) if not isinstance(first, (list, tuple))
             else [tuple(x.shape) for x in first])
    predicted = layer.compute_output_shape(shape)
    actual = keras.tree.map_structure(lambda x: tuple(x.shape), outputs)
    assert _as_lists(predicted) == _as_lists(actual), (
        f"{name}: compute_output_shape gives {predicted}, the call returns "
        f"{actual}")


def _as_lists(structure):
    """Shapes as nested lists of ints (tuples and lists alike)."""
    if isinstance(structure, (list, tuple)) and all(
            isinstance(d, (int, type(None))) for d in structure):
        return [None if d is None else int(d) for d in structure]
    return [_as_lists(s) for s in structure]
