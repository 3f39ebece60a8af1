"""`ActorCritic`: AdaFocus V1's recurrent patch-selection policy."""

import keras
import numpy as np
from keras import ops

from tfaction.layers import torch_gru
from tfaction.layers import torch_initializers
from tfaction.layers.positionwise_dense import PositionwiseDense


def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise ValueError(f"ActorCritic: {name} must be an int >= {minimum}, "
                         f"got {value!r}")
    return int(value)


def grid_locations(grid_size):
    """The normalised patch origins of a `grid_size x grid_size` grid.

    Action `a` is the cell `(a // grid_size, a % grid_size)` (row-major),
    whose normalised top-left corner is `(row, col) / (grid_size - 1)`, in
    float32 as AdaFocus V1 stores its action table (49 actions: `{0, 1/6,
    ..., 1}^2`).

    Args:
        grid_size: cells per side (>= 2).

    Returns:
        float32 `[grid_size ** 2, 2]` (row, column) origins in `[0, 1]`.

    Example:

    >>> grid_locations(3)[[0, 1, 5, 8]].tolist()
    [[0.0, 0.0], [0.0, 0.5], [0.5, 1.0], [1.0, 1.0]]
    """
    grid_size = _positive_int(grid_size, "grid_size", 2)
    steps = [i / (grid_size - 1) for i in range(grid_size)]
    return np.array([[r, c] for r in steps for c in steps], np.float32)


def _conv_initializer():
    # PyTorch's Conv2d default: U(+-1/sqrt(fan_in)), fan_in = C * k * k.
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


def _check_maps_shape(shape, rank, what):
    shape = tuple(shape)
    if len(shape) != rank or any(d is None for d in shape[-3:]):
        axes = "[B, T, h, w, C]" if rank == 5 else "[B, h, w, C]"
        raise ValueError(f"{what} expects glance feature maps {axes} with "
                         f"static h, w, C, got shape {shape}")
    return shape


