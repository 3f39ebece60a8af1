"""Shared checks every tfaction layer and model must pass (DESIGN.md §3, §9).

In the spirit of keras-hub's `TestCase.run_layer_test`, but as plain
functions that raise `AssertionError`, so they work from pytest and from
`tf.test.TestCase` alike. `run_layer_test` runs, in this order (cheap first):

1. config: `get_config()` holds every constructor argument with its value,
   is JSON-serialisable, and `from_config(c).get_config() == c`;
2. registration under `keras.saving.register_keras_serializable(package=...)`
   and a `serialize_keras_object` → `deserialize_keras_object` round trip;
3. build three ways (`build()`, symbolic `keras.Input`, eager call): output
   shapes/dtypes, weight counts, every sublayer built in `build()`, no weights
   created in `call()`;
4. masking (when `mask` is given): changing inputs at padded steps does not
   change valid outputs; a Keras mask reaches `call` and propagates;
5. XLA: the layer's `supports_jit` equals the declared `supports_jit`; if true,
   `tf.function(jit_compile=True)` matches eager;
6. mixed precision (`mixed_float16`, `mixed_bfloat16`, per layer and global):
   outputs in the compute dtype, variables float32, sublayers inherit the
   policy, values close to float32; the global policy is restored;
7. `.keras` save / `load_model(safe_mode=True)` with no `custom_objects`;
8. one compiled `fit` step (`jit_compile=supports_jit`) changes weights.

Calling convention: `input_data` is the first positional argument of `call`
(an array, or a list / tuple structure), except a dict, which is unpacked
into keyword arguments. Arrays in `call_kwargs` are inputs too; other values
are Python constants. `mask` is passed as `call_kwargs[mask_argument]`.

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

import inspect
import json
import os
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")
_XLA_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
               tf.errors.UnimplementedError)


# --- Inputs of one call -----------------------------------------------------
def _is_tensor(x):
    return isinstance(x, (np.ndarray, tf.Tensor, tf.Variable,
                          keras.KerasTensor))


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _is_float(x):
    return _is_tensor(x) and keras.backend.is_float_dtype(_dtype(x))


class CallInputs:
    """Positional and keyword arguments of one layer call.

    Tensor leaves (numpy arrays, tensors) are inputs; all other leaves are
    constants. Used to call a layer eagerly, symbolically, under XLA, and
    with perturbed inputs, always with the same structure.

    Args:
        args: tuple of positional arguments.
        kwargs: dict of keyword arguments.
    """

    def __init__(self, args, kwargs):
        self.args = tuple(args)
        self.kwargs = dict(kwargs)

    @classmethod
    def from_test_args(cls, input_data, call_kwargs=None, mask=None,
                       mask_argument="mask", unpack_dict=True):
        """Builds the call from `run_layer_test`'s arguments."""
        kwargs = dict(call_kwargs or {})
        if isinstance(input_data, dict) and unpack_dict:
            args = ()
            kwargs.update(input_data)
        else:
            args = (input_data,)
        if mask is not None:
            kwargs[mask_argument] = np.asarray(mask, bool)
        return cls(args, kwargs)

    def flat_tensors(self):
        return [x for x in keras.tree.flatten((self.args, self.kwargs))
                if _is_tensor(x)]

    def map_tensors(self, fn):
        args, kwargs = keras.tree.map_structure(
            lambda x: fn(x) if _is_tensor(x) else x, (self.args, self.kwargs))
        return CallInputs(args, kwargs)

    def with_flat_tensors(self, flat):
        it = iter(flat)
        return self.map_tensors(lambda _: next(it))

    def as_tf(self):
        return self.map_tensors(tf.convert_to_tensor)

    def symbolic(self):
        """Returns (`keras.Input`s in flat order, symbolic `CallInputs`)."""
        inputs = [keras.Input(shape=tuple(x.shape[1:]), dtype=_dtype(x))
                  for x in self.flat_tensors()]
        return inputs, self.with_flat_tensors(inputs)

    def call(self, layer, **extra):
        return layer(*self.args, **self.kwargs, **extra)


# --- Comparison helpers ----------------------------------------------------
def _numpy(x):
    if _is_float(x):
        x = ops.cast(x, "float32")
    return np.asarray(ops.convert_to_numpy(x))


