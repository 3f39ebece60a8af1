"""`InterpolatedPositionEncoding`: sin/cos table over the training length."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="tfaction")
class InterpolatedPositionEncoding(keras.layers.Layer):
    """Adds a sin/cos table whose positions span the training length.

    CARL's frame position encoding. For an input of `S` steps and `d`
    channels, channel `i` of step `s` gets

    * `sin(p_s / 10000^(i / d))` for even `i`,
    * `cos(p_s / 10000^(i / d))` for odd `i`,

    so the exponent of an odd channel uses `i` itself, not `i - 1` as in the
    transformer table of Vaswani et al. (`SinusoidPositionEncoding` pairs
    channels `2k, 2k + 1` on one frequency; here every channel has its
    own). The positions are

    * `p_s = s` (0 ... S - 1) when `S == train_length`;
    * otherwise `p_s = linspace(0, train_length - 1, S)`: the `S` steps are
      spread evenly over the positions seen in training, with fractional
      positions (`S = 1` gives position 0). CARL embeds whole evaluation
      videos of any length this way.

    The table is computed in float64, rounded to the input dtype and added
    at every step (padded steps included; attention masks remove them
    downstream). The layer has no weights.

    Args:
        train_length: sequence length used in training (CARL:
            `TRAIN.NUM_FRAMES`, 240 for Pouring / FineGym, 80 for
            PennAction).
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `[B, S, d]` (`S` may be dynamic).

    Returns:
        `inputs + table`, same shape and dtype.

    Example:

    >>> layer = InterpolatedPositionEncoding(train_length=4)
    >>> x = np.zeros((1, 3, 2), "float32")  # S != 4: positions 0, 1.5, 3
    >>> np.round(np.asarray(layer(x))[0, :, 0], 4)  # sin(p)
    array([0.    , 0.9975, 0.1411], dtype=float32)

    Reference:
        Chen, Wei, Li, Cai, "Frame-wise Action Representations for Long
        Videos via Sequence Contrastive Learning", CVPR 2022
        (`generate_sincos_embedding` / `PositionalEncoder` of the authors'
        `models/transformer.py`).
    """

    def __init__(self, train_length, **kwargs):
        super().__init__(**kwargs)
        train_length = int(train_length)
        if train_length < 1:
            raise ValueError("InterpolatedPositionEncoding: train_length must "
                             f"be >= 1, got {train_length}")
        self.train_length = train_length

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("InterpolatedPositionEncoding needs a static "
                             f"channel dimension, got {input_shape}")
        # 10000^(i / d) for every channel i (exponent i for odd i as well).
        exponent = np.arange(channels, dtype=np.float64) / float(channels)
        self._denominator = np.power(10000.0, exponent)
        self._odd = (np.arange(channels) % 2 == 1)

    def positions(self, length):
        """float64 positions `[length]` of the steps of a length-`length` input.

        Args:
            length: int or scalar int tensor `S`.

        Returns:
            `arange(S)` if `S == train_length`, else
            `linspace(0, train_length - 1, S)`.
        """
        index = ops.arange(length, dtype="float64")
        span = float(self.train_length - 1)
        last = ops.cast(ops.maximum(length - 1, 1), "float64")
        # numpy's linspace: index * step, the last point exactly the stop
        # value (a single point is the start, 0).
        spread = ops.where(index == last, span, index * (span / last))
        return ops.where(length == self.train_length, index, spread)

    def table(self, length):
        """float64 encoding `[length, d]` of a length-`length` input."""
        angle = (self.positions(length)[:, None]
                 / ops.convert_to_tensor(self._denominator, "float64")[None])
        return ops.where(ops.convert_to_tensor(self._odd)[None],
                         ops.cos(angle), ops.sin(angle))

    def call(self, inputs):
        length = inputs.shape[1]
        if length is None:
            length = ops.shape(inputs)[1]
        encoding = ops.cast(self.table(length), inputs.dtype)
        return inputs + encoding[None]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(train_length=self.train_length)
        return config
