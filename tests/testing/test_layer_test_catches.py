"""Each broken layer makes `tfaction.testing` fail, with a telling message.

Every broken layer differs from a correct toy layer by one defect, and
`run_layer_test` is run in full (defaults) so the test shows the helper
catches the defect without help.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from tests.testing import toy_layers as toys
from tfaction.testing import CallInputs
from tfaction.testing import check_keras_saving
from tfaction.testing import run_layer_test
from tfaction.testing import run_model_test

run = functools.partial(run_layer_test, registered_package=toys.PACKAGE)
X = np.random.default_rng(1).normal(size=(2, 6, 3)).astype("float32")
MASK = toys.lengths_mask([6, 4], 6)
DENSE = {"units": 4, "activation": "gelu"}


@toys.register
class ForgetsConfigArgument(toys.MaskedStepDense):
    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config


@toys.register
class StoresWrongConfigValue(toys.MaskedStepDense):
    def get_config(self):
        config = super().get_config()
        config["units"] = 1
        return config


class NotRegistered(toys.MaskedStepDense):
    pass


@toys.register
class LeaksPadding(toys.MaskedStepDense):
    def call(self, inputs, mask=None):
        # Global context over *all* steps, padded ones included.
        context = ops.mean(inputs, axis=1, keepdims=True)
        return super().call(inputs + context, mask=mask)


@toys.register
class DropsKerasMask(toys.MaskedStepDense):
    def compute_mask(self, inputs, previous_mask=None):
        return None


@toys.register
class IgnoresComputeDtype(toys.MaskedStepDense):
    def call(self, inputs, mask=None):
        return ops.cast(super().call(inputs, mask=mask), "float32")


@toys.register
class SublayerWithoutPolicy(toys.MaskedStepDense):
    def build(self, input_shape):
        super().build(input_shape)
        self.proj = keras.layers.Dense(self.units, name="proj")  # no dtype
        self.proj.build(input_shape)


@toys.register
class NumpyFunctionClaimsJit(keras.layers.Layer):
    def call(self, inputs):
        y = tf.numpy_function(lambda x: np.tanh(x), [inputs], inputs.dtype)
        return tf.ensure_shape(y, inputs.shape)


@toys.register
class CropAndResizeClaimsJit(keras.layers.Layer):
    def call(self, inputs):
        boxes = tf.tile(tf.constant([[0.1, 0.1, 0.9, 0.9]]),
                        [tf.shape(inputs)[0], 1])
        box_indices = tf.range(tf.shape(inputs)[0])
        crops = tf.image.crop_and_resize(inputs, boxes, box_indices, (2, 2))
        return ops.cast(crops, self.compute_dtype)


@toys.register
class BuildsSublayerLazily(toys.MaskedStepDense):
    def build(self, input_shape):
        super().build(input_shape)
        self.extra = keras.layers.Dense(self.units, dtype=self.dtype_policy,
                                        name="extra")  # built on first call

    def call(self, inputs, mask=None):
        return self.extra(super().call(inputs, mask=mask))


@toys.register
class CreatesWeightsInCall(toys.MaskedStepDense):
    def build(self, input_shape):
        super().build(input_shape)
        self.extra = None

    def call(self, inputs, mask=None):
        if self.extra is None:
            self.extra = self.add_weight(shape=(self.units,), name="extra")
        return super().call(inputs, mask=mask) + self.extra


@toys.register
class UnusedWeight(toys.MaskedStepDense):
    """Holds a trainable weight the output never uses."""

    def build(self, input_shape):
        super().build(input_shape)
        self.spare = self.add_weight(shape=(self.units,), name="spare")


@toys.register
class WrongOutputShape(toys.MaskedStepDense):
    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units + 1,)


@toys.register
class UntrackedState(toys.MaskedStepDense):
    def build(self, input_shape):
        super().build(input_shape)
        # A plain array is neither a weight nor config: lost on reload.
        self.scale = np.random.uniform(1, 2, self.units).astype("float32")

    def call(self, inputs, mask=None):
        return super().call(inputs, mask=mask) * self.scale


@toys.register
class NoGradient(toys.MaskedStepDense):
    def call(self, inputs, mask=None):
        return ops.stop_gradient(super().call(inputs, mask=mask))


@pytest.mark.parametrize("layer_cls,kwargs,message", [
    (ForgetsConfigArgument, {}, "lacks constructor argument"),
    (StoresWrongConfigValue, {}, "was built with 4"),
    (NotRegistered, {}, "is not registered"),
    (LeaksPadding, {}, "padded steps leak"),
    (DropsKerasMask, {"expected_output_mask": MASK}, "compute_mask"),
    (IgnoresComputeDtype, {}, "under mixed_float16: output dtypes"),
    (SublayerWithoutPolicy, {}, "sublayer 'proj'"),
    (BuildsSublayerLazily, {}, "left sublayers unbuilt: \\['extra'\\]"),
    (CreatesWeightsInCall, {}, "create all state in build"),
    (WrongOutputShape, {}, "compute_output_shape gives"),
    # (The mixed-precision value check catches it too, earlier.)
    (UntrackedState, {"run_mixed_precision_check": False},
     "reloaded .keras vs original"),
    (NoGradient, {}, "fit step failed.*No gradients"),
    (UnusedWeight, {}, "left trainable weight\\(s\\) .*spare.* unchanged"),
    (toys.MaskedStepDense, {"expected_num_trainable_weights": 3},
     "4 trainable weights, expected 3"),
])
def test_broken_sequence_layers_fail(layer_cls, kwargs, message):
    with pytest.raises(AssertionError, match=message):
        run(layer_cls, DENSE, X, mask=MASK, **kwargs)


@pytest.mark.parametrize("layer_cls,data", [
    (NumpyFunctionClaimsJit, X),
    (CropAndResizeClaimsJit, np.ones((2, 5, 5, 3), "float32")),
])
def test_layers_claiming_xla_but_not_compiling_fail(layer_cls, data):
    with pytest.raises(AssertionError, match="does not compile with XLA"):
        run(layer_cls, {}, data)


def test_xla_declaration_must_match_the_layer():
    # The layer says no XLA, the test says yes: not silently skipped.
    with pytest.raises(AssertionError, match="declares supports_jit=True"):
        run(toys.HostRank, {}, X)
    # The layer compiles, but the test claims it cannot.
    with pytest.raises(AssertionError, match="declares supports_jit=False"):
        run(toys.MaskedStepDense, DENSE, X, supports_jit=False)


def test_unregistered_layer_does_not_reload():
    """Without the registration check, the .keras round trip still fails."""
    with pytest.raises(AssertionError, match="does not reload"):
        check_keras_saving(NotRegistered, DENSE,
                           CallInputs.from_test_args(X, mask=MASK))


def test_wrong_registration_package_fails():
    with pytest.raises(AssertionError, match="package='tfaction'"):
        run_layer_test(toys.MaskedStepDense, DENSE, X)


def test_expected_dtype_and_shape_are_checked():
    with pytest.raises(AssertionError, match="output dtypes"):
        run(toys.MaskedStepDense, DENSE, X, expected_output_dtype="float16")
    with pytest.raises(AssertionError, match="has shape"):
        run(toys.MaskedStepDense, DENSE, X, expected_output_shape=(2, 6, 5))


def test_mask_must_align_with_an_input():
    with pytest.raises(AssertionError, match="no float input"):
        run(toys.MaskedStepDense, DENSE, X, mask=MASK[:, :5])


class UnregisteredClassifier(toys.TinyClassifier):
    pass


def test_broken_models_fail():
    kwargs = {"feature_dim": 3, "num_classes": 4}
    with pytest.raises(AssertionError, match="is not registered"):
        run_model_test(UnregisteredClassifier, kwargs, X,
                       registered_package=toys.PACKAGE)
    with pytest.raises(AssertionError, match="declares supports_jit=False"):
        run_model_test(toys.TinyClassifier, kwargs, X, supports_jit=False,
                       registered_package=toys.PACKAGE)
    with pytest.raises(AssertionError, match="has shape"):
        run_model_test(toys.TinyClassifier, kwargs, X,
                       expected_output_shape=(2, 3),
                       registered_package=toys.PACKAGE)


def test_declared_unused_weights_pass():
    run(UnusedWeight, DENSE, X, mask=MASK, unused_weights=("spare",))
