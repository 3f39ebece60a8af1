"""`PolicySTN`: AdaFocus V2's recurrent continuous patch-location policy."""

import keras
import numpy as np
from keras import ops

from tfaction.layers import torch_gru
from tfaction.layers import torch_initializers
from tfaction.layers.positionwise_dense import PositionwiseDense

BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
BN_EPSILON = 1e-5


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise ValueError(f"PolicySTN: {name} must be a positive int, got "
                         f"{value!r}")
    return int(value)


def _check_maps_shape(shape, rank, what):
    shape = tuple(shape)
    if len(shape) != rank or any(d is None for d in shape[-3:]):
        axes = "[B, T, h, w, C]" if rank == 5 else "[B, h, w, C]"
        raise ValueError(f"{what} expects glance feature maps {axes} with "
                         f"static h, w, C, got shape {shape}")
    return shape


@keras.saving.register_keras_serializable(package="tfaction")
class PolicySTN(keras.layers.Layer):
    """AdaFocus V2 policy: a differentiable patch location for every frame.

    The glance feature map of each frame (MobileNet-V2: `7 x 7 x 1280` at
    224 x 224; ResNet-50 at 96 x 96: `3 x 3 x 2048`) is encoded by a 1x1
    conv to `conv_filters` channels (no bias) -> BatchNorm -> tanh ->
    flatten (PyTorch's channels-first order, so that a PyTorch `Linear`
    weight loads as its transpose) -> Dense(`hidden_units`) -> BatchNorm ->
    tanh; a GRU (`hidden_units`, zero initial state) runs over the frames
    and a Dense(2) -> sigmoid gives the normalised top-left corner
    `(row, column)` in `(0, 1)^2` of the patch to crop
    (`DifferentiablePatchCrop`, `(y1, x1) = a (H - P, W - P)`).

    AdaFocus V2 trains the policy through the crop by the classification
    loss, with the policy's **input detached** from the glance network:
    with `stop_input_gradient=True` (default) no gradient flows from the
    locations back into the glance feature maps.

    Both batch norms normalise over every frame of the batch (`B * T`
    frames in the sequence call, `B` in `step`) in training and use the
    moving statistics in inference (PyTorch momentum 0.1, i.e. Keras 0.9;
    epsilon 1e-5). Initialisation is PyTorch's default for each module
    (conv and dense `U(+-1/sqrt(fan_in))`, GRU `U(+-1/sqrt(H))`, batch norm
    1 / 0). The sigmoid and the outputs are float32 under mixed precision.

    `step` runs one frame with an explicit GRU state (online use); in
    inference it equals the sequence call step by step.

    Args:
        hidden_units: width of the encoder's dense layer and of the GRU
            (AdaFocus V2 recipes: 2048).
        conv_filters: channels of the 1x1 conv (64).
        stop_input_gradient: detach the input maps (AdaFocus V2 training).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: glance feature maps `[B, T, h, w, C]` (h, w, C static).
        initial_state: optional `[B, hidden_units]` GRU state before the
            first frame (default zeros).
        training: batch statistics in the batch norms.

    Returns:
        A dict: `locations` float32 `[B, T, 2]` in `(0, 1)`, `states`
        float32 `[B, T, hidden_units]` (GRU state after each frame).

    Example:

    >>> import numpy as np
    >>> policy = PolicySTN(hidden_units=16, conv_filters=4)
    >>> out = policy(np.zeros((2, 3, 7, 7, 8), "float32"))
    >>> tuple(out["locations"].shape)
    (2, 3, 2)

    Reference:
        Wang et al., "AdaFocus V2: End-to-End Training of Spatial Dynamic
        Networks for Video Recognition", CVPR 2022 (`PolicySTN`).
    """

    def __init__(self, hidden_units=2048, conv_filters=64,
                 stop_input_gradient=True, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = _positive_int(hidden_units, "hidden_units")
        self.conv_filters = _positive_int(conv_filters, "conv_filters")
        self.stop_input_gradient = bool(stop_input_gradient)

    def build(self, input_shape):
        shape = _check_maps_shape(input_shape, 5, "PolicySTN")
        height, width, channels = shape[-3:]
        flat = self.conv_filters * height * width
        self.state_conv = keras.layers.Conv2D(
            self.conv_filters, 1, use_bias=False,
            kernel_initializer=keras.initializers.VarianceScaling(
                1.0 / 3.0, "fan_in", "uniform"),
            dtype=self.dtype_policy, name="state_conv")
        self.state_conv.build((None, height, width, channels))
        self.conv_bn = self._batch_norm("conv_bn", (None, height, width,
                                                    self.conv_filters))
        self.state_dense = self._dense(self.hidden_units, flat, "state_dense")
        self.dense_bn = self._batch_norm("dense_bn",
                                         (None, self.hidden_units))
        self.gru = torch_gru.gru_layer(self.hidden_units,
                                       dtype=self.dtype_policy, name="gru")
        self.gru.build((None, None, self.hidden_units))
        self.location = self._dense(2, self.hidden_units, "location")
        self._map_shape = (height, width, channels)
        self.built = True

    def _dense(self, units, fan_in, name):
        dense = PositionwiseDense(
            units,
            kernel_initializer=torch_initializers.linear_kernel_initializer(),
            bias_initializer=torch_initializers.linear_bias_initializer(
                fan_in),
            dtype=self.dtype_policy, name=name)
        dense.build((None, fan_in))
        return dense

    def _batch_norm(self, name, shape):
        norm = keras.layers.BatchNormalization(
            momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=self.dtype_policy,
            name=name)
        norm.build(shape)
        return norm

    def _encode(self, maps, training):
        """`[N, h, w, C]` maps -> `[N, hidden_units]` encoded states."""
        if self.stop_input_gradient:
            maps = ops.stop_gradient(maps)
        x = ops.tanh(self.conv_bn(self.state_conv(maps), training=training))
        # Channels-first flatten, as PyTorch's nn.Flatten on NCHW.
        x = ops.reshape(ops.transpose(x, (0, 3, 1, 2)), (ops.shape(x)[0], -1))
        return ops.tanh(self.dense_bn(self.state_dense(x), training=training))

    def _locations(self, states):
        return ops.sigmoid(ops.cast(self.location(states), "float32"))

    def get_initial_state(self, batch_size):
        """Zero GRU state `[batch_size, hidden_units]` (float32)."""
        return torch_gru.zeros_state(batch_size, self.hidden_units,
                                     "float32")

    def call(self, inputs, initial_state=None, training=None):
        shape = ops.shape(inputs)
        batch, steps = shape[0], shape[1]
        encoded = self._encode(ops.reshape(inputs, (-1, *self._map_shape)),
                               training)
        encoded = ops.reshape(encoded, (batch, steps, self.hidden_units))
        if initial_state is None:
            initial_state = self.get_initial_state(batch)
        initial_state = ops.cast(initial_state, self.compute_dtype)
        states = self.gru(encoded, initial_state=[initial_state])
        return {"locations": self._locations(states),
                "states": ops.cast(states, "float32")}

    def step(self, inputs, state, training=None):
        """Runs the policy on one frame with an explicit GRU state.

        Args:
            inputs: glance feature maps `[B, h, w, C]` of the current frame
                (the layer is built from these shapes if it is not yet).
            state: `[B, hidden_units]` GRU state (`get_initial_state` for
                the first frame).
            training: batch statistics (over the `B` frames) in the batch
                norms.

        Returns:
            A dict: `locations` float32 `[B, 2]`, `state` float32
            `[B, hidden_units]` (the state after the frame).
        """
        shape = _check_maps_shape(inputs.shape, 4, "PolicySTN.step")
        if not self.built:
            self.build((None, None) + shape[1:])
        inputs = ops.cast(inputs, self.compute_dtype)
        state = ops.cast(state, self.compute_dtype)
        new_state = torch_gru.gru_step(self.gru,
                                       self._encode(inputs, training), state)
        return {"locations": self._locations(new_state),
                "state": ops.cast(new_state, "float32")}

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=self.hidden_units,
                      conv_filters=self.conv_filters,
                      stop_input_gradient=self.stop_input_gradient)
        return config
