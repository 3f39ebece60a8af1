"""Mixed-precision checks (contract step 6), per layer and global policy.

Under `mixed_float16` and `mixed_bfloat16`: outputs in the compute dtype,
variables float32, sublayers inherit the policy, values close to float32;
the global policy is restored afterwards.

Example:

```python
check_mixed_precision(MaskedConv1D, {"filters": 4, "kernel_size": 3},
                      inputs, float32_sublayers=("softmax",))
```
"""

import keras

from tfaction.testing import assertions

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def _check_policy(layer, policy, outputs, output_dtype, float32_sublayers):
    name = type(layer).__name__
    compute = keras.dtype_policies.DTypePolicy(policy).compute_dtype
    assert layer.dtype_policy.name == policy, (
        f"{name}: policy {layer.dtype_policy.name}, expected {policy}")
    bad = [v.path for v in layer.weights
           if keras.backend.is_float_dtype(v.dtype) and v.dtype != "float32"]
    assert not bad, f"{name} under {policy}: non-float32 variables {bad}"
    for sub in assertions.sublayers(layer):
        keep32 = (isinstance(sub, tuple(t for t in float32_sublayers
                                        if isinstance(t, type)))
                  or sub.name in float32_sublayers)
        want = "float32" if keep32 else policy
        assert sub.dtype_policy.name == want, (
            f"{name} under {policy}: sublayer {sub.name!r} "
            f"({type(sub).__name__}) has policy {sub.dtype_policy.name}, "
            f"expected {want}; create sublayers with dtype=self.dtype_policy")
    assertions.check_outputs(f"{name} under {policy}", outputs, None,
                             output_dtype, compute)


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
    name = assertions.class_name(layer_cls)
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
            assertions.assert_close(tf_inputs.call(layer), expected,
                                    tolerance, tolerance,
                                    f"{name} under {policy} vs float32")
        previous = keras.config.dtype_policy()
        try:
            keras.config.set_dtype_policy(policy)
            layer = layer_cls(**kwargs)
            outputs = tf_inputs.call(layer)
            _check_policy(layer, policy, outputs, output_dtype,
                          float32_sublayers)
        finally:
            keras.config.set_dtype_policy(previous)
