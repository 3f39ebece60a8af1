"""`.keras` saving checks (contract step 7): reload in safe mode, compare.

No `custom_objects` are passed on reload: registration must suffice.

Example:

```python
check_keras_saving(MaskedConv1D, {"filters": 4, "kernel_size": 3}, inputs)
check_model_saving(backbone, inputs, outputs)
```
"""

import os
import tempfile

import keras
import tensorflow as tf

from tfaction.testing import assertions


def save_and_reload(model, what):
    """Saves `model` as `.keras` and loads it back (safe mode).

    Args:
        model: a `keras.Model`.
        what: prefix of the failure message.

    Returns:
        The reloaded model.
    """
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
    name = assertions.class_name(layer_cls)
    model_inputs, symbolic = inputs.symbolic()
    model = keras.Model(model_inputs, symbolic.call(layer_cls(**init_kwargs)))
    flat = [tf.convert_to_tensor(x) for x in inputs.flat_tensors()]
    expected = model(flat)
    restored = save_and_reload(model, name)
    found = [x for x in restored.layers if type(x) is layer_cls]
    assert len(found) == 1, f"{name}: not found in the reloaded model"
    assertions.assert_close(restored(flat), expected, atol, rtol,
                            f"{name}: reloaded .keras vs original")


def check_model_saving(model, inputs, outputs, *, atol=1e-5, rtol=1e-5):
    """Saves a model as `.keras`, reloads it, checks class and outputs.

    Args:
        model: the (called) model.
        inputs: a `CallInputs` of the model's call.
        outputs: the model's outputs on `inputs`.
        atol, rtol: tolerances reloaded vs original outputs.
    """
    name = type(model).__name__
    restored = save_and_reload(model, name)
    assert type(restored) is type(model), (
        f"reloaded a {type(restored).__name__}, expected {name}")
    assertions.assert_close(inputs.as_tf().call(restored), outputs, atol,
                            rtol, f"{name}: reloaded .keras vs original")
