"""`PoolingClassifier`: AdaFocus V2's cumulative max-pooling classifier."""

import math

import keras
import numpy as np
from keras import ops

from tfaction.layers import torch_initializers
from tfaction.layers.positionwise_dense import PositionwiseDense

BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
BN_EPSILON = 1e-5


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise ValueError(f"PoolingClassifier: {name} must be a positive int, "
                         f"got {value!r}")
    return int(value)


@keras.saving.register_keras_serializable(package="tfaction")
class PoolingClassifier(keras.layers.Layer):
    """AdaFocus V2 classifier: cumulative max over frames, a head per step.

    Each frame's feature (glance + focus, 1280 + 2048 = 3328) is embedded
    by Dense(`hidden_units`) -> BatchNorm -> ReLU (batch statistics over
    every frame of the batch in training); the embeddings are max-pooled
    cumulatively over time (`z_t = max(e_0, ..., e_t)`), and step `t` has
    its own head, Dropout -> Dense(`num_classes`), on `z_t` (the
    FrameExit-style classifier of AdaFocus V2). Logits at every step allow
    the loss at every step and early exit after any step; the prediction
    of the full video is the last step's.

    The `num_segments` heads are stored stacked, `head_kernel` `[T,
    hidden_units, num_classes]` and `head_bias` `[T, num_classes]`, each
    step's slice initialised as PyTorch's default `nn.Linear`
    (`U(+-1/sqrt(hidden_units))`, as is the embedding's Dense; batch norm
    1 / 0, PyTorch momentum 0.1 = Keras 0.9, epsilon 1e-5). An input with
    `T < num_segments` frames uses the first `T` heads (an early prefix of
    the video). Logits are float32 under mixed precision.

    Args:
        num_classes: number of classes.
        num_segments: frames per video, i.e. number of heads (16).
        hidden_units: embedding width (4096).
        dropout: dropout rate before each head (AdaFocus V2 recipes: 0.2).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: frame features `[B, T, D]`, `T <= num_segments` and `D`
            static.
        training: batch statistics and dropout.

    Returns:
        float32 logits `[B, T, num_classes]`.

    Example:

    >>> import numpy as np
    >>> head = PoolingClassifier(num_classes=5, num_segments=4,
    ...                          hidden_units=8)
    >>> tuple(head(np.zeros((2, 4, 6), "float32")).shape)
    (2, 4, 5)

    Reference:
        Wang et al., "AdaFocus V2: End-to-End Training of Spatial Dynamic
        Networks for Video Recognition", CVPR 2022; Ghodrati et al.,
        "FrameExit: Conditional Early Exiting for Efficient Video
        Recognition", CVPR 2021 (the pooling classifier).
    """

    def __init__(self, num_classes, num_segments=16, hidden_units=4096,
                 dropout=0.2, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = _positive_int(num_classes, "num_classes")
        self.num_segments = _positive_int(num_segments, "num_segments")
        self.hidden_units = _positive_int(hidden_units, "hidden_units")
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"PoolingClassifier: dropout must be in [0, 1),"
                             f" got {dropout}")
        self.dropout = dropout

    def _check_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if (len(input_shape) != 3 or input_shape[1] is None
                or input_shape[2] is None):
            raise ValueError(f"PoolingClassifier expects features [B, T, D] "
                             f"with static T and D, got shape {input_shape}")
        if input_shape[1] > self.num_segments:
            raise ValueError(f"PoolingClassifier has {self.num_segments} "
                             f"heads (num_segments) but got {input_shape[1]}"
                             f" frames")
        return input_shape

    def build(self, input_shape):
        input_shape = self._check_shape(input_shape)
        features = input_shape[-1]
        self.embedding = PositionwiseDense(
            self.hidden_units,
            kernel_initializer=torch_initializers.linear_kernel_initializer(),
            bias_initializer=torch_initializers.linear_bias_initializer(
                features),
            dtype=self.dtype_policy, name="embedding")
        self.embedding.build((None, features))
        self.embedding_bn = keras.layers.BatchNormalization(
            momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=self.dtype_policy,
            name="embedding_bn")
        self.embedding_bn.build((None, None, self.hidden_units))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout")
        bound = 1.0 / math.sqrt(self.hidden_units)
        uniform = keras.initializers.RandomUniform(-bound, bound)
        self.head_kernel = self.add_weight(
            name="head_kernel",
            shape=(self.num_segments, self.hidden_units, self.num_classes),
            initializer=uniform)
        self.head_bias = self.add_weight(
            name="head_bias", shape=(self.num_segments, self.num_classes),
            initializer=uniform)
        self.built = True

    def call(self, inputs, training=None):
        steps = self._check_shape(inputs.shape)[1]
        x = self.embedding(inputs)
        x = ops.relu(self.embedding_bn(x, training=training))
        pooled, running = [], None
        for t in range(steps):  # T is static and small (16)
            running = (x[:, t] if running is None
                       else ops.maximum(running, x[:, t]))
            pooled.append(running)
        pooled = self.dropout_layer(ops.stack(pooled, axis=1),
                                    training=training)
        kernel = ops.cast(self.head_kernel[:steps], self.compute_dtype)
        bias = ops.cast(self.head_bias[:steps], self.compute_dtype)
        logits = ops.einsum("btd,tdc->btc", pooled, kernel) + bias
        return ops.cast(logits, "float32")

    def compute_output_shape(self, input_shape):
        input_shape = self._check_shape(input_shape)
        return input_shape[:2] + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes,
                      num_segments=self.num_segments,
                      hidden_units=self.hidden_units, dropout=self.dropout)
        return config
