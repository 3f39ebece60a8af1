"""Faster R-CNN second-stage loss: multi-label sigmoid classes + boxes.

For image `i` with valid proposals `P_i` (`class_weights`, e.g. from
`tfaction.ops.detection_targets.box_classifier_targets`):

* classification: `sum_{r in P_i} sum_{c=0..C} CE(t_rc, logit_rc) /
  max(|P_i|, 1)`, an independent sigmoid cross-entropy per column of the
  `C + 1` targets (column 0 = background; unmatched proposals have only
  background = 1), the API's `WeightedSigmoidClassificationLoss` summed
  over classes — the Video Action Transformer's multi-label action loss;
* localisation: class-agnostic smooth L1 (`delta = 1`, summed over the 4
  codes) over matched proposals, divided by the same `max(|P_i|, 1)`;

each multiplied by its weight (`second_stage_classification_loss_weight =
1`, `second_stage_localization_loss_weight = 2` in the API's Faster R-CNN
sample configs) and averaged over images, as
`FasterRCNNMetaArch._loss_box_classifier`. Float32, `keras.ops`.

Distribution: `reduction="none"` gives the per-image losses `[B]` (sum and
divide by the global batch size).

Example:

>>> import numpy as np
>>> t = {"class_targets": np.array([[[1.0, 0.0]]], "float32"),
...      "class_weights": np.ones((1, 1), "float32"),
...      "box_targets": np.zeros((1, 1, 4), "float32"),
...      "box_weights": np.zeros((1, 1), "float32")}
>>> out = box_classifier_loss(np.zeros((1, 1, 2)), np.zeros((1, 1, 4)), t)
>>> round(float(out["classification_loss"]), 6)
1.386294
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


def box_classifier_loss(class_logits, box_deltas, targets, *,
                        localization_weight=2.0, classification_weight=1.0,
                        reduction="mean"):
    """Second-stage classification and class-agnostic box losses.

    Args:
        class_logits: `[B, R, C + 1]` logits (column 0 = background).
        box_deltas: `[B, R, 4]` class-agnostic box codes relative to the
            proposals.
        targets: mapping with `class_targets` `[B, R, C + 1]`,
            `class_weights` `[B, R]` (1 = valid proposal), `box_targets`
            `[B, R, 4]`, `box_weights` `[B, R]` (1 = matched valid proposal)
            (the keys of `box_classifier_targets`' result).
        localization_weight: weight of the box loss (2.0).
        classification_weight: weight of the class loss (1.0).
        reduction: `"mean"` over images, `"sum"`, or `"none"` (`[B]`).

    Returns:
        dict with float32 `localization_loss` and `classification_loss`.

    Example:

    >>> import numpy as np
    >>> t = {"class_targets": np.zeros((2, 5, 4), "float32"),
    ...      "class_weights": np.ones((2, 5), "float32"),
    ...      "box_targets": np.zeros((2, 5, 4), "float32"),
    ...      "box_weights": np.zeros((2, 5), "float32")}
    >>> out = box_classifier_loss(np.zeros((2, 5, 4)), np.zeros((2, 5, 4)),
    ...                           t, reduction="none")
    >>> np.round(np.asarray(out["classification_loss"], "float64"), 4).tolist()
    [2.7726, 2.7726]

    Reference:
        Girdhar et al., "Video Action Transformer Network", CVPR 2019
        (sigmoid cross-entropy per action class, class-agnostic smooth L1);
        TF Object Detection API `meta_architectures/faster_rcnn_meta_arch.py`
        (`_loss_box_classifier`), `core/losses.py`.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got "
                         f"{reduction!r}")
    logits = ops.cast(class_logits, "float32")
    valid = ops.cast(targets["class_weights"], "float32")
    normalizer = ops.maximum(ops.sum(valid, axis=1), 1.0)
    cross_entropy = ops.binary_crossentropy(
        ops.cast(targets["class_targets"], "float32"), logits,
        from_logits=True)
    classification = ops.sum(ops.sum(cross_entropy, axis=-1) * valid,
                             axis=1) / normalizer
    localization = ops.sum(
        smooth_l1_loss(targets["box_targets"], box_deltas,
                       ops.cast(targets["box_weights"], "float32") * valid),
        axis=1) / normalizer
    return {
        "localization_loss": _reduce(
            float(localization_weight) * localization, reduction),
        "classification_loss": _reduce(
            float(classification_weight) * classification, reduction),
    }
