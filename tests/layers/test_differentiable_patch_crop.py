"""Tests of `tfaction.layers.differentiable_patch_crop`.

Reference: AdaFocus V2's `get_patches_frame` (`affine_grid` + `grid_sample`,
bilinear, zero padding, `align_corners=False`), run by the bundle's author
in float64 on CPU; every `*.npz` case of every `adafocus_crop*` bundle
(`$TFACTION_ANCHORS` and tests/anchors) is checked, with every setting read
from the case file. AdaFocus V1's integer crop is checked against numpy
slices at `floor(float32(a) * (H - P))`.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import bundle_dirs
from tfaction.layers import differentiable_patch_crop as module
from tfaction.layers.differentiable_patch_crop import DifferentiablePatchCrop
from tfaction.testing import run_layer_test
from tfaction.testing.docstring_checks import check_docstring_examples

# Anchor tolerances (the bundle README: about 1e-12 in float64, about 1e-5
# in float32); the location gradient is compared relative to its largest
# reference entry (it is scaled by H - P pixels per unit location).
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}
# A crop origin within this many pixels of an integer is a kink of the
# bilinear crop (not differentiable in the location): its location gradient
# is one-sided and is not compared.
KINK = 1e-6


# ----------------------------------------------------------------------------
# Parity with the authors' code.

@pytest.fixture(scope="module")
def crop_cases(anchors_dir):
    """[(name, npz dict)] for every case file of every adafocus_crop bundle."""
    files = [f for root in bundle_dirs(anchors_dir, "adafocus_crop", ())
             for f in sorted(root.glob("*.npz"))]
    if not files:
        pytest.fail(f"no adafocus_crop*/*.npz case under {anchors_dir}")
    cases = []
    for f in files:
        with np.load(f, allow_pickle=False) as stored:
            cases.append((f"{f.parent.name}/{f.name}", dict(stored)))
    return cases


def _nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


def _nchw(x):
    return np.transpose(x, (0, 3, 1, 2))


def _crop_and_grads(layer, frames, locations, upstream, jit=False):
    """Patches and d sum(patches * upstream) / d (frames, locations)."""

    def run(x, a):
        with tf.GradientTape() as tape:
            tape.watch([x, a])
            patches = layer([x, a])
            loss = tf.reduce_sum(tf.cast(patches, upstream.dtype) * upstream)
        grad_x, grad_a = tape.gradient(loss, [x, a])
        if grad_a is None:
            grad_a = tf.zeros_like(a)
        return patches, tf.convert_to_tensor(grad_x), grad_a

    fn = tf.function(run, jit_compile=True) if jit else run
    outputs = fn(tf.constant(frames), tf.constant(locations))
    return [np.asarray(t) for t in outputs]


def _origins(case):
    """Crop origins in pixels, `actions * (image_size - patch_size)`."""
    span = int(case["image_size"]) - int(case["patch_size"])
    return case["actions"] * span


def test_anchor_cases_have_the_documented_layout(crop_cases):
    for name, case in crop_cases:
        n, c, h, w = case["images"].shape
        p = int(case["patch_size"])
        assert h == w == int(case["image_size"]), name
        assert case["actions"].shape == (n, 2), name
        for key in ("patches", "upstream"):
            assert case[key].shape == (n, c, p, p), (name, key)
        assert case["grad_actions"].shape == (n, 2), name
        assert case["grad_images"].shape == (n, c, h, w), name
        # At least one crop off the integer grid: the location gradient is
        # compared somewhere.
        frac = np.abs(_origins(case) - np.round(_origins(case)))
        assert (frac > KINK).all(axis=1).any(), name


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_parity_with_reference(crop_cases, dtype, jit):
    tol = TOLERANCE[dtype]
    for name, case in crop_cases:
        layer = DifferentiablePatchCrop(int(case["patch_size"]), dtype=dtype)
        patches, grad_x, grad_a = _crop_and_grads(
            layer, _nhwc(case["images"]).astype(dtype),
            case["actions"].astype(dtype), _nhwc(case["upstream"]), jit)
        assert patches.dtype == dtype, name
        err = np.abs(_nchw(patches) - case["patches"]).max()
        assert err <= tol, (name, dtype, "patches", err)
        err = np.abs(_nchw(grad_x) - case["grad_images"]).max()
        assert err <= tol, (name, dtype, "grad_images", err)
        origins = _origins(case)
        smooth = (np.abs(origins - np.round(origins)) > KINK).all(axis=1)
        want = case["grad_actions"][smooth]
        err = np.abs(grad_a[smooth] - want).max() / np.abs(want).max()
        assert err <= tol, (name, dtype, "grad_actions", err)


def test_integer_mode_is_the_reference_crop_on_the_pixel_grid(crop_cases):
    # Where the reference's origin is integral, its crop is an exact slice,
    # which the integer (V1) mode reproduces.
    for name, case in crop_cases:
        origins = _origins(case)
        on_grid = (np.abs(origins - np.round(origins)) <= KINK).all(axis=1)
        if not on_grid.any():
            continue
        # Nudge the location up by a hair so that float32 `floor` lands on
        # the integer the float64 reference samples.
        span = int(case["image_size"]) - int(case["patch_size"])
        actions = (np.round(origins[on_grid]) + 1e-3) / span
        layer = DifferentiablePatchCrop(int(case["patch_size"]),
                                        mode="integer", dtype="float64")
        got = layer([_nhwc(case["images"][on_grid]),
                     actions.astype("float32")])
        np.testing.assert_array_equal(_nchw(np.asarray(got)),
                                      case["patches"][on_grid], name)


# ----------------------------------------------------------------------------
# Bilinear mode against a numpy closed form.

def np_bilinear_crop(frames, locations, patch_size):
    """`patch[r, s] = bilinear(frame, y1 + r, x1 + s)`, zeros outside."""
    n, h, w, c = frames.shape
    out = np.zeros((n, patch_size, patch_size, c), np.float64)
    padded = np.zeros((n, h + 2 * patch_size + 4, w + 2 * patch_size + 4, c))
    pad = patch_size + 2
    padded[:, pad:pad + h, pad:pad + w] = frames
    for i in range(n):
        y1 = locations[i, 0] * (h - patch_size)
        x1 = locations[i, 1] * (w - patch_size)
        y0, x0 = int(np.floor(y1)), int(np.floor(x1))
        fy, fx = y1 - y0, x1 - x0
        for r in range(patch_size):
            for s in range(patch_size):
                yy, xx = y0 + r + pad, x0 + s + pad
                out[i, r, s] = ((1 - fy) * (1 - fx) * padded[i, yy, xx]
                                + (1 - fy) * fx * padded[i, yy, xx + 1]
                                + fy * (1 - fx) * padded[i, yy + 1, xx]
                                + fy * fx * padded[i, yy + 1, xx + 1])
    return out


def _frames(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def test_bilinear_matches_numpy_non_square_and_outside():
    frames = _frames((4, 9, 13, 2))
    # Inside, corners, and outside [0, 1] (zero padding reaches the patch).
    locations = np.array([[0.37, 0.81], [1.0, 0.0], [-0.3, 0.5],
                          [0.6, 1.25]])
    layer = DifferentiablePatchCrop(5, dtype="float64")
    got = np.asarray(layer([frames, locations]))
    want = np_bilinear_crop(frames, locations, 5)
    np.testing.assert_allclose(got, want, atol=1e-13, rtol=0)
    assert (want[2, 0] == 0).all() and (want[3, :, -1] == 0).all()


def test_location_gradient_matches_finite_differences():
    frames = _frames((3, 10, 12, 2), seed=1)
    locations = np.array([[0.23, 0.61], [0.77, 0.09], [0.51, 0.44]])
    upstream = _frames((3, 4, 4, 2), seed=2)
    layer = DifferentiablePatchCrop(4, dtype="float64")
    _, _, grad_a = _crop_and_grads(layer, frames, locations, upstream)
    eps = 1e-6
    numeric = np.zeros_like(locations)
    for idx in np.ndindex(*locations.shape):
        plus, minus = locations.copy(), locations.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (np.sum(np_bilinear_crop(frames, plus, 4) * upstream)
                        - np.sum(np_bilinear_crop(frames, minus, 4)
                                 * upstream)) / (2 * eps)
    assert np.abs(grad_a).min() > 0
    np.testing.assert_allclose(grad_a, numeric, rtol=1e-6, atol=1e-6)


def test_frames_with_time_axis_crop_each_frame():
    frames = _frames((2, 3, 8, 8, 2), seed=3).astype("float32")
    locations = np.random.default_rng(4).uniform(size=(2, 3, 2)).astype(
        "float32")
    for mode in ("bilinear", "integer"):
        layer = DifferentiablePatchCrop(5, mode=mode)
        got = np.asarray(layer([frames, locations]))
        assert got.shape == (2, 3, 5, 5, 2)
        flat = np.asarray(layer([frames.reshape(6, 8, 8, 2),
                                 locations.reshape(6, 2)]))
        np.testing.assert_array_equal(got.reshape(6, 5, 5, 2), flat)


# ----------------------------------------------------------------------------
# Integer mode (AdaFocus V1) against numpy slices.

def test_integer_mode_matches_numpy_slices():
    p, h, w = 5, 12, 11
    frames = _frames((10, h, w, 3), seed=5).astype("float32")
    # V1's 7 x 7 grid {0, 1/6, ..., 1} in float32, plus random positions.
    grid = np.arange(7, dtype="float32") / np.float32(6)
    locations = np.concatenate([
        np.stack([grid, grid[::-1]], axis=1),
        np.random.default_rng(6).uniform(size=(3, 2)).astype("float32")])
    upstream = _frames((10, p, p, 3), seed=7).astype("float32")
    start = np.floor(locations * np.array([h - p, w - p], "float32"))
    start = start.astype(int)
    want = np.stack([frames[i, y:y + p, x:x + p]
                     for i, (y, x) in enumerate(start)])
    want_grad = np.zeros_like(frames)
    for i, (y, x) in enumerate(start):
        want_grad[i, y:y + p, x:x + p] = upstream[i]
    layer = DifferentiablePatchCrop(p, mode="integer")
    for jit in (False, True):
        got, grad_x, grad_a = _crop_and_grads(layer, frames, locations,
                                              upstream, jit)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(grad_x, want_grad)
        # No gradient with respect to the locations.
        np.testing.assert_array_equal(grad_a, 0)


def test_integer_mode_clips_locations_outside_the_unit_square():
    frames = _frames((2, 7, 7, 1), seed=8).astype("float32")
    layer = DifferentiablePatchCrop(3, mode="integer")
    got = np.asarray(layer([frames, np.array([[-0.5, 1.5], [2.0, -1.0]],
                                             "float32")]))
    np.testing.assert_array_equal(got[0], frames[0, 0:3, 4:7])
    np.testing.assert_array_equal(got[1], frames[1, 4:7, 0:3])


# ----------------------------------------------------------------------------
# XLA, mixed precision, the Keras contract, errors.

@pytest.mark.parametrize("mode", ["bilinear", "integer"])
def test_jit_matches_eager_values_and_gradients(mode):
    frames = _frames((3, 2, 16, 14, 3), seed=9).astype("float32")
    locations = np.random.default_rng(10).uniform(size=(3, 2, 2)).astype(
        "float32")
    upstream = _frames((3, 2, 6, 6, 3), seed=11).astype("float32")
    layer = DifferentiablePatchCrop(6, mode=mode)
    eager = _crop_and_grads(layer, frames, locations, upstream)
    xla = _crop_and_grads(layer, frames, locations, upstream, jit=True)
    for e, x, what in zip(eager, xla, ("patches", "grad_frames",
                                       "grad_locations")):
        scale = max(1.0, np.abs(e).max())
        np.testing.assert_allclose(x, e, atol=1e-6 * scale, rtol=0,
                                   err_msg=what)
    if mode == "bilinear":
        assert np.abs(eager[2]).min() > 0


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_samples_in_float32(policy):
    frames = _frames((3, 12, 12, 2), seed=12).astype("float32")
    # bfloat16 would move these origins by up to ~0.03 pixel.
    locations = np.array([[0.4432, 0.0784], [0.2052, 0.5004],
                          [0.9871, 0.3333]], "float32")
    layer = DifferentiablePatchCrop(5, dtype=policy)
    compute = layer.compute_dtype
    # The upstream gradient reaches the patches in the compute dtype:
    # round it there once, so that only the sampling precision differs.
    upstream = np.asarray(tf.cast(tf.cast(
        _frames((3, 5, 5, 2), seed=13), compute), tf.float32))
    got, _, grad_a = _crop_and_grads(layer, frames, locations, upstream)
    assert keras.backend.standardize_dtype(got.dtype) == compute
    assert grad_a.dtype == np.float32
    # The float32 crop of the rounded frames, rounded once.
    rounded = np.asarray(tf.cast(tf.cast(frames, compute), tf.float32))
    want = DifferentiablePatchCrop(5)([rounded, locations])
    np.testing.assert_array_equal(
        np.asarray(tf.cast(got, tf.float32)),
        np.asarray(tf.cast(tf.cast(want, compute), tf.float32)))
    _, _, want_grad_a = _crop_and_grads(DifferentiablePatchCrop(5), rounded,
                                        locations, upstream)
    # Location gradients in float32 (a bfloat16 location would be off by
    # up to 1 %).
    np.testing.assert_allclose(grad_a, want_grad_a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["bilinear", "integer"])
def test_contract(mode):
    frames = _frames((2, 10, 9, 3), seed=14).astype("float32")
    locations = np.random.default_rng(15).uniform(size=(2, 2)).astype(
        "float32")
    run_layer_test(DifferentiablePatchCrop,
                   {"patch_size": 4, "mode": mode},
                   [frames, locations],
                   expected_output_shape=(2, 4, 4, 3),
                   expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0)


def test_contract_with_time_axis():
    frames = _frames((2, 3, 8, 8, 2), seed=16).astype("float32")
    locations = np.random.default_rng(17).uniform(size=(2, 3, 2)).astype(
        "float32")
    run_layer_test(DifferentiablePatchCrop, {"patch_size": 5},
                   [frames, locations],
                   expected_output_shape=(2, 3, 5, 5, 2),
                   run_mixed_precision_check=False, run_saving_check=False,
                   run_training_check=False)


def test_errors():
    with pytest.raises(ValueError, match="mode"):
        DifferentiablePatchCrop(4, mode="nearest")
    with pytest.raises(ValueError, match="patch_size"):
        DifferentiablePatchCrop(0)
    frames = np.zeros((2, 6, 6, 1), "float32")
    with pytest.raises(ValueError, match="exceeds"):
        DifferentiablePatchCrop(7)([frames, np.zeros((2, 2), "float32")])
    with pytest.raises(ValueError, match="locations"):
        DifferentiablePatchCrop(3)([frames, np.zeros((2, 3), "float32")])
    with pytest.raises(ValueError, match="locations"):
        DifferentiablePatchCrop(3)([frames, np.zeros((2, 1, 2), "float32")])
    with pytest.raises(ValueError, match="frames"):
        DifferentiablePatchCrop(3)(frames)


def test_docstring_examples():
    check_docstring_examples(module)
