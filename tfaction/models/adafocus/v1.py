"""AdaFocus (V1): glance, a discrete patch policy, focus, recurrent head.

Per frame of a `T`-frame clip (Wang et al., ICCV 2021):

1. glance: MobileNet-V2 f_G on the frame (resized with PyTorch's
   "nearest" `interpolate` when `glance_size` differs from the frame; the
   published recipes glance at the full 224 x 224 frame) gives a feature
   map and its average `g_t` (1280-d);
2. policy: `ActorCritic` on the glance maps picks one cell of a 7 x 7 grid
   of patch origins (`{0, 1/6, ..., 1}^2`); this model takes the argmax
   (AdaFocus' deterministic policy at evaluation and in stage 3);
3. `DifferentiablePatchCrop` (integer mode) slices the `P x P` patch at
   `floor(a (H - P, W - P))` from the full frame;
4. focus: ResNet-50 f_L on the patch, averaged to `l_t` (2048-d);
5. `RecurrentClassifier` (GRU) on `[g_t, l_t]` -> logits at every step
   (prediction: the last step).

The four training stages use parts of the model: stage 0 trains the
glance and the focus networks as frame classifiers on full frames
(`glance_classifier`, `focus_classifier`, with the heads `glance_head`
and `focus_head`); stage 1 trains focus + classifier on random patches
(`patch_model`); stage 2 trains the policy with PPO (`glance_model`, the
`policy` layer, `focus_model`, the `classifier` layer and its `step`);
stage 3 trains the classifier with this model's deterministic policy.

Layer names and the authors' PyTorch modules (their `GFV` network;
checkpoint entries in brackets; weights: `tfaction.checkpoints.adafocus`):

* `glance_resize` (only when resizing): `F.interpolate(images,
  glance_size)` (nearest);
* `glance` (trunk): `glancer.net.features` [`glancer`];
* `glance_dropout`, `glance_head`: `glancer.net.classifier.0`, `.1`;
* `policy` (`ActorCritic`): `focuser.policy.policy` [`policy`];
* `patch_crop` (`DifferentiablePatchCrop`, integer mode): `get_patch`;
* `focus` (trunk), `focus_head`: `focuser.net`, `focuser.net.fc`
  [`focuser`];
* `classifier` (`RecurrentClassifier`): `classifier` [`fc`].
"""

import keras

from tfaction import errors
from tfaction.layers.actor_critic import ActorCritic
from tfaction.layers.differentiable_patch_crop import DifferentiablePatchCrop
from tfaction.layers.frame_resize import FrameResize
from tfaction.layers.recurrent_classifier import RecurrentClassifier
from tfaction.models.adafocus import common

# torchvision MobileNet-V2's classifier: Dropout(0.2) -> Linear.
GLANCE_HEAD_DROPOUT = 0.2


def _glance(get, frames):
    """Glance maps `[B, T, h, w, C]` and features `[B*T, C]`."""
    x = frames
    if get("glance_resize") is not None:
        x = get("glance_resize")(x)
    maps = get("glance")(get("fold")(x))
    return get("unfold")([maps, frames]), get("glance_pool")(maps)


def _focus(get, frames, locations):
    """Focus features `[B*T, C]` of the patches at `locations`."""
    patches = get("patch_crop")([frames, locations])
    return get("focus_pool")(get("focus")(get("fold")(patches)))


def _classify(get, frames, glance_features, focus_features):
    joint = get("unfold")([get("concat")([glance_features, focus_features]),
                           frames])
    return joint, get("classifier")(joint)


