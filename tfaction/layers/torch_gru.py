"""PyTorch's `nn.GRU` as a Keras GRU: initialisation, weights, stepping.

Keras' `GRU(reset_after=True)` computes the same function as PyTorch's
`nn.GRU` (separate input and recurrent biases, the reset gate applied to
the recurrent term of the candidate):

    r = sigmoid(x W_r + b_ir + h U_r + b_hr)
    z = sigmoid(x W_z + b_iz + h U_z + b_hz)
    n = tanh(x W_n + b_in + r * (h U_n + b_hn))
    h' = (1 - z) * n + z * h

but stores the gate blocks in the order (z, r, n) where PyTorch stores
(r, z, n), with transposed matrices and both biases in one `[2, 3H]`
variable. `torch_gru_weights` converts; `gru_layer` builds a Keras GRU with
PyTorch's default initialisation (every weight and bias
`U(-1/sqrt(H), 1/sqrt(H))`), returning the whole sequence of hidden states;
`gru_step` advances it by one step with an explicit state, for online use.

Example:

>>> gru = gru_layer(8, name="gru")
>>> gru.build((None, None, 4))
>>> [tuple(w.shape) for w in gru.weights]
[(4, 24), (8, 24), (2, 24)]
"""

import math

import keras
import numpy as np
from keras import ops


def gru_initializer(units, seed=None):
    """PyTorch's `nn.GRU` init of every weight and bias: `U(+-1/sqrt(H))`.

    Args:
        units: hidden size `H`.
        seed: optional int seed.

    Returns:
        A `keras.initializers.RandomUniform`.
    """
    bound = 1.0 / math.sqrt(max(int(units), 1))
    return keras.initializers.RandomUniform(-bound, bound, seed=seed)


def gru_layer(units, *, dtype=None, name="gru"):
    """A Keras GRU computing PyTorch's `nn.GRU` (one layer, batch first).

    Returns the hidden state after every step (`return_sequences=True`,
    `return_state=False`; the last step is the final state). cuDNN is not
    used, so the layer compiles with XLA on every device.

    Args:
        units: hidden size `H`.
        dtype: dtype policy.
        name: layer name.

    Returns:
        An unbuilt `keras.layers.GRU`.
    """
    init = gru_initializer(units)
    return keras.layers.GRU(
        int(units), activation="tanh", recurrent_activation="sigmoid",
        reset_after=True, return_sequences=True, use_cudnn=False,
        kernel_initializer=init, recurrent_initializer=init,
        bias_initializer=init, dtype=dtype, name=name)


def gru_step(gru, inputs, state, training=None):
    """One step of a (built) Keras GRU with an explicit state.

    Args:
        gru: a `keras.layers.GRU` (e.g. from `gru_layer`).
        inputs: `[B, D]` inputs of this step.
        state: `[B, H]` hidden state before the step.
        training: passed to the cell (no effect without recurrent dropout).

    Returns:
        `[B, H]` hidden state after the step (also the step's output).
    """
    output, _ = gru.cell(inputs, [state], training=bool(training))
    return output


def _permuted_blocks(weight, units):
    """PyTorch gate blocks (r, z, n) along axis 0 -> Keras order (z, r, n)."""
    r, z, n = (weight[i * units:(i + 1) * units] for i in range(3))
    return np.concatenate([z, r, n], axis=0)


def torch_gru_weights(weight_ih, weight_hh, bias_ih, bias_hh):
    """Keras GRU weights from a PyTorch `nn.GRU` layer's tensors.

    Args:
        weight_ih: `weight_ih_l0`, `[3H, D]` (gates r, z, n).
        weight_hh: `weight_hh_l0`, `[3H, H]`.
        bias_ih: `bias_ih_l0`, `[3H]`.
        bias_hh: `bias_hh_l0`, `[3H]`.

    Returns:
        `[kernel [D, 3H], recurrent_kernel [H, 3H], bias [2, 3H]]` for
        `gru.set_weights` (gates z, r, n; `bias[0]` input, `bias[1]`
        recurrent).

    Raises:
        ValueError: inconsistent shapes.

    Example:

    >>> w = torch_gru_weights(np.zeros((6, 3)), np.zeros((6, 2)),
    ...                       np.zeros(6), np.zeros(6))
    >>> [a.shape for a in w]
    [(3, 6), (2, 6), (2, 6)]
    """
    weight_ih, weight_hh = np.asarray(weight_ih), np.asarray(weight_hh)
    bias_ih, bias_hh = np.asarray(bias_ih), np.asarray(bias_hh)
    if weight_hh.ndim != 2 or weight_hh.shape[0] != 3 * weight_hh.shape[1]:
        raise ValueError(f"GRU weight_hh must be [3H, H], got "
                         f"{weight_hh.shape}")
    units = weight_hh.shape[1]
    if (weight_ih.ndim != 2 or weight_ih.shape[0] != 3 * units
            or bias_ih.shape != (3 * units,)
            or bias_hh.shape != (3 * units,)):
        raise ValueError(
            f"GRU tensors disagree: weight_ih {weight_ih.shape}, weight_hh "
            f"{weight_hh.shape}, bias_ih {bias_ih.shape}, bias_hh "
            f"{bias_hh.shape} (expected [3H, D], [3H, H], [3H], [3H])")
    kernel = _permuted_blocks(weight_ih, units).T
    recurrent = _permuted_blocks(weight_hh, units).T
    bias = np.stack([_permuted_blocks(bias_ih, units),
                     _permuted_blocks(bias_hh, units)])
    return [kernel, recurrent, bias]


def zeros_state(batch_size, units, dtype):
    """`[B, H]` zeros: the initial hidden state of PyTorch's GRU."""
    return ops.zeros((batch_size, units), dtype=dtype)
