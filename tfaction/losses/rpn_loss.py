"""Faster R-CNN RPN loss (objectness + box regression), TF OD API scaling.

For image `i` with sampled anchors `S_i` (`objectness_weights`, e.g. from
`tfaction.ops.detection_targets.rpn_targets`, 256 per image):

* objectness: `sum_{n in S_i} CE(objectness_n, logit_n) / max(|S_i|, 1)`,
  sigmoid cross-entropy on one logit per anchor (equal to the API's 2-way
  softmax cross-entropy on `[background, object]` logits);
* localisation: `sum_{n in S_i, positive} smoothL1(deltas_n - targets_n) /
  max(|S_i|, 1)`, smooth L1 with `delta = 1` summed over the 4 codes
  (`tfaction.losses.smooth_l1_loss`), normalised by the number of
  *sampled* anchors, not of positives;

each multiplied by its weight (`first_stage_localization_loss_weight = 2`,
`first_stage_objectness_loss_weight = 1` in the API's Faster R-CNN sample
configs) and averaged over images, as `FasterRCNNMetaArch._loss_rpn`.
Computed in float32 with `keras.ops`.

Distribution: `reduction="none"` returns the per-image losses `[B]`; sum
them and divide by the global batch size (e.g.
`GlobalBatchOptimizer.compute_loss`) so that 1 and N replicas train alike.

Example:

>>> import numpy as np
>>> targets = {"objectness": np.array([[1.0, 0.0]], "float32"),
...            "objectness_weights": np.ones((1, 2), "float32"),
...            "box_targets": np.zeros((1, 2, 4), "float32"),
...            "box_weights": np.array([[1.0, 0.0]], "float32")}
>>> out = rpn_loss(np.zeros((1, 2), "float32"),
...                np.zeros((1, 2, 4), "float32"), targets)
>>> round(float(out["objectness_loss"]), 6)
0.693147
"""

from keras import ops

from tfaction.losses.smooth_l1_loss import smooth_l1_loss

REDUCTIONS = ("none", "sum", "mean")


def _reduce(per_image, reduction):
    if reduction == "none":
        return per_image
    if reduction == "sum":
        return ops.sum(per_image)
    return ops.mean(per_image)


def rpn_loss(objectness_logits, box_deltas, targets, *,
             localization_weight=2.0, objectness_weight=1.0,
             reduction="mean"):
    """RPN objectness and localisation losses.

    Args:
        objectness_logits: `[B, N]` logits (`RegionProposalHead`).
        box_deltas: `[B, N, 4]` predicted codes.
        targets: mapping with float `[B, N]` `objectness` (1 = object),
            `objectness_weights` (1 = sampled), `box_weights` (1 = sampled
            positive) and `[B, N, 4]` `box_targets` (the keys of
            `rpn_targets`' result; other keys are ignored).
        localization_weight: weight of the localisation loss (2.0).
        objectness_weight: weight of the objectness loss (1.0).
        reduction: `"mean"` over images (the API's scalar), `"sum"`, or
            `"none"` (per image `[B]`).

    Returns:
        dict with float32 `localization_loss` and `objectness_loss`
        (weighted), scalars or `[B]`.

    Example:

    >>> import numpy as np
    >>> t = {"objectness": np.zeros((2, 3), "float32"),
    ...      "objectness_weights": np.ones((2, 3), "float32"),
    ...      "box_targets": np.zeros((2, 3, 4), "float32"),
    ...      "box_weights": np.zeros((2, 3), "float32")}
    >>> out = rpn_loss(np.zeros((2, 3)), np.zeros((2, 3, 4)), t,
    ...                reduction="none")
    >>> tuple(out["objectness_loss"].shape)
    (2,)

    Reference:
        Ren et al., "Faster R-CNN", NeurIPS 2015; TF Object Detection API
        `meta_architectures/faster_rcnn_meta_arch.py` (`_loss_rpn`),
        `core/losses.py`.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got "
                         f"{reduction!r}")
    logits = ops.cast(objectness_logits, "float32")
    sampled = ops.cast(targets["objectness_weights"], "float32")
    normalizer = ops.maximum(ops.sum(sampled, axis=1), 1.0)
    cross_entropy = ops.binary_crossentropy(
        ops.cast(targets["objectness"], "float32"), logits, from_logits=True)
    objectness = ops.sum(cross_entropy * sampled, axis=1) / normalizer
    localization = ops.sum(
        smooth_l1_loss(targets["box_targets"], box_deltas,
                       targets["box_weights"]), axis=1) / normalizer
    return {
        "localization_loss": _reduce(
            float(localization_weight) * localization, reduction),
        "objectness_loss": _reduce(float(objectness_weight) * objectness,
                                   reduction),
    }
