"""`ActionTransformerUnit`: one Action Transformer (Tx) head."""

import math

import keras
from keras import ops

from tfaction.layers.positionwise_dense import PositionwiseDense

FFN_INPUTS = ("attended", "query")


def check_unit_arguments(owner, key_dim, ffn_units, dropout, ffn_input):
    """Raises ValueError for invalid Tx unit hyper-parameters.

    Args:
        owner: layer name used in the message.
        key_dim, ffn_units, dropout, ffn_input: as `ActionTransformerUnit`.
    """
    if int(key_dim) < 1 or int(ffn_units) < 1:
        raise ValueError(f"{owner}: key_dim and ffn_units must be >= 1, "
                         f"got {key_dim}, {ffn_units}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"{owner}: dropout must be in [0, 1), got "
                         f"{dropout}")
    if ffn_input not in FFN_INPUTS:
        raise ValueError(f"{owner}: ffn_input must be one of {FFN_INPUTS}, "
                         f"got {ffn_input!r}")


@keras.saving.register_keras_serializable(package="tfaction")
class ActionTransformerUnit(keras.layers.Layer):
    """One Tx unit: person queries attend over a whole clip's feature map.

    For the `R` proposals of a clip, the query `Q` (`[B, R, Dq]`) is
    linearly projected to `D = key_dim`; keys `K` and values `V` are
    linear (1x1x1) projections of the clip's context map `[B, T, H, W, C]`
    to `D`. Each proposal `r` attends over all `T * H * W` cells:

        a_r = Q_r K^T / sqrt(D)
        A_r = sum_xyt softmax(a_r)_xyt V_xyt
        Q'_r = LayerNorm(Q_r + Dropout(A_r))
        Q''_r = LayerNorm(Q'_r + Dropout(FFN(x_r)))

    with `FFN = Dense(ffn_units, relu) -> Dense(D)` and `x = Q'` for
    `ffn_input="attended"` (the default: the paper's text, which passes the
    resulting query through the FFN branch, as in the standard
    Transformer) or `x = Q` for `ffn_input="query"` (the paper's printed
    equation, `FFN(Q)`). `Q` is always the *projected* query, so the
    residual works for any `Dq` (the next layer of a stacked head takes the
    concatenation of several units, `Dq = num_heads * D`).

    `K` and `V` are computed once per clip and shared by all `R` proposals
    (one batched product over `R`; the context is never copied per
    proposal). Logits, softmax and the weighted sum of values are computed
    in float32 under mixed precision (large logits do not overflow
    float16); LayerNorm computes in float32 too. The key projection has no
    bias: a key bias adds the same amount `Q_r b` to every logit of a
    proposal, which the softmax cancels. Proposals never interact: with
    `query_mask`, the outputs of padded proposals are set to zero and
    nothing else changes.

    The paper leaves open the query projection, the FFN width and the
    LayerNorm epsilon; the defaults (a projection in every unit, 128 ReLU
    units, epsilon 1e-12) are this package's choice.

    Args:
        key_dim: `D`, width of the query, key and value projections and of
            the output (the paper: 128).
        ffn_units: hidden width of the FFN.
        dropout: rate of both dropouts (the paper: 0.3).
        ffn_input: "attended" (`FFN(Q')`) or "query" (`FFN(Q)`).
        layer_norm_epsilon: epsilon of both LayerNorms.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        query: float tensor `[B, R, Dq]`, one query per proposal.
        context: float tensor `[B, T, H, W, C]`, the clip's feature map
            (with location embedding).
        query_mask: optional bool tensor `[B, R]`, True for real
            proposals; outputs of the others are zero.
        training: enables dropout.

    Returns:
        `[B, R, key_dim]`, the updated queries `Q''`.

    Example:

    >>> import numpy as np
    >>> unit = ActionTransformerUnit(key_dim=16, ffn_units=16)
    >>> query = np.random.rand(2, 5, 24).astype("float32")
    >>> context = np.random.rand(2, 4, 6, 6, 32).astype("float32")
    >>> valid = np.array([[True] * 5, [True, True, True, False, False]])
    >>> tuple(unit(query, context, query_mask=valid).shape)
    (2, 5, 16)

    Reference:
        Girdhar, Carreira, Doersch, Zisserman. "Video Action Transformer
        Network", CVPR 2019 (arXiv:1812.02707), Sections 3.2 and 3.4.
    """

    def __init__(self, key_dim=128, ffn_units=128, dropout=0.3,
                 ffn_input="attended", layer_norm_epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        check_unit_arguments(type(self).__name__, key_dim, ffn_units,
                             dropout, ffn_input)
        self.key_dim = int(key_dim)
        self.ffn_units = int(ffn_units)
        self.dropout = float(dropout)
        self.ffn_input = ffn_input
        self.layer_norm_epsilon = float(layer_norm_epsilon)

    def build(self, query_shape, context_shape):
        if len(query_shape) != 3 or query_shape[-1] is None:
            raise ValueError("ActionTransformerUnit: query must be "
                             f"[B, R, Dq] with known Dq, got {query_shape}")
        if len(context_shape) != 5 or context_shape[-1] is None:
            raise ValueError(
                "ActionTransformerUnit: context must be [B, T, H, W, C] "
                f"with known C, got {context_shape}")
        out_shape = tuple(query_shape[:-1]) + (self.key_dim,)
        hidden_shape = tuple(query_shape[:-1]) + (self.ffn_units,)

        def dense(units, name, shape, **kwargs):
            layer = PositionwiseDense(units, dtype=self.dtype_policy,
                                      name=name, **kwargs)
            layer.build(shape)
            return layer

        def norm(name):
            layer = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
                name=name)
            layer.build(out_shape)
            return layer

        def drop(name):
            layer = keras.layers.Dropout(self.dropout,
                                         dtype=self.dtype_policy, name=name)
            layer.build(out_shape)
            return layer

        self.query_projection = dense(self.key_dim, "query",
                                      tuple(query_shape))
        self.key_projection = dense(self.key_dim, "key",
                                    tuple(context_shape), use_bias=False)
        self.value_projection = dense(self.key_dim, "value",
                                      tuple(context_shape))
        self.attention_dropout = drop("attention_dropout")
        self.attention_norm = norm("attention_norm")
        self.ffn_hidden = dense(self.ffn_units, "ffn_hidden", out_shape,
                                activation="relu")
        self.ffn_output = dense(self.key_dim, "ffn_output", hidden_shape)
        self.ffn_dropout = drop("ffn_dropout")
        self.output_norm = norm("output_norm")

    def _attend(self, query, context):
        """`sum softmax(Q K^T / sqrt(D)) V` over all cells: `[B, R, D]`.

        `K` and `V` are projected once per clip; the products run over the
        `R` queries of a clip in one batched matmul, in float32.
        """
        keys = self.key_projection(context)       # [B, T, H, W, D]
        values = self.value_projection(context)   # [B, T, H, W, D]
        batch = ops.shape(keys)[0]
        keys = ops.reshape(ops.cast(keys, "float32"),
                           (batch, -1, self.key_dim))      # [B, N, D]
        values = ops.reshape(ops.cast(values, "float32"),
                             (batch, -1, self.key_dim))    # [B, N, D]
        scaled = ops.cast(query, "float32") * (1.0 / math.sqrt(self.key_dim))
        logits = ops.einsum("brd,bnd->brn", scaled, keys)
        weights = ops.softmax(logits, axis=-1)
        return ops.einsum("brn,bnd->brd", weights, values)

    def call(self, query, context, query_mask=None, training=None):
        projected = self.query_projection(query)  # [B, R, D]
        attended = ops.cast(self._attend(projected, context),
                            self.compute_dtype)
        updated = self.attention_norm(
            projected + self.attention_dropout(attended, training=training))
        ffn_in = updated if self.ffn_input == "attended" else projected
        ffn = self.ffn_output(self.ffn_hidden(ffn_in))
        outputs = self.output_norm(
            updated + self.ffn_dropout(ffn, training=training))
        if query_mask is not None:
            keep = ops.cast(query_mask, "bool")[:, :, None]
            outputs = ops.where(keep, outputs, ops.zeros_like(outputs))
        return outputs

    def compute_output_shape(self, query_shape, context_shape=None):
        return tuple(query_shape[:-1]) + (self.key_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "key_dim": self.key_dim,
            "ffn_units": self.ffn_units,
            "dropout": self.dropout,
            "ffn_input": self.ffn_input,
            "layer_norm_epsilon": self.layer_norm_epsilon})
        return config
