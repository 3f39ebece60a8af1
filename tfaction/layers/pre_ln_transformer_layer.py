"""`PreLNTransformerLayer`: a pre-LayerNorm transformer encoder layer."""

import math
import random

import keras
from keras import ops

from tfaction.layers import torch_initializers
from tfaction.layers.positionwise_dense import PositionwiseDense

# Offsets of the per-weight seeds derived from the layer's seed.
_SEED_STRIDE = 2
# Logit of a padded key. The reference uses -inf; in float32 any valid
# logit exceeds this by so much that exp() of the difference is exactly 0,
# so the attention weights are the same, and a row without any valid key
# stays finite (no NaN in the forward pass or its gradient).
_MASKED_LOGIT = -1e9


def draw_seed():
    """A random int seed from Python's generator (set by
    `keras.utils.set_random_seed`)."""
    return random.randint(1, 2 ** 30)


@keras.saving.register_keras_serializable(package="tfaction")
class PreLNTransformerLayer(keras.layers.Layer):
    """Pre-LN transformer encoder layer with a key-padding mask.

    `x = x + Dropout(MHSA(LN1(x)))`, then `x = x + Dropout(FFN(LN2(x)))`,
    with:

    * MHSA: separate query / key / value / output projections (`Dense`
      `d -> d` with bias), `num_heads` heads of `d / num_heads` channels,
      scaled dot-product attention in which query `i` attends to every key
      `j` with `mask[j]` True (padded keys get zero weight, as with the
      reference's `-inf` logits; a sequence with no valid key gets zeros);
      no dropout on the attention weights;
    * FFN: `Dense(ffn_units)` -> ReLU -> `Dense(d)`, no inner dropout;
    * LayerNorm epsilon 1e-5 (PyTorch's), `dropout` on both sublayer
      outputs before the residual additions; no final LayerNorm.

    Padded query steps are computed like valid ones (from the valid keys)
    and valid steps never depend on padded ones. Attention logits, softmax
    and the weighted sum run in float32 under mixed precision; the
    LayerNorms upcast to float32 as Keras' do.

    Initialisation: Xavier-uniform (Glorot) kernels, PyTorch's default
    `U(+-1/sqrt(fan_in))` biases, LayerNorm scale 1 and offset 0. Every
    random draw is seeded from `seed`: two layers with the same seed and
    input width start from identical weights.

    Args:
        num_heads: attention heads (must divide the channels).
        ffn_units: hidden units of the feed-forward block.
        dropout: rate of the dropout on the two sublayer outputs.
        epsilon: LayerNorm epsilon.
        seed: int seed of the initial weights; None draws one at build time.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[B, T, d]`.
        mask: optional boolean tensor `[B, T]`, True at valid steps (keys);
            None: every step valid. A Keras mask is used likewise and
            propagated.
        training: enables dropout.

    Returns:
        `[B, T, d]` in the compute dtype.

    Example:

    >>> layer = PreLNTransformerLayer(num_heads=2, ffn_units=16, seed=1)
    >>> x = np.random.rand(2, 5, 8).astype("float32")
    >>> mask = np.arange(5)[None] < np.array([[5], [3]])
    >>> tuple(layer(x, mask=mask).shape)
    (2, 5, 8)

    Reference:
        Xiong et al., "On Layer Normalization in the Transformer
        Architecture", ICML 2020; CARL's `EncoderLayer` (Chen et al., CVPR
        2022).
    """

    def __init__(self, num_heads=8, ffn_units=1024, dropout=0.1,
                 epsilon=1e-5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.ffn_units = int(ffn_units)
        self.dropout = float(dropout)
        self.epsilon = float(epsilon)
        self.seed = None if seed is None else int(seed)
        if self.num_heads < 1 or self.ffn_units < 1:
            raise ValueError("PreLNTransformerLayer: num_heads and ffn_units "
                             f"must be >= 1, got {num_heads}, {ffn_units}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("PreLNTransformerLayer: dropout must be in "
                             f"[0, 1), got {dropout}")
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.num_heads != 0:
            raise ValueError(
                f"PreLNTransformerLayer: channels ({channels}) must be known "
                f"and divisible by num_heads ({self.num_heads})")
        self.channels = int(channels)
        self.head_dim = self.channels // self.num_heads
        seq_shape = tuple(input_shape)
        hidden_shape = (*seq_shape[:-1], self.ffn_units)
        base = self.seed if self.seed is not None else draw_seed()
        counter = iter(range(base, base + 100 * _SEED_STRIDE, _SEED_STRIDE))

        def dense(name, units, fan_in, shape):
            seed = next(counter)
            xavier = torch_initializers.xavier_uniform_initializer(seed)
            layer = PositionwiseDense(
                units, kernel_initializer=xavier,
                bias_initializer=torch_initializers.linear_bias_initializer(
                    fan_in, seed + 1),
                dtype=self.dtype_policy, name=name)
            layer.build(shape)
            return layer

        def norm(name):
            layer = keras.layers.LayerNormalization(
                epsilon=self.epsilon, dtype=self.dtype_policy, name=name)
            layer.build(seq_shape)
            return layer

        def dropout(name):
            layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy,
                                         name=name)
            layer.build(seq_shape)
            return layer

        self.attention_norm = norm("attention_norm")
        self.query = dense("query", self.channels, self.channels, seq_shape)
        self.key = dense("key", self.channels, self.channels, seq_shape)
        self.value = dense("value", self.channels, self.channels, seq_shape)
        self.attention_output = dense("attention_output", self.channels,
                                      self.channels, seq_shape)
        self.attention_dropout = dropout("attention_dropout")
        self.ffn_norm = norm("ffn_norm")
        self.ffn_inner = dense("ffn_inner", self.ffn_units, self.channels,
                               seq_shape)
        self.ffn_output = dense("ffn_output", self.channels, self.ffn_units,
                                hidden_shape)
        self.ffn_dropout = dropout("ffn_dropout")

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(ops.cast(x, "float32"),
                        (batch, length, self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))  # [B, H, T, D]

    def _attend(self, x, mask):
        q = self._split_heads(self.query(x))
        k = self._split_heads(self.key(x))
        v = self._split_heads(self.value(x))
        logits = ops.einsum("bhqd,bhkd->bhqk", q, k)
        logits = logits * (1.0 / math.sqrt(self.head_dim))
        if mask is not None:
            valid = ops.cast(mask, "bool")[:, None, None, :]
            logits = ops.where(valid, logits, _MASKED_LOGIT)
            weights = ops.softmax(logits, axis=-1)
            # rows without any valid key: zeros instead of NaN
            any_valid = ops.any(valid, axis=-1, keepdims=True)
            weights = ops.where(any_valid, weights, 0.0)
        else:
            weights = ops.softmax(logits, axis=-1)
        out = ops.einsum("bhqk,bhkd->bhqd", weights, v)
        out = ops.transpose(out, (0, 2, 1, 3))
        out = ops.reshape(out, (ops.shape(out)[0], ops.shape(out)[1],
                                self.channels))
        return self.attention_output(ops.cast(out, self.compute_dtype))

    def call(self, inputs, mask=None, training=None):
        x = inputs
        attended = self._attend(self.attention_norm(x), mask)
        x = x + self.attention_dropout(attended, training=training)
        hidden = ops.relu(self.ffn_inner(self.ffn_norm(x)))
        x = x + self.ffn_dropout(self.ffn_output(hidden), training=training)
        return x

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, ffn_units=self.ffn_units,
                      dropout=self.dropout, epsilon=self.epsilon,
                      seed=self.seed)
        return config
