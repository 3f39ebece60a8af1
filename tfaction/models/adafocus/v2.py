"""AdaFocus V2: glance, a differentiable patch policy, focus, pooling head.

Per frame of a `T`-frame clip (Wang et al., CVPR 2022):

1. glance: a cheap trunk f_G (MobileNet-V2 on the full frame, or ResNet-50
   on a 96 x 96 bilinear downsample with `align_corners=True`) gives a
   feature map and its average `g_t` (1280-d / 2048-d);
2. policy: `PolicySTN` on the (detached) glance maps gives a normalised
   patch origin `a_t` in `(0, 1)^2`;
3. `DifferentiablePatchCrop` (bilinear) takes the `P x P` patch at
   `a_t (H - P, W - P)` from the full frame, differentiably in `a_t`;
4. focus: ResNet-50 f_L on the patch, averaged to `l_t` (2048-d);
5. `PoolingClassifier` on `[g_t, l_t]`: cumulative max over frames, one
   head per step -> logits at every step (prediction: the last step).

Auxiliary per-frame heads (Dropout -> Dense) on `g_t` and on `l_t` give
the glance and focus logits that AdaFocus V2 adds to its loss.

Training runs two passes per batch that share the glance: the policy's
patches and uniformly random ones (`training_model`); the policy is
trained by the classification loss through the crop (no RL).

Layer names and the authors' PyTorch modules (their `AdaFocus`
network; weights: `tfaction.checkpoints.adafocus`):

* `glance_resize` (when the glance size differs, e.g. the ResNet-50
  glance): `F.interpolate(..., (96, 96), "bilinear", align_corners=True)`;
* `glance` (trunk): `global_CNN` (its `features` / ResNet body);
* `glance_dropout`, `glance_head`: `global_CNN_fc.0`, `global_CNN_fc.1`;
* `policy` (`PolicySTN`): `policy_stn`;
* `patch_crop` (`DifferentiablePatchCrop`): `get_patches_frame`;
* `focus` (trunk): `local_CNN`;
* `focus_dropout`, `focus_head`: `local_CNN_fc.0`, `local_CNN_fc.1`;
* `classifier` (`PoolingClassifier`): `classifier`.
"""

import keras

from tfaction.layers.differentiable_patch_crop import DifferentiablePatchCrop
from tfaction.layers.frame_resize import FrameResize
from tfaction.layers.policy_stn import PolicySTN
from tfaction.layers.pooling_classifier import PoolingClassifier
from tfaction.models.adafocus import common

# AdaFocus V2's ResNet-50 glance sees 96 x 96 frames.
RESNET_GLANCE_SIZE = 96


def _glance(get, frames):
    """Glance maps `[B, T, h, w, C]`, features `[B*T, C]`, logits."""
    x = frames
    if get("glance_resize") is not None:
        x = get("glance_resize")(x)
    maps = get("glance")(get("fold")(x))
    features = get("glance_pool")(maps)
    logits = get("glance_head")(get("glance_dropout")(features))
    return (get("unfold")([maps, frames]), features,
            get("glance_logits")(get("unfold")([logits, frames])))


def _focus_and_classify(get, frames, locations, glance_features):
    """Classifier and focus logits for patches at `locations`."""
    patches = get("patch_crop")([frames, locations])
    features = get("focus_pool")(get("focus")(get("fold")(patches)))
    focus_logits = get("focus_head")(get("focus_dropout")(features))
    joint = get("concat")([glance_features, features])
    logits = get("classifier")(get("unfold")([joint, frames]))
    return logits, get("focus_logits")(get("unfold")([focus_logits, frames]))


