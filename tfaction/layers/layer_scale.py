"""`LayerScale`: per-channel residual scaling with stochastic depth."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfaction")
class LayerScale(keras.layers.Layer):
    """Learnable per-channel scale followed by per-sample stochastic depth.

    Equivalent of ActionFormer's `AffineDropPath` (LayerScale of CaiT
    followed by DropPath): `y = drop_path(scale * x)`, with `scale` of shape
    `[C]` initialised to `init_value` (1e-4 in ActionFormer). The scale is
    applied in training and inference. In training, with `drop_path_rate`
    p > 0, each sample of the batch is dropped with probability p (its whole
    branch output becomes 0) and kept samples are divided by 1 - p; at
    inference the layer is a plain scaling.

    Args:
        init_value: initial value of every channel's scale.
        drop_path_rate: probability p of dropping a sample's branch.
        seed: optional integer seed of the drop-path noise.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[B, ..., C]`.
        training: Python or tensor boolean; drop path is active only when
            true.

    Returns:
        Tensor of the shape and dtype of `inputs`.

    Example:

    >>> ls = LayerScale(init_value=1e-4, drop_path_rate=0.1)
    >>> y = ls(np.ones((2, 5, 8), "float32"), training=True)

    Reference:
        Touvron et al. "Going deeper with Image Transformers", ICCV 2021
        (LayerScale); Huang et al. "Deep Networks with Stochastic Depth",
        ECCV 2016; `libs/modeling/blocks.py: AffineDropPath, drop_path` of
        happyharrycn/actionformer_release.
    """

    def __init__(self, init_value=1e-4, drop_path_rate=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError("LayerScale: drop_path_rate must be in [0, 1), "
                             f"got {drop_path_rate}")
        self.init_value = float(init_value)
        self.drop_path_rate = float(drop_path_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale", shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_value))

    def call(self, inputs, training=None):
        out = inputs * ops.cast(self.scale, inputs.dtype)
        if not training or self.drop_path_rate == 0.0:
            return out
        keep = 1.0 - self.drop_path_rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(shape, seed=self.seed_generator,
                                     dtype="float32")
        keep_mask = ops.floor(keep + noise)
        return out * ops.cast(keep_mask / keep, out.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"init_value": self.init_value,
                       "drop_path_rate": self.drop_path_rate,
                       "seed": self.seed})
        return config
