"""`ActionTransformerHead`: stacked layers of Action Transformer units."""

import keras
from keras import ops

from tfaction.layers.action_transformer_unit import ActionTransformerUnit
from tfaction.layers.action_transformer_unit import check_unit_arguments
from tfaction.layers.tracking import TracksListItems


@keras.saving.register_keras_serializable(package="tfaction")
class ActionTransformerHead(TracksListItems, keras.layers.Layer):
    """The Action Transformer head: `num_layers` layers of `num_heads` units.

    Every layer holds `num_heads` `ActionTransformerUnit`s; each unit (a
    "head") has its own query, key and value projections, attends over the
    whole context map with the same incoming query, and returns
    `[B, R, key_dim]`. The heads' outputs are concatenated
    (`[B, R, num_heads * key_dim]`, head 0 first) and the concatenation is
    the query of the next layer; the last layer's concatenation is the
    output (fed to the classifier). With the paper's 2 heads x 3 layers the
    first layer takes the query preprocessor's output (`Dq = 128`) and the
    later ones the 256-d concatenation. Each unit computes its keys and
    values once per clip, shared by all proposals; proposals never
    interact, and with `query_mask` padded proposals output zeros.

    Args:
        num_heads: units per layer (the paper: 2).
        num_layers: stacked layers (the paper: 3).
        key_dim: `D` of every unit (the paper: 128).
        ffn_units: FFN hidden width of every unit.
        dropout: dropout rate of every unit (the paper: 0.3).
        ffn_input: "attended" (`FFN(Q')`, default) or "query" (`FFN(Q)`,
            the paper's printed equation); see `ActionTransformerUnit`.
        layer_norm_epsilon: LayerNorm epsilon of every unit.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        query: float tensor `[B, R, Dq]`, e.g. the output of `HighResQuery`.
        context: float tensor `[B, T, H, W, C]`, the trunk map with
            location embedding.
        query_mask: optional bool tensor `[B, R]`, True for real
            proposals; outputs of the others are zero.
        training: enables dropout.

    Returns:
        `[B, R, num_heads * key_dim]`.

    Example:

    >>> import numpy as np
    >>> head = ActionTransformerHead(num_heads=2, num_layers=3, key_dim=16,
    ...                              ffn_units=16)
    >>> query = np.random.rand(2, 5, 16).astype("float32")
    >>> context = np.random.rand(2, 4, 6, 6, 32).astype("float32")
    >>> tuple(head(query, context).shape)
    (2, 5, 32)

    Reference:
        Girdhar, Carreira, Doersch, Zisserman. "Video Action Transformer
        Network", CVPR 2019 (arXiv:1812.02707), Sections 3.2, 3.4 and 4.5.
    """

    def __init__(self, num_heads=2, num_layers=3, key_dim=128, ffn_units=128,
                 dropout=0.3, ffn_input="attended", layer_norm_epsilon=1e-12,
                 **kwargs):
        super().__init__(**kwargs)
        check_unit_arguments(type(self).__name__, key_dim, ffn_units,
                             dropout, ffn_input)
        if int(num_heads) < 1 or int(num_layers) < 1:
            raise ValueError("ActionTransformerHead: num_heads and "
                             f"num_layers must be >= 1, got {num_heads}, "
                             f"{num_layers}")
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.key_dim = int(key_dim)
        self.ffn_units = int(ffn_units)
        self.dropout = float(dropout)
        self.ffn_input = ffn_input
        self.layer_norm_epsilon = float(layer_norm_epsilon)

    def _unit_kwargs(self):
        return {"key_dim": self.key_dim, "ffn_units": self.ffn_units,
                "dropout": self.dropout, "ffn_input": self.ffn_input,
                "layer_norm_epsilon": self.layer_norm_epsilon}

    def build(self, query_shape, context_shape):
        if len(query_shape) != 3 or query_shape[-1] is None:
            raise ValueError("ActionTransformerHead: query must be "
                             f"[B, R, Dq] with known Dq, got {query_shape}")
        # units[l * num_heads + h]: head h of layer l
        self.transformer_units = []
        shape = tuple(query_shape)
        for layer in range(self.num_layers):
            for head in range(self.num_heads):
                unit = ActionTransformerUnit(
                    **self._unit_kwargs(), dtype=self.dtype_policy,
                    name=f"layer{layer}_head{head}")
                unit.build(shape, tuple(context_shape))
                self.transformer_units.append(unit)
            shape = shape[:-1] + (self.num_heads * self.key_dim,)

    def call(self, query, context, query_mask=None, training=None):
        x = query
        for layer in range(self.num_layers):
            heads = self.transformer_units[
                layer * self.num_heads:(layer + 1) * self.num_heads]
            outputs = [unit(x, context, query_mask=query_mask,
                            training=training) for unit in heads]
            x = (outputs[0] if self.num_heads == 1
                 else ops.concatenate(outputs, axis=-1))
        return x

    def compute_output_shape(self, query_shape, context_shape=None):
        return tuple(query_shape[:-1]) + (self.num_heads * self.key_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "key_dim": self.key_dim,
            "ffn_units": self.ffn_units,
            "dropout": self.dropout,
            "ffn_input": self.ffn_input,
            "layer_norm_epsilon": self.layer_norm_epsilon})
        return config
