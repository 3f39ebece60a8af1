"""`CentreFrame`: one time step of a spatio-temporal feature map."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfaction")
class CentreFrame(keras.layers.Layer):
    """Selects the temporally central frame of `[B, T, H, W, C]` features.

    The Video Action Transformer runs its region proposal network and takes
    its queries on the trunk features of the keyframe, the centre of the
    clip. For an even `T` two frames are equally central; `index=None`
    takes `T // 2` (the later one, 8 of 16 for a 64-frame clip), an int
    takes that frame (negative counts from the end).

    Args:
        index: the frame, or None for `T // 2` of the input's dynamic `T`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[B, T, H, W, C]`.

    Returns:
        `[B, H, W, C]`.

    Example:

    >>> import numpy as np
    >>> x = np.arange(4, dtype="float32").reshape(1, 4, 1, 1, 1)
    >>> float(CentreFrame()(x)[0, 0, 0, 0])
    2.0
    >>> float(CentreFrame(1)(x)[0, 0, 0, 0])
    1.0
    """

    def __init__(self, index=None, **kwargs):
        super().__init__(**kwargs)
        self.index = None if index is None else int(index)

    def call(self, inputs):
        frames = ops.shape(inputs)[1]
        index = frames // 2 if self.index is None else self.index % frames
        return ops.take(inputs, index, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])

    def get_config(self):
        config = super().get_config()
        config.update(index=self.index)
        return config