def _assert_close(actual, desired, atol, rtol, what):
    flat_a, flat_d = keras.tree.flatten(actual), keras.tree.flatten(desired)
    assert len(flat_a) == len(flat_d), (
        f"{what}: {len(flat_a)} outputs, expected {len(flat_d)}")
    for i, (a, d) in enumerate(zip(flat_a, flat_d)):
        a, d = _numpy(a), _numpy(d)
        assert a.shape == d.shape, (
            f"{what}: output {i} shape {a.shape} != {d.shape}")
        if a.dtype == bool or np.issubdtype(a.dtype, np.integer):
            np.testing.assert_array_equal(a, d, err_msg=f"{what}: output {i}")
        else:
            np.testing.assert_allclose(a, d, atol=atol, rtol=rtol,
                                       err_msg=f"{what}: output {i}")


def _is_shape(x):
    return isinstance(x, (tuple, list)) and all(
        d is None or isinstance(d, (int, np.integer)) for d in x)


def _flatten_expected(expected, is_leaf):
    """Flattens an expectation in the order `keras.tree.flatten` uses."""
    if is_leaf(expected):
        return [expected]
    if isinstance(expected, dict):
        return [y for k in sorted(expected)
                for y in _flatten_expected(expected[k], is_leaf)]
    return [y for e in expected for y in _flatten_expected(e, is_leaf)]


def _sublayers(layer):
    # Keras has no public recursive listing; `_flatten_layers` is what Keras
    # itself and keras-hub's tests use.
    return list(layer._flatten_layers(include_self=False, recursive=True))


def _name(cls):
    return getattr(cls, "__name__", repr(cls))


# --- 1-2. Config, registration, serialisation ------------------------------
def _plain(x):
    return x is None or isinstance(x, (bool, int, float, str)) or (
        isinstance(x, (list, tuple)) and all(_plain(i) for i in x))


def _json(x):
    return json.dumps(x, sort_keys=True)


def check_config(layer_cls, init_kwargs):
    """Asserts `get_config()` is complete, JSON-able and `from_config`-stable.

    Args:
        layer_cls: the layer (or model) class.
        init_kwargs: constructor arguments.

    Returns:
        The config dict.
    """
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    missing = sorted(set(init_kwargs) - set(config))
    assert not missing, (
        f"{_name(layer_cls)}.get_config() lacks constructor argument(s) "
        f"{missing}: from_config() would silently use the defaults")
    for key, given in init_kwargs.items():
        stored = config[key]
        # Objects (initializers, activations) are stored serialised; compare
        # only plain values, where a mismatch is certainly a bug.
        if _plain(given) and _plain(stored):
            assert json.loads(_json(given)) == json.loads(_json(stored)), (
                f"{_name(layer_cls)}.get_config()[{key!r}] = {stored!r}, "
                f"but the layer was built with {given!r}")
    try:
        text = _json(config)
    except TypeError as e:
        raise AssertionError(f"{_name(layer_cls)}.get_config() is not "
                             f"JSON-serialisable: {e}") from e
    again = _json(layer_cls.from_config(json.loads(text)).get_config())
    assert again == text, (
        f"{_name(layer_cls)}: from_config(get_config()).get_config() differs"
        f":\n{again}\n!=\n{text}")
    return config


def check_registered(layer_cls, package="tfaction"):
    """Asserts `layer_cls` is registered as Keras-serialisable in `package`.

    Args:
        layer_cls: the class.
        package: expected `register_keras_serializable(package=...)`.
    """
    name = keras.saving.get_registered_name(layer_cls)
    assert (name.startswith(f"{package}>")
            and keras.saving.get_registered_object(name) is layer_cls), (
        f"{_name(layer_cls)} is not registered: decorate it with "
        f"@keras.saving.register_keras_serializable(package={package!r}); "
        "without it a saved .keras file does not load")


def check_serialization(layer_cls, init_kwargs):
    """Asserts a `serialize_keras_object` JSON round trip restores the layer."""
    layer = layer_cls(**init_kwargs)
    blob = json.loads(_json(keras.saving.serialize_keras_object(layer)))
    try:
        revived = keras.saving.deserialize_keras_object(blob)
    except (TypeError, ValueError) as e:
        raise AssertionError(f"{_name(layer_cls)}: deserialisation failed: "
                             f"{e}") from e
    assert type(revived) is layer_cls, (
        f"deserialised {type(revived).__name__}, expected {_name(layer_cls)}")
    assert _json(revived.get_config()) == _json(layer.get_config())


