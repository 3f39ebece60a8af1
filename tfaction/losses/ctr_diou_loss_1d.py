"""1-D centre Distance-IoU loss on `(left, right)` offsets (ActionFormer).

With predicted offsets `(l_p, r_p)` and target offsets `(l_g, r_g)` measured
from the same point (all `>= 0`):
`I = min(l_p, l_g) + min(r_p, r_g)`, `U = l_p + r_p + l_g + r_g - I`,
`IoU = I / max(U, eps)`, `rho = (r_p - l_p - r_g + l_g) / 2`,
`c = max(l_p, l_g) + max(r_p, r_g)`, `l = 1 - IoU + (rho / max(c, eps))^2`.
Elements outside `mask` (ActionFormer: the non-positive points) contribute 0,
and the masked sum keeps the graph connected when there are no positives
(the reference's `0 * pred.sum()`). Written with `keras.ops` only.

Example:

>>> import numpy as np
>>> float(ctr_diou_loss_1d(np.array([[1.0, 1.0]]), np.array([[1.0, 1.0]])))
0.0
"""

from keras import ops

from tfaction.losses.reduction import reduce_masked

def ctr_diou_loss_1d(y_true, y_pred, mask=None, reduction="sum", eps=1e-8):
    """Masked 1-D centre DIoU loss.

    Args:
        y_true: `[..., 2]` target `(left, right)` distances (>= 0 where
            `mask` is set).
        y_pred: `[..., 2]` predicted distances (>= 0, e.g. after ReLU).
        mask: optional `[...]` bool/float; only these elements count.
        reduction: `"sum"` (reference), `"mean"` (over unmasked elements) or
            `"none"` (per element, masked elements are 0).
        eps: clamp of the union and of the enclosing length.

    Returns:
        float32 scalar, or `[...]` for `"none"`.

    Example:

    >>> import numpy as np
    >>> round(float(ctr_diou_loss_1d(np.array([[1.0, 1.0]], "float32"),
    ...                              np.array([[0.5, 1.5]], "float32"))), 6)
    0.44

    Reference:
        Zheng et al., Distance-IoU Loss, AAAI 2020; `ctr_diou_loss_1d` in
        `libs/modeling/losses.py` of happyharrycn/actionformer_release.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    lp, rp = y_pred[..., 0], y_pred[..., 1]
    lg, rg = y_true[..., 0], y_true[..., 1]
    inter = ops.minimum(lp, lg) + ops.minimum(rp, rg)
    union = lp + rp + lg + rg - inter
    iou = inter / ops.maximum(union, eps)
    len_c = ops.maximum(lp, lg) + ops.maximum(rp, rg)
    rho = 0.5 * (rp - lp - rg + lg)
    loss = 1.0 - iou + ops.square(rho / ops.maximum(len_c, eps))
    return reduce_masked(loss, mask, reduction)