@keras.saving.register_keras_serializable(package="tfaction")
class ActorCritic(keras.layers.Layer):
    """AdaFocus V1 policy: chooses one patch cell per frame, with a critic.

    The state of frame `t` is the glance network's feature map of that
    frame (MobileNet-V2: `7 x 7 x 1280` at 224 x 224). It is encoded by a
    1x1 conv to `conv_filters` channels (no bias) -> ReLU -> flatten (in
    PyTorch's channels-first order, so that a PyTorch `Linear` weight loads
    as its transpose) -> Dense(`hidden_units`) -> ReLU, and a GRU
    (`hidden_units`, zero initial state) carries it over the frames. From
    the GRU state, the actor gives logits over the `grid_size ** 2` patch
    positions of a regular grid (`grid_locations`: 7 x 7 = 49 normalised
    top-left corners `{0, 1/6, ..., 1}^2`) and the critic a scalar value.

    The actor's distribution is `softmax(logits)` (the reference applies
    the softmax inside the actor). `actions` is its argmax (first index on
    ties; AdaFocus' deterministic policy at evaluation and in stage 3) and
    `locations` the grid origins of those actions; for PPO rollouts sample
    from `logits` instead and map the samples with `action_locations`.
    None of these depend on which patches were chosen, so the whole
    sequence can be evaluated at once; `step` runs one frame with an
    explicit state for online use and equals the sequence call step by
    step.

    Initialisation is PyTorch's default for each module (conv and dense
    kernels and biases `U(+-1/sqrt(fan_in))`, GRU `U(+-1/sqrt(H))`).
    Every float output (logits, values, locations, states) is float32
    under mixed precision; the GRU runs in the compute dtype.

    Args:
        grid_size: patch positions per side (7: 49 actions).
        hidden_units: width of the state encoder and of the GRU (1024).
        conv_filters: channels of the 1x1 state conv (32).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: glance feature maps `[B, T, h, w, C]` (h, w, C static).
        initial_state: optional `[B, hidden_units]` GRU state before the
            first frame (default zeros).
        training: unused (no dropout or batch norm); accepted for
            uniformity.

    Returns:
        A dict: `logits` float32 `[B, T, grid_size ** 2]`, `values`
        float32 `[B, T]`, `actions` int32 `[B, T]` (argmax), `locations`
        float32 `[B, T, 2]` (normalised (row, column) origins of
        `actions`), `states` float32 `[B, T, hidden_units]` (GRU state after
        each frame; the last one is the final state).

    Example:

    >>> import numpy as np
    >>> policy = ActorCritic(grid_size=7, hidden_units=16, conv_filters=4)
    >>> out = policy(np.zeros((2, 3, 7, 7, 8), "float32"))
    >>> tuple(out["logits"].shape), tuple(out["locations"].shape)
    ((2, 3, 49), (2, 3, 2))
    >>> first = policy.step(np.zeros((2, 7, 7, 8), "float32"),
    ...                     policy.get_initial_state(2))
    >>> tuple(first["state"].shape)
    (2, 16)

    Reference:
        Wang et al., "Adaptive Focus for Efficient Video Recognition", ICCV
        2021 (the policy network pi trained with PPO).
    """

    def __init__(self, grid_size=7, hidden_units=1024, conv_filters=32,
                 **kwargs):
        super().__init__(**kwargs)
        self.grid_size = _positive_int(grid_size, "grid_size", 2)
        self.hidden_units = _positive_int(hidden_units, "hidden_units")
        self.conv_filters = _positive_int(conv_filters, "conv_filters")
        self._grid = grid_locations(self.grid_size)

    @property
    def num_actions(self):
        """`grid_size ** 2`."""
        return self.grid_size ** 2

    def build(self, input_shape):
        shape = _check_maps_shape(input_shape, 5, "ActorCritic")
        height, width, channels = shape[-3:]
        flat = self.conv_filters * height * width
        self.state_conv = keras.layers.Conv2D(
            self.conv_filters, 1, use_bias=False,
            kernel_initializer=_conv_initializer(), dtype=self.dtype_policy,
            name="state_conv")
        self.state_conv.build((None, height, width, channels))
        self.state_dense = self._dense(self.hidden_units, flat, "state_dense")
        self.gru = torch_gru.gru_layer(self.hidden_units,
                                       dtype=self.dtype_policy, name="gru")
        self.gru.build((None, None, self.hidden_units))
        self.actor = self._dense(self.num_actions, self.hidden_units,
                                 "actor")
        self.critic = self._dense(1, self.hidden_units, "critic")
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

    def _encode(self, maps):
        """`[N, h, w, C]` maps -> `[N, hidden_units]` encoded states."""
        x = ops.relu(self.state_conv(maps))
        # Channels-first flatten, as PyTorch's nn.Flatten on NCHW.
        x = ops.reshape(ops.transpose(x, (0, 3, 1, 2)), (ops.shape(x)[0], -1))
        return ops.relu(self.state_dense(x))

    def _heads(self, states):
        logits = ops.cast(self.actor(states), "float32")
        values = ops.cast(self.critic(states), "float32")[..., 0]
        actions = ops.cast(ops.argmax(logits, axis=-1), "int32")
        return {"logits": logits, "values": values, "actions": actions,
                "locations": self.action_locations(actions)}

    def action_locations(self, actions):
        """Normalised (row, column) patch origins of integer actions.

        Args:
            actions: int tensor of any shape, values in `[0, grid_size**2)`.

        Returns:
            float32 tensor `actions.shape + (2,)`.
        """
        return ops.take(ops.convert_to_tensor(self._grid),
                        ops.cast(actions, "int32"), axis=0)

    def get_initial_state(self, batch_size):
        """Zero GRU state `[batch_size, hidden_units]` (float32)."""
        return torch_gru.zeros_state(batch_size, self.hidden_units,
                                     "float32")

    def call(self, inputs, initial_state=None, training=None):
        shape = ops.shape(inputs)
        batch, steps = shape[0], shape[1]
        encoded = self._encode(ops.reshape(inputs, (-1, *self._map_shape)))
        encoded = ops.reshape(encoded, (batch, steps, self.hidden_units))
        if initial_state is None:
            initial_state = self.get_initial_state(batch)
        initial_state = ops.cast(initial_state, self.compute_dtype)
        states = self.gru(encoded, initial_state=[initial_state])
        outputs = self._heads(states)
        outputs["states"] = ops.cast(states, "float32")
        return outputs

    def step(self, inputs, state, training=None):
        """Runs the policy on one frame with an explicit GRU state.

        Args:
            inputs: glance feature maps `[B, h, w, C]` of the current frame
                (the layer must be built, e.g. by a sequence call or
                `build`, or it is built from these shapes).
            state: `[B, hidden_units]` GRU state (`get_initial_state` for
                the first frame).
            training: unused.

        Returns:
            A dict: `logits` float32 `[B, grid_size ** 2]`, `values`
            float32 `[B]`, `actions` int32 `[B]`, `locations` float32
            `[B, 2]`, `state` float32 `[B, hidden_units]` (the state after
            the frame, to pass to the next step).
        """
        shape = _check_maps_shape(inputs.shape, 4, "ActorCritic.step")
        if not self.built:
            self.build((None, None) + shape[1:])
        inputs = ops.cast(inputs, self.compute_dtype)
        state = ops.cast(state, self.compute_dtype)
        new_state = torch_gru.gru_step(self.gru, self._encode(inputs), state)
        outputs = self._heads(new_state)
        outputs["state"] = ops.cast(new_state, "float32")
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(grid_size=self.grid_size,
                      hidden_units=self.hidden_units,
                      conv_filters=self.conv_filters)
        return config
