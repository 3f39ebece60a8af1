"""XLA checks (contract step 5): `supports_jit` is honest; XLA equals eager.

`compile(jit_compile="auto")` enables XLA whenever every layer reports
`supports_jit`, so a layer that cannot compile must say so.

Example:

```python
check_jit(MaskedConv1D, {"filters": 4, "kernel_size": 3}, inputs)
check_jit(RoiAlignPool, {}, inputs, supports_jit=False)
```
"""

import tensorflow as tf

from tfaction.testing import assertions

_XLA_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
               tf.errors.UnimplementedError)


def _check_supports_jit(obj, supports_jit):
    layers = [obj] + assertions.sublayers(obj)
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
    assertions.assert_close(jitted, eager, atol, rtol,
                            f"{type(layer).__name__}: XLA vs eager")
