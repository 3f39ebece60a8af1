"""`ProjectionHead`: Dense -> BatchNorm -> ReLU -> Dense -> L2-normalise."""

import keras
from keras import ops

from tfaction.layers import torch_initializers
from tfaction.layers.l2_normalization import L2Normalization
from tfaction.layers.positionwise_dense import PositionwiseDense


@keras.saving.register_keras_serializable(package="tfaction")
class ProjectionHead(keras.layers.Layer):
    """Contrastive projection MLP applied to every vector independently.

    `Dense(hidden_units)` -> `BatchNormalization` -> ReLU ->
    `Dense(output_units)` -> optional L2 normalisation (CARL's `MLPHead`
    followed by `F.normalize`). Inputs of any rank `[..., C]` are treated
    as a batch of vectors: the batch statistics are taken over every
    leading axis, e.g. over all `B * T` frames of a batch of sequences,
    padded frames included (a per-frame head has no mask, as in the
    reference).

    PyTorch conventions: `Linear` default initialisation
    (`U(+-1/sqrt(fan_in))` kernels and biases), batch norm momentum 0.1
    (Keras `momentum=0.9`) and epsilon 1e-5. The normalisation is computed
    and returned in float32 (an `L2Normalization` sublayer with dtype
    float32), so the output is float32 under a mixed policy when
    `normalize`, the compute dtype otherwise.

    Args:
        hidden_units: units of the first Dense (CARL: 128).
        output_units: units of the output (CARL: 128).
        normalize: L2-normalise the output.
        momentum: Keras batch norm momentum (0.9 = PyTorch's 0.1).
        epsilon: batch norm epsilon.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `[..., C]`.
        training: batch statistics (and moving-average updates) in the
            batch norm.

    Returns:
        `[..., output_units]`.

    Example:

    >>> head = ProjectionHead(hidden_units=16, output_units=8)
    >>> z = head(np.random.rand(2, 5, 8).astype("float32"))
    >>> tuple(z.shape), bool(np.allclose(np.linalg.norm(z, axis=-1), 1))
    ((2, 5, 8), True)

    Reference:
        CARL's `MLPHead` (Chen, Wei, Li, Cai, "Frame-wise Action
        Representations for Long Videos via Sequence Contrastive
        Learning", CVPR 2022); Chen et al., "A Simple Framework for
        Contrastive Learning of Visual Representations", ICML 2020.
    """

    def __init__(self, hidden_units=128, output_units=128, normalize=True,
                 momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = int(hidden_units)
        self.output_units = int(output_units)
        if self.hidden_units < 1 or self.output_units < 1:
            raise ValueError("ProjectionHead: hidden_units and output_units "
                             f"must be >= 1, got {hidden_units}, "
                             f"{output_units}")
        self.normalize = bool(normalize)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("ProjectionHead needs a static channel "
                             f"dimension, got {input_shape}")
        hidden_shape = (*tuple(input_shape)[:-1], self.hidden_units)
        self.hidden = PositionwiseDense(
            self.hidden_units,
            kernel_initializer=torch_initializers.linear_kernel_initializer(),
            bias_initializer=torch_initializers.linear_bias_initializer(
                channels),
            dtype=self.dtype_policy, name="hidden")
        self.hidden.build(tuple(input_shape))
        self.batch_norm = keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon,
            dtype=self.dtype_policy, name="batch_norm")
        self.batch_norm.build(hidden_shape)
        self.output_dense = PositionwiseDense(
            self.output_units,
            kernel_initializer=torch_initializers.linear_kernel_initializer(),
            bias_initializer=torch_initializers.linear_bias_initializer(
                self.hidden_units),
            dtype=self.dtype_policy, name="output")
        self.output_dense.build(hidden_shape)
        if self.normalize:
            self.l2_normalization = L2Normalization(dtype="float32",
                                                    name="l2_normalization")
            self.l2_normalization.build(
                (*tuple(input_shape)[:-1], self.output_units))

    def call(self, inputs, training=None):
        x = self.batch_norm(self.hidden(inputs), training=training)
        x = self.output_dense(ops.relu(x))
        if self.normalize:
            x = self.l2_normalization(x)
        return x

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.output_units)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=self.hidden_units,
                      output_units=self.output_units,
                      normalize=self.normalize, momentum=self.momentum,
                      epsilon=self.epsilon)
        return config
