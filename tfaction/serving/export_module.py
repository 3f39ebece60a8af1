"""`ExportModule`: the serving signatures of one model, as a `tf.Module`.

`tfaction.serving.build_export_module(task, model)` returns a subclass
(the builder registered for the task's name); `export_saved_model`
writes it as a SavedModel that TensorFlow Serving (or `tf.saved_model.load`
in a process that has only TensorFlow) runs with no tfaction code. All pre-
and post-processing lives inside the signature functions, so a client sends
raw inputs and receives final answers.

A subclass defines

* `input_specs()`: the `serving_default` inputs, name -> `tf.TensorSpec`
  (dimension 0 is the batch, `None`);
* `serve(inputs)`: dict of input tensors -> dict of output tensors, traced
  once with `input_specs()`;
* `warmup_inputs()`: a numpy dict fitting `input_specs()`, sent to the
  server as the warm-up request;

and may add named signatures by overriding `signature_definitions()`.

Example:

```python
class LogitsExportModule(ExportModule):
    def input_specs(self):
        return {"features": tf.TensorSpec([None, 8, 4], tf.float32)}

    def serve(self, inputs):
        logits = self.model(inputs["features"], training=False)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    def warmup_inputs(self):
        return {"features": np.zeros([1, 8, 4], np.float32)}

export_saved_model(LogitsExportModule(model), "models/classifier")
```
"""

import abc

import tensorflow as tf

from tfaction import errors

SERVING_DEFAULT = "serving_default"


class ExportModule(tf.Module, metaclass=abc.ABCMeta):
    """Base class of serving modules: signatures + warm-up inputs.

    Holds the model (so its variables are saved with the signatures) and
    builds one `tf.function` per signature with a fixed input signature.

    Args:
        model: the Keras model the signatures call.
        name: module name.

    Example:

    ```python
    module = build_export_module(task, model)
    functions = module.signatures()   # {"serving_default": ConcreteFunction}
    outputs = functions["serving_default"](**module.warmup_inputs())
    ```
    """

    def __init__(self, model, name=None):
        super().__init__(name=name)
        # The SavedModel holds the signatures and the model's variables, not
        # the Keras object graph (as `keras.export.ExportArchive`): saving a
        # Keras 3 model as a trackable re-traces its layers and is several
        # times slower, and a server needs none of it.
        self._untracked = _Untracked(model)
        self.model_variables = [getattr(v, "value", v)
                                for v in model.variables]
        self._traced = _Untracked(None)  # filled by `signatures()`

    @property
    def model(self):
        """The Keras model the signatures call."""
        return self._untracked.value

    @abc.abstractmethod
    def input_specs(self):
        """The `serving_default` inputs.

        Returns:
            Dict input name -> `tf.TensorSpec` (batch dimension `None`).
        """

    @abc.abstractmethod
    def serve(self, inputs):
        """The `serving_default` computation.

        Args:
            inputs: dict input name -> tensor, as `input_specs()`.

        Returns:
            Dict output name -> tensor (dimension 0 = batch).
        """

    @abc.abstractmethod
    def warmup_inputs(self):
        """A representative `serving_default` request.

        Returns:
            Dict input name -> numpy array matching `input_specs()` (with a
            concrete batch size, typically 1).
        """

    def signature_definitions(self):
        """Every signature: name -> `(input_specs, function)`.

        Override to add named signatures next to `serving_default`.

        Returns:
            Dict signature name -> `(dict name -> TensorSpec, callable taking
            the input dict and returning the output dict)`.
        """
        return {SERVING_DEFAULT: (self.input_specs(), self.serve)}

    def warmup_requests(self):
        """The warm-up requests written next to the SavedModel.

        Returns:
            List of `(signature name, numpy input dict)`; by default one
            `serving_default` request from `warmup_inputs()`.
        """
        return [(SERVING_DEFAULT, self.warmup_inputs())]

    def batching_parameters(self):
        """Suggested TF Serving batching parameters for this model.

        Returns:
            Dict of `BatchingParameters` fields (see
            `tfaction.serving.batching_parameters`); override per model.
        """
        return {}

    def signatures(self):
        """Traces every signature once.

        Returns:
            Dict signature name -> concrete function, as
            `tf.saved_model.save(..., signatures=...)` expects.

        Raises:
            ConfigError: a signature lacks `serving_default`, an input spec
                is not a `tf.TensorSpec` or has a fixed batch dimension.
        """
        if self._traced.value is None:
            definitions = self.signature_definitions()
            if SERVING_DEFAULT not in definitions:
                raise errors.ConfigError(
                    f"{type(self).__name__} defines no '{SERVING_DEFAULT}' "
                    "signature")
            functions = {}
            for name, (specs, function) in definitions.items():
                specs = _named_specs(type(self).__name__, name, specs)
                # No autograph: signatures use explicit TF control flow, and
                # converting the whole Keras call graph costs seconds.
                functions[name] = tf.function(
                    function, input_signature=[specs],
                    autograph=False).get_concrete_function()
            self._traced.value = functions
        return dict(self._traced.value)


class _Untracked:
    """Holds an object out of sight of `tf.Module` tracking."""

    def __init__(self, value):
        self.value = value


def _named_specs(owner, signature, specs):
    """Checks specs; names each after its key (the SignatureDef input)."""
    named = {}
    for key, spec in specs.items():
        if not isinstance(spec, tf.TensorSpec):
            raise errors.ConfigError(
                f"{owner} signature {signature!r}: input {key!r} must be a "
                f"tf.TensorSpec, got {spec!r}")
        if spec.shape.rank is None or spec.shape.rank < 1 or (
                spec.shape[0] is not None):
            raise errors.ConfigError(
                f"{owner} signature {signature!r}: input {key!r} needs a "
                f"leading batch dimension None, got shape {spec.shape}")
        named[key] = tf.TensorSpec(spec.shape, spec.dtype, name=key)
    return named
