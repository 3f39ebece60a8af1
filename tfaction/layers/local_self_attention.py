"""`LocalSelfAttention`: ActionFormer's masked multi-head conv-attention."""

import math

import keras
import numpy as np
from keras import ops

from tfaction.layers import masked_outputs
from tfaction.layers.channel_layer_norm import ChannelLayerNorm
from tfaction.layers.masked_conv1d import MaskedConv1D
from tfaction.layers.positionwise_dense import PositionwiseDense

_PADDED_KEY_BIAS = -1e4  # the reference's additive constant for padded keys
# Sequences of at most this many query blocks use the dense band path
# (measured on CPU: no faster blocked at T <= 4 blocks, much faster beyond).
_DENSE_MAX_BLOCKS = 4


def _block_size(half_window, block_size):
    """Query block of the blocked path: >= 2 * half_window (two key blocks
    then cover the band of every query of a block)."""
    return max(int(block_size), 2 * half_window, 1)


def _global_attention(q, k, v, kv_mask):
    """Every query attends to every valid key (`MaskedMHCA`).

    `q` (pre-scaled), `k`, `v`: float32 `[B, H, T, D]`; `kv_mask` `[B, T]`.
    """
    logits = ops.einsum("bhqd,bhkd->bhqk", q, k)
    neg_inf = ops.cast(float("-inf"), "float32")
    logits = ops.where(kv_mask[:, None, None, :], logits, neg_inf)
    attn = ops.softmax(logits, axis=-1)
    # padded query rows: zero (avoids NaN rows with no valid key)
    attn = ops.where(kv_mask[:, None, :, None], attn, 0.0)
    return ops.einsum("bhqk,bhkd->bhqd", attn, v)


def _dense_band_attention(q, k, v, kv_mask, half):
    """Band attention on the full `T x T` logits (`O(T^2)`)."""
    logits = ops.einsum("bhqd,bhkd->bhqk", q, k)
    length = ops.shape(logits)[-1]
    xp = np if isinstance(length, int) else ops  # static: a constant
    pos = xp.arange(length)
    band = xp.abs(pos[:, None] - pos[None, :]) <= half
    neg_inf = ops.cast(float("-inf"), "float32")
    key_bias = ops.where(kv_mask, 0.0, _PADDED_KEY_BIAS)  # [B, T]
    bias = ops.where(band[None], key_bias[:, None, :], neg_inf)
    attn = ops.softmax(logits + bias[:, None], axis=-1)
    attn = ops.where(kv_mask[:, None, :, None], attn, 0.0)
    return ops.einsum("bhqk,bhkd->bhqd", attn, v)


def _blocked_geometry(length, num_blocks, half, b):
    """`[n, b, 2b]` bool: which window key each query of a block may see.

    Key `j` of block `i`'s window (position `i b - half + j`) is allowed for
    query `r` (position `i b + r`) inside the band and the sequence; the
    fill queries past the end see every key. With a static length this is
    a NumPy constant (no ops to trace); otherwise it is computed in graph.
    """
    np_like = isinstance(length, int)
    xp = np if np_like else ops
    row = xp.arange(b)[:, None]                  # query within the block
    col = xp.arange(2 * b)[None, :]              # key within the window
    band = xp.logical_and(col - row >= 0, col - row <= 2 * half)  # [b,2b]
    start = xp.arange(num_blocks)[:, None] * b   # [n, 1]
    key_pos = start - half + xp.arange(2 * b)[None, :]           # [n, 2b]
    key_in_seq = xp.logical_and(key_pos >= 0, key_pos < length)
    query_pos = start + xp.arange(b)[None, :]                    # [n, b]
    return xp.logical_or(
        xp.logical_and(band[None], key_in_seq[:, None, :]),
        (query_pos >= length)[:, :, None])