# --- 3. Build three ways ----------------------------------------------------
def _build_kwargs(layer, inputs):
    """Shapes for an explicit `build()`, matched as Keras matches them."""
    bound = inspect.signature(layer.call).bind(*inputs.args, **inputs.kwargs)
    shapes = {}
    for name, value in bound.arguments.items():
        tensors = [x for x in keras.tree.flatten(value) if _is_tensor(x)]
        if not tensors or name == "mask" or name.endswith("_mask"):
            continue
        shapes[f"{name}_shape"] = keras.tree.map_structure(
            lambda x: tuple(x.shape) if _is_tensor(x) else x, value)
    params = [p for p in inspect.signature(layer.build).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(params) <= 1:  # build(input_shape): the first tensor argument
        return {params[0].name: next(iter(shapes.values()))} if params else {}
    return {p.name: shapes[p.name] for p in params if p.name in shapes}


def _weight_counts(layer):
    return len(layer.trainable_weights), len(layer.non_trainable_weights)


def _check_outputs(what, outputs, expected_shapes, expected_dtypes,
                   compute_dtype, symbolic=False):
    flat = keras.tree.flatten(outputs)
    if expected_shapes is not None:
        shapes = _flatten_expected(expected_shapes, _is_shape)
        assert len(shapes) == len(flat), (
            f"{what}: {len(flat)} outputs, expected {len(shapes)}")
        for i, (x, shape) in enumerate(zip(flat, shapes)):
            shape = tuple(shape)
            if symbolic:  # the batch dimension stays unknown
                shape = (None,) + shape[1:]
            assert tuple(x.shape) == shape, (
                f"{what}: output {i} has shape {tuple(x.shape)}, expected "
                f"{shape}")
    if expected_dtypes is None:
        expected = [compute_dtype if _is_float(x) else _dtype(x) for x in flat]
    else:
        expected = _flatten_expected(expected_dtypes,
                                     lambda d: not isinstance(
                                         d, (list, tuple, dict)))
        if len(expected) == 1:
            expected = expected * len(flat)
    got = [_dtype(x) for x in flat]
    assert got == [keras.backend.standardize_dtype(d) for d in expected], (
        f"{what}: output dtypes {got}, expected {expected}")


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
    name = _name(layer_cls)
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
    unbuilt = [sub.name for sub in _sublayers(layer) if not sub.built]
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
    _check_outputs(f"{name} (eager)", outputs, expected_output_shape,
                   expected_output_dtype, layer.compute_dtype)
    check_weights(layer, "an eager call")
    if expected_output_shape is None:
        expected_output_shape = keras.tree.map_structure(
            lambda x: tuple(x.shape), outputs)

    # (c) Symbolic call (functional API) with an unknown batch size.
    layer = layer_cls(**init_kwargs)
    _, symbolic = inputs.symbolic()
    _check_outputs(f"{name} (symbolic)", symbolic.call(layer),
                   expected_output_shape, expected_output_dtype,
                   layer.compute_dtype, symbolic=True)
    check_weights(layer, "a symbolic call")
    return keras.tree.map_structure(_numpy, outputs)


# --- 4. Masking -------------------------------------------------------------
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
    name = _name(layer_cls)
    mask = np.asarray(mask, bool)
    rng = np.random.default_rng(seed)
    layer = layer_cls(**init_kwargs)
    reference = keras.tree.map_structure(_numpy, inputs.as_tf().call(layer))
    perturbed_any = []

    def perturb(x):
        x = np.asarray(x)
        if not _is_float(x) or x.shape[:mask.ndim] != mask.shape:
            return x
        perturbed_any.append(True)
        noise = rng.normal(0.0, 100.0, x.shape).astype(x.dtype) + 50
        keep = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
        return np.where(keep, x, noise)

    assert mask_argument in inputs.kwargs
    perturbed = inputs.map_tensors(perturb)
    assert perturbed_any, (
        f"{name}: no float input has leading dimensions {mask.shape} equal "
        "to the mask's, so padding cannot be perturbed")
    outputs = keras.tree.map_structure(_numpy, perturbed.as_tf().call(layer))
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
                  _is_tensor(x) for x in keras.tree.flatten(v))]
    computed = layer.compute_mask(
        tf.convert_to_tensor(data) if _is_tensor(data) else data,
        tf.constant(mask))
    if expected_output_mask is not None:
        assert computed is not None, f"{name}.compute_mask() returned None"
        np.testing.assert_array_equal(
            _numpy(computed), np.asarray(expected_output_mask, bool),
            err_msg=f"{name}.compute_mask()")
    single = (_is_tensor(data) and not others and mask_argument == "mask"
              and "mask" in inspect.signature(layer.call).parameters
              and len(keras.tree.flatten(reference)) == 1)
    if not single:
        return
    # Deliver the mask the Keras way: attached to the input tensor.
    x_in = keras.Input(shape=data.shape[1:], dtype=_dtype(data))
    m_in = keras.Input(shape=mask.shape[1:], dtype="bool")
    constants = {k: v for k, v in inputs.kwargs.items() if k != mask_argument}
    y = layer(_AttachMask()([x_in, m_in]), **constants)
    model = keras.Model([x_in, m_in], [y, _ReadMask()(y)])
    y_val, propagated = model([tf.constant(data), tf.constant(mask)])
    _assert_close(y_val, reference, atol, rtol,
                  f"{name} with the mask given as a Keras mask")
    propagated = _numpy(propagated)
    if computed is None:
        assert propagated.size == 0, (
            f"{name}: compute_mask() is None but a mask propagated")
    else:
        assert propagated.shape == tuple(computed.shape), (
            f"{name}: no Keras mask propagated to the output (expected "
            f"shape {tuple(computed.shape)})")
        np.testing.assert_array_equal(propagated.astype(bool),
                                      _numpy(computed),
                                      err_msg=f"{name}: propagated mask")


