"""GFLOPs per video of AdaFocus models, in the papers' convention.

The AdaFocus papers report compute as "GFLOPs" counted by `thop`, i.e.
multiply-accumulates (MACs) of the convolutions and linear layers. This
module counts the same products of a built `AdaFocusV2` or `AdaFocusV1`:

* trunks: every `Conv2D` (`H_out * W_out * kh * kw * C_in / groups *
  C_out`), `DepthwiseConv2D` (`H_out * W_out * kh * kw * C * multiplier`)
  and `Dense` of the glance trunk on its input size and of the focus trunk
  on a `P x P` patch (output sizes measured by running the trunk once);
* the policy: its 1x1 conv on the glance map, its dense layers and its
  GRU (input and recurrent kernels), once per frame;
* the classifier, once per frame: V2's embedding and one step's head,
  V1's GRU (input and recurrent kernels) and its head; the two auxiliary
  heads (glance and focus), which both models compute too.

`frame_classifier_gflops` counts a trunk and a linear head on every whole
frame the same way: the full-frame ResNet-50 that AdaFocus is compared
with (about 4.1 GFLOPs per 224 x 224 frame).

Batch norms, activations, pooling and the crop are not counted (as in the
authors' tables, where they are a fraction of a percent).

Example:

```python
model = AdaFocusV2(num_classes=200, patch_size=128)
gflops = adafocus_v2_gflops(model)
print(gflops["per_video"])   # about 27 for 16 frames (MobileNet-V2 +
                             # ResNet-50 at 128 x 128)
```
"""

import math

import keras
import numpy as np

from tfaction import errors


def trunk_macs(trunk, size):
    """MACs of one frame through a functional trunk.

    Args:
        trunk: a flat functional `keras.Model` (no nested models), input
            `[N, H, W, C]`.
        size: `(height, width)` of the frame.

    Returns:
        The number of multiply-accumulates (int).

    Raises:
        ConfigError: the trunk nests another model.

    Example:

    ```python
    trunk_macs(build_mobilenet_v2(), (224, 224))   # ~ 0.30e9
    ```
    """
    nested = [layer.name for layer in trunk.layers
              if isinstance(layer, keras.Model)]
    if nested:
        raise errors.ConfigError(f"cannot count the MACs of trunk "
                                 f"{trunk.name!r}: it nests models {nested}")
    counted = [layer for layer in trunk.layers
               if isinstance(layer, (keras.layers.Conv2D,
                                     keras.layers.DepthwiseConv2D,
                                     keras.layers.Dense))]
    if not counted:
        return 0
    probe = keras.Model(trunk.inputs, [layer.output for layer in counted])
    channels = trunk.inputs[0].shape[-1]
    outputs = probe([np.zeros((1, *size, channels), "float32")])
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    total = 0
    for layer, output in zip(counted, outputs):
        shape = tuple(output.shape)
        if isinstance(layer, keras.layers.Dense):
            positions = math.prod(shape[1:-1])
        else:
            positions = shape[1] * shape[2]
        # Conv2D (kh, kw, C_in / groups, C_out), DepthwiseConv2D (kh, kw,
        # C, multiplier), Dense (C_in, C_out).
        total += positions * math.prod(layer.kernel.shape)
    return int(total)


def _kernel_macs(layer, map_positions):
    """MACs of a vector layer's kernels once: 2-D kernels count their
    size, 4-D (conv) kernels their size times the map positions."""
    total = 0
    for variable in layer.trainable_variables:
        name = variable.path.split("/")[-1]
        if "kernel" not in name:
            continue
        size = math.prod(variable.shape)
        total += size * (map_positions if len(variable.shape) == 4 else 1)
    return total


def _per_video(parts, num_frames):
    """GMACs of `parts` (MACs per frame) with their sum `per_frame` and
    `per_video` (`per_frame * num_frames`)."""
    out = {key: value / 1e9 for key, value in parts.items()}
    out["per_frame"] = sum(parts.values()) / 1e9
    out["per_video"] = out["per_frame"] * num_frames
    return out


def _adafocus_gflops(model, classifier_macs):
    """`_per_video` of an AdaFocus model whose classifier costs
    `classifier_macs` per frame."""
    glance_size = tuple(model.glance_size)
    glance = trunk_macs(model.glance, glance_size)
    focus = trunk_macs(model.focus, (model.patch_size, model.patch_size))
    maps = model.glance.compute_output_shape((None, *glance_size, 3))
    policy = _kernel_macs(model.policy, maps[1] * maps[2])
    heads = (math.prod(model.glance_head.kernel.shape)
             + math.prod(model.focus_head.kernel.shape))
    parts = {"glance": glance, "focus": focus, "policy": policy,
             "classifier": classifier_macs, "heads": heads}
    return _per_video(parts, model.num_frames)


def adafocus_v2_gflops(model):
    """GFLOPs (GMACs, as the AdaFocus papers count) of an `AdaFocusV2`.

    Args:
        model: a built `AdaFocusV2`.

    Returns:
        Dict of floats in GMACs: `glance`, `focus`, `policy`,
        `classifier` (embedding + one head), `heads` (the two auxiliary
        heads) per frame, `per_frame` (their sum) and `per_video`
        (`per_frame * num_frames`).

    Example:

    ```python
    adafocus_v2_gflops(model)["per_video"]
    ```
    """
    classifier = model.classifier
    embedding = math.prod(classifier.embedding.kernel.shape)
    head = math.prod(classifier.head_kernel.shape[1:])
    return _adafocus_gflops(model, embedding + head)


def adafocus_v1_gflops(model):
    """GFLOPs (GMACs, as the AdaFocus papers count) of an `AdaFocusV1`.

    Args:
        model: a built `AdaFocusV1`.

    Returns:
        Dict of floats in GMACs: `glance`, `focus`, `policy` (the
        `ActorCritic`: conv, dense, GRU, actor and critic), `classifier`
        (the `RecurrentClassifier`'s GRU and head), `heads` (the stage-0
        glance and focus heads) per frame, `per_frame` (their sum) and
        `per_video` (`per_frame * num_frames`): about 26.5 for 16 frames
        of MobileNet-V2 + ResNet-50 at 128 x 128 (the paper's 26.6 rounds
        the policy and GRUs to 0.02 per frame).

    Example:

    ```python
    adafocus_v1_gflops(AdaFocusV1(num_classes=200))["per_video"]
    ```
    """
    return _adafocus_gflops(model, _kernel_macs(model.classifier, 1))


def frame_classifier_gflops(trunk, head, frame_size, num_frames):
    """GFLOPs (GMACs) of a trunk and a `Dense` head on every whole frame.

    The baseline AdaFocus is measured against: its focus network (a
    ResNet-50, 4.09 GMACs at 224 x 224) on the full frames instead of on
    patches.

    Args:
        trunk: a flat functional trunk (`trunk_macs`).
        head: the built `Dense` layer on the pooled trunk features.
        frame_size: `(height, width)` of the frames.
        num_frames: frames per video.

    Returns:
        Dict of floats in GMACs: `trunk`, `head` per frame, `per_frame`
        (their sum) and `per_video` (`per_frame * num_frames`).

    Example:

    ```python
    frame_classifier_gflops(resnet, head, (224, 224), 16)["per_video"]
    ```
    """
    parts = {"trunk": trunk_macs(trunk, tuple(frame_size)),
             "head": math.prod(head.kernel.shape)}
    return _per_video(parts, num_frames)
