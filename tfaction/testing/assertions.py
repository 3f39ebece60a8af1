"""Assertion helpers shared by the checks: outputs, dtypes, sublayers.

Example:

```python
assert_close(reloaded(x), model(x), 1e-6, 1e-6, "reloaded vs original")
check_outputs("MyLayer (eager)", outputs, (2, 5, 4), None, "float32")
```
"""

import keras
import numpy as np
from keras import ops

from tfaction.testing import call_inputs


def to_numpy(x):
    """`x` as a numpy array; float tensors are cast to float32 first."""
    if call_inputs.is_float(x):
        x = ops.cast(x, "float32")
    return np.asarray(ops.convert_to_numpy(x))


def assert_close(actual, desired, atol, rtol, what):
    """Asserts two output structures match (exactly for bool/int leaves).

    Args:
        actual, desired: tensors or structures of tensors.
        atol, rtol: tolerances for float leaves.
        what: prefix of the failure message.
    """
    flat_a, flat_d = keras.tree.flatten(actual), keras.tree.flatten(desired)
    assert len(flat_a) == len(flat_d), (
        f"{what}: {len(flat_a)} outputs, expected {len(flat_d)}")
    for i, (a, d) in enumerate(zip(flat_a, flat_d)):
        a, d = to_numpy(a), to_numpy(d)
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


def check_outputs(what, outputs, expected_shapes, expected_dtypes,
                  compute_dtype, symbolic=False):
    """Asserts output shapes and dtypes.

    Args:
        what: prefix of the failure message.
        outputs: tensor or structure of tensors.
        expected_shapes: full shape (with batch) or a structure of shapes;
            `None` skips the shape check.
        expected_dtypes: dtype or structure; `None` = `compute_dtype` for
            float outputs, their own dtype for the others.
        compute_dtype: the layer's compute dtype.
        symbolic: the outputs are symbolic (batch dimension unknown).
    """
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
        expected = [compute_dtype if call_inputs.is_float(x)
                    else call_inputs.dtype_of(x) for x in flat]
    else:
        expected = _flatten_expected(expected_dtypes,
                                     lambda d: not isinstance(
                                         d, (list, tuple, dict)))
        if len(expected) == 1:
            expected = expected * len(flat)
    got = [call_inputs.dtype_of(x) for x in flat]
    assert got == [keras.backend.standardize_dtype(d) for d in expected], (
        f"{what}: output dtypes {got}, expected {expected}")


def sublayers(layer):
    """Every layer nested in `layer`, recursively (not `layer` itself)."""
    # Keras has no public recursive listing; `_flatten_layers` is what Keras
    # itself and keras-hub's tests use.
    return list(layer._flatten_layers(include_self=False, recursive=True))


def class_name(cls):
    """`cls.__name__` for messages (the repr for non-classes)."""
    return getattr(cls, "__name__", repr(cls))
