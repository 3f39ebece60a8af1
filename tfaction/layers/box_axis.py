"""`BoxAxis`: folds the box axis into the batch axis, and back."""

import keras
from keras import ops

MODES = ("merge", "split")


@keras.saving.register_keras_serializable(package="tfaction")
class BoxAxis(keras.layers.Layer):
    """Folds `[B, S, ...]` into `[B * S, ...]` (`merge`), or back (`split`).

    Per-box sub-networks (the I3D head blocks on each proposal's tube) then
    run once on all boxes of the batch as one large batch. Keras'
    `TimeDistributed` instead runs its layer once per box (a Python loop
    when `S` is static), which traces and runs `S` copies.

    Args:
        mode: "merge" or "split".
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `merge`: `[B, S, ...]`. `split`: a pair `[x, reference]`,
            `x` `[B * S, ...]` and `reference` any `[B, S, ...]` tensor
            whose two leading sizes are restored.

    Returns:
        `merge`: `[B * S, ...]`; `split`: `[B, S, ...]`.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((2, 3, 4, 5), "float32")
    >>> folded = BoxAxis("merge")(x)
    >>> tuple(folded.shape)
    (6, 4, 5)
    >>> tuple(BoxAxis("split")([folded[:, 0], x]).shape)
    (2, 3, 5)
    """

    def __init__(self, mode="merge", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"BoxAxis mode must be one of {MODES}, got "
                             f"{mode!r}")
        self.mode = mode

    def call(self, inputs):
        if self.mode == "merge":
            shape = ops.shape(inputs)
            return ops.reshape(inputs, (-1, *shape[2:]))
        x, reference = inputs
        lead = ops.shape(reference)[:2]
        return ops.reshape(x, (*lead, *ops.shape(x)[1:]))

    def compute_output_shape(self, input_shape):
        if self.mode == "merge":
            b, s = input_shape[0], input_shape[1]
            folded = None if b is None or s is None else b * s
            return (folded, *input_shape[2:])
        x_shape, reference_shape = input_shape
        return (*reference_shape[:2], *x_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config
