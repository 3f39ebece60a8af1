"""`ConvTransformerBlock`: ActionFormer's pre-LN transformer block."""

import keras
from keras import ops

from tfaction.layers import masked_outputs
from tfaction.layers.channel_layer_norm import ChannelLayerNorm
from tfaction.layers.layer_scale import LayerScale
from tfaction.layers.local_self_attention import LocalSelfAttention
from tfaction.layers.positionwise_dense import PositionwiseDense
from tfaction.ops.gelu import gelu


@keras.saving.register_keras_serializable(package="tfaction")
class ConvTransformerBlock(keras.layers.Layer):
    """Pre-LN transformer block with conv-attention and max-pool skip.

    Port of ActionFormer's `TransformerBlock` (channels-last), with m the
    (downsampled) output mask:

        y   = skip(x) * m + LS_1(Attn(LN_1(x), mask))
        out = y + LS_2(MLP(LN_2(y)) * m)

    `Attn` is `LocalSelfAttention` (depthwise-conv q/k/v, stride `strides`).
    `skip` is the identity for `strides=1` and a max-pool (kernel 3,
    stride 2, symmetric padding 1 with -inf, as PyTorch's `MaxPool1d`) for
    `strides=2`. The MLP is 1×1 conv C→`mlp_ratio`·C, exact GELU, dropout,
    1×1 conv back to C, dropout. LayerNorms use eps 1e-5.

    As in the reference, the residual branches carry `LayerScale`
    (per-channel scale, init 1e-4, then per-sample drop path) only when
    `drop_path_rate > 0`; otherwise they are added unscaled.

    Args:
        num_heads: attention heads.
        window_size: odd local attention window, or -1 for global attention.
        strides: 1, or 2 for a downsampling block (`T` must be even).
        mlp_ratio: hidden size of the MLP as a multiple of the channels.
        dropout: dropout of the attention output projection and of the MLP
            (`proj_pdrop`).
        drop_path_rate: stochastic-depth rate (`path_pdrop`); > 0 also adds
            the layer scales.
        layer_scale_init: initial value of the layer scales.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[B, T, C]`.
        mask: boolean tensor `[B, T]`, True at valid steps.
        training: enables dropout and drop path.

    Returns:
        Tuple `(outputs, output_mask)`: `[B, T // strides, C]`, zero at
        padded steps, and the boolean `[B, T // strides]` mask.

    Example:

    >>> block = ConvTransformerBlock(num_heads=4, window_size=9, strides=2,
    ...                              drop_path_rate=0.1)
    >>> x = np.random.rand(2, 32, 16).astype("float32")
    >>> mask = np.arange(32)[None] < np.array([[32], [21]])
    >>> y, m = block(x, mask=mask)   # y: (2, 16, 16), m: (2, 16)

    Reference:
        Zhang, Wu, Li. "ActionFormer: Localizing Moments of Actions with
        Transformers", ECCV 2022; `libs/modeling/blocks.py: TransformerBlock`
        of happyharrycn/actionformer_release.
    """

    def __init__(self, num_heads, window_size=-1, strides=1, mlp_ratio=4,
                 dropout=0.0, drop_path_rate=0.0, layer_scale_init=1e-4,
                 **kwargs):
        super().__init__(**kwargs)
        if strides not in (1, 2):
            raise ValueError("ConvTransformerBlock: strides must be 1 or 2, "
                             f"got {strides}")
        self.num_heads = int(num_heads)
        self.window_size = int(window_size)
        self.strides = int(strides)
        self.mlp_ratio = int(mlp_ratio)
        self.dropout = float(dropout)
        self.drop_path_rate = float(drop_path_rate)
        self.layer_scale_init = float(layer_scale_init)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        channels = input_shape[-1]
        out_shape = (input_shape[0],
                     None if input_shape[1] is None
                     else input_shape[1] // self.strides, channels)
        hidden_shape = out_shape[:2] + (self.mlp_ratio * channels,)
        dense_init = keras.initializers.VarianceScaling(
            1.0 / 3.0, "fan_in", "uniform")
        policy = self.dtype_policy

        self.ln1 = ChannelLayerNorm(epsilon=1e-5, dtype=policy,
                                                   name="ln1")
        self.ln1.build(input_shape)
        self.attn = LocalSelfAttention(
            self.num_heads, self.window_size, strides=self.strides,
            dropout=self.dropout, dtype=policy, name="attn")
        self.attn.build(input_shape)
        self.ln2 = ChannelLayerNorm(epsilon=1e-5, dtype=policy,
                                                   name="ln2")
        self.ln2.build(out_shape)
        self.fc1 = PositionwiseDense(
            self.mlp_ratio * channels, kernel_initializer=dense_init,
            bias_initializer="zeros", dtype=policy, name="mlp_fc1")
        self.fc1.build(out_shape)
        self.mlp_dropout1 = keras.layers.Dropout(self.dropout, dtype=policy,
                                                 name="mlp_dropout1")
        self.mlp_dropout1.build(hidden_shape)
        self.fc2 = PositionwiseDense(
            channels, kernel_initializer=dense_init, bias_initializer="zeros",
            dtype=policy, name="mlp_fc2")
        self.fc2.build(hidden_shape)
        self.mlp_dropout2 = keras.layers.Dropout(self.dropout, dtype=policy,
                                                 name="mlp_dropout2")
        self.mlp_dropout2.build(out_shape)
        if self.drop_path_rate > 0.0:
            self.scale_attn = LayerScale(
                self.layer_scale_init, self.drop_path_rate, dtype=policy,
                name="drop_path_attn")
            self.scale_attn.build(out_shape)
            self.scale_mlp = LayerScale(
                self.layer_scale_init, self.drop_path_rate, dtype=policy,
                name="drop_path_mlp")
            self.scale_mlp.build(out_shape)
        else:
            self.scale_attn = None
            self.scale_mlp = None

    def _skip(self, x):
        if self.strides == 1:
            return x
        # MaxPool1d(kernel 3, stride 2, padding 1) on an even T: output j
        # is max(x[2j - 1], x[2j], x[2j + 1]) (x[-1] = -inf). Read from the
        # (even, odd) step pairs: reshapes and an unstack instead of strided
        # slices, whose gradient (StridedSliceGrad) is slow on CPU.
        batch, channels = ops.shape(x)[0], x.shape[-1]
        even, odd = ops.unstack(ops.reshape(x, (batch, -1, 2, channels)),
                                num=2, axis=2)
        half = ops.shape(odd)[1]
        left = ops.pad(ops.slice(odd, (0, 0, 0), (batch, half - 1, channels)),
                       [[0, 0], [1, 0], [0, 0]],
                       constant_values=float("-inf"))
        return ops.maximum(ops.maximum(left, even), odd)

    def call(self, inputs, mask, training=None):
        attn, out_mask = self.attn(self.ln1(inputs), mask, training=training)
        m = ops.cast(out_mask, attn.dtype)[:, :, None]
        if self.scale_attn is not None:
            attn = self.scale_attn(attn, training=training)
        out = self._skip(inputs) * m + attn
        h = gelu(self.fc1(self.ln2(out)))
        h = self.mlp_dropout1(h, training=training)
        h = self.mlp_dropout2(self.fc2(h), training=training) * m
        if self.scale_mlp is not None:
            h = self.scale_mlp(h, training=training)
        return out + h, out_mask

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
                       "mlp_ratio": self.mlp_ratio,
                       "dropout": self.dropout,
                       "drop_path_rate": self.drop_path_rate,
                       "layer_scale_init": self.layer_scale_init})
        return config