# --- 5. XLA -----------------------------------------------------------------
def _check_supports_jit(obj, supports_jit):
    layers = [obj] + _sublayers(obj)
    declared = all(getattr(x, "supports_jit", True) for x in layers)
    assert declared == bool(supports_jit), (
        f"{type(obj).__name__}: the test declares supports_jit="
        f"{supports_jit} but the layer (with its sublayers) reports "
        f"{declared}; a layer that cannot be compiled with XLA sets "
        "`self.supports_jit = False` (Keras then never auto-enables XLA)")


def check_jit(layer_or_cls, init_kwargs, inputs, *, supports_jit=True,
              atol=1e-4, rtol=1e-4):
    """Asserts the XLA declaration is honest and XLA output equals eager.

    Args:
        layer_or_cls: a layer class (with `init_kwargs`) or a built instance.
        init_kwargs: constructor arguments (ignored for an instance).
        inputs: a `CallInputs`.
        supports_jit: what the test declares. `False` asserts the layer sets
            `supports_jit = False`; nothing is compiled then.
        atol, rtol: tolerances XLA vs eager.
    """
    layer = (layer_or_cls(**init_kwargs) if isinstance(layer_or_cls, type)
             else layer_or_cls)
    _check_supports_jit(layer, supports_jit)
    if not supports_jit:
        return
    tf_inputs = inputs.as_tf()
    eager = tf_inputs.call(layer)
    compiled = tf.function(
        lambda *flat: tf_inputs.with_flat_tensors(flat).call(layer),
        jit_compile=True)
    try:
        jitted = compiled(*tf_inputs.flat_tensors())
    except _XLA_ERRORS as e:
        raise AssertionError(
            f"{type(layer).__name__} does not compile with XLA "
            f"(jit_compile=True): {str(e).splitlines()[0][:400]}. Use XLA-"
            "compatible ops, or set `self.supports_jit = False` and test with "
            "supports_jit=False") from e
    _assert_close(jitted, eager, atol, rtol,
                  f"{type(layer).__name__}: XLA vs eager")


# --- 6. Mixed precision -----------------------------------------------------
def _check_policy(layer, policy, outputs, output_dtype, float32_sublayers):
    name = type(layer).__name__
    compute = keras.dtype_policies.DTypePolicy(policy).compute_dtype
    assert layer.dtype_policy.name == policy, (
        f"{name}: policy {layer.dtype_policy.name}, expected {policy}")
    bad = [v.path for v in layer.weights
           if keras.backend.is_float_dtype(v.dtype) and v.dtype != "float32"]
    assert not bad, f"{name} under {policy}: non-float32 variables {bad}"
    for sub in _sublayers(layer):
        keep32 = (isinstance(sub, tuple(t for t in float32_sublayers
                                        if isinstance(t, type)))
                  or sub.name in float32_sublayers)
        want = "float32" if keep32 else policy
        assert sub.dtype_policy.name == want, (
            f"{name} under {policy}: sublayer {sub.name!r} "
            f"({type(sub).__name__}) has policy {sub.dtype_policy.name}, "
            f"expected {want}; create sublayers with dtype=self.dtype_policy")
    _check_outputs(f"{name} under {policy}", outputs, None, output_dtype,
                   compute)


