"""`PreLNTransformerEncoder`: a stack of pre-LN transformer encoder layers."""

import keras

from tfaction.layers.pre_ln_transformer_layer import PreLNTransformerLayer
from tfaction.layers.pre_ln_transformer_layer import draw_seed
from tfaction.layers.tracking import TracksListItems

# Distance between the seeds of successive layers when they start apart.
_LAYER_SEED_STRIDE = 1000


@keras.saving.register_keras_serializable(package="tfaction")
class PreLNTransformerEncoder(TracksListItems, keras.layers.Layer):
    """`num_layers` `PreLNTransformerLayer`s with one key-padding mask.

    Each layer is `x + Dropout(MHSA(LN(x)))` then `x + Dropout(FFN(LN(x)))`
    (see `PreLNTransformerLayer`); there is no LayerNorm after the last
    layer. Every layer sees the same boolean mask: padded steps are never
    attended to, so outputs at valid steps do not depend on them.

    With `identical_initialization` (CARL's encoder: one layer is
    Xavier-initialised, then deep-copied `num_layers` times) every layer
    starts from the same weights: all layers draw their initial values from
    the same seed. Otherwise each layer gets its own seed. The layers are
    trained independently either way.

    Args:
        num_layers: number of layers (0: the identity).
        num_heads: attention heads per layer.
        ffn_units: hidden units of each feed-forward block.
        dropout: dropout rate on the sublayer outputs.
        epsilon: LayerNorm epsilon (1e-5 as PyTorch).
        identical_initialization: all layers start from identical weights.
        seed: int seed of the initial weights; None draws one at build time.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[B, T, d]`.
        mask: optional boolean tensor `[B, T]`, True at valid steps; a Keras
            mask is used likewise and propagated.
        training: enables dropout.

    Returns:
        `[B, T, d]` in the compute dtype.

    Example:

    >>> encoder = PreLNTransformerEncoder(2, num_heads=2, ffn_units=16)
    >>> x = np.random.rand(2, 5, 8).astype("float32")
    >>> mask = np.arange(5)[None] < np.array([[5], [3]])
    >>> tuple(encoder(x, mask=mask).shape)
    (2, 5, 8)
    >>> a, b = encoder.encoder_layers  # built from the same seed
    >>> all(np.array_equal(u, v) for u, v in zip(a.get_weights(),
    ...                                          b.get_weights()))
    True

    Reference:
        CARL's `Encoder` (Chen, Wei, Li, Cai, "Frame-wise Action
        Representations for Long Videos via Sequence Contrastive
        Learning", CVPR 2022).
    """

    def __init__(self, num_layers, num_heads=8, ffn_units=1024, dropout=0.1,
                 epsilon=1e-5, identical_initialization=True, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_layers = int(num_layers)
        if self.num_layers < 0:
            raise ValueError("PreLNTransformerEncoder: num_layers must be "
                             f">= 0, got {num_layers}")
        self.num_heads = int(num_heads)
        self.ffn_units = int(ffn_units)
        self.dropout = float(dropout)
        self.epsilon = float(epsilon)
        self.identical_initialization = bool(identical_initialization)
        self.seed = None if seed is None else int(seed)
        self.supports_masking = True

    def build(self, input_shape):
        base = self.seed if self.seed is not None else draw_seed()
        self.encoder_layers = []
        for index in range(self.num_layers):
            offset = (0 if self.identical_initialization
                      else index * _LAYER_SEED_STRIDE)
            layer = PreLNTransformerLayer(
                num_heads=self.num_heads, ffn_units=self.ffn_units,
                dropout=self.dropout, epsilon=self.epsilon,
                seed=base + offset, dtype=self.dtype_policy,
                name=f"layer_{index}")
            layer.build(tuple(input_shape))
            self.encoder_layers.append(layer)

    def call(self, inputs, mask=None, training=None):
        x = inputs
        for layer in self.encoder_layers:
            x = layer(x, mask=mask, training=training)
        return x

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, num_heads=self.num_heads,
                      ffn_units=self.ffn_units, dropout=self.dropout,
                      epsilon=self.epsilon,
                      identical_initialization=self.identical_initialization,
                      seed=self.seed)
        return config
