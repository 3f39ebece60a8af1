"""`RecurrentClassifier`: AdaFocus V1's GRU classifier over frames."""

import keras
import numpy as np
from keras import ops

from tfaction.layers import torch_gru
from tfaction.layers import torch_initializers
from tfaction.layers.positionwise_dense import PositionwiseDense


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise ValueError(f"RecurrentClassifier: {name} must be a positive "
                         f"int, got {value!r}")
    return int(value)


@keras.saving.register_keras_serializable(package="tfaction")
class RecurrentClassifier(keras.layers.Layer):
    """AdaFocus V1 classifier: a GRU over frame features, logits every step.

    Frame `t`'s feature (AdaFocus V1: the glance vector concatenated with
    the focus vector, 1280 + 2048 = 3328) enters a GRU (`hidden_units`,
    zero initial state); its state goes through Dropout and a Dense layer
    to class logits at **every** step. AdaFocus trains with the
    cross-entropy of every step's logits against the video label and
    predicts with the last step's.

    `step` advances the GRU by one frame with an explicit state: AdaFocus
    V1's PPO reward compares, at each step, the classifier's confidence
    after the policy's patch with its confidence after a random patch fed
    from the **same** previous state (the state is then advanced with the
    policy's patch only). `states` (the state after every step) gives the
    previous states of a whole sequence at once.

    Initialisation is PyTorch's default (GRU `U(+-1/sqrt(H))`, Dense
    `U(+-1/sqrt(fan_in))`). Logits and states are float32 under mixed
    precision; the GRU runs in the compute dtype.

    Args:
        num_classes: number of classes.
        hidden_units: GRU width (1024).
        dropout: dropout rate on the GRU state before the Dense layer
            (AdaFocus V1: 0.5 by default, 0.8 in the published commands).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: frame features `[B, T, D]` (D static).
        initial_state: optional `[B, hidden_units]` state before the first
            frame (default zeros).
        training: dropout on.

    Returns:
        A dict: `logits` float32 `[B, T, num_classes]`, `states` float32
        `[B, T, hidden_units]` (GRU state after each step).

    Example:

    >>> import numpy as np
    >>> head = RecurrentClassifier(num_classes=5, hidden_units=8)
    >>> out = head(np.zeros((2, 4, 6), "float32"))
    >>> tuple(out["logits"].shape), tuple(out["states"].shape)
    ((2, 4, 5), (2, 4, 8))

    Reference:
        Wang et al., "Adaptive Focus for Efficient Video Recognition", ICCV
        2021 (recurrent classifier f_C).
    """

    def __init__(self, num_classes, hidden_units=1024, dropout=0.5,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = _positive_int(num_classes, "num_classes")
        self.hidden_units = _positive_int(hidden_units, "hidden_units")
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"RecurrentClassifier: dropout must be in [0, "
                             f"1), got {dropout}")
        self.dropout = dropout

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"RecurrentClassifier expects features [B, T, "
                             f"D] with a static D, got shape {input_shape}")
        self.gru = torch_gru.gru_layer(self.hidden_units,
                                       dtype=self.dtype_policy, name="gru")
        self.gru.build((None, None, input_shape[-1]))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout")
        self.classifier = PositionwiseDense(
            self.num_classes,
            kernel_initializer=torch_initializers.linear_kernel_initializer(),
            bias_initializer=torch_initializers.linear_bias_initializer(
                self.hidden_units),
            dtype=self.dtype_policy, name="classifier")
        self.classifier.build((None, self.hidden_units))
        self.built = True

    def _logits(self, states, training):
        x = self.dropout_layer(states, training=training)
        return ops.cast(self.classifier(x), "float32")

    def get_initial_state(self, batch_size):
        """Zero GRU state `[batch_size, hidden_units]` (float32)."""
        return torch_gru.zeros_state(batch_size, self.hidden_units,
                                     "float32")

    def call(self, inputs, initial_state=None, training=None):
        if initial_state is None:
            initial_state = self.get_initial_state(ops.shape(inputs)[0])
        initial_state = ops.cast(initial_state, self.compute_dtype)
        states = self.gru(inputs, initial_state=[initial_state])
        return {"logits": self._logits(states, training),
                "states": ops.cast(states, "float32")}

    def step(self, inputs, state, training=None):
        """Advances the classifier by one frame from an explicit state.

        Args:
            inputs: `[B, D]` features of the current frame (the layer is
                built from this shape if it is not yet).
            state: `[B, hidden_units]` state before the frame
                (`get_initial_state` for the first one).
            training: dropout on.

        Returns:
            A dict: `logits` float32 `[B, num_classes]`, `state` float32
            `[B, hidden_units]` (the state after the frame; discard it to
            score a frame without advancing, as the reward baseline does).
        """
        if not self.built:
            self.build((None, None, tuple(inputs.shape)[-1]))
        inputs = ops.cast(inputs, self.compute_dtype)
        state = ops.cast(state, self.compute_dtype)
        new_state = torch_gru.gru_step(self.gru, inputs, state, training)
        return {"logits": self._logits(new_state, training),
                "state": ops.cast(new_state, "float32")}

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes,
                      hidden_units=self.hidden_units, dropout=self.dropout)
        return config
