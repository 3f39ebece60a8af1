"""`ConvTransformerBackbone`: ActionFormer's multi-scale transformer encoder."""

import keras
from keras import ops

from tfaction.layers import masked_outputs
from tfaction.layers.channel_layer_norm import ChannelLayerNorm
from tfaction.layers.conv_transformer_block import ConvTransformerBlock
from tfaction.layers.masked_conv1d import MaskedConv1D
from tfaction.layers.sinusoid_position_encoding import (
    SinusoidPositionEncoding)
from tfaction.layers.tracking import TracksListItems


@keras.saving.register_keras_serializable(package="tfaction")
class ConvTransformerBackbone(TracksListItems, keras.layers.Layer):
    """Conv embedding + transformer stem + strided transformer pyramid.

    Port of ActionFormer's `ConvTransformerBackbone` (channels-last):

    1. `arch[0]` embedding layers: `MaskedConv1D` (kernel
       `embed_kernel_size`, symmetric padding, no bias when `embed_with_ln`)
       → channel LayerNorm (eps 1e-5; identity without `embed_with_ln`)
       → ReLU. As in the reference, the LayerNorm is not masked, so padded
       steps hold ReLU(LN bias) and reach the boundary steps through the
       next convolution.
    2. With `use_abs_pe`, the fixed sinusoid table of `max_seq_len`
       positions / sqrt(embed_dim), times the mask, is added
       (`SinusoidPositionEncoding`: resampled to `T` at inference when
       `T >= max_seq_len`; `T > max_seq_len` in training is an error).
    3. `arch[1]` stride-1 `ConvTransformerBlock`s (the stem); its output is
       pyramid level 0.
    4. `arch[2]` stride-2 `ConvTransformerBlock`s; block j gives level j + 1
       (stride 2^(j+1)).

    `backbone_arch = (2, 2, 5)` gives 6 levels with strides 1, 2, …, 32.
    The input is multiplied by the mask on entry: the reference feeds
    zero-padded features, so this changes nothing for such inputs and makes
    every output independent of the values at padded steps. `T` must be
    divisible by `2 ** arch[2]`.

    Several concatenated feature sets (ActionFormer's three-feature Ego4D
    config): with `input_splits` (channels of each set, in order) and
    `projection_dims`, each set first goes through its own 1x1
    `MaskedConv1D` with bias to `projection_dims[i]` channels, and the
    projections are concatenated (`sum(projection_dims)` must equal
    `embed_dim`) before step 1.

    Args:
        embed_dim: channels of the embedding and of every level.
        num_heads: attention heads of every block.
        embed_kernel_size: odd kernel size of the embedding convolutions.
        arch: `[#embedding convs, #stem blocks, #branch blocks]`.
        window_size: local attention window of every block (int), or a list
            of `1 + arch[2]` windows (entry 0 for the stem blocks, entry l for
            branch block l - 1); -1 selects global attention.
        embed_with_ln: LayerNorm after each embedding conv (and no conv bias).
        dropout: `proj_pdrop` of the blocks (attention projection and MLP).
        drop_path_rate: stochastic depth of the blocks; > 0 also adds the
            per-channel layer scales (init 1e-4), as in the reference.
        use_abs_pe: add the absolute sinusoid position encoding after the
            embedding (ActionFormer's ActivityNet and Ego4D configs).
        max_seq_len: positions of that table (the training length);
            required with `use_abs_pe`, unused otherwise.
        input_splits: optional channels of each concatenated feature set;
            they must add up to the input channels.
        projection_dims: output channels of each set's projection (with
            `input_splits`, same length; they add up to `embed_dim`).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[B, T, C_in]`.
        mask: boolean tensor `[B, T]`, True at valid steps.
        training: enables dropout and drop path.

    Returns:
        Tuple `(features, masks)` of two lists with one entry per level:
        `features[l]` `[B, T / 2^l, embed_dim]` (zero at padded steps) and
        `masks[l]` boolean `[B, T / 2^l]`.

    Example:

    >>> backbone = ConvTransformerBackbone(embed_dim=32, num_heads=4,
    ...                                    window_size=9, drop_path_rate=0.1)
    >>> x = np.random.rand(2, 256, 64).astype("float32")
    >>> mask = np.arange(256)[None] < np.array([[256], [181]])
    >>> feats, masks = backbone(x, mask=mask)  # 6 levels: 256, 128, …, 8

    Reference:
        Zhang, Wu, Li. "ActionFormer: Localizing Moments of Actions with
        Transformers", ECCV 2022; `libs/modeling/backbones.py:
        ConvTransformerBackbone` of happyharrycn/actionformer_release.
    """

    def __init__(self, embed_dim, num_heads, embed_kernel_size=3,
                 arch=(2, 2, 5), window_size=-1, embed_with_ln=True,
                 dropout=0.0, drop_path_rate=0.0, use_abs_pe=False,
                 max_seq_len=None, input_splits=None, projection_dims=None,
                 **kwargs):
        super().__init__(**kwargs)
        if (input_splits is None) != (projection_dims is None):
            raise ValueError("ConvTransformerBackbone: input_splits and "
                             "projection_dims go together")
        if input_splits is not None:
            input_splits = [int(c) for c in input_splits]
            projection_dims = [int(c) for c in projection_dims]
            if (len(input_splits) != len(projection_dims)
                    or min(input_splits + projection_dims) < 1):
                raise ValueError(
                    "ConvTransformerBackbone: input_splits "
                    f"{input_splits} and projection_dims {projection_dims} "
                    "need one positive entry per feature set")
            if sum(projection_dims) != int(embed_dim):
                raise ValueError(
                    f"ConvTransformerBackbone: projection_dims "
                    f"{projection_dims} add up to {sum(projection_dims)}, "
                    f"not embed_dim {embed_dim}")
        self.input_splits = input_splits
        self.projection_dims = projection_dims
        if use_abs_pe and max_seq_len is None:
            raise ValueError("ConvTransformerBackbone: use_abs_pe needs "
                             "max_seq_len (the rows of the position table)")
        arch = [int(a) for a in arch]
        if len(arch) != 3 or min(arch) < 0 or arch[0] < 1:
            raise ValueError("ConvTransformerBackbone: arch must be three "
                             "non-negative counts with at least one "
                             f"embedding conv, got {arch}")
        if isinstance(window_size, (list, tuple)):
            window_size = [int(w) for w in window_size]
            if len(window_size) != 1 + arch[2]:
                raise ValueError(
                    "ConvTransformerBackbone: window_size needs 1 + arch[2] "
                    f"= {1 + arch[2]} entries, got {len(window_size)}")
        else:
            window_size = int(window_size)
        self.embed_dim = int(embed_dim)
        self.num_heads = int(num_heads)
        self.embed_kernel_size = int(embed_kernel_size)
        self.arch = arch
        self.window_size = window_size
        self.embed_with_ln = bool(embed_with_ln)
        self.dropout = float(dropout)
        self.drop_path_rate = float(drop_path_rate)
        self.use_abs_pe = bool(use_abs_pe)
        self.max_seq_len = None if max_seq_len is None else int(max_seq_len)

    @property
    def windows(self):
        """Window of the stem (entry 0) and of each branch block."""
        if isinstance(self.window_size, list):
            return list(self.window_size)
        return [self.window_size] * (1 + self.arch[2])

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        policy = self.dtype_policy
        batch, length = input_shape[0], input_shape[1]
        shape = (batch, length, self.embed_dim)
        in_shape = input_shape
        self.projections = []
        if self.input_splits is not None:
            if input_shape[-1] != sum(self.input_splits):
                raise ValueError(
                    f"ConvTransformerBackbone: input has {input_shape[-1]} "
                    f"channels, input_splits {self.input_splits} add up to "
                    f"{sum(self.input_splits)}")
            for i, (c_in, c_out) in enumerate(zip(self.input_splits,
                                                  self.projection_dims)):
                proj = MaskedConv1D(c_out, 1, use_bias=True, dtype=policy,
                                    name=f"proj_{i}")
                proj.build((batch, length, c_in))
                self.projections.append(proj)
            in_shape = shape
        self.embed_convs = []
        self.embed_norms = []
        for i in range(self.arch[0]):
            conv = MaskedConv1D(
                self.embed_dim, self.embed_kernel_size,
                use_bias=not self.embed_with_ln, dtype=policy,
                name=f"embd_{i}")
            conv.build(in_shape)
            self.embed_convs.append(conv)
            if self.embed_with_ln:
                norm = ChannelLayerNorm(
                    epsilon=1e-5, dtype=policy, name=f"embd_norm_{i}")
                norm.build(shape)
                self.embed_norms.append(norm)
            in_shape = shape
        self.position_encoding = None
        if self.use_abs_pe:
            self.position_encoding = SinusoidPositionEncoding(
                self.max_seq_len, dtype=policy, name="abs_pe")
            self.position_encoding.build(shape)
        windows = self.windows
        self.stem = []
        for i in range(self.arch[1]):
            block = ConvTransformerBlock(
                self.num_heads, windows[0], strides=1, dropout=self.dropout,
                drop_path_rate=self.drop_path_rate, dtype=policy,
                name=f"stem_{i}")
            block.build(shape)
            self.stem.append(block)
        self.branch = []
        for i in range(self.arch[2]):
            block = ConvTransformerBlock(
                self.num_heads, windows[1 + i], strides=2,
                dropout=self.dropout, drop_path_rate=self.drop_path_rate,
                dtype=policy, name=f"branch_{i}")
            block.build(shape)
            self.branch.append(block)
            length = None if length is None else length // 2
            shape = (batch, length, self.embed_dim)

    def call(self, inputs, mask, training=None):
        length = inputs.shape[1]
        factor = 2 ** self.arch[2]
        if length is not None and length % factor != 0:
            raise ValueError(
                f"ConvTransformerBackbone: sequence length {length} must be "
                f"divisible by 2 ** arch[2] = {factor}")
        if (self.use_abs_pe and length is not None
                and length > self.max_seq_len and training is not None
                and not ops.is_tensor(training) and bool(training)):
            raise ValueError(
                f"ConvTransformerBackbone: training sequence length {length} "
                f"is longer than max_seq_len {self.max_seq_len} (use_abs_pe: "
                f"the position table is only resampled at inference)")
        mask = ops.cast(mask, "bool")
        x = inputs * ops.cast(mask, inputs.dtype)[:, :, None]
        if self.projections:
            parts = ops.split(x, [sum(self.input_splits[:i + 1]) for i in
                                  range(len(self.input_splits) - 1)], axis=-1)
            x = ops.concatenate([proj(part, mask)[0] for proj, part in
                                 zip(self.projections, parts)], axis=-1)
        for i, conv in enumerate(self.embed_convs):
            x, mask = conv(x, mask)
            if self.embed_with_ln:
                x = self.embed_norms[i](x)
            x = ops.relu(x)
        if self.position_encoding is not None:
            x = self.position_encoding(x, mask=mask, training=training)
        for block in self.stem:
            x, mask = block(x, mask, training=training)
        features, masks = [x], [mask]
        for block in self.branch:
            x, mask = block(x, mask, training=training)
            features.append(x)
            masks.append(mask)
        return features, masks

    def compute_output_shape(self, input_shape):
        """`([features per level], [masks per level])` shapes."""
        levels = [masked_outputs.sequence_shapes(input_shape, self.embed_dim,
                                                 2 ** level)
                  for level in range(1 + self.arch[2])]
        return [f for f, _ in levels], [m for _, m in levels]

    def compute_output_spec(self, inputs, mask, training=None):
        return masked_outputs.output_spec(
            self, self.compute_output_shape(inputs.shape))

    def get_config(self):
        config = super().get_config()
        config.update({"embed_dim": self.embed_dim,
                       "num_heads": self.num_heads,
                       "embed_kernel_size": self.embed_kernel_size,
                       "arch": list(self.arch),
                       "window_size": self.window_size,
                       "embed_with_ln": self.embed_with_ln,
                       "dropout": self.dropout,
                       "drop_path_rate": self.drop_path_rate,
                       "use_abs_pe": self.use_abs_pe,
                       "max_seq_len": self.max_seq_len,
                       "input_splits": self.input_splits,
                       "projection_dims": self.projection_dims})
        return config
