"""Pyramid levels packed into one sequence for shared stride-1 convolutions.

A head whose weights are shared across the levels of a feature pyramid can
run each layer once on all levels instead of once per level: the levels are
concatenated along time with `pad` zero steps on both sides of each, so a
stride-1 convolution of kernel `2 * pad + 1` (padded by `pad` at the ends)
reads, at every step of a level, exactly what it reads on that level alone
with zero padding. The zeros between levels must be restored before every
convolution (`PackedLevels.separators_to_zero`); the outputs of the steps
of each level come back with `PackedLevels.unpack`. One call per layer
instead of one per level gives a smaller graph (faster tracing) and larger
matrix products.
"""

from keras import ops


class PackedLevels:
    """The levels of a pyramid concatenated along time, separated by zeros.

    Args:
        feats: list of `[B, T_l, C]` tensors (same `B` and `C`).
        masks: list of boolean `[B, T_l]` masks (True = valid step), or
            `None` entries for all-valid levels.
        pad: zero steps on each side of every level (`kernel_size // 2` of
            the convolutions that will run on the packed sequence).

    Attributes:
        x: packed features `[B, N, C]`, `N = sum_l (T_l + 2 pad)`, zero at the
            separator steps.
        mask: packed boolean mask `[B, N]`, False at the separators.

    Example:

    >>> packed = PackedLevels([np.ones((1, 4, 2), "float32"),
    ...                        np.ones((1, 2, 2), "float32")], [None, None],
    ...                       pad=1)
    >>> tuple(packed.x.shape)   # (4 + 2) + (2 + 2) steps
    (1, 10, 2)
    >>> [tuple(y.shape) for y in packed.unpack(packed.x)]
    [(1, 4, 2), (1, 2, 2)]
    """

    def __init__(self, feats, masks, pad):
        self.pad = int(pad)
        widths = [[0, 0], [self.pad, self.pad]]
        steps, parts, mask_parts, real_parts = [], [], [], []
        for x, m in zip(feats, masks):
            length = ops.shape(x)[1]
            steps.append(length)
            if m is None:
                m = ops.ones(ops.shape(x)[:2], dtype="bool")
            parts.append(ops.pad(x, widths + [[0, 0]]))
            mask_parts.append(ops.pad(ops.cast(m, "bool"), widths))
            real_parts.append(ops.pad(ops.ones_like(m, dtype="bool"),
                                      widths))
        self.steps = steps
        self.x = ops.concatenate(parts, axis=1)
        self.mask = ops.concatenate(mask_parts, axis=1)
        self._real = ops.concatenate(real_parts, axis=1)

    def separators_to_zero(self, x):
        """`x` `[B, N, C]` with the separator steps set to 0 (others kept)."""
        return x * ops.cast(self._real, x.dtype)[:, :, None]

    def unpack(self, y):
        """Per-level `[B, T_l, C']` steps of a packed `[B, N, C']` output."""
        outs, start = [], self.pad
        batch, channels = ops.shape(y)[0], ops.shape(y)[2]
        for length in self.steps:
            # ops.slice: its gradient is a pad (StridedSliceGrad is slow)
            outs.append(ops.slice(y, (0, start, 0),
                                  (batch, length, channels)))
            start = start + length + 2 * self.pad
        return outs
