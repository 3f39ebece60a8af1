"""Tests of `tfaction.layers.frame_resize.FrameResize` (PyTorch's
`F.interpolate` "nearest" and "bilinear" conventions).

The reference here is a per-pixel loop over PyTorch's documented source
coordinates: nearest `floor(d * in / out)` (float32 scale); bilinear
`d * (in - 1) / (out - 1)` (align_corners) or `(d + 0.5) * in / out - 0.5`
clamped at 0, blending `floor(src)` and `min(floor(src) + 1, in - 1)`;
coordinates in float32, as PyTorch computes them for float images.
"""

import math

import numpy as np
import pytest

from tfaction.layers.frame_resize import FrameResize
from tfaction.testing import run_layer_test


def source(d, n_in, n_out, method, align_corners):
    if method == "nearest":
        return min(int(math.floor(np.float32(d) * (np.float32(n_in)
                                                  / np.float32(n_out)))),
                   n_in - 1), None
    # PyTorch's CPU kernel computes the coordinates of float images in
    # float32.
    f = np.float32
    if align_corners:
        s = d * (f(n_in - 1) / f(n_out - 1)) if n_out > 1 else f(0)
    else:
        s = max((f(d) + f(0.5)) * (f(n_in) / f(n_out)) - f(0.5), f(0))
    s = f(s)
    return int(math.floor(s)), float(s - f(math.floor(s)))


def reference(x, size, method, align_corners=False):
    n, h, w, c = x.shape
    out = np.zeros((n, size[0], size[1], c))
    for i in range(size[0]):
        r, fr = source(i, h, size[0], method, align_corners)
        for j in range(size[1]):
            q, fq = source(j, w, size[1], method, align_corners)
            if method == "nearest":
                out[:, i, j] = x[:, r, q]
                continue
            r1, q1 = min(r + 1, h - 1), min(q + 1, w - 1)
            out[:, i, j] = ((1 - fr) * (1 - fq) * x[:, r, q]
                            + (1 - fr) * fq * x[:, r, q1]
                            + fr * (1 - fq) * x[:, r1, q]
                            + fr * fq * x[:, r1, q1])
    return out


def frames(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("kwargs", [
    {"size": [3, 5], "method": "nearest", "align_corners": False},
    {"size": [4, 4], "method": "bilinear", "align_corners": True},
    {"size": [3, 7], "method": "bilinear", "align_corners": False},
], ids=["nearest", "bilinear_align_corners", "bilinear"])
def test_contract(kwargs):
    x = frames((2, 3, 7, 6, 2))
    out = run_layer_test(FrameResize, kwargs, x,
                         expected_output_shape=(2, 3, *kwargs["size"], 2),
                         expected_num_trainable_weights=0,
                         run_training_check=False)
    want = reference(x.reshape(6, 7, 6, 2), kwargs["size"],
                     kwargs["method"], kwargs["align_corners"])
    np.testing.assert_allclose(out.reshape(want.shape), want, atol=1e-5)


@pytest.mark.parametrize("method,align", [("nearest", False),
                                          ("bilinear", True),
                                          ("bilinear", False)])
@pytest.mark.parametrize("shape,size", [((224, 224), (96, 96)),
                                        ((9, 13), (20, 4))])
def test_matches_pytorch_coordinates(method, align, shape, size):
    x = frames((1, *shape, 1), seed=1)
    got = np.asarray(FrameResize(size, method, align_corners=align)(x))
    np.testing.assert_allclose(got, reference(x, size, method, align),
                               atol=1e-5)


def test_hand_computed_and_identity():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    corners = FrameResize(2, "bilinear", align_corners=True)(x)
    np.testing.assert_array_equal(np.asarray(corners)[0, :, :, 0],
                                  [[0, 3], [12, 15]])
    half = FrameResize(2, "bilinear")(x)  # centres of 2 x 2 blocks
    np.testing.assert_allclose(np.asarray(half)[0, :, :, 0],
                               [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(FrameResize(4)(x), x)
    np.testing.assert_array_equal(np.asarray(FrameResize(3)(x))[0, :, :, 0],
                                  [[0, 1, 2], [4, 5, 6], [8, 9, 10]])


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        FrameResize(4, "bicubic")
    with pytest.raises(ValueError, match="align_corners"):
        FrameResize(4, "nearest", align_corners=True)
    with pytest.raises(ValueError, match="positive"):
        FrameResize((4, 0))
    with pytest.raises(ValueError, match="static H and W"):
        FrameResize(4).build((None, None, None, 3))