def _blocked_band_attention(q, k, v, kv_mask, half, block):
    """Band attention computed block by block (`O(T * block)`).

    Queries are cut into `n = ceil(T / block)` blocks; block `i` (queries
    `[i b, i b + b)`) attends to the `2 b` keys `[i b - half, i b + 2 b -
    half)`, which hold its whole band because `b >= 2 half`. Logits outside
    the band or the sequence are -inf, padded keys get -1e4 and padded
    query rows are zeroed, exactly as the dense path; the queries added to
    fill the last block see finite logits (no NaN in the gradient) and are
    cut off. Works with a static or a dynamic `T`.
    """
    b = block
    length = ops.shape(q)[2]
    num_blocks = (length + b - 1) // b
    fill = num_blocks * b - length              # queries added at the end
    batch, heads, depth = ops.shape(q)[0], ops.shape(q)[1], ops.shape(q)[3]

    def key_windows(x):
        # [B, H, T, D] -> [B H n, 2b, D]: block i holds keys
        # [i b - half, i b + 2 b - half) (zeros outside the sequence)
        x = ops.pad(x, [[0, 0], [0, 0], [half, fill + b - half], [0, 0]])
        x = ops.reshape(x, (batch * heads, num_blocks + 1, b, depth))
        shape = (batch * heads, num_blocks, b, depth)
        # ops.slice: its gradient is a pad (StridedSliceGrad is slow on CPU)
        x = ops.concatenate([ops.slice(x, (0, 0, 0, 0), shape),
                             ops.slice(x, (0, 1, 0, 0), shape)], axis=2)
        return ops.reshape(x, (batch * heads * num_blocks, 2 * b, depth))

    # Rank-3 batched matmuls (5-D ones miss oneDNN's fast kernels).
    q_blocks = ops.reshape(
        ops.pad(q, [[0, 0], [0, 0], [0, fill], [0, 0]]),
        (batch * heads * num_blocks, b, depth))
    logits = ops.einsum("zqd,zkd->zqk", q_blocks, key_windows(k))
    logits = ops.reshape(logits, (batch, heads, num_blocks, b, 2 * b))

    allowed = _blocked_geometry(length, num_blocks, half, b)     # [n,b,2b]

    valid = ops.pad(kv_mask, [[0, 0], [half, fill + b - half]])
    valid = ops.reshape(valid, (batch, num_blocks + 1, b))
    shape = (batch, num_blocks, b)
    key_valid = ops.concatenate([ops.slice(valid, (0, 0, 0), shape),
                                 ops.slice(valid, (0, 1, 0), shape)], axis=2)
    key_bias = ops.where(key_valid, 0.0, _PADDED_KEY_BIAS)       # [B,n,2b]
    neg_inf = ops.cast(float("-inf"), "float32")
    bias = ops.where(allowed[None], key_bias[:, :, None, :], neg_inf)
    attn = ops.softmax(logits + bias[:, None], axis=-1)
    # padded query rows (and the fill rows): zero
    query_valid = ops.reshape(
        ops.pad(kv_mask, [[0, 0], [0, fill]]), (batch, 1, num_blocks, b, 1))
    attn = ops.where(query_valid, attn, 0.0)
    attn = ops.reshape(attn, (batch * heads * num_blocks, b, 2 * b))
    out = ops.einsum("zqk,zkd->zqd", attn, key_windows(v))
    out = ops.reshape(out, (batch, heads, num_blocks * b, depth))
    return ops.slice(out, (0, 0, 0, 0), (batch, heads, length, depth))


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
    here it is a band attention, numerically equivalent (no divisibility
    constraint on `T`): dense `T x T` logits with a band mask for short
    sequences (at most `4` blocks), otherwise blocked: queries in blocks of
    `b = max(block_size, 2 * (w // 2))`, each block attending to the `2 b`
    keys around it (time and memory `O(T b)` instead of `O(T^2)`; the
    speed-up is measured by `benchmarks/actionformer.py --attention`).
    Logits and softmax are computed in float32 under mixed precision.

    Args:
        num_heads: number of attention heads (must divide the channels).
        window_size: odd local window `w > 1`, or -1 for global attention.
        strides: 1, or 2 for a downsampling block (`T` must be even).
        dropout: dropout rate after the output projection (`proj_pdrop`;
            the attention-map dropout of the reference is always 0).
        block_size: query block of the blocked local path (raised to
            `2 * (w // 2)` if smaller); 0 = always the dense band path.
            A computation choice only: results agree to float rounding.
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
                 block_size=16, **kwargs):
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
        if int(block_size) < 0:
            raise ValueError("LocalSelfAttention: block_size must be >= 0, "
                             f"got {block_size}")
        self.block_size = int(block_size)

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

        def branch(name):
            """Depthwise conv -> LayerNorm -> 1x1 projection of q, k or v."""
            conv = MaskedConv1D(
                channels, 3, strides=self.strides, groups=channels,
                use_bias=False, kernel_initializer=depthwise_init,
                dtype=self.dtype_policy, name=f"{name}_conv")
            conv.build(seq_shape)
            norm = ChannelLayerNorm(
                epsilon=1e-5, dtype=self.dtype_policy, name=f"{name}_norm")
            norm.build(out_shape)
            proj = PositionwiseDense(
                channels, kernel_initializer=dense_init,
                bias_initializer="zeros", dtype=self.dtype_policy, name=name)
            proj.build(out_shape)
            return conv, norm, proj

        self.query_conv, self.query_norm, self.query_proj = branch("query")
        self.key_conv, self.key_norm, self.key_proj = branch("key")
        self.value_conv, self.value_norm, self.value_proj = branch("value")
        self.output_proj = PositionwiseDense(
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
        q = q * (1.0 / math.sqrt(self.head_dim))
        if self.window_size == -1:
            out = _global_attention(q, k, v, kv_mask)
        else:
            half = self.window_size // 2
            block = _block_size(half, self.block_size)
            length = q.shape[2]
            if self.block_size == 0 or (
                    length is not None
                    and length <= _DENSE_MAX_BLOCKS * block):
                out = _dense_band_attention(q, k, v, kv_mask, half)
            else:
                out = _blocked_band_attention(q, k, v, kv_mask, half, block)
        out = ops.transpose(out, (0, 2, 1, 3))
        out = ops.reshape(out, (ops.shape(out)[0], ops.shape(out)[1],
                                self.channels))
        out = ops.cast(out, self.compute_dtype)
        out = self.output_dropout(self.output_proj(out), training=training)
        out = out * ops.cast(out_mask, out.dtype)[:, :, None]
        return out, out_mask

    def compute_output_shape(self, input_shape):
        return masked_outputs.sequence_shapes(input_shape, input_shape[-1],
                                              self.strides)

    def compute_output_spec(self, inputs, mask, training=None):
        return masked_outputs.output_spec(
            self, self.compute_output_shape(inputs.shape))

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads,
                       "window_size": self.window_size,
                       "strides": self.strides,
                       "dropout": self.dropout,
                       "block_size": self.block_size})
        return config
