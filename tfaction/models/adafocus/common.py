"""Pieces shared by the AdaFocus V1 and V2 models: trunks, heads, checks.

Both models fold the frames of a clip into the batch axis (`BoxAxis`), run
a 2-D trunk on every frame, and average-pool its last feature map:

* glance trunks (`GLANCE_ARCHS`): `"mobilenet_v2"` (torchvision layout,
  `7 x 7 x 1280` at 224 x 224), `"resnet50"` (torchvision v1.5, AdaFocus
  V2's `res50` glance on 96 x 96 frames, `3 x 3 x 2048`) and `"small"` (a
  small VGG-shaped conv stack for CPU-sized recipes and tests);
* focus trunks (`FOCUS_ARCHS`): `"resnet50"` (2048-d after pooling) and
  `"small"`.

Each MobileNet-V2 / ResNet-50 trunk has a variant (`TRUNK_VARIANTS`):
`"torchvision"` (the layouts above, for torchvision's and the authors'
weights) or `"keras"` (keras.applications' MobileNetV2 / ResNet-50 v1, for
its ImageNet weights: a different network with other numbers). Both take
ImageNet mean / std-normalised RGB frames; a "keras" trunk converts them in
the graph to the input its weights expect ("tf" mode for MobileNetV2,
"caffe" for ResNet-50).
"""

import keras

from tfaction import errors
from tfaction.layers import torch_initializers
from tfaction.layers.box_axis import BoxAxis
from tfaction.models.backbones import small_convnet

GLANCE_ARCHS = ("mobilenet_v2", "resnet50", "small")
FOCUS_ARCHS = ("resnet50", "small")
TRUNK_VARIANTS = ("torchvision", "keras")
_RESNET50_VARIANTS = {"torchvision": "v1.5", "keras": "v1"}


def frames_input(num_frames, frame_size):
    """The `frames` input `[B, T, H, W, 3]` of the AdaFocus models."""
    return keras.Input((num_frames, *frame_size, 3), name="frames")


def locations_input(num_frames, name):
    """A `[B, T, 2]` input of normalised (row, column) patch origins."""
    return keras.Input((num_frames, 2), name=name)


def checked_sizes(num_classes, num_frames, frame_size, patch_size,
                  glance_arch, focus_arch):
    """Checks the arguments both AdaFocus models share.

    Args:
        num_classes, num_frames: positive ints.
        frame_size: int or `(height, width)`.
        patch_size: positive int, at most the frame's shorter side.
        glance_arch, focus_arch: names from `GLANCE_ARCHS` / `FOCUS_ARCHS`.

    Returns:
        `(num_classes, num_frames, frame_size, patch_size)` normalised
        (`frame_size` a `[height, width]` list).

    Raises:
        ConfigError: naming the bad argument.
    """
    num_classes = positive_int(num_classes, "num_classes")
    num_frames = positive_int(num_frames, "num_frames")
    frame_size = size_pair(frame_size, "frame_size")
    patch_size = positive_int(patch_size, "patch_size")
    if patch_size > min(frame_size):
        raise errors.ConfigError(f"AdaFocus patch_size {patch_size} exceeds "
                                 f"the frame size {frame_size}")
    check_arch(glance_arch, GLANCE_ARCHS, "glance_arch")
    check_arch(focus_arch, FOCUS_ARCHS, "focus_arch")
    return num_classes, num_frames, frame_size, patch_size


