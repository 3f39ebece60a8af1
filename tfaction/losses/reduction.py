"""Masked reduction shared by tfaction's losses.

The reference losses sum over valid elements and let the caller divide by its
own normaliser (e.g. ActionFormer's moving average of the positive count);
"mean" divides by the number of valid elements instead.
"""

from keras import ops

REDUCTIONS = ("none", "sum", "mean")


def reduce_masked(loss, mask=None, reduction="sum"):
    """Zeroes masked-out elements of `loss`, then reduces.

    Args:
        loss: float tensor of per-element losses.
        mask: optional bool tensor broadcastable to `loss` (True = valid).
        reduction: "none" (masked per-element loss), "sum", or "mean" over
            valid elements (at least 1, so an empty mask gives 0).

    Returns:
        A tensor: `loss`'s shape for "none", else a scalar.

    Example:

    >>> float(reduce_masked(ops.ones((2, 3)), ops.array([[1, 1, 0]] * 2)))
    4.0
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got "
                         f"{reduction!r}")
    count = None
    if mask is not None:
        mask = ops.logical_and(ops.cast(mask, "bool"),
                               ops.ones_like(loss, dtype="bool"))
        loss = ops.where(mask, loss, 0.0)
        count = ops.sum(ops.cast(mask, "float32"))
    if reduction == "none":
        return loss
    total = ops.sum(loss)
    if reduction == "sum":
        return total
    if count is None:
        count = ops.cast(ops.size(loss), "float32")
    return total / ops.maximum(count, 1.0)