def check_mixed_precision(layer_cls, init_kwargs, inputs, *,
                          float32_sublayers=(), output_dtype=None,
                          tolerance=0.1):
    """Checks `mixed_float16` and `mixed_bfloat16`, per layer and global.

    Args:
        layer_cls, init_kwargs: the layer.
        inputs: a `CallInputs`.
        float32_sublayers: sublayer classes or names deliberately kept in
            float32 (e.g. a final softmax).
        output_dtype: expected output dtype(s); `None` = the compute dtype
            for float outputs.
        tolerance: atol = rtol against float32 outputs with the same
            weights; `None` skips the value comparison.
    """
    name = _name(layer_cls)
    tf_inputs = inputs.as_tf()
    reference = layer_cls(**init_kwargs)
    expected = tf_inputs.call(reference)
    kwargs = {k: v for k, v in init_kwargs.items() if k != "dtype"}
    for policy in MIXED_POLICIES:
        layer = layer_cls(**kwargs, dtype=policy)
        outputs = tf_inputs.call(layer)
        _check_policy(layer, policy, outputs, output_dtype, float32_sublayers)
        if tolerance is not None:
            layer.set_weights(reference.get_weights())
            _assert_close(tf_inputs.call(layer), expected, tolerance,
                          tolerance, f"{name} under {policy} vs float32")
        previous = keras.config.dtype_policy()
        try:
            keras.config.set_dtype_policy(policy)
            layer = layer_cls(**kwargs)
            outputs = tf_inputs.call(layer)
            _check_policy(layer, policy, outputs, output_dtype,
                          float32_sublayers)
        finally:
            keras.config.set_dtype_policy(previous)


# --- 7. .keras saving ---------------------------------------------------------
def _save_and_reload(model, what):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        try:
            # No custom_objects on purpose: registration must suffice.
            return keras.saving.load_model(path, safe_mode=True)
        except Exception as e:
            raise AssertionError(
                f"{what}: the .keras file does not reload with safe_mode=True"
                f" and no custom_objects: {type(e).__name__}: "
                f"{str(e)[:600]}") from e


def check_keras_saving(layer_cls, init_kwargs, inputs, *, atol=1e-6,
                       rtol=1e-6):
    """Saves the layer inside a functional model as `.keras`; reloads; compares.

    Args:
        layer_cls, init_kwargs: the layer.
        inputs: a `CallInputs`.
        atol, rtol: tolerances reloaded vs original outputs.
    """
    name = _name(layer_cls)
    model_inputs, symbolic = inputs.symbolic()
    model = keras.Model(model_inputs, symbolic.call(layer_cls(**init_kwargs)))
    flat = [tf.convert_to_tensor(x) for x in inputs.flat_tensors()]
    expected = model(flat)
    restored = _save_and_reload(model, name)
    found = [x for x in restored.layers if type(x) is layer_cls]
    assert len(found) == 1, f"{name}: not found in the reloaded model"
    _assert_close(restored(flat), expected, atol, rtol,
                  f"{name}: reloaded .keras vs original")


# --- 8. Training --------------------------------------------------------------
class _Wrapped:
    """Hides the call structure from Keras attribute tracking."""

    def __init__(self, inputs):
        self.inputs = inputs


class _TrainingProbe(keras.Model):
    """Calls the layer on flat inputs; loss = mean square of float outputs."""

    def __init__(self, layer, inputs):
        super().__init__(name="training_probe")
        self.inner = layer
        self._call_inputs = _Wrapped(inputs)

    def call(self, flat, training=None):
        # `training` reaches the layer through Keras' call context.
        return self._call_inputs.inputs.with_flat_tensors(flat).call(
            self.inner)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        terms = [ops.mean(ops.square(ops.cast(t, "float32")))
                 for t in keras.tree.flatten(y_pred) if _is_float(t)]
        return ops.sum(ops.stack(terms)) + sum(self.losses)


