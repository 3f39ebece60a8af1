"""`SinusoidPositionEncoding`: adds a fixed sinusoid table along time."""

import keras
import numpy as np
from keras import ops


def sinusoid_table(length, channels):
    """The transformer sinusoid table, float64 `[length, channels]`.

    `table[p, j] = sin(p / 10000^(2 (j // 2) / channels))` for even `j`,
    `cos(...)` for odd `j` (Vaswani et al. 2017; `get_sinusoid_encoding` in
    ActionFormer's `libs/modeling/blocks.py`).

    Args:
        length: number of positions.
        channels: number of channels.

    Returns:
        numpy float64 array `[length, channels]`.

    Example:

    >>> sinusoid_table(3, 4)[1, :2]  # sin(1), cos(1)
    array([0.84147098, 0.54030231])
    """
    position = np.arange(int(length), dtype=np.float64)[:, None]
    exponent = 2.0 * (np.arange(int(channels)) // 2) / float(channels)
    angle = position / np.power(10000.0, exponent)[None, :]
    table = np.empty_like(angle)
    table[:, 0::2] = np.sin(angle[:, 0::2])
    table[:, 1::2] = np.cos(angle[:, 1::2])
    return table


@keras.saving.register_keras_serializable(package="tfaction")
class SinusoidPositionEncoding(keras.layers.Layer):
    """Adds a fixed sinusoid position table, stretched for long inputs.

    ActionFormer's absolute position embedding (`use_abs_pe`): a constant
    table of `max_length` positions over the `C` input channels
    (`sinusoid_table`), divided by `sqrt(C)` when `normalize`, is multiplied
    by the mask and added to the input. For an input of `T` steps:

    * `T < max_length`: the first `T` rows of the table;
    * `T >= max_length`, inference: the table linearly resampled to `T`
      rows with PyTorch's `F.interpolate(mode="linear",
      align_corners=False)` rule (`T == max_length` gives the table
      itself): output row `i` reads source position
      `max(0, (i + 0.5) * max_length / T - 0.5)`, blending its two
      neighbouring rows (the last row is repeated past the end);
    * `T > max_length`, training: `ValueError` (the reference asserts), when
      `T` is static. With a dynamic `T` the check cannot run in `keras.ops`
      and the table is resampled as at inference.

    The layer has no weights: the table is recomputed from the config and
    the input channels. Computed in float32, added in the input dtype.

    Args:
        max_length: rows of the table (ActionFormer: `max_seq_len`).
        normalize: divide the table by `sqrt(C)` (as ActionFormer).
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: float tensor `[B, T, C]`.
        mask: optional boolean tensor `[B, T]`, True at valid steps; the
            table is added at valid steps only.
        training: selects the training rule for `T > max_length`.

    Returns:
        `inputs + table[:T] * mask`, same shape and dtype as `inputs`.

    Example:

    >>> layer = SinusoidPositionEncoding(max_length=192)
    >>> x = np.zeros((2, 256, 64), "float32")
    >>> mask = np.arange(256)[None] < np.array([[256], [100]])
    >>> tuple(layer(x, mask=mask).shape)  # table resampled to 256 rows
    (2, 256, 64)

    Reference:
        `ConvTransformerBackbone.forward` (`use_abs_pe`) and
        `get_sinusoid_encoding` of happyharrycn/actionformer_release
        (`libs/modeling/backbones.py`, `blocks.py`).
    """

    def __init__(self, max_length, normalize=True, **kwargs):
        super().__init__(**kwargs)
        max_length = int(max_length)
        if max_length < 1:
            raise ValueError(f"SinusoidPositionEncoding: max_length must be "
                             f">= 1, got {max_length}")
        self.max_length = max_length
        self.normalize = bool(normalize)
        self._table = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("SinusoidPositionEncoding needs a static channel "
                             f"dimension, got input shape {input_shape}")
        # As the reference: the float64 table rounded to float32, then
        # divided in float32 (bit for bit its `pos_embd` buffer).
        table = sinusoid_table(self.max_length, channels).astype(np.float32)
        if self.normalize:
            table = table / np.float32(np.sqrt(float(channels)))
        # A constant, not a weight: nothing to save, nothing to train.
        self._table = table.astype(np.float32)

    def _resample_coords(self, length):
        """Source rows and blend weights of the `length` output rows.

        Returns `(lower, upper, weight)`; row `i` is
        `(1 - weight[i]) * table[lower[i]] + weight[i] * table[upper[i]]`.
        Below `max_length` this is an exact slice (`weight = 0`).
        """
        size = self.max_length
        position = ops.arange(length, dtype="float32")
        scale = ops.cast(size, "float32") / ops.cast(length, "float32")
        stretched = ops.maximum(scale * (position + 0.5) - 0.5, 0.0)
        source = ops.where(length >= size, stretched, position)
        lower = ops.minimum(ops.floor(source), float(size - 1))
        weight = ops.clip(source - lower, 0.0, 1.0)
        lower = ops.cast(lower, "int32")
        upper = ops.minimum(lower + 1, size - 1)
        return lower, upper, weight

    def call(self, inputs, mask=None, training=None):
        length = inputs.shape[1]
        is_training = (training is not None and not ops.is_tensor(training)
                       and bool(training))
        if is_training and length is not None and length > self.max_length:
            raise ValueError(
                f"SinusoidPositionEncoding: training input of {length} steps "
                f"is longer than max_length {self.max_length} (the position "
                f"table is only resampled at inference); crop the input")
        if length is None:
            length = ops.shape(inputs)[1]
        table = ops.convert_to_tensor(self._table, dtype="float32")
        lower, upper, weight = self._resample_coords(length)
        weight = weight[:, None]
        encoding = (ops.take(table, lower, axis=0) * (1.0 - weight)
                    + ops.take(table, upper, axis=0) * weight)
        encoding = ops.cast(encoding, inputs.dtype)[None]
        if mask is not None:
            encoding = encoding * ops.cast(mask, inputs.dtype)[:, :, None]
        return inputs + encoding

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(max_length=self.max_length, normalize=self.normalize)
        return config
