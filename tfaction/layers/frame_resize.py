"""`FrameResize`: PyTorch's `F.interpolate` on images, for static sizes."""

import keras
import numpy as np
from keras import ops

METHODS = ("nearest", "bilinear")


def _size_pair(size, what):
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        size = tuple(int(s) for s in size)
    except TypeError:
        raise ValueError(f"{what} must be an int or (height, width), got "
                         f"{size!r}") from None
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{what} must be positive (height, width), got "
                         f"{size!r}")
    return size


def nearest_indices(in_size, out_size):
    """Source index of every output index of PyTorch's "nearest" mode.

    `min(floor(float32(d) * float32(in / out)), in - 1)`, in float32 as
    PyTorch computes it (identity when the sizes are equal).

    Example:

    >>> nearest_indices(4, 3).tolist(), nearest_indices(3, 7).tolist()
    ([0, 1, 2], [0, 0, 0, 1, 1, 2, 2])
    """
    if in_size == out_size:
        return np.arange(out_size, dtype=np.int32)
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale)
    return np.minimum(src.astype(np.int64), in_size - 1).astype(np.int32)


def bilinear_matrix(in_size, out_size, align_corners):
    """`[out, in]` weights of PyTorch's 1-D linear interpolation.

    `align_corners=True`: source `d (in - 1) / (out - 1)` (0 when
    `out = 1`); False: `(d + 0.5) in / out - 0.5`, clamped at 0. Each row
    holds `1 - l` at `floor(src)` and `l` at `min(floor(src) + 1, in - 1)`,
    `l = src - floor(src)` (coordinates in float32, as PyTorch's CPU
    kernel).

    Example:

    >>> bilinear_matrix(4, 2, False) @ np.array([0.0, 10, 20, 30])
    array([ 5., 25.])
    >>> bilinear_matrix(4, 2, True) @ np.array([0.0, 10, 20, 30])
    array([ 0., 30.])
    """
    out = np.arange(out_size, dtype=np.float32)
    if align_corners:
        scale = (np.float32(in_size - 1) / np.float32(out_size - 1)
                 if out_size > 1 else np.float32(0))
        src = out * scale
    else:
        scale = np.float32(in_size) / np.float32(out_size)
        src = np.maximum((out + np.float32(0.5)) * scale - np.float32(0.5),
                         np.float32(0))
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = (src - low).astype(np.float64)
    matrix = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


@keras.saving.register_keras_serializable(package="tfaction")
class FrameResize(keras.layers.Layer):
    """Resizes frames as PyTorch's `F.interpolate` does (static sizes).

    AdaFocus downsamples each frame before the glance network with
    PyTorch's `interpolate`: V1 with the default `"nearest"` mode, V2's
    ResNet-50 glance to 96 x 96 with `"bilinear"` and `align_corners=True`.
    `keras.ops.image.resize` implements neither convention (its nearest
    mode rounds half-pixel centres; its bilinear mode has no
    `align_corners`), so this layer reproduces them:

    * `"nearest"`: output pixel `d` reads source `min(floor(d * in / out),
      in - 1)` (PyTorch's legacy nearest, scale in float32), a gather;
    * `"bilinear"`: separable linear interpolation with PyTorch's source
      coordinates (`align_corners` True: `d (in - 1) / (out - 1)`; False:
      `(d + 0.5) in / out - 0.5` clamped at 0), two small matrix products
      with constant `[out, in]` weights. It is differentiable with respect
      to the frames.

    Frame height and width must be static. Inputs are channels-last with
    any number of leading axes (`[B, H, W, C]`, `[B, T, H, W, C]`). The
    layer has no weights and compiles with XLA.

    Args:
        size: output `(height, width)` or one int for both.
        method: `"nearest"` or `"bilinear"`.
        align_corners: PyTorch's `align_corners` (bilinear only).
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[..., H, W, C]` frames (at least 4-D, H and W static).

    Returns:
        `[..., height, width, C]` frames in the compute dtype.

    Example:

    >>> import numpy as np
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> y = FrameResize(2, "bilinear", align_corners=True)(x)
    >>> np.asarray(y)[0, :, :, 0]
    array([[ 0.,  3.],
           [12., 15.]], dtype=float32)

    Reference:
        PyTorch `torch.nn.functional.interpolate` (`mode="nearest"`,
        `mode="bilinear"`), as AdaFocus (ICCV 2021) and AdaFocus V2 (CVPR
        2022) use it for the glance input.
    """

    def __init__(self, size, method="nearest", align_corners=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.size = _size_pair(size, "FrameResize size")
        if method not in METHODS:
            raise ValueError(f"FrameResize method must be one of {METHODS}, "
                             f"got {method!r}")
        if method == "nearest" and align_corners:
            raise ValueError("FrameResize: align_corners applies to "
                             "'bilinear' only (PyTorch rejects it for "
                             "'nearest')")
        self.method = method
        self.align_corners = bool(align_corners)

    def _check_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 4 or None in input_shape[-3:-1]:
            raise ValueError(f"FrameResize expects frames [..., H, W, C] "
                             f"(at least 4-D) with static H and W, got "
                             f"shape {input_shape}")
        return input_shape

    def build(self, input_shape):
        height, width = self._check_shape(input_shape)[-3:-1]
        if self.method == "nearest":
            self._rows = nearest_indices(height, self.size[0])
            self._cols = nearest_indices(width, self.size[1])
        else:
            self._rows = bilinear_matrix(height, self.size[0],
                                         self.align_corners)
            self._cols = bilinear_matrix(width, self.size[1],
                                         self.align_corners)
        self.built = True

    def call(self, inputs):
        shape = ops.shape(inputs)
        x = ops.reshape(inputs, (-1, *shape[-3:]))
        if self.method == "nearest":
            x = ops.take(x, ops.convert_to_tensor(self._rows), axis=1)
            x = ops.take(x, ops.convert_to_tensor(self._cols), axis=2)
        else:
            rows = ops.convert_to_tensor(self._rows, self.compute_dtype)
            cols = ops.convert_to_tensor(self._cols, self.compute_dtype)
            x = ops.einsum("oh,nhwc->nowc", rows, x)
            x = ops.einsum("pw,nowc->nopc", cols, x)
        return ops.reshape(x, (*shape[:-3], *self.size, shape[-1]))

    def compute_output_shape(self, input_shape):
        input_shape = self._check_shape(input_shape)
        return input_shape[:-3] + self.size + input_shape[-1:]

    def get_config(self):
        config = super().get_config()
        config.update(size=list(self.size), method=self.method,
                      align_corners=self.align_corners)
        return config
