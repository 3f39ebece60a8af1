"""Sigmoid focal loss (fvcore form) as ActionFormer uses it.

`l = alpha_t (1 - p_t)^gamma * BCE(logit, y')` with `p = sigmoid(logit)`,
`p_t = p y' + (1 - p)(1 - y')`, `alpha_t = alpha y' + (1 - alpha)(1 - y')`, and
the optionally smoothed target `y' = y (1 - eps) + eps / (C + 1)` (`C` = the
size of the last axis), applied exactly as ActionFormer's
`PtTransformer.losses` does before calling the loss. Elements are masked
(padded points contribute nothing) and by default **summed**: the caller
divides by its own normaliser (ActionFormer: an EMA of the positive count).
This differs from `keras.losses.BinaryFocalCrossentropy` (mean reduction and
another smoothing formula). Written with `keras.ops` only.

Example:

>>> import numpy as np
>>> round(float(sigmoid_focal_loss(np.array([[1.0, 0.0]]),
...                                np.array([[0.0, 0.0]]))), 6)
0.173287
"""

from keras import ops

from tfaction.losses.reduction import reduce_masked

def sigmoid_focal_loss(y_true, logits, mask=None, alpha=0.25, gamma=2.0,
                       label_smoothing=0.0, reduction="sum"):
    """Masked sigmoid focal loss on logits.

    Args:
        y_true: `[..., C]` targets in `[0, 1]` (multi-hot allowed).
        logits: `[..., C]` raw scores, same shape.
        mask: optional `[...]` (no class axis) or `[..., C]` bool/float; only
            elements with a non-zero mask contribute (e.g. valid points).
        alpha: weight of positives, `< 0` disables the alpha term (fvcore).
        gamma: focusing exponent.
        label_smoothing: `eps`; targets become `y (1 - eps) + eps / (C + 1)`.
        reduction: `"sum"` (reference), `"mean"` (over unmasked elements) or
            `"none"` (element-wise, masked elements are 0).

    Returns:
        float32 scalar (`"sum"`/`"mean"`) or `[..., C]` tensor (`"none"`).

    Example:

    >>> import numpy as np
    >>> y = np.array([[[1.0, 0.0]], [[0.0, 0.0]]], "float32")
    >>> x = np.array([[[2.0, -3.0]], [[5.0, 5.0]]], "float32")
    >>> m = np.array([[True], [False]])
    >>> round(float(sigmoid_focal_loss(y, x, mask=m)), 6)
    0.000533

    Reference:
        Lin et al., Focal Loss for Dense Object Detection, ICCV 2017;
        `sigmoid_focal_loss` in `libs/modeling/losses.py` and
        `PtTransformer.losses` in `libs/modeling/meta_archs.py` of
        happyharrycn/actionformer_release (from fvcore).
    """
    logits = ops.cast(logits, "float32")
    y = ops.cast(y_true, "float32")
    if label_smoothing:
        num_classes = logits.shape[-1]
        y = y * (1.0 - label_smoothing) + label_smoothing / (num_classes + 1)
    p = ops.sigmoid(logits)
    # Numerically stable BCE with logits: max(x, 0) - x y + log(1 + e^-|x|).
    ce = (ops.relu(logits) - logits * y
          + ops.log1p(ops.exp(-ops.abs(logits))))
    p_t = p * y + (1.0 - p) * (1.0 - y)
    loss = ce * ops.power(1.0 - p_t, gamma)
    if alpha >= 0:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    if mask is not None:
        mask = ops.convert_to_tensor(mask)
        if len(mask.shape) == len(loss.shape) - 1:  # per-point mask
            mask = mask[..., None]
    return reduce_masked(loss, mask, reduction)
