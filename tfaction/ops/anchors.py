"""Faster R-CNN grid anchors (the TF Object Detection API's grid generator).

At every cell `(i, j)` of an `H' x W'` feature map, `A = len(scales) *
len(aspect_ratios)` anchors are centred at `(i * stride_y + offset_y,
j * stride_x + offset_x)` pixels, with height `scale / sqrt(ratio) *
base_height` and width `scale * sqrt(ratio) * base_width` (the aspect ratio
is width / height). Anchors are ordered row-major over the grid and then
over the anchor set, `index = (i * W' + j) * A + a`, with the scale varying
fastest inside the set: `a = ratio_index * len(scales) + scale_index`. This
is the order of `GridAnchorGenerator` (`tile_anchors`) in the TF Object
Detection API and of `RegionProposalHead`'s outputs, which reshape a
`[B, H', W', A * k]` convolution output to `[B, H' * W' * A, k]`.

Defaults are the API's Faster R-CNN configuration: scales
`(0.25, 0.5, 1, 2)`, aspect ratios `(0.5, 1, 2)` (12 anchors per cell),
base size 256 x 256 px, stride 16 px, offset 0 (the first centre is the
image's top-left corner, as `grid_anchor_generator.proto`'s
`height_offset`/`width_offset` default). Boxes come out normalised by the
image size (`[y1, x1, y2, x2] / [H, W, H, W]`), the frame in which the rest
of tfaction's detection code works; `normalize=False` returns pixels.
Anchors that cross the image border are not removed here: the API prunes
them at training time and clips them at inference time
(`tfaction.ops.box_coder.boxes_inside_window` / `clip_boxes`).

Sizes may be Python ints or scalar tensors (dynamic shapes inside
`tf.function`); the arithmetic is `keras.ops` in float32.

Example:

>>> import numpy as np
>>> a = grid_anchors(25, 25, 400, 400)
>>> tuple(a.shape)
(7500, 4)
>>> np.round(np.asarray(a[:2], "float64") * 400, 2).tolist()
[[-45.25, -22.63, 45.25, 22.63], [-90.51, -45.25, 90.51, 45.25]]
"""

import numpy as np
from keras import ops

DEFAULT_SCALES = (0.25, 0.5, 1.0, 2.0)
DEFAULT_ASPECT_RATIOS = (0.5, 1.0, 2.0)
DEFAULT_BASE_ANCHOR_SIZE = (256.0, 256.0)
DEFAULT_ANCHOR_STRIDE = (16.0, 16.0)
DEFAULT_ANCHOR_OFFSET = (0.0, 0.0)


def num_anchors_per_location(scales=DEFAULT_SCALES,
                             aspect_ratios=DEFAULT_ASPECT_RATIOS):
    """`len(scales) * len(aspect_ratios)` (12 with the defaults).

    Args:
        scales: anchor scales.
        aspect_ratios: anchor aspect ratios (width / height).

    Returns:
        int.

    Example:

    >>> num_anchors_per_location()
    12
    """
    return len(tuple(scales)) * len(tuple(aspect_ratios))