@keras.saving.register_keras_serializable(package="tfaction")
class AdaFocusV2(common.AdaFocusParts, keras.Model):
    """AdaFocus V2 video classifier (glance, policy, focus, pooling head).

    A functional model `{"frames": [B, T, H, W, 3]}` -> a dict of float32
    outputs, computed with the policy's patches (inference and evaluation):

    * `logits` `[B, T, num_classes]`: the pooling classifier at every step
      (the video prediction is `logits[:, -1]`);
    * `glance_logits`, `focus_logits` `[B, T, num_classes]`: the per-frame
      auxiliary heads on the glance features and on the focus features of
      the policy's patches;
    * `locations` `[B, T, 2]`: the policy's normalised (row, column) patch
      origins (pixels: `a (H - P, W - P)`).

    `training_model()` adds the random-patch pass of AdaFocus V2's
    training, `patch_model()` classifies with given patch locations. All
    three share this model's weights. Frames are ImageNet mean / std
    normalised RGB (as torchvision's weights expect); `T` and the frame
    size are static.

    Args:
        num_classes: number of classes.
        num_frames: frames per clip `T` (16), also the classifier's number
            of heads.
        frame_size: frame `(height, width)` or one int (224).
        patch_size: side `P` of the focus patch (96, 128, 160 or 192).
        glance_arch: "mobilenet_v2" (full frames), "resnet50" (on
            `glance_size` frames, default 96) or "small".
        glance_size: glance input `(height, width)` or int; None: the
            frame size, 96 for "resnet50". Frames are resized with
            PyTorch's bilinear `align_corners=True` when it differs.
        focus_arch: "resnet50" or "small".
        mobilenet_width: MobileNet-V2 width multiplier (1.0).
        small_filters: block widths of "small" trunks.
        policy_hidden_units: `PolicySTN` width (2048).
        policy_conv_filters: `PolicySTN` 1x1 conv channels (64).
        classifier_hidden_units: `PoolingClassifier` embedding width (4096).
        dropout: dropout before each classifier head (0.2).
        head_dropout: dropout before the auxiliary heads (0.2).
        glance_variant, focus_variant: "torchvision" (the trunks of the
            authors' and torchvision's weights) or "keras"
            (keras.applications' MobileNetV2 / ResNet-50 v1, for its
            ImageNet weights); frames are ImageNet mean / std-normalised
            either way (`common.build_trunk`).
        **kwargs: base `keras.Model` arguments (`name`, default
            "adafocus_v2"; `dtype`, passed to every layer).

    Raises:
        ConfigError: bad sizes or rates, unknown trunk, a patch larger than
            the frame, or a trunk output that is empty at this input size.

    Example:

    >>> import numpy as np
    >>> model = AdaFocusV2(num_classes=5, num_frames=4, frame_size=32,
    ...                    patch_size=16, glance_arch="small",
    ...                    focus_arch="small", small_filters=(8, 16),
    ...                    policy_hidden_units=16, classifier_hidden_units=16)
    >>> out = model({"frames": np.zeros((2, 4, 32, 32, 3), "float32")})
    >>> tuple(out["logits"].shape), tuple(out["locations"].shape)
    ((2, 4, 5), (2, 4, 2))

    Reference:
        Wang et al., "AdaFocus V2: End-to-End Training of Spatial Dynamic
        Networks for Video Recognition", CVPR 2022.
    """

    def __init__(self, num_classes, num_frames=16, frame_size=224,
                 patch_size=128, glance_arch="mobilenet_v2", glance_size=None,
                 focus_arch="resnet50", mobilenet_width=1.0,
                 small_filters=(16, 32), policy_hidden_units=2048,
                 policy_conv_filters=64, classifier_hidden_units=4096,
                 dropout=0.2, head_dropout=0.2, glance_variant="torchvision",
                 focus_variant="torchvision", **kwargs):
        kwargs.setdefault("name", "adafocus_v2")
        # A functional model ignores `dtype`: it is set below and passed to
        # every layer.
        dtype = kwargs.pop("dtype", None)
        num_classes, num_frames, frame_size, patch_size = (
            common.checked_sizes(num_classes, num_frames, frame_size,
                                 patch_size, glance_arch, focus_arch))
        if glance_size is None:
            glance_size = (RESNET_GLANCE_SIZE if glance_arch == "resnet50"
                           else frame_size)
        glance_size = common.size_pair(glance_size, "glance_size")
        small_filters = [int(f) for f in small_filters]
        dropout = common.rate(dropout, "dropout")
        head_dropout = common.rate(head_dropout, "head_dropout")

        # === Layers ===
        layers = common.frame_layers(
            num_classes, glance_arch=glance_arch, glance_size=glance_size,
            focus_arch=focus_arch, patch_size=patch_size,
            mobilenet_width=mobilenet_width, small_filters=small_filters,
            dtype=dtype, glance_variant=glance_variant,
            focus_variant=focus_variant)
        layers.update({
            "glance_resize": (FrameResize(glance_size, "bilinear",
                                          align_corners=True, dtype=dtype,
                                          name="glance_resize")
                              if glance_size != frame_size else None),
            "glance_dropout": keras.layers.Dropout(
                head_dropout, dtype=dtype, name="glance_dropout"),
            "policy": PolicySTN(int(policy_hidden_units),
                                int(policy_conv_filters),
                                stop_input_gradient=True, dtype=dtype,
                                name="policy"),
            "patch_crop": DifferentiablePatchCrop(
                patch_size, "bilinear", dtype=dtype, name="patch_crop"),
            "focus_dropout": keras.layers.Dropout(
                head_dropout, dtype=dtype, name="focus_dropout"),
            "classifier": PoolingClassifier(
                num_classes, num_frames, int(classifier_hidden_units),
                dropout, dtype=dtype, name="classifier"),
        })
        get = layers.get

        # === Functional Model ===
        frames = common.frames_input(num_frames, frame_size)
        maps, glance_features, glance_logits = _glance(get, frames)
        locations = get("policy")(maps)["locations"]
        logits, focus_logits = _focus_and_classify(
            get, frames, locations, glance_features)
        super().__init__(
            inputs={"frames": frames},
            outputs={"logits": logits, "glance_logits": glance_logits,
                     "focus_logits": focus_logits, "locations": locations},
            **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype

        # === Config ===
        self._remember(
            layers, num_classes=num_classes, num_frames=num_frames,
            frame_size=frame_size, patch_size=patch_size,
            glance_arch=glance_arch, glance_size=glance_size,
            focus_arch=focus_arch, mobilenet_width=float(mobilenet_width),
            small_filters=small_filters,
            policy_hidden_units=int(policy_hidden_units),
            policy_conv_filters=int(policy_conv_filters),
            classifier_hidden_units=int(classifier_hidden_units),
            dropout=dropout, head_dropout=head_dropout,
            glance_variant=glance_variant, focus_variant=focus_variant)

    # ------------------------------------------------------------- parts
    def training_model(self):
        """The two passes of AdaFocus V2 training, sharing one glance.

        Returns:
            A functional `keras.Model` sharing this model's weights:
            `{"frames": [B, T, H, W, 3], "random_locations": [B, T, 2]}`
            (uniform in `[0, 1)`, drawn by the caller) -> float32
            `logits`, `glance_logits`, `focus_logits`, `locations` (the
            policy pass, as this model's outputs; the policy's input maps
            are detached) and `random_logits`, `random_focus_logits` (the
            same classifier and focus head on patches at
            `random_locations`). AdaFocus V2's loss is the mean over the
            two passes of CE(logits) + CE(glance_logits) +
            CE(focus_logits), each against the video label at every step.
        """
        frames = common.frames_input(self.num_frames, self.frame_size)
        random = common.locations_input(self.num_frames, "random_locations")
        maps, glance_features, glance_logits = _glance(self._get, frames)
        locations = self.policy(maps)["locations"]
        logits, focus_logits = _focus_and_classify(
            self._get, frames, locations, glance_features)
        random_logits, random_focus_logits = _focus_and_classify(
            self._get, frames, random, glance_features)
        return keras.Model(
            {"frames": frames, "random_locations": random},
            {"logits": logits, "glance_logits": glance_logits,
             "focus_logits": focus_logits, "locations": locations,
             "random_logits": random_logits,
             "random_focus_logits": random_focus_logits},
            name=f"{self.name}_training")

    def patch_model(self):
        """The model with patch locations given instead of the policy's.

        Returns:
            A functional `keras.Model` sharing this model's weights:
            `{"frames": [B, T, H, W, 3], "locations": [B, T, 2]}` ->
            float32 `logits`, `glance_logits`, `focus_logits` (e.g. random
            or centre patches as baselines of the learned policy).
        """
        frames = common.frames_input(self.num_frames, self.frame_size)
        locations = common.locations_input(self.num_frames, "locations")
        _, glance_features, glance_logits = _glance(self._get, frames)
        logits, focus_logits = _focus_and_classify(
            self._get, frames, locations, glance_features)
        return keras.Model(
            {"frames": frames, "locations": locations},
            {"logits": logits, "glance_logits": glance_logits,
             "focus_logits": focus_logits},
            name=f"{self.name}_patches")

    # ------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(self._shared_config(), head_dropout=self.head_dropout)
        return config
