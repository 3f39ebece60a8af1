"""Padded-sequence inputs shared by the layer tests."""

import numpy as np


def length_mask(lengths, steps):
    """bool [B, steps]: True for the first `lengths[b]` steps of row b."""
    return np.arange(steps)[None] < np.asarray(lengths).reshape(-1, 1)


def interior_steps(mask, stride, reach):
    """Output steps whose receptive field holds no padded input step.

    The reference layers read (but do not mask) their input, so a valid
    output step within `reach` input steps of the padding sees padded values;
    only the interior steps must be independent of them.
    """
    t_in = mask.shape[1]
    out = np.zeros((mask.shape[0], t_in // stride), bool)
    for b in range(mask.shape[0]):
        for t in range(out.shape[1]):
            lo = max(0, stride * t - reach)
            hi = min(t_in, stride * t + reach + 1)
            out[b, t] = mask[b, lo:hi].all()
    return out


def normal_inputs(mask, channels, seed=0, zero_padding=True):
    """float32 [B, T, channels] standard normal, zero at padded steps."""
    x = np.random.default_rng(seed).normal(
        size=(*mask.shape, channels)).astype("float32")
    return x * mask[..., None] if zero_padding else x
