"""`DifferentiablePatchCrop`: AdaFocus patch crops at normalised positions."""

import keras
from keras import ops

MODES = ("bilinear", "integer")


def _positive_int(value, name, layer):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got "
                         f"{value!r}")
    return value


def _split(inputs, what):
    """`(frames, locations)` from a two-element list or tuple."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(f"DifferentiablePatchCrop takes {what} = (frames, "
                         f"locations), got {inputs!r}")
    return inputs[0], inputs[1]


def _check_shapes(frames_shape, locations_shape, patch_size):
    """Validates static shapes; returns the number of leading axes."""
    frames_shape = tuple(frames_shape)
    locations_shape = tuple(locations_shape)
    if len(frames_shape) not in (4, 5):
        raise ValueError(f"DifferentiablePatchCrop expects frames [B, H, W, "
                         f"C] or [B, T, H, W, C], got shape {frames_shape}")
    lead = len(frames_shape) - 3
    if len(locations_shape) != lead + 1 or locations_shape[-1] not in (
            2, None):
        raise ValueError(f"DifferentiablePatchCrop expects locations "
                         f"[{', '.join('BT'[:lead])}, 2] for frames of shape "
                         f"{frames_shape}, got shape {locations_shape}")
    for f, l in zip(frames_shape[:lead], locations_shape[:lead]):
        if f is not None and l is not None and f != l:
            raise ValueError(f"DifferentiablePatchCrop: frames {frames_shape}"
                             f" and locations {locations_shape} disagree on "
                             f"the leading axes")
    for axis, side in zip("HW", frames_shape[lead:lead + 2]):
        if side is not None and side < patch_size:
            raise ValueError(f"DifferentiablePatchCrop: patch_size "
                             f"{patch_size} exceeds the frame {axis} = "
                             f"{side}")
    return lead


def _window_indices(top, left, rows, cols, height, width):
    """Flat `[N * H * W]` indices of `rows x cols` windows and validity.

    Args:
        top, left: int32 `[N]` window origins (may lie outside the frame).
        rows, cols: static window sides.
        height, width: frame sides (ints or scalar tensors).

    Returns:
        `(indices, valid)`: int32 `[N, rows, cols]` indices into the frames
        flattened to `[N * H * W, C]` (clipped into the frame), and bool
        `[N, rows, cols]`, true where the pixel lies inside the frame.
    """
    r = top[:, None] + ops.arange(rows, dtype="int32")[None, :]
    c = left[:, None] + ops.arange(cols, dtype="int32")[None, :]
    r_ok = ops.logical_and(r >= 0, r < height)
    c_ok = ops.logical_and(c >= 0, c < width)
    r = ops.clip(r, 0, height - 1)
    c = ops.clip(c, 0, width - 1)
    base = ops.arange(ops.shape(top)[0], dtype="int32") * (height * width)
    indices = (base[:, None, None] + (r * width)[:, :, None]
               + c[:, None, :])
    valid = ops.logical_and(r_ok[:, :, None], c_ok[:, None, :])
    return indices, valid


def _crop_bilinear(frames, locations, patch_size, work_dtype):
    """V2 crop of `[N, H, W, C]` frames at `[N, 2]` locations (see layer)."""
    shape = ops.shape(frames)
    height, width, channels = shape[1], shape[2], shape[3]
    span = ops.cast(ops.stack([height - patch_size, width - patch_size]),
                    work_dtype)
    start = ops.cast(locations, work_dtype) * span  # (y1, x1) in pixels
    origin = ops.floor(ops.stop_gradient(start))
    frac = start - origin  # in [0, 1); carries the gradient to `locations`
    origin = ops.cast(origin, "int32")
    # The P x P samples (y1 + r, x1 + s) share the fractional offsets, so
    # one (P + 1) x (P + 1) window of pixels holds all their neighbours.
    indices, valid = _window_indices(origin[:, 0], origin[:, 1],
                                     patch_size + 1, patch_size + 1,
                                     height, width)
    flat = ops.reshape(frames, (-1, channels))
    window = ops.cast(ops.take(flat, indices, axis=0), work_dtype)
    # Zero padding: neighbours outside the frame count as 0 (with weight 0
    # whenever the crop lies inside the frame, but they still enter the
    # one-sided derivative at the border, as in `grid_sample`).
    window = ops.where(valid[..., None], window, ops.zeros_like(window))
    fy = frac[:, 0, None, None, None]
    fx = frac[:, 1, None, None, None]
    top, bottom = window[:, :-1], window[:, 1:]
    rows = top + (bottom - top) * fy  # [N, P, P + 1, C]
    left, right = rows[:, :, :-1], rows[:, :, 1:]
    return left + (right - left) * fx


def _crop_integer(frames, locations, patch_size):
    """V1 crop of `[N, H, W, C]` frames at `[N, 2]` locations (see layer)."""
    shape = ops.shape(frames)
    height, width, channels = shape[1], shape[2], shape[3]
    span = ops.stack([height - patch_size, width - patch_size])
    start = ops.floor(ops.cast(ops.stop_gradient(locations), "float32")
                      * ops.cast(span, "float32"))
    start = ops.clip(ops.cast(start, "int32"), 0, span)
    indices, _ = _window_indices(start[:, 0], start[:, 1], patch_size,
                                 patch_size, height, width)
    return ops.take(ops.reshape(frames, (-1, channels)), indices, axis=0)


def differentiable_patch_crop(frames, locations, patch_size,
                              mode="bilinear", compute_dtype=None):
    """AdaFocus patch crops, the computation of `DifferentiablePatchCrop`.

    `"bilinear"`: `patch[r, s] = bilinear(frame, y1 + r, x1 + s)` with
    `(y1, x1) = a * (H - P, W - P)`, zeros outside the frame, differentiable
    in the frames and the locations. `"integer"`: the slice at
    `floor(float32(a) * (H - P, W - P))` (clipped into the frame),
    differentiable in the frames only. See the layer for details.

    Args:
        frames: `[B, H, W, C]` or `[B, T, H, W, C]` frames.
        locations: `[B, 2]` or `[B, T, 2]` normalised (row, column) patch
            origins in [0, 1].
        patch_size: int `P`, side of the square patches (`P <= H, W`).
        mode: `"bilinear"` (AdaFocus V2) or `"integer"` (AdaFocus V1).
        compute_dtype: dtype of the output (default: that of `frames`);
            `"float64"` also makes the bilinear sampling float64, any other
            dtype samples in float32.

    Returns:
        `[B, P, P, C]` or `[B, T, P, P, C]` patches in `compute_dtype`.

    Example:

    >>> import numpy as np
    >>> frames = np.arange(25, dtype="float32").reshape(1, 5, 5, 1)
    >>> patch = differentiable_patch_crop(frames, [[0.5, 0.25]], 2)
    >>> np.asarray(patch)[0, :, :, 0]  # origin (1.5, 0.75)
    array([[ 8.25,  9.25],
           [13.25, 14.25]], dtype=float32)

    Reference:
        Wang et al., "AdaFocus V2: End-to-End Training of Spatial Dynamic
        Networks for Video Recognition", CVPR 2022; Wang et al., "Adaptive
        Focus for Efficient Video Recognition", ICCV 2021.
    """
    if mode not in MODES:
        raise ValueError(f"differentiable_patch_crop: mode must be one of "
                         f"{MODES}, got {mode!r}")
    frames = ops.convert_to_tensor(frames)
    locations = ops.convert_to_tensor(locations)
    if compute_dtype is None:
        compute_dtype = keras.backend.standardize_dtype(frames.dtype)
        if not keras.backend.is_float_dtype(compute_dtype):
            compute_dtype = "float32"
    frames = ops.cast(frames, compute_dtype)
    lead = _check_shapes(frames.shape, locations.shape, patch_size)
    shape = ops.shape(frames)
    flat_frames = ops.reshape(frames, (-1,) + tuple(shape[lead:]))
    flat_locations = ops.reshape(locations, (-1, 2))
    if mode == "integer":
        patches = _crop_integer(flat_frames, flat_locations, patch_size)
    else:
        work = "float64" if compute_dtype == "float64" else "float32"
        patches = _crop_bilinear(flat_frames, flat_locations, patch_size,
                                 work)
    patches = ops.cast(patches, compute_dtype)
    return ops.reshape(patches, tuple(shape[:lead])
                       + (patch_size, patch_size, shape[-1]))


@keras.saving.register_keras_serializable(package="tfaction")
class DifferentiablePatchCrop(keras.layers.Layer):
    """Crops one `P x P` patch per frame at a normalised position (AdaFocus).

    The policy of AdaFocus picks, for each frame, the patch that the
    expensive focus network sees, as a normalised top-left corner
    `a = (a_y, a_x)` in `[0, 1]^2`; the patch origin in pixels is
    `(y1, x1) = (a_y (H - P), a_x (W - P))`, so every `a` in the unit square
    keeps the patch inside the frame.

    `mode="bilinear"` is AdaFocus V2's differentiable crop, an
    `affine_grid` + `grid_sample` with scale `P / H`, bilinear sampling,
    zero padding and `align_corners=False`. In pixel units that transform
    samples exactly `patch[r, s] = bilinear(frame, y1 + r, x1 + s)`, which is
    what this layer computes: one `(P + 1) x (P + 1)` gather of the
    neighbouring pixels per frame and a bilinear blend with the fractional
    parts of `(y1, x1)` as weights. Pixels outside the frame read as 0
    (they only get a non-zero weight for locations outside `[0, 1]`).
    Gradients reach the frames (the bilinear weights scattered back) and
    the locations (the bilinear spatial derivative of the frame, times
    `H - P` or `W - P`). At an integer `y1` or `x1` the crop is not
    differentiable in `a`; the gradient is then the one-sided derivative
    towards the next pixel (the `floor`-based one of `grid_sample`).

    `mode="integer"` is AdaFocus V1's crop: the origin is
    `floor(a (H - P))` (computed in float32, as V1 does), clipped to
    `[0, H - P]`, and the patch is an exact slice. It is differentiable
    with respect to the frames only; the locations get **no gradient**
    (they are wrapped in `stop_gradient`; V1 trains its policy with PPO).

    The layer has no weights, uses `keras.ops` gathers only and compiles
    with XLA. Frames are cast to the compute dtype; the locations are not
    autocast. Under mixed precision the sampling coordinates, fractional
    offsets and interpolation run in float32 and the patches are returned
    in the compute dtype; with a `"float64"` policy they run in float64.

    Args:
        patch_size: int `P`, side of the square patches; at most the frame
            height and width (AdaFocus: 96, 128, 160 or 192 on 224 frames).
        mode: `"bilinear"` (AdaFocus V2, differentiable in the locations)
            or `"integer"` (AdaFocus V1, no gradient to the locations).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a pair `(frames, locations)` (list or tuple): `frames`
            `[B, H, W, C]` or `[B, T, H, W, C]` (channels last); `locations`
            `[B, 2]` or `[B, T, 2]` (one per frame), normalised
            `(row, column)` patch origins in `[0, 1]` (float32 or float64).

    Returns:
        `[B, P, P, C]` or `[B, T, P, P, C]` patches in the compute dtype.

    Example:

    >>> import numpy as np
    >>> frames = np.arange(2 * 8 * 8, dtype="float32").reshape(2, 8, 8, 1)
    >>> locations = np.array([[0.0, 0.0], [0.5, 1.0]], "float32")
    >>> crop = DifferentiablePatchCrop(patch_size=4)
    >>> patches = crop([frames, locations])
    >>> tuple(patches.shape)
    (2, 4, 4, 1)
    >>> bool(np.all(np.asarray(patches)[1] == frames[1, 2:6, 4:8]))
    True
    >>> at = [frames[:1], np.array([[0.3, 0.0]], "float32")]  # y1 = 1.2
    >>> round(float(DifferentiablePatchCrop(4)(at)[0, 0, 0, 0]), 4)
    9.6
    >>> float(DifferentiablePatchCrop(4, mode="integer")(at)[0, 0, 0, 0])
    8.0

    Reference:
        Wang et al., "AdaFocus V2: End-to-End Training of Spatial Dynamic
        Networks for Video Recognition", CVPR 2022 (differentiable patch
        crop by bilinear interpolation); Wang et al., "Adaptive Focus for
        Efficient Video Recognition", ICCV 2021 (integer patch crop at
        `floor(a (H - P))`).
    """

    def __init__(self, patch_size, mode="bilinear", **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.patch_size = _positive_int(patch_size, "patch_size", name)
        if mode not in MODES:
            raise ValueError(f"{name}: mode must be one of {MODES}, got "
                             f"{mode!r}")
        self.mode = mode
        # Locations keep their precision: no automatic cast of the inputs
        # to the compute dtype (the frames are cast in `call`).
        self.autocast = False

    def build(self, input_shape):
        frames_shape, locations_shape = _split(input_shape, "input_shape")
        _check_shapes(frames_shape, locations_shape, self.patch_size)

    def call(self, inputs):
        frames, locations = _split(inputs, "inputs")
        return differentiable_patch_crop(frames, locations, self.patch_size,
                                         self.mode, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        frames_shape, locations_shape = _split(input_shape, "input_shape")
        lead = _check_shapes(frames_shape, locations_shape, self.patch_size)
        return (tuple(frames_shape[:lead])
                + (self.patch_size, self.patch_size, frames_shape[-1]))

    def get_config(self):
        config = super().get_config()
        config.update({"patch_size": self.patch_size, "mode": self.mode})
        return config
