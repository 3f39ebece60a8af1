"""`Scale`: multiplies its input by one learnable scalar."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfaction")
class Scale(keras.layers.Layer):
    """Multiplies the input by a learnable scalar (initialised to 1.0).

    ActionFormer's regression head keeps one `Scale` per pyramid level and
    applies it to the offset logits before the final ReLU, so that levels
    with different strides can rescale the shared head's output.

    Args:
        init_value: initial value of the scalar.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor of any shape.

    Returns:
        `inputs * scale`, same shape and dtype as `inputs`. A Keras mask of
        the input is passed through unchanged.

    Example:

    >>> layer = tfaction.layers.scale.Scale()
    >>> layer(np.ones((2, 4, 2), "float32")).shape
    (2, 4, 2)

    Reference:
        `Scale` in `libs/modeling/blocks.py` of
        happyharrycn/actionformer_release (ActionFormer, ECCV 2022), itself
        from FCOS.
    """

    def __init__(self, init_value=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init_value = float(init_value)
        self.supports_masking = True

    def build(self, input_shape):
        self.scale = self.add_weight(
            shape=(), name="scale",
            initializer=keras.initializers.Constant(self.init_value),
            trainable=True)

    def call(self, inputs):
        return inputs * ops.cast(self.scale, inputs.dtype)

    def compute_mask(self, inputs, previous_mask=None):
        return previous_mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(init_value=self.init_value)
        return config
