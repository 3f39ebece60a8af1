"""Smooth L1 (Huber) box loss as the TF Object Detection API sums it.

`l(x) = 0.5 x^2` for `|x| <= delta`, `delta (|x| - 0.5 delta)` otherwise,
with `x = prediction - target`, **summed** over the last (box code) axis
and multiplied by a per-box weight: the API's
`WeightedSmoothL1LocalizationLoss` (`tf.losses.huber_loss` with
`delta = 1`, `reduction=NONE`, then `reduce_sum(axis=2)`), which Faster
R-CNN uses in both stages. `keras.losses.Huber` has the same element-wise
formula but *averages* over the last axis (a factor 1/4 for box codes) and
applies Keras' batch reduction, so the TF Object Detection API's loss
scale needs this function. Computed in float32 with `keras.ops`.

Example:

>>> import numpy as np
>>> float(smooth_l1_loss(np.zeros((1, 4)), np.array([[0.5, -2.0, 0, 0]]))[0])
1.625
"""

from keras import ops

REDUCTIONS = ("none", "sum")


def smooth_l1_loss(targets, predictions, weights=None, delta=1.0,
                   reduction="none"):
    """Per-box smooth L1 loss, summed over the code axis.

    Args:
        targets: `[..., K]` regression targets.
        predictions: `[..., K]` predictions.
        weights: optional `[...]` per-box weights (e.g. 1 for sampled
            positive anchors, 0 elsewhere).
        delta: the Huber threshold (the API's 1.0).
        reduction: `"none"` (per box, `[...]`) or `"sum"` (scalar).

    Returns:
        float32 `[...]` or scalar.

    Example:

    >>> import numpy as np
    >>> t = np.zeros((2, 4), "float32")
    >>> p = np.array([[2.0, 0, 0, 0], [0.2, 0, 0, 0]], "float32")
    >>> np.round(np.asarray(smooth_l1_loss(t, p, [1.0, 0.0])), 4).tolist()
    [1.5, 0.0]

    Reference:
        Girshick, "Fast R-CNN", ICCV 2015; TF Object Detection API
        `core/losses.py` (`WeightedSmoothL1LocalizationLoss`).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got "
                         f"{reduction!r}")
    delta = float(delta)
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    diff = ops.abs(ops.cast(predictions, "float32")
                   - ops.cast(targets, "float32"))
    quadratic = ops.minimum(diff, delta)
    loss = 0.5 * ops.square(quadratic) + delta * (diff - quadratic)
    loss = ops.sum(loss, axis=-1)
    if weights is not None:
        loss = loss * ops.cast(weights, "float32")
    return loss if reduction == "none" else ops.sum(loss)
