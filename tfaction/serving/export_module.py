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
Every signature first passes its inputs through `checked_inputs`: a request
with another rank or fixed size than the spec, or an empty batch, is
refused with an `InvalidArgumentError` naming the input, whatever the
subclass does with it.

A module built with `class_names` carries them as the SavedModel asset
`assets/classes.txt` (one name per line, line i = class i; TF Serving and
`tf.saved_model.save` copy it with the model) and looks ids up in the graph
with `class_name_lookup(ids)`, which reads that file when the model loads.

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
import os
import shutil
import tempfile
import weakref

import tensorflow as tf

from tfaction import errors
from tfaction.data.formats import class_list

SERVING_DEFAULT = "serving_default"
CLASS_LIST_ASSET = class_list.CLASS_LIST_FILE  # assets/classes.txt


class ExportModule(tf.Module, metaclass=abc.ABCMeta):
    """Base class of serving modules: signatures + warm-up inputs.

    Holds the model (so its variables are saved with the signatures) and
    builds one `tf.function` per signature with a fixed input signature.

    Args:
        model: the Keras model the signatures call.
        class_names: optional class names in id order; saved as the asset
            `assets/classes.txt` and looked up by `class_name_lookup`.
        name: module name.

    Raises:
        ConfigError: a class name is empty, repeated, spans lines or has
            surrounding whitespace.

    Example:

    ```python
    module = build_export_module(task, model)
    functions = module.signatures()   # {"serving_default": ConcreteFunction}
    outputs = functions["serving_default"](**module.warmup_inputs())
    ```
    """

    def __init__(self, model, class_names=None, name=None):
        super().__init__(name=name)
        # The SavedModel holds the signatures and the model's variables, not
        # the Keras object graph (as `keras.export.ExportArchive`): saving a
        # Keras 3 model as a trackable re-traces its layers and is several
        # times slower, and a server needs none of it.
        self._untracked = _Untracked(model)
        self.model_variables = [getattr(v, "value", v)
                                for v in model.variables]
        self._traced = _Untracked(None)  # filled by `signatures()`
        self.class_list = (None if class_names is None
                           else ClassListAsset(class_names))

    @property
    def model(self):
        """The Keras model the signatures call."""
        return self._untracked.value

    @property
    def class_names(self):
        """The class names (list of str), or None without a class list."""
        return None if self.class_list is None else self.class_list.names

    def class_name_lookup(self, ids):
        """Class ids -> names, in the graph (`""` for ids outside the list).

        Args:
            ids: integer tensor of class ids, any shape (-1 = no class).

        Returns:
            String tensor of the shape of `ids`.

        Raises:
            ConfigError: the module has no class list.

        Example:

        ```python
        def serve(self, inputs):
            labels = tf.argmax(self.model(inputs["x"]), axis=-1)
            return {"labels": labels,
                    "class_names": self.class_name_lookup(labels)}
        ```
        """
        if self.class_list is None:
            raise errors.ConfigError(
                f"{type(self).__name__} was built without class_names")
        return self.class_list.lookup(ids)

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
                    _with_checked_inputs(name, specs, function),
                    input_signature=[specs],
                    autograph=False).get_concrete_function()
            self._traced.value = functions
        return dict(self._traced.value)


def checked_inputs(signature, specs, inputs):
    """Inputs after run-time checks of their rank, fixed sizes and batch.

    A signature's input spec is not enforced when it runs: a TF Serving
    request (or a call of a loaded signature) with another rank or another
    size of a fixed dimension reaches the graph as it is, where it would
    fail deep inside an op with a message naming no input, or give a wrong
    answer. Worse, graph optimisation takes the spec's rank for granted
    (a `tf.rank` check is folded to a constant). So each input goes
    through an `EnsureShape` op, which compares the actual shape with the
    spec at run time and refuses a mismatch with an `InvalidArgumentError`
    "Shape of tensor <input> [...] is not compatible with expected shape
    [...]"; and through a `tf.cond` on a non-empty batch whose other
    branch fails with "signature <name>: input <input> has an empty batch".
    Both are data dependencies of everything after them (a control
    dependency is not enough: the optimiser may run a consumer of the
    input's shape first). A wrong dtype never reaches the graph:
    TensorFlow refuses it before the call, naming the input's position (in
    sorted name order) and both dtypes.

    Args:
        signature: the signature's name (for the messages).
        specs: dict input name -> `tf.TensorSpec` (batch dimension first;
            the inputs are the signature's placeholders of these names).
        inputs: dict input name -> tensor.

    Returns:
        Dict input name -> the checked tensor.

    Example:

    ```python
    inputs = checked_inputs("serving_default", module.input_specs(), inputs)
    ```
    """
    checked = {}
    for key, value in inputs.items():
        # `EnsureShape` names its input by its node: the placeholder, which
        # `_named_specs` named after the key.
        value = tf.ensure_shape(value, specs[key].shape)
        shape = tf.shape(value)
        # The message is written unquoted: `Assert` escapes quotes (`\'`).
        message = (f"signature {signature}: input {key} has an empty batch "
                   "(dimension 0 is 0): send at least one example; got "
                   "shape")

        def refuse(value=value, shape=shape, message=message):
            with tf.control_dependencies(
                    [tf.debugging.Assert(False, [message, shape])]):
                return tf.identity(value)

        checked[key] = tf.cond(shape[0] > 0,
                               lambda value=value: tf.identity(value),
                               refuse)
    return checked


def _with_checked_inputs(signature, specs, function):
    """`function` called on `checked_inputs(signature, specs, inputs)`."""
    def checked(inputs):
        return function(checked_inputs(signature, specs, inputs))

    return checked


class ClassListAsset(tf.Module):
    """A class list saved as the asset `classes.txt`, with an id -> name table.

    The names are written to a private temporary folder (removed with this
    object) and tracked as a `tf.saved_model.Asset`, so a SavedModel holding
    this module gets `assets/classes.txt`; the lookup table is initialised
    from that file, at construction and again whenever the SavedModel
    loads.

    Args:
        names: class names in id order (unique, non-empty, one line each).

    Raises:
        ConfigError: an invalid or repeated name.

    Example:

    ```python
    classes = ClassListAsset(["jump", "run"])
    classes.lookup(tf.constant([1, -1]))   # [b"run", b""]
    ```
    """

    def __init__(self, names):
        super().__init__(name="class_list")
        try:
            classes = class_list.ClassList(names)
        except errors.MalformedFileError as e:
            raise errors.ConfigError(f"class_names: {e}") from None
        if not len(classes):
            raise errors.ConfigError("class_names is empty")
        self._names = tuple(classes.names)
        folder = tempfile.mkdtemp(prefix="tfaction_classes_")
        weakref.finalize(self, shutil.rmtree, folder, True)
        path = os.path.join(folder, CLASS_LIST_ASSET)
        with open(path, "w", encoding="utf-8") as f:
            f.write(classes.to_text())
        self.asset = tf.saved_model.Asset(path)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.asset, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string, tf.lookup.TextFileIndex.WHOLE_LINE),
            default_value="")

    @property
    def names(self):
        """The class names, a list of str in id order."""
        return list(self._names)

    def lookup(self, ids):
        """Integer ids (any shape) -> string names; `""` outside the list."""
        return self.table.lookup(tf.cast(ids, tf.int64))


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
