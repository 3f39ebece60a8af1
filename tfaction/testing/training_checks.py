"""Training check (contract step 8): one compiled `fit` step.

The layer is wrapped in a probe model whose loss is the mean square of its
float outputs; the loss must be finite and every trainable weight must move
(a weight the loss does not reach is a bug, unless the test declares it
unused on purpose).

Example:

```python
check_training(MaskedConv1D, {"filters": 4, "kernel_size": 3}, inputs,
               supports_jit=True)
```
"""

import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfaction.testing import assertions
from tfaction.testing import call_inputs


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
                 for t in keras.tree.flatten(y_pred)
                 if call_inputs.is_float(t)]
        return ops.sum(ops.stack(terms)) + sum(self.losses)


def check_training(layer_cls, init_kwargs, inputs, *, supports_jit=True,
                   unused_weights=()):
    """Runs one compiled `fit` step; the loss is finite and weights move.

    Args:
        layer_cls, init_kwargs: the layer.
        inputs: a `CallInputs`.
        supports_jit: compile the train step with XLA when true.
        unused_weights: substrings of the paths of trainable weights that
            this input leaves untouched on purpose; every other trainable
            weight must change in the step.
    """
    name = assertions.class_name(layer_cls)
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
    still = [v.path for b, v in zip(before, model.trainable_weights)
             if np.array_equal(b, np.array(v))
             and not any(u in v.path for u in unused_weights)]
    assert not still, (
        f"{name}: one fit step left trainable weight(s) {still} unchanged: "
        f"the loss does not reach them (declare intentionally unused ones "
        f"with unused_weights=)")