def _pair(value, name):
    pair = tuple(float(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be (height, width), got {value!r}")
    return pair


def anchor_sizes(scales=DEFAULT_SCALES, aspect_ratios=DEFAULT_ASPECT_RATIOS,
                 base_anchor_size=DEFAULT_BASE_ANCHOR_SIZE):
    """Heights and widths (pixels) of one cell's anchor set, in grid order.

    Computed in float32 as the TF Object Detection API does:
    `h = scale / sqrt(ratio) * base_h`, `w = scale * sqrt(ratio) * base_w`,
    scale varying fastest.

    Args:
        scales: anchor scales.
        aspect_ratios: aspect ratios (width / height), all > 0.
        base_anchor_size: `(base_height, base_width)` in pixels.

    Returns:
        `(heights, widths)`: float32 numpy arrays `[A]`.

    Example:

    >>> h, w = anchor_sizes((1.0,), (0.25, 1.0))
    >>> h.tolist(), w.tolist()
    ([512.0, 256.0], [128.0, 256.0])
    """
    scales = np.asarray(tuple(scales), np.float32)
    ratios = np.asarray(tuple(aspect_ratios), np.float32)
    if scales.size == 0 or ratios.size == 0:
        raise ValueError("scales and aspect_ratios must not be empty")
    if np.any(scales <= 0) or np.any(ratios <= 0):
        raise ValueError(f"scales and aspect_ratios must be > 0, got "
                         f"{scales.tolist()} and {ratios.tolist()}")
    base_h, base_w = (np.float32(v) for v in
                      _pair(base_anchor_size, "base_anchor_size"))
    scale_grid, ratio_grid = np.meshgrid(scales, ratios)  # [n_ratio, n_scale]
    scale_grid = scale_grid.reshape(-1)
    ratio_sqrt = np.sqrt(ratio_grid.reshape(-1))
    heights = (scale_grid / ratio_sqrt * base_h).astype(np.float32)
    widths = (scale_grid * ratio_sqrt * base_w).astype(np.float32)
    return heights, widths


def grid_anchors(feature_height, feature_width, image_height, image_width,
                 scales=DEFAULT_SCALES, aspect_ratios=DEFAULT_ASPECT_RATIOS,
                 base_anchor_size=DEFAULT_BASE_ANCHOR_SIZE,
                 anchor_stride=DEFAULT_ANCHOR_STRIDE,
                 anchor_offset=DEFAULT_ANCHOR_OFFSET, normalize=True):
    """Anchors of every cell of a feature map, `[H' * W' * A, 4]`.

    Args:
        feature_height, feature_width: feature-map size `H', W'` (ints or
            scalar int tensors).
        image_height, image_width: input image size in pixels (ints, floats
            or scalar tensors); used only to normalise.
        scales: anchor scales (relative to `base_anchor_size`).
        aspect_ratios: anchor aspect ratios (width / height).
        base_anchor_size: `(height, width)` in pixels of a scale-1, ratio-1
            anchor.
        anchor_stride: `(stride_y, stride_x)` in pixels between the centres
            of neighbouring cells.
        anchor_offset: `(offset_y, offset_x)` in pixels, centre of cell
            `(0, 0)`.
        normalize: divide by the image size (default) or return pixels.

    Returns:
        float32 `[H' * W' * A, 4]` boxes `[y1, x1, y2, x2]`, ordered
        `(i * W' + j) * A + a`.

    Example:

    >>> import numpy as np
    >>> a = grid_anchors(1, 2, 32, 32, scales=(1.0,), aspect_ratios=(1.0,),
    ...                  base_anchor_size=(16, 16), anchor_stride=(16, 16),
    ...                  anchor_offset=(8, 8), normalize=False)
    >>> np.asarray(a).tolist()
    [[0.0, 0.0, 16.0, 16.0], [0.0, 16.0, 16.0, 32.0]]

    Reference:
        Ren et al., "Faster R-CNN", NeurIPS 2015; TF Object Detection API
        `anchor_generators/grid_anchor_generator.py` and
        `samples/configs/faster_rcnn_resnet101_coco.config`.
    """
    heights, widths = anchor_sizes(scales, aspect_ratios, base_anchor_size)
    stride_y, stride_x = _pair(anchor_stride, "anchor_stride")
    offset_y, offset_x = _pair(anchor_offset, "anchor_offset")
    y_centers = ops.arange(feature_height, dtype="float32") * stride_y + \
        offset_y
    x_centers = ops.arange(feature_width, dtype="float32") * stride_x + \
        offset_x
    half_h = ops.convert_to_tensor(0.5 * heights)[None, None, :]
    half_w = ops.convert_to_tensor(0.5 * widths)[None, None, :]
    yc = y_centers[:, None, None]
    xc = x_centers[None, :, None]
    zeros = yc * 0.0 + xc * 0.0 + half_h * 0.0    # [H', W', A]
    boxes = ops.stack([yc - half_h + zeros, xc - half_w + zeros,
                       yc + half_h + zeros, xc + half_w + zeros], axis=-1)
    boxes = ops.reshape(boxes, (-1, 4))
    if normalize:
        h = ops.cast(image_height, "float32")
        w = ops.cast(image_width, "float32")
        boxes = boxes / ops.stack([h, w, h, w])
    return boxes
