"""`Unit3D`: I3D's conv3d + frozen batch norm + ReLU unit."""

import keras

from tfaction.layers.frozen_batch_normalization import (
    FrozenBatchNormalization)

# Sonnet's default conv initializer is a normal truncated at 2 standard
# deviations with stddev 1 / sqrt(fan_in). Keras' truncated VarianceScaling
# divides its stddev by 0.8796... (the std of a unit normal truncated at 2),
# so scale = 0.8796...^2 gives the same distribution.
_SONNET_TRUNCATED_STD = 0.87962566103423978
BATCH_NORMS = ("frozen", "batch")


def sonnet_conv_initializer():
    """Sonnet's default conv kernel initializer as a Keras initializer.

    Returns:
        `keras.initializers.VarianceScaling` drawing from a normal with
        stddev `1 / sqrt(fan_in)` truncated at two standard deviations.

    Example:

    >>> init = sonnet_conv_initializer()
    >>> w = ops.convert_to_numpy(init((3, 3, 3, 64, 64)))
    >>> bool(abs(w.std() * np.sqrt(3 * 3 * 3 * 64) / 0.8796 - 1) < 0.02)
    True
    """
    return keras.initializers.VarianceScaling(
        scale=_SONNET_TRUNCATED_STD ** 2, mode="fan_in",
        distribution="truncated_normal")


@keras.saving.register_keras_serializable(package="tfaction")
class Unit3D(keras.layers.Layer):
    """Conv3D + frozen-statistics batch norm + ReLU, the unit of I3D.

    DeepMind's `Unit3D` (deepmind/kinetics-i3d, `i3d.py`): a 3-D
    convolution with SAME padding and no bias, batch normalisation with an
    offset but no scale (epsilon 1e-3), then a ReLU. The batch norm is a
    `FrozenBatchNormalization`: its moving statistics are never updated
    (the Video Action Transformer fine-tunes I3D with frozen statistics),
    its offset trains. With `batch_norm="batch"` it is a Keras
    `BatchNormalization` (same variable names, no scale) normalising by
    batch statistics in training and updating its moving ones, as I3D was
    trained on Kinetics: the choice for a trunk trained from scratch, whose
    identity "frozen" statistics would leave every layer unnormalised (the
    activations shrink about twofold per layer under Sonnet's
    initialisation). The Logits unit of I3D is the variant without batch
    norm and activation and with a bias (`use_batch_norm=False,
    activation=None, use_bias=True`).

    Keras' `padding="same"` is TensorFlow's SAME padding (extra padding on
    the far side when the total is odd), the padding of the original
    TensorFlow model, so pretrained weights reproduce its outputs exactly.
    Sublayers are named as Sonnet's modules: `conv_3d` (kernel `[kt, kh,
    kw, in, out]`, the checkpoint's `conv_3d/w` layout) and `batch_norm`.

    Args:
        filters: output channels.
        kernel_size: `(kt, kh, kw)` or one int.
        strides: `(st, sh, sw)` or one int.
        activation: activation after the normalisation (`None`: linear).
        use_batch_norm: add the batch norm.
        batch_norm: "frozen" (`FrozenBatchNormalization`, default) or
            "batch" (Keras `BatchNormalization`, trained statistics).
        use_bias: give the convolution a bias.
        epsilon: batch-norm epsilon.
        kernel_initializer: conv kernel initializer (default: Sonnet's,
            `sonnet_conv_initializer`).
        kernel_regularizer: optional conv kernel regularizer.
        **kwargs: base `keras.layers.Layer` arguments (the dtype policy is
            passed on to both sublayers).

    Call arguments:
        inputs: `[B, T, H, W, C]`.

    Returns:
        `[B, ceil(T / st), ceil(H / sh), ceil(W / sw), filters]`.

    Example:

    >>> unit = Unit3D(64, kernel_size=(7, 7, 7), strides=(2, 2, 2),
    ...               name="Conv3d_1a_7x7")
    >>> tuple(unit(np.zeros((1, 8, 32, 32, 3), "float32")).shape)
    (1, 4, 16, 16, 64)
    >>> [w.path for w in unit.weights]  # doctest: +NORMALIZE_WHITESPACE
    ['Conv3d_1a_7x7/conv_3d/kernel', 'Conv3d_1a_7x7/batch_norm/beta',
     'Conv3d_1a_7x7/batch_norm/moving_mean',
     'Conv3d_1a_7x7/batch_norm/moving_variance']

    Reference:
        Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
        and the Kinetics Dataset", CVPR 2017 (deepmind/kinetics-i3d).
    """

    def __init__(self, filters, kernel_size=(1, 1, 1), strides=(1, 1, 1),
                 activation="relu", use_batch_norm=True, use_bias=False,
                 epsilon=1e-3, kernel_initializer=None,
                 kernel_regularizer=None, batch_norm="frozen", **kwargs):
        super().__init__(**kwargs)
        if batch_norm not in BATCH_NORMS:
            raise ValueError(f"Unit3D: batch_norm must be one of "
                             f"{BATCH_NORMS}, got {batch_norm!r}")
        self.batch_norm_type = batch_norm
        self.filters = int(filters)
        if self.filters < 1:
            raise ValueError(f"Unit3D: filters must be >= 1, got {filters}")
        self.kernel_size = _triple(kernel_size, "kernel_size")
        self.strides = _triple(strides, "strides")
        self.activation = (None if activation is None
                           else keras.activations.get(activation))
        self.use_batch_norm = bool(use_batch_norm)
        self.use_bias = bool(use_bias)
        self.epsilon = float(epsilon)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer if kernel_initializer is not None
            else sonnet_conv_initializer())
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        if len(input_shape) != 5 or input_shape[-1] is None:
            raise ValueError(f"Unit3D expects [B, T, H, W, C] inputs with "
                             f"known C, got shape {input_shape}")
        self.conv = keras.layers.Conv3D(
            self.filters, self.kernel_size, strides=self.strides,
            padding="same", use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy, name="conv_3d")
        norm = (FrozenBatchNormalization if self.batch_norm_type == "frozen"
                else keras.layers.BatchNormalization)
        self.batch_norm = (norm(
            center=True, scale=False, epsilon=self.epsilon,
            dtype=self.dtype_policy, name="batch_norm")
            if self.use_batch_norm else None)
        self.conv.build(input_shape)
        if self.batch_norm is not None:
            self.batch_norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        if self.batch_norm is not None:
            x = self.batch_norm(x, training=training)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0],
                *(None if n is None else -(-n // s)
                  for n, s in zip(input_shape[1:4], self.strides)),
                self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "activation": (None if self.activation is None else
                           keras.activations.serialize(self.activation)),
            "use_batch_norm": self.use_batch_norm,
            "use_bias": self.use_bias,
            "epsilon": self.epsilon,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer),
            "batch_norm": self.batch_norm_type})
        return config


def _triple(value, what):
    values = ((int(value),) * 3 if isinstance(value, (int, float))
              else tuple(int(v) for v in value))
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"Unit3D: {what} must be one positive int or three, "
                         f"got {value}")
    return values
