"""`CallInputs`: the arguments of one layer call, and tensor predicates.

Calling convention of the checks: `input_data` is the first positional
argument of `call` (an array, or a list / tuple structure), except a dict,
which is unpacked into keyword arguments. Arrays in `call_kwargs` are inputs
too; other values are Python constants. `mask` is passed as
`call_kwargs[mask_argument]`.

Example:

```python
inputs = CallInputs.from_test_args(x, {"training": False}, mask=m)
outputs = inputs.as_tf().call(layer)
model_inputs, symbolic = inputs.symbolic()
```
"""

import keras
import numpy as np
import tensorflow as tf


def is_tensor(x):
    """Whether `x` is a tensor leaf (numpy array, TF tensor, KerasTensor)."""
    return isinstance(x, (np.ndarray, tf.Tensor, tf.Variable,
                          keras.KerasTensor))


def dtype_of(x):
    """Keras' standard name of `x.dtype` (e.g. "float32")."""
    return keras.backend.standardize_dtype(x.dtype)


def is_float(x):
    """Whether `x` is a floating-point tensor."""
    return is_tensor(x) and keras.backend.is_float_dtype(dtype_of(x))


class CallInputs:
    """Positional and keyword arguments of one layer call.

    Tensor leaves (numpy arrays, tensors) are inputs; all other leaves are
    constants. Used to call a layer eagerly, symbolically, under XLA, and
    with perturbed inputs, always with the same structure.

    Args:
        args: tuple of positional arguments.
        kwargs: dict of keyword arguments.

    Example:

    >>> inputs = CallInputs((np.ones((2, 3), "float32"),), {"scale": 2})
    >>> len(inputs.flat_tensors())
    1
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
                if is_tensor(x)]

    def map_tensors(self, fn):
        args, kwargs = keras.tree.map_structure(
            lambda x: fn(x) if is_tensor(x) else x, (self.args, self.kwargs))
        return CallInputs(args, kwargs)

    def with_flat_tensors(self, flat):
        it = iter(flat)
        return self.map_tensors(lambda _: next(it))

    def as_tf(self):
        return self.map_tensors(tf.convert_to_tensor)

    def symbolic(self):
        """Returns (`keras.Input`s in flat order, symbolic `CallInputs`)."""
        inputs = [keras.Input(shape=tuple(x.shape[1:]), dtype=dtype_of(x))
                  for x in self.flat_tensors()]
        return inputs, self.with_flat_tensors(inputs)

    def call(self, layer, **extra):
        return layer(*self.args, **self.kwargs, **extra)
