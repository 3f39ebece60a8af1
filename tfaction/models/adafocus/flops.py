"""GFLOPs per video of an AdaFocus V2 model, in the papers' convention.

The AdaFocus papers report compute as "GFLOPs" counted by `thop`, i.e.
multiply-accumulates (MACs) of the convolutions and linear layers. This
module counts the same products of a built `AdaFocusV2`:

* trunks: every `Conv2D` (`H_out * W_out * kh * kw * C_in / groups *
  C_out`), `DepthwiseConv2D` (`H_out * W_out * kh * kw * C * multiplier`)
  and `Dense` of the glance trunk on its input size and of the focus trunk
  on a `P x P` patch (output sizes measured by running the trunk once);
* the policy: its 1x1 conv on the glance map, its dense layers and its
  GRU (input and recurrent kernels), once per frame;
* the classifier: the embedding and one step's head per frame; the two
  auxiliary heads (glance and focus), which the model computes too.

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
    glance_size = tuple(model.glance_size)
    glance = trunk_macs(model.glance, glance_size)
    focus = trunk_macs(model.focus, (model.patch_size, model.patch_size))
    maps = model.glance.compute_output_shape((None, *glance_size, 3))
    policy = _kernel_macs(model.policy, maps[1] * maps[2])
    classifier = model.classifier
    embedding = math.prod(classifier.embedding.kernel.shape)
    head = math.prod(classifier.head_kernel.shape[1:])
    heads = (math.prod(model.glance_head.kernel.shape)
             + math.prod(model.focus_head.kernel.shape))
    parts = {"glance": glance, "focus": focus, "policy": policy,
             "classifier": embedding + head, "heads": heads}
    out = {key: value / 1e9 for key, value in parts.items()}
    out["per_frame"] = sum(parts.values()) / 1e9
    out["per_video"] = out["per_frame"] * model.num_frames
    return out
