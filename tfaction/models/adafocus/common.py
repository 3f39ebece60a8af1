"""Pieces shared by the AdaFocus V1 and V2 models: trunks, heads, checks.

Both models fold the frames of a clip into the batch axis (`BoxAxis`), run
a 2-D trunk on every frame, and average-pool its last feature map:

* glance trunks (`GLANCE_ARCHS`): `"mobilenet_v2"` (torchvision layout,
  `7 x 7 x 1280` at 224 x 224), `"resnet50"` (torchvision v1.5, AdaFocus
  V2's `res50` glance on 96 x 96 frames, `3 x 3 x 2048`) and `"small"` (a
  small VGG-shaped conv stack for CPU-sized recipes and tests);
* focus trunks (`FOCUS_ARCHS`): `"resnet50"` (2048-d after pooling) and
  `"small"`.
"""

import keras

from tfaction import errors
from tfaction.layers import torch_initializers
from tfaction.models.backbones import small_convnet

GLANCE_ARCHS = ("mobilenet_v2", "resnet50", "small")
FOCUS_ARCHS = ("resnet50", "small")


def size_pair(value, what):
    """`(height, width)` from an int or a pair of positive ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = [int(v) for v in value]
    except (TypeError, ValueError):
        raise errors.ConfigError(f"AdaFocus {what} must be an int or "
                                 f"(height, width), got {value!r}") from None
    if len(pair) != 2 or min(pair) < 1:
        raise errors.ConfigError(f"AdaFocus {what} must be positive (height,"
                                 f" width), got {value!r}")
    return pair


def positive_int(value, what):
    try:
        ok = not isinstance(value, bool) and int(value) == value >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise errors.ConfigError(f"AdaFocus {what} must be a positive int, "
                                 f"got {value!r}")
    return int(value)


def rate(value, what):
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise errors.ConfigError(f"AdaFocus {what} must be in [0, 1), got "
                                 f"{value}")
    return value


def check_arch(arch, choices, what):
    if arch not in choices:
        raise errors.ConfigError(f"unknown AdaFocus {what} {arch!r}; "
                                 f"expected one of {choices}")
    return arch


def build_trunk(arch, *, name, dtype, mobilenet_width=1.0,
                small_filters=(16, 32)):
    """A per-frame trunk `[N, H, W, 3] -> [N, h, w, C]`.

    Args:
        arch: "mobilenet_v2", "resnet50" or "small".
        name: model name ("glance" / "focus").
        dtype: dtype policy of every layer.
        mobilenet_width: MobileNet-V2 width multiplier (1.0).
        small_filters: block widths of the "small" trunk.

    Returns:
        A functional `keras.Model` (for "mobilenet_v2" a `MobileNetV2`, for
        "resnet50" a `ResNet50`).
    """
    if arch == "mobilenet_v2":
        from tfaction.models.backbones import mobilenet_v2
        return mobilenet_v2.build_mobilenet_v2(
            float(mobilenet_width), name=name, dtype=dtype)
    if arch == "resnet50":
        from tfaction.models.backbones import resnet50
        return resnet50.build_resnet50(variant="v1.5", endpoint="layer4",
                                       name=name, dtype=dtype)
    if arch == "small":
        return small_convnet.build_small_convnet(
            3, filters=tuple(int(f) for f in small_filters), pre_relu=False,
            name=name, dtype=dtype)
    raise errors.ConfigError(f"unknown AdaFocus trunk {arch!r}; expected one "
                             f"of {GLANCE_ARCHS}")


def trunk_output(trunk, size, what):
    """Static `(h, w, C)` of a trunk's output on `size` frames."""
    shape = trunk.compute_output_shape((None, *size, 3))
    if any(d is None or d < 1 for d in shape[1:]):
        raise errors.ConfigError(f"AdaFocus {what} trunk gives an empty or "
                                 f"unknown feature map {shape[1:]} on "
                                 f"{size[0]} x {size[1]} inputs")
    return tuple(int(d) for d in shape[1:])


def dense(units, fan_in, name, dtype):
    """`Dense` with PyTorch's default `nn.Linear` initialisation."""
    return keras.layers.Dense(
        units,
        kernel_initializer=torch_initializers.linear_kernel_initializer(),
        bias_initializer=torch_initializers.linear_bias_initializer(fan_in),
        name=name, dtype=dtype)


def float32_output(name):
    """An identity layer that makes an output float32 under mixed policies."""
    return keras.layers.Activation("linear", dtype="float32", name=name)