class AdaFocusParts:
    """Accessors of the parts every AdaFocus model names alike.

    A model using it sets `self._layer_names` (part key -> layer name, or
    None for a part it does not have) after building; each property then
    returns the layer of this model's graph, so weights stay shared.
    """

    def _get(self, key):
        name = self._layer_names[key]
        return None if name is None else self.get_layer(name)

    @property
    def glance(self):
        """The glance trunk f_G (`[N, h, w, 3] -> [N, h', w', C]`)."""
        return self._get("glance")

    @property
    def focus(self):
        """The focus trunk f_L (on `P x P` patches)."""
        return self._get("focus")

    @property
    def policy(self):
        """The patch policy (V1: `ActorCritic`, V2: `PolicySTN`)."""
        return self._get("policy")

    @property
    def classifier(self):
        """The classifier on `[glance, focus]` features (V1:
        `RecurrentClassifier`, V2: `PoolingClassifier`)."""
        return self._get("classifier")

    @property
    def glance_head(self):
        """The `Dense` frame-classifier head on the glance features."""
        return self._get("glance_head")

    @property
    def focus_head(self):
        """The `Dense` frame-classifier head on the focus features."""
        return self._get("focus_head")

    def _remember(self, layers, **values):
        """Stores the constructor's values and the parts' layer names."""
        for key, value in values.items():
            setattr(self, key, value)
        self._layer_names = {key: (None if layer is None else layer.name)
                             for key, layer in layers.items()}

    def _shared_config(self):
        """`get_config` entries both models have."""
        return dict(
            num_classes=self.num_classes, num_frames=self.num_frames,
            frame_size=list(self.frame_size), patch_size=self.patch_size,
            glance_arch=self.glance_arch, glance_size=list(self.glance_size),
            focus_arch=self.focus_arch, mobilenet_width=self.mobilenet_width,
            small_filters=list(self.small_filters),
            policy_hidden_units=self.policy_hidden_units,
            policy_conv_filters=self.policy_conv_filters,
            classifier_hidden_units=self.classifier_hidden_units,
            dropout=self.dropout, glance_variant=self.glance_variant,
            focus_variant=self.focus_variant)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


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
                small_filters=(16, 32), variant="torchvision"):
    """A per-frame trunk `[N, H, W, 3] -> [N, h, w, C]`.

    Args:
        arch: "mobilenet_v2", "resnet50" or "small".
        name: model name ("glance" / "focus").
        dtype: dtype policy of every layer.
        mobilenet_width: MobileNet-V2 width multiplier (1.0).
        small_filters: block widths of the "small" trunk.
        variant: "torchvision" or "keras" (`TRUNK_VARIANTS`); ignored by
            "small".

    Returns:
        A functional `keras.Model` (for "mobilenet_v2" a `MobileNetV2`, for
        "resnet50" a `ResNet50`) on ImageNet mean / std-normalised frames.
    """
    check_arch(variant, TRUNK_VARIANTS, f"{name}_variant")
    if arch == "mobilenet_v2":
        from tfaction.models.backbones import mobilenet_v2
        return mobilenet_v2.build_mobilenet_v2(
            float(mobilenet_width), name=name, variant=variant,
            input_normalization="imagenet", dtype=dtype)
    if arch == "resnet50":
        from tfaction.models.backbones import resnet50
        return resnet50.build_resnet50(
            variant=_RESNET50_VARIANTS[variant], endpoint="layer4",
            input_normalization="imagenet", name=name, dtype=dtype)
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


def frame_layers(num_classes, *, glance_arch, glance_size, focus_arch,
                 patch_size, mobilenet_width, small_filters, dtype,
                 glance_variant="torchvision", focus_variant="torchvision"):
    """The per-frame layers both AdaFocus models have, by part key.

    Args:
        num_classes: classes of the auxiliary heads.
        glance_arch, focus_arch: trunk names (`build_trunk`).
        glance_size: `(height, width)` of the glance trunk's input.
        patch_size: side of the focus patches.
        mobilenet_width, small_filters: trunk settings.
        dtype: dtype policy of every layer.
        glance_variant, focus_variant: "torchvision" or "keras"
            (`build_trunk`).

    Returns:
        Dict with `fold` / `unfold` (`BoxAxis` merge / split of the
        frame axis), `glance`, `glance_pool`, `glance_head`,
        `glance_logits`, `focus`, `focus_pool`, `focus_head`,
        `focus_logits` and `concat`.

    Raises:
        ConfigError: a trunk output that is empty at its input size.
    """
    glance = build_trunk(glance_arch, name="glance", dtype=dtype,
                         mobilenet_width=mobilenet_width,
                         small_filters=small_filters, variant=glance_variant)
    glance_channels = trunk_output(glance, glance_size, "glance")[-1]
    focus = build_trunk(focus_arch, name="focus", dtype=dtype,
                        small_filters=small_filters, variant=focus_variant)
    focus_channels = trunk_output(focus, (patch_size, patch_size),
                                  "focus")[-1]
    return {
        "fold": BoxAxis("merge", dtype=dtype, name="fold_frames"),
        "unfold": BoxAxis("split", dtype=dtype, name="unfold_frames"),
        "glance": glance,
        "glance_pool": keras.layers.GlobalAveragePooling2D(
            dtype=dtype, name="glance_pool"),
        "glance_head": torch_initializers.linear_layer(
            num_classes, glance_channels, "glance_head", dtype),
        "glance_logits": float32_output("glance_logits"),
        "focus": focus,
        "focus_pool": keras.layers.GlobalAveragePooling2D(
            dtype=dtype, name="focus_pool"),
        "focus_head": torch_initializers.linear_layer(
            num_classes, focus_channels, "focus_head", dtype),
        "focus_logits": float32_output("focus_logits"),
        "concat": keras.layers.Concatenate(dtype=dtype, name="features"),
    }




def float32_output(name):
    """An identity layer that makes an output float32 under mixed policies."""
    return keras.layers.Activation("linear", dtype="float32", name=name)