@keras.saving.register_keras_serializable(package="tfaction")
class AdaFocusV1(common.AdaFocusParts, keras.Model):
    """AdaFocus (V1) video classifier with its deterministic policy.

    A functional model `{"frames": [B, T, H, W, 3]}` -> a dict:

    * `logits` float32 `[B, T, num_classes]`: the recurrent classifier at
      every step (the video prediction is `logits[:, -1]`);
    * `policy_logits` float32 `[B, T, grid_size ** 2]`, `values` float32
      `[B, T]`: the actor's logits (distribution `softmax`) and the
      critic's values;
    * `actions` int32 `[B, T]`: the argmax actions the patches were taken
      at; `locations` float32 `[B, T, 2]`: their normalised (row, column)
      origins (pixels: `floor(a (H - P, W - P))`);
    * `glance_logits`, `focus_logits` float32 `[B, T, num_classes]`: the
      stage-0 frame-classifier heads on each frame's glance features and
      on its patch's focus features.

    Methods give the parts the training stages need, all sharing these
    weights (see the module docstring). Frames are ImageNet mean / std
    normalised RGB; `T` and the frame size are static.

    Args:
        num_classes: number of classes.
        num_frames: frames per clip `T` (16).
        frame_size: frame `(height, width)` or one int (224).
        patch_size: side `P` of the focus patch (96, 128, 160 or 192).
        glance_arch: "mobilenet_v2", "resnet50" or "small".
        glance_size: glance input `(height, width)` or int; None: the
            frame size (no resize). Otherwise frames are resized with
            PyTorch's "nearest" `interpolate`.
        focus_arch: "resnet50" or "small".
        mobilenet_width: MobileNet-V2 width multiplier (1.0).
        small_filters: block widths of "small" trunks.
        grid_size: patch positions per side of the action grid (7).
        policy_hidden_units: `ActorCritic` width (1024).
        policy_conv_filters: `ActorCritic` 1x1 conv channels (32).
        classifier_hidden_units: `RecurrentClassifier` GRU width (1024).
        dropout: `RecurrentClassifier` dropout (0.5; 0.8 in the published
            commands).
        glance_variant, focus_variant: "torchvision" (the trunks of the
            authors' and torchvision's weights) or "keras"
            (keras.applications' MobileNetV2 / ResNet-50 v1, for its
            ImageNet weights); frames are ImageNet mean / std-normalised
            either way (`common.build_trunk`).
        **kwargs: base `keras.Model` arguments (`name`, default
            "adafocus_v1"; `dtype`, passed to every layer).

    Raises:
        ConfigError: bad sizes or rates, unknown trunk, a patch larger than
            the frame, or a trunk output that is empty at this input size.

    Example:

    >>> import numpy as np
    >>> model = AdaFocusV1(num_classes=5, num_frames=4, frame_size=32,
    ...                    patch_size=16, glance_arch="small",
    ...                    focus_arch="small", small_filters=(8, 16),
    ...                    policy_hidden_units=16, classifier_hidden_units=16)
    >>> out = model({"frames": np.zeros((2, 4, 32, 32, 3), "float32")})
    >>> tuple(out["logits"].shape), tuple(out["policy_logits"].shape)
    ((2, 4, 5), (2, 4, 49))

    Reference:
        Wang et al., "Adaptive Focus for Efficient Video Recognition", ICCV
        2021.
    """

    def __init__(self, num_classes, num_frames=16, frame_size=224,
                 patch_size=128, glance_arch="mobilenet_v2", glance_size=None,
                 focus_arch="resnet50", mobilenet_width=1.0,
                 small_filters=(16, 32), grid_size=7,
                 policy_hidden_units=1024, policy_conv_filters=32,
                 classifier_hidden_units=1024, dropout=0.5,
                 glance_variant="torchvision", focus_variant="torchvision",
                 **kwargs):
        kwargs.setdefault("name", "adafocus_v1")
        # A functional model ignores `dtype`: it is set below and passed to
        # every layer.
        dtype = kwargs.pop("dtype", None)
        num_classes, num_frames, frame_size, patch_size = (
            common.checked_sizes(num_classes, num_frames, frame_size,
                                 patch_size, glance_arch, focus_arch))
        glance_size = common.size_pair(
            frame_size if glance_size is None else glance_size,
            "glance_size")
        small_filters = [int(f) for f in small_filters]
        grid_size = common.positive_int(grid_size, "grid_size")
        if grid_size < 2:
            raise errors.ConfigError(f"AdaFocus grid_size must be >= 2, got "
                                     f"{grid_size}")
        dropout = common.rate(dropout, "dropout")

        # === Layers ===
        layers = common.frame_layers(
            num_classes, glance_arch=glance_arch, glance_size=glance_size,
            focus_arch=focus_arch, patch_size=patch_size,
            mobilenet_width=mobilenet_width, small_filters=small_filters,
            dtype=dtype, glance_variant=glance_variant,
            focus_variant=focus_variant)
        layers.update({
            "glance_resize": (FrameResize(glance_size, "nearest", dtype=dtype,
                                          name="glance_resize")
                              if glance_size != frame_size else None),
            "glance_dropout": keras.layers.Dropout(
                GLANCE_HEAD_DROPOUT, dtype=dtype, name="glance_dropout"),
            "policy": ActorCritic(grid_size, int(policy_hidden_units),
                                  int(policy_conv_filters), dtype=dtype,
                                  name="policy"),
            "patch_crop": DifferentiablePatchCrop(
                patch_size, "integer", dtype=dtype, name="patch_crop"),
            "classifier": RecurrentClassifier(
                num_classes, int(classifier_hidden_units), dropout,
                dtype=dtype, name="classifier"),
        })
        get = layers.get

        # === Functional Model ===
        frames = common.frames_input(num_frames, frame_size)
        maps, glance_features = _glance(get, frames)
        policy = get("policy")(maps)
        focus_features = _focus(get, frames, policy["locations"])
        _, classifier = _classify(get, frames, glance_features,
                                  focus_features)
        glance_logits = get("glance_head")(
            get("glance_dropout")(glance_features))
        focus_logits = get("focus_head")(focus_features)
        super().__init__(
            inputs={"frames": frames},
            outputs={"logits": classifier["logits"],
                     "policy_logits": policy["logits"],
                     "values": policy["values"],
                     "actions": policy["actions"],
                     "locations": policy["locations"],
                     "glance_logits": get("glance_logits")(
                         get("unfold")([glance_logits, frames])),
                     "focus_logits": get("focus_logits")(
                         get("unfold")([focus_logits, frames]))},
            **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype

        # === Config ===
        self._remember(
            layers, num_classes=num_classes, num_frames=num_frames,
            frame_size=frame_size, patch_size=patch_size,
            glance_arch=glance_arch, glance_size=glance_size,
            focus_arch=focus_arch, mobilenet_width=float(mobilenet_width),
            small_filters=small_filters, grid_size=grid_size,
            policy_hidden_units=int(policy_hidden_units),
            policy_conv_filters=int(policy_conv_filters),
            classifier_hidden_units=int(classifier_hidden_units),
            dropout=dropout, glance_variant=glance_variant,
            focus_variant=focus_variant)

    # ------------------------------------------------------------- parts
    def glance_model(self):
        """Glance maps and features of every frame.

        Returns:
            A functional `keras.Model` sharing this model's weights:
            `{"frames": [B, T, H, W, 3]}` -> `maps` `[B, T, h, w, C]` (the
            policy's input) and `features` `[B, T, C]` (their average), in
            the compute dtype.
        """
        frames = common.frames_input(self.num_frames, self.frame_size)
        maps, features = _glance(self._get, frames)
        return keras.Model(
            {"frames": frames},
            {"maps": maps, "features": self._get("unfold")([features,
                                                            frames])},
            name=f"{self.name}_glance")

    def focus_model(self):
        """Focus features of the patches at given locations.

        Returns:
            A functional `keras.Model` sharing this model's weights:
            `{"frames": [B, T, H, W, 3], "locations": [B, T, 2]}` ->
            `[B, T, C]` average focus features (compute dtype) of the
            patches at `floor(locations (H - P, W - P))`.
        """
        frames = common.frames_input(self.num_frames, self.frame_size)
        locations = common.locations_input(self.num_frames, "locations")
        features = _focus(self._get, frames, locations)
        return keras.Model({"frames": frames, "locations": locations},
                           self._get("unfold")([features, frames]),
                           name=f"{self.name}_focus")

    def patch_model(self):
        """The classifier on patches at given locations (stage 1).

        Pass `(y + 0.5) / (H - P)` to crop at the integer origin `y`
        exactly (the origin is `floor(a (H - P))` in float32).

        Returns:
            A functional `keras.Model` sharing this model's weights:
            `{"frames": [B, T, H, W, 3], "locations": [B, T, 2]}` ->
            float32 `logits` `[B, T, num_classes]`, float32 `states`
            `[B, T, classifier_hidden_units]` (the GRU state after each
            step) and `features` `[B, T, D]` (glance + focus features).
        """
        frames = common.frames_input(self.num_frames, self.frame_size)
        locations = common.locations_input(self.num_frames, "locations")
        _, glance_features = _glance(self._get, frames)
        joint, out = _classify(self._get, frames, glance_features,
                               _focus(self._get, frames, locations))
        return keras.Model({"frames": frames, "locations": locations},
                           {"logits": out["logits"], "states": out["states"],
                            "features": joint},
                           name=f"{self.name}_patches")

    def _frame_classifier(self, trunk_key, size, dropout_key, head_key,
                          logits_key, name):
        images = keras.Input((*size, 3), name="images")
        x = self._get(trunk_key)(images)
        x = self._get(f"{trunk_key}_pool")(x)
        if dropout_key is not None:
            x = self._get(dropout_key)(x)
        x = self._get(logits_key)(self._get(head_key)(x))
        return keras.Model(images, x, name=f"{self.name}_{name}")

    def glance_classifier(self):
        """The glance network as a frame classifier (stage 0).

        Returns:
            A functional `keras.Model` `[N, h, w, 3]` (glance-size frames)
            -> float32 logits `[N, num_classes]`: trunk -> average pool ->
            Dropout(0.2) -> `glance_head`. AdaFocus stage 0 averages the
            logits of a clip's frames before the cross-entropy.
        """
        return self._frame_classifier("glance", self.glance_size,
                                      "glance_dropout", "glance_head",
                                      "glance_logits", "glance_classifier")

    def focus_classifier(self):
        """The focus network as a frame classifier (stage 0).

        Returns:
            A functional `keras.Model` `[N, H, W, 3]` (full frames, as
            AdaFocus pre-trains f_L) -> float32 logits `[N, num_classes]`:
            trunk -> average pool -> `focus_head`.
        """
        return self._frame_classifier("focus", self.frame_size, None,
                                      "focus_head", "focus_logits",
                                      "focus_classifier")

    # ------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(self._shared_config(), grid_size=self.grid_size)
        return config
