"""`FrozenBatchNormalization`: frozen moving statistics, trainable beta."""

import keras
from keras import ops

from tfaction.ops import fused_batch_norm


@keras.saving.register_keras_serializable(package="tfaction")
class FrozenBatchNormalization(keras.layers.Layer):
    """Batch normalisation by fixed moving statistics, with a trainable offset.

    Normalises with the stored moving mean and variance, in training as in
    inference, and never updates them: `y = (x - mean) / sqrt(var + eps) *
    gamma + beta`. The offset `beta` (and the scale `gamma` with
    `scale=True`) stays trainable. This is how the Video Action Transformer
    Network fine-tunes its Kinetics-pretrained I3D: "BN running statistics
    frozen" to the pre-trained values, everything else trained end to end
    (batch-size-independent, so a few clips per replica train as well as
    many).

    Keras' `BatchNormalization` cannot express this: with `trainable=False`
    it runs in inference mode, as wanted, but also freezes `beta` and
    `gamma`; with `trainable=True` it normalises by batch statistics and
    updates the moving ones in training. Calling it with `training=False`
    inside another layer works but is silently undone by any caller that
    passes `training=True` down. Here the `training` argument is ignored.

    The statistics are non-trainable weights (`moving_mean`,
    `moving_variance`), so weight loaders, `.keras` files and checkpoints
    carry them. Normalisation runs in float32 under mixed precision (the
    variance and epsilon underflow in float16). On the TensorFlow backend a
    rank-4 or rank-5 channels-last input goes through TensorFlow's fused
    inference-mode batch-norm kernel (one pass over the activation, which
    the graph optimiser folds into a convolution before it); otherwise the
    folded affine map `x * inv + (beta - mean * inv)`,
    `inv = gamma / sqrt(var + eps)` (the arithmetic of
    `tf.nn.batch_normalization`). The output is cast to the compute dtype.

    Args:
        axis: the feature axis (int); statistics are per index of it.
        center: add the trainable offset `beta`.
        scale: multiply by the trainable scale `gamma` (I3D: no scale).
        epsilon: added to the variance (Sonnet and Keras: 1e-3).
        beta_initializer, gamma_initializer: initializers of the
            trainable weights.
        moving_mean_initializer, moving_variance_initializer: initializers
            of the frozen statistics (zeros and ones: identity until
            pre-trained statistics are loaded).
        beta_regularizer, gamma_regularizer: optional regularizers.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a tensor whose `axis` dimension is known.
        training: ignored (the statistics are always the moving ones).

    Returns:
        A tensor of the input's shape, in the compute dtype.

    Example:

    >>> layer = FrozenBatchNormalization()
    >>> layer.build((None, 4))
    >>> _ = layer.moving_mean.assign([1.0, 1.0, 1.0, 1.0])
    >>> _ = layer.moving_variance.assign([4.0, 4.0, 4.0, 4.0])
    >>> x = np.full((2, 4), 2.0, "float32")  # (2 - 1) / sqrt(4 + 1e-3)
    >>> np.round(ops.convert_to_numpy(layer(x, training=True)), 3)
    array([[0.5, 0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5, 0.5]], dtype=float32)
    >>> [w.name for w in layer.trainable_weights]
    ['beta']

    Reference:
        Ioffe & Szegedy, "Batch Normalization", ICML 2015; Girdhar et al.,
        "Video Action Transformer Network", CVPR 2019, section 3.5 (frozen
        statistics when fine-tuning I3D).
    """

    def __init__(self, axis=-1, center=True, scale=False, epsilon=1e-3,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            raise ValueError(f"FrozenBatchNormalization: axis must be one "
                             f"int, got {axis}")
        if float(epsilon) <= 0:
            raise ValueError(f"FrozenBatchNormalization: epsilon must be "
                             f"> 0, got {epsilon}")
        self.axis = int(axis)
        self.center = bool(center)
        self.scale = bool(scale)
        self.epsilon = float(epsilon)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.moving_mean_initializer = keras.initializers.get(
            moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(
            moving_variance_initializer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.supports_masking = True  # element-wise: a mask passes through

    def _feature_axis(self, rank):
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 <= axis < rank:
            raise ValueError(f"FrozenBatchNormalization: axis {self.axis} is "
                             f"out of range for inputs of rank {rank}")
        return axis

    def build(self, input_shape):
        axis = self._feature_axis(len(input_shape))
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(f"FrozenBatchNormalization: the feature axis "
                             f"{self.axis} of input shape {input_shape} must "
                             f"be known")
        shape = (int(dim),)
        self.gamma = (self.add_weight(
            name="gamma", shape=shape, initializer=self.gamma_initializer,
            regularizer=self.gamma_regularizer) if self.scale else None)
        self.beta = (self.add_weight(
            name="beta", shape=shape, initializer=self.beta_initializer,
            regularizer=self.beta_regularizer) if self.center else None)
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=shape,
            initializer=self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=shape,
            initializer=self.moving_variance_initializer, trainable=False)

    def call(self, inputs, training=None):
        rank = len(inputs.shape)
        axis = self._feature_axis(rank)
        if fused_batch_norm.fusable(inputs, axis):
            y, _, _ = fused_batch_norm.normalize(
                inputs, self.gamma, self.beta, self.epsilon,
                mean=self.moving_mean, variance=self.moving_variance)
            return ops.cast(y, self.compute_dtype)
        # Per-feature vectors shaped to broadcast against the inputs.
        broadcast = [1] * rank
        broadcast[axis] = -1

        def vector(weight):
            return ops.reshape(ops.cast(weight, "float32"), broadcast)

        inv = ops.rsqrt(vector(self.moving_variance) + self.epsilon)
        if self.gamma is not None:
            inv = inv * vector(self.gamma)
        offset = -vector(self.moving_mean) * inv
        if self.beta is not None:
            offset = offset + vector(self.beta)
        outputs = ops.cast(inputs, "float32") * inv + offset
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis, "center": self.center, "scale": self.scale,
            "epsilon": self.epsilon,
            "beta_initializer": keras.initializers.serialize(
                self.beta_initializer),
            "gamma_initializer": keras.initializers.serialize(
                self.gamma_initializer),
            "moving_mean_initializer": keras.initializers.serialize(
                self.moving_mean_initializer),
            "moving_variance_initializer": keras.initializers.serialize(
                self.moving_variance_initializer),
            "beta_regularizer": keras.regularizers.serialize(
                self.beta_regularizer),
            "gamma_regularizer": keras.regularizers.serialize(
                self.gamma_regularizer)})
        return config
