"""Tiny layers and a model that follow the tfaction Keras contract.

They exercise `tfaction.testing` (tests/testing/test_layer_test_*.py);
broken variants are derived from them in test_layer_test_catches.py.
Registered under package "tfaction_test" so they never clash with real
tfaction classes.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

PACKAGE = "tfaction_test"
register = keras.saving.register_keras_serializable(package=PACKAGE)


def lengths_mask(lengths, steps):
    """Boolean [B, steps] mask, True for the first `lengths[b]` steps."""
    return np.arange(steps)[None] < np.asarray(lengths)[:, None]


@register
class MaskedStepDense(keras.layers.Layer):
    """Per-step Dense + LayerNorm; padded steps are zeroed; mask passes on.

    Args:
        units: output channels.
        activation: activation of the projection.
    """

    def __init__(self, units, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation
        self.supports_masking = True

    def build(self, input_shape):
        self.proj = keras.layers.Dense(self.units, self.activation,
                                       dtype=self.dtype_policy, name="proj")
        self.proj.build(input_shape)
        self.norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="norm")
        self.norm.build(tuple(input_shape[:-1]) + (self.units,))

    def call(self, inputs, mask=None):
        y = self.norm(self.proj(inputs))
        if mask is not None:
            y = y * ops.cast(mask, y.dtype)[..., None]
        return y

    def compute_mask(self, inputs, previous_mask=None):
        return previous_mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=self.activation)
        return config


@register
class MaskedPoolHead(keras.layers.Layer):
    """BatchNorm → masked mean over time → Dropout → Dense logits.

    Args:
        num_classes: output logits.
        dropout: dropout rate before the classifier.
    """

    def __init__(self, num_classes, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dropout = dropout
        self.supports_masking = True

    def build(self, input_shape):
        self.norm = keras.layers.BatchNormalization(dtype=self.dtype_policy,
                                                    name="norm")
        self.norm.build(input_shape)
        self.drop = keras.layers.Dropout(self.dropout,
                                         dtype=self.dtype_policy, name="drop")
        self.classifier = keras.layers.Dense(
            self.num_classes, dtype=self.dtype_policy, name="classifier")
        self.classifier.build((input_shape[0], input_shape[-1]))

    def call(self, inputs, mask=None, training=None):
        x = self.norm(inputs, training=training)
        if mask is None:
            pooled = ops.mean(x, axis=1)
        else:
            # where(), not multiply: padded values may be inf/nan.
            m = ops.cast(mask, x.dtype)[..., None]
            total = ops.sum(ops.where(m > 0, x, ops.zeros_like(x)), axis=1)
            pooled = total / ops.maximum(ops.sum(m, axis=1), 1.0)
        return self.classifier(self.drop(pooled, training=training))

    def compute_mask(self, inputs, previous_mask=None):
        return None  # the time axis is gone

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, dropout=self.dropout)
        return config


@register
class ContextGate(keras.layers.Layer):
    """Two inputs by keyword: `query * sigmoid(Dense(mean(context)))`.

    Args:
        units: channels of `query`.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, query_shape, context_shape):
        self.gate = keras.layers.Dense(self.units, dtype=self.dtype_policy,
                                       name="gate")
        self.gate.build((context_shape[0], context_shape[-1]))

    def call(self, query, context):
        gate = ops.sigmoid(self.gate(ops.mean(context, axis=1)))
        return query * gate[:, None, :]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


@register
class HostRank(keras.layers.Layer):
    """Ranks of values along the last axis, computed on the host.

    Uses `tf.numpy_function`, which XLA cannot compile, so it declares
    `supports_jit = False`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_jit = False

    def call(self, inputs):
        ranks = tf.numpy_function(
            lambda x: np.argsort(np.argsort(x, -1), -1).astype(np.float32),
            [ops.cast(inputs, "float32")], tf.float32)
        ranks = tf.ensure_shape(ranks, inputs.shape)
        return ops.cast(ranks, self.compute_dtype)


@register
class TinyClassifier(keras.Model):
    """Functional model in a class: MaskedStepDense → mean → logits.

    Args:
        feature_dim: input channels.
        num_classes: logits.
    """

    def __init__(self, feature_dim, num_classes, **kwargs):
        features = keras.Input((None, feature_dim), name="features")
        x = MaskedStepDense(8, name="embed")(features)
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
        logits = keras.layers.Dense(num_classes, name="logits")(x)
        super().__init__(inputs=features, outputs=logits, **kwargs)
        self.feature_dim = feature_dim
        self.num_classes = num_classes

    def get_config(self):
        return {"feature_dim": self.feature_dim,
                "num_classes": self.num_classes, "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
