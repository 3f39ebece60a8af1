"""PyTorch's default and Xavier initialisations as Keras initializers.

PyTorch initialises `nn.Linear(fan_in, fan_out)` with
`kaiming_uniform_(a=sqrt(5))` for the weight, i.e. `U(-1/sqrt(fan_in),
1/sqrt(fan_in))`, and the same bound for the bias; Keras' `Dense` defaults
are Glorot-uniform kernels and zero biases. `nn.init.xavier_uniform_` on a
`Linear` weight is Keras' Glorot-uniform on the transposed `Dense` kernel
(same `fan_in + fan_out`). These helpers give the Keras equivalents so that
ported layers start from the same distributions as the reference.

Example:

>>> dense = keras.layers.Dense(
...     8, kernel_initializer=linear_kernel_initializer(),
...     bias_initializer=linear_bias_initializer(16))
"""

import math

import keras

from tfaction.layers.positionwise_dense import PositionwiseDense


def linear_kernel_initializer(seed=None):
    """PyTorch's default `nn.Linear` weight init for a `Dense` kernel.

    `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, as
    `VarianceScaling(1/3, "fan_in", "uniform")` (limit `sqrt(3 * scale /
    fan_in)`).

    Args:
        seed: optional int seed (the same seed gives the same values).

    Returns:
        A `keras.initializers.VarianceScaling`.
    """
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform",
                                              seed=seed)


def linear_bias_initializer(fan_in, seed=None):
    """PyTorch's default `nn.Linear` bias init: `U(+-1/sqrt(fan_in))`.

    Args:
        fan_in: input features of the linear layer.
        seed: optional int seed.

    Returns:
        A `keras.initializers.RandomUniform`.
    """
    bound = 1.0 / math.sqrt(max(int(fan_in), 1))
    return keras.initializers.RandomUniform(-bound, bound, seed=seed)


def linear_layer(units, fan_in, name=None, dtype=None):
    """A `PositionwiseDense` initialised as PyTorch's `nn.Linear`.

    Args:
        units: output features.
        fan_in: input features (sets the bias bound).
        name: layer name.
        dtype: dtype or dtype policy.

    Returns:
        An unbuilt `PositionwiseDense`.
    """
    return PositionwiseDense(
        units, kernel_initializer=linear_kernel_initializer(),
        bias_initializer=linear_bias_initializer(fan_in), name=name,
        dtype=dtype)


def xavier_uniform_initializer(seed=None):
    """`nn.init.xavier_uniform_` on a `Linear` weight, for a `Dense` kernel.

    `U(+-sqrt(6 / (fan_in + fan_out)))`: Keras' Glorot-uniform.

    Args:
        seed: optional int seed.

    Returns:
        A `keras.initializers.GlorotUniform`.
    """
    return keras.initializers.GlorotUniform(seed=seed)