def check_training(layer_cls, init_kwargs, inputs, *, supports_jit=True):
    """Runs one compiled `fit` step; the loss is finite and weights move.

    Args:
        layer_cls, init_kwargs: the layer.
        inputs: a `CallInputs`.
        supports_jit: compile the train step with XLA when true.
    """
    name = _name(layer_cls)
    model = _TrainingProbe(layer_cls(**init_kwargs), inputs)
    flat = [tf.convert_to_tensor(x) for x in inputs.flat_tensors()]
    model(flat)
    before = [np.array(v) for v in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  jit_compile=bool(supports_jit))
    dataset = tf.data.Dataset.from_tensors((tuple(flat),))
    try:
        with warnings.catch_warnings():
            # Weightless layers still run their training-mode forward pass.
            warnings.filterwarnings("ignore", "The model does not have any "
                                    "trainable weights")
            history = model.fit(dataset, epochs=1, verbose=0)
    except Exception as e:  # e.g. "No gradients provided for any variable"
        raise AssertionError(f"{name}: one compiled fit step failed: "
                             f"{type(e).__name__}: {str(e)[:400]}") from e
    loss = history.history["loss"][-1]
    assert np.isfinite(loss), f"{name}: training loss is {loss}"
    if before:
        moved = [not np.array_equal(b, np.array(v))
                 for b, v in zip(before, model.trainable_weights)]
        assert any(moved), f"{name}: one fit step changed no trainable weight"


# --- Entry points -------------------------------------------------------------
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
                   atol=1e-5, rtol=1e-5, jit_atol=1e-4, jit_rtol=1e-4):
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
        aligned = [x for x in inputs.flat_tensors() if _is_float(x)
                   and x.shape[:np.ndim(mask)] == np.shape(mask)]
        assert aligned, (
            f"no float input has leading dimensions {np.shape(mask)} equal "
            "to the mask's, so padding cannot be perturbed")
    check_config(layer_cls, init_kwargs)
    check_registered(layer_cls, registered_package)
    check_serialization(layer_cls, init_kwargs)
    outputs = check_build(
        layer_cls, init_kwargs, inputs,
        expected_output_shape=expected_output_shape,
        expected_output_dtype=expected_output_dtype,
        expected_num_trainable_weights=expected_num_trainable_weights,
        expected_num_non_trainable_weights=expected_num_non_trainable_weights)
    if mask is not None:
        check_masking(layer_cls, init_kwargs, inputs, mask,
                      mask_argument=mask_argument,
                      valid_output_mask=valid_output_mask,
                      expected_output_mask=expected_output_mask,
                      atol=atol, rtol=rtol)
    else:
        assert expected_output_mask is None, (
            "expected_output_mask needs a mask")
    check_jit(layer_cls, init_kwargs, inputs, supports_jit=supports_jit,
              atol=jit_atol, rtol=jit_rtol)
    if run_mixed_precision_check:
        check_mixed_precision(layer_cls, init_kwargs, inputs,
                              float32_sublayers=float32_sublayers,
                              output_dtype=mixed_precision_output_dtype,
                              tolerance=mixed_precision_tolerance)
    if run_saving_check:
        check_keras_saving(layer_cls, init_kwargs, inputs, atol=atol,
                           rtol=rtol)
    if run_training_check:
        check_training(layer_cls, init_kwargs, inputs,
                       supports_jit=supports_jit)
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
    check_config(model_cls, init_kwargs)
    check_registered(model_cls, registered_package)
    model = model_cls(**init_kwargs)
    outputs = inputs.as_tf().call(model)
    _check_outputs(_name(model_cls), outputs, expected_output_shape,
                   expected_output_dtype, model.compute_dtype)
    check_jit(model, None, inputs, supports_jit=supports_jit, atol=jit_atol,
              rtol=jit_rtol)
    if run_saving_check:
        restored = _save_and_reload(model, _name(model_cls))
        assert type(restored) is model_cls, (
            f"reloaded a {type(restored).__name__}, expected "
            f"{_name(model_cls)}")
        _assert_close(inputs.as_tf().call(restored), outputs, atol, rtol,
                      f"{_name(model_cls)}: reloaded .keras vs original")
    return keras.tree.map_structure(_numpy, outputs)
