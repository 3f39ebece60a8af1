"""`LocalSelfAttention`: ActionFormer's masked multi-head conv-attention."""

import math

import keras
from keras import ops

from tfaction.layers.masked_conv1d import MaskedConv1D

_PADDED_KEY_BIAS = -1e4  # the reference's additive constant for padded keys


@keras.saving.register_keras_serializable(package="tfaction")
class LocalSelfAttention(keras.layers.Layer):
    """Local (banded) masked multi-head conv-attention (ActionFormer MHCA).

    Queries, keys and values are each computed as a depthwise
    `MaskedConv1D` (kernel 3, no bias, stride `strides`, symmetric padding 1),
    a channel LayerNorm (eps 1e-5) and a 1×1 projection with bias. Scaled
    dot-product attention with `num_heads` heads follows, then a 1×1 output
    projection, dropout, and multiplication by the (downsampled) mask.
    Downsampling (`strides=2`) therefore happens inside the attention.

    With `window_size = w > 1` (odd), query i attends to keys j with
    `|i - j| <= w // 2` (`LocalMaskedMHCA`); keys outside the sequence are
    excluded, padded keys get the reference's additive -1e4 and padded
    query rows are zeroed after the softmax. With `window_size = -1` every
    query attends to every valid key (`MaskedMHCA`, padded keys excluded).
    The reference computes the local variant with Longformer sliding chunks;
    here it is a dense attention with a band mask, numerically equivalent
    (no divisibility constraint on `T`, memory `O(T^2)` per head). Logits
    and softmax are computed in float32 under mixed precision.

    Args:
        num_heads: number of attention heads (must divide the channels).
        window_size: odd local window `w > 1`, or -1 for global attention.
        strides: 1, or 2 for a downsampling block (`T` must be even).
        dropout: dropout rate after the output projection (`proj_pdrop`;
            the attention-map dropout of the reference is always 0).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[B, T, C]`.
        mask: boolean tensor `[B, T]`, True at valid steps.
        training: enables dropout.

    Returns:
        Tuple `(outputs, output_mask)`: `[B, T // strides, C]` (zero at
        padded steps) and the boolean `[B, T // strides]` mask
        (`mask[:, ::strides]`).

    Example:

    >>> attn = LocalSelfAttention(num_heads=4, window_size=9, strides=2)
    >>> x = np.random.rand(2, 32, 16).astype("float32")
    >>> mask = np.arange(32)[None] < np.array([[32], [21]])
    >>> y, m = attn(x, mask=mask)   # y: (2, 16, 16), m: (2, 16)

    Reference:
        Zhang, Wu, Li. "ActionFormer: Localizing Moments of Actions with
        Transformers", ECCV 2022; `libs/modeling/blocks.py: LocalMaskedMHCA,
        MaskedMHCA` of happyharrycn/actionformer_release.
    """

    def __init__(self, num_heads, window_size=-1, strides=1, dropout=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        window_size = int(window_size)
        if window_size != -1 and (window_size <= 1 or window_size % 2 != 1):
            raise ValueError("LocalSelfAttention: window_size must be an odd "
                             f"integer > 1 or -1 (global), got {window_size}")
        if strides not in (1, 2):
            raise ValueError("LocalSelfAttention: strides must be 1 or 2, "
                             f"got {strides}")
        self.num_heads = int(num_heads)
        self.window_size = window_size
        self.strides = int(strides)
        self.dropout = float(dropout)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.num_heads != 0:
            raise ValueError(
                f"LocalSelfAttention: channels ({channels}) must be known and "
                f"divisible by num_heads ({self.num_heads})")
        self.channels = channels
        self.head_dim = channels // self.num_heads
        seq_shape = tuple(input_shape)
        out_shape = (seq_shape[0],
                     None if seq_shape[1] is None
                     else seq_shape[1] // self.strides, channels)
        # PyTorch's fan_in of a depthwise kernel is k * 1 = 3.
        depthwise_init = keras.initializers.RandomUniform(
            -1.0 / math.sqrt(3.0), 1.0 / math.sqrt(3.0))
        dense_init = keras.initializers.VarianceScaling(
            1.0 / 3.0, "fan_in", "uniform")
        for name in ("query", "key", "value"):
            conv = MaskedConv1D(
                channels, 3, strides=self.strides, groups=channels,
                use_bias=False, kernel_initializer=depthwise_init,
                dtype=self.dtype_policy, name=f"{name}_conv")
            conv.build(seq_shape)
            norm = keras.layers.LayerNormalization(
                epsilon=1e-5, dtype=self.dtype_policy, name=f"{name}_norm")
            norm.build(out_shape)
            proj = keras.layers.Dense(
                channels, kernel_initializer=dense_init,
                bias_initializer="zeros", dtype=self.dtype_policy, name=name)
            proj.build(out_shape)
            setattr(self, f"{name}_conv", conv)
            setattr(self, f"{name}_norm", norm)
            setattr(self, f"{name}_proj", proj)
        self.output_proj = keras.layers.Dense(
            channels, kernel_initializer=dense_init, bias_initializer="zeros",
            dtype=self.dtype_policy, name="proj")
        self.output_proj.build(out_shape)
        self.output_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="proj_dropout")
        self.output_dropout.build(out_shape)

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))  # [B, H, T, D]

    def call(self, inputs, mask, training=None):
        q, out_mask = self.query_conv(inputs, mask)
        k, kv_mask = self.key_conv(inputs, mask)
        v, _ = self.value_conv(inputs, mask)
        q = self.query_proj(self.query_norm(q))
        k = self.key_proj(self.key_norm(k))
        v = self.value_proj(self.value_norm(v))

        q = self._split_heads(ops.cast(q, "float32"))
        k = self._split_heads(ops.cast(k, "float32"))
        v = self._split_heads(ops.cast(v, "float32"))
        scale = 1.0 / math.sqrt(self.head_dim)
        logits = ops.einsum("bhqd,bhkd->bhqk", q * scale, k)

        key_valid = kv_mask[:, None, None, :]  # [B, 1, 1, T]
        neg_inf = ops.cast(float("-inf"), "float32")
        if self.window_size == -1:
            logits = ops.where(key_valid, logits, neg_inf)
        else:
            length = ops.shape(logits)[-1]
            pos = ops.arange(length)
            offset = ops.abs(pos[:, None] - pos[None, :])
            band = (offset <= self.window_size // 2)[None, None]
            logits = logits + ops.where(key_valid, 0.0, _PADDED_KEY_BIAS)
            logits = ops.where(band, logits, neg_inf)
        attn = ops.softmax(logits, axis=-1)
        # padded query rows: zero (avoids NaN rows with no valid key)
        attn = ops.where(kv_mask[:, None, :, None], attn, 0.0)
        out = ops.einsum("bhqk,bhkd->bhqd", attn, v)
        out = ops.transpose(out, (0, 2, 1, 3))
        out = ops.reshape(out, (ops.shape(out)[0], ops.shape(out)[1],
                                self.channels))
        out = ops.cast(out, self.compute_dtype)
        out = self.output_dropout(self.output_proj(out), training=training)
        out = out * ops.cast(out_mask, out.dtype)[:, :, None]
        return out, out_mask

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads,
                       "window_size": self.window_size,
                       "strides": self.strides,
                       "dropout": self.dropout})
        return config
