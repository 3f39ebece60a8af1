"""Optical flow for frame converters: TV-L1 / Farneback and quantisation.

Flow is stored the way the two-stream literature distributes it (frames
made with the `dense_flow` tool for TSN/ActionVLAD; its exact rounding was not
checked here): each component is clipped to [-bound, bound] pixels
(bound = 20) and mapped linearly to a uint8 grey JPEG:

    q = clip(round((f + bound) / (2 * bound) * 255), 0, 255)

so f = 0 -> 128 (127.5 rounded half-to-even), f <= -20 -> 0, f >= +20 -> 255,
and one grey level is 40 / 255 ~ 0.157 px. Decoding: `f ~ q / 255 * 2 * bound
- bound` (`dequantize_flow`). Positive x is motion to the right, positive y
downwards (OpenCV convention), so a square moving right gives x-flow JPEGs
brighter than 128 where it moves.

Example:

```python
estimator = FlowEstimator("tvl1")
flow = estimator(prev_gray, next_gray)        # float32 [H, W, 2], pixels
x_jpeg, y_jpeg = encode_flow_jpegs(flow)      # bytes, bytes
```
"""

import cv2
import numpy as np

from tfaction.data.formats import jpeg

FLOW_METHODS = ("tvl1", "farneback", "none")
FLOW_BOUND = 20.0


def quantize_flow(flow, bound=FLOW_BOUND):
    """Maps flow in pixels to uint8: `clip(round((f + b) / 2b * 255))`.

    Args:
        flow: float array (any shape).
        bound: clipping bound in pixels.

    Returns:
        uint8 array of the same shape.
    """
    q = np.rint((np.asarray(flow, np.float64) + bound) / (2.0 * bound)
                * 255.0)
    return np.clip(q, 0, 255).astype(np.uint8)


def dequantize_flow(q, bound=FLOW_BOUND):
    """Inverse of `quantize_flow` up to quantisation (float32 pixels)."""
    return (np.asarray(q, np.float32) / 255.0 * (2.0 * bound)
            - bound).astype(np.float32)


def encode_flow_jpegs(flow, bound=FLOW_BOUND, quality=95):
    """Quantises a [H, W, 2] flow field into (x JPEG, y JPEG) grey images."""
    q = quantize_flow(flow, bound)
    return (jpeg.encode_jpeg(q[..., 0], quality),
            jpeg.encode_jpeg(q[..., 1], quality))


class FlowEstimator:
    """Dense optical flow between two grey uint8 frames.

    Args:
        method: "tvl1" (`cv2.optflow.DualTVL1OpticalFlow`, default
            parameters, as `dense_flow`) or "farneback"
            (`cv2.calcOpticalFlowFarneback`, much faster, less accurate).

    Call arguments:
        prev: grey uint8 [H, W] frame at t.
        next: grey uint8 [H, W] frame at t + 1.

    Returns:
        float32 [H, W, 2] flow (x, y) in pixels from `prev` to `next`.

    One estimator per thread: the OpenCV TV-L1 object is not thread-safe.
    """

    def __init__(self, method="tvl1"):
        if method not in ("tvl1", "farneback"):
            raise ValueError(f"flow method must be 'tvl1' or 'farneback', "
                             f"got {method!r}")
        self.method = method
        self._tvl1 = (cv2.optflow.DualTVL1OpticalFlow_create()
                      if method == "tvl1" else None)

    def __call__(self, prev, next):
        if self._tvl1 is not None:
            flow = self._tvl1.calc(prev, next, None)
        else:
            flow = cv2.calcOpticalFlowFarneback(
                prev, next, None, pyr_scale=0.5, levels=3, winsize=15,
                iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
        return np.asarray(flow, np.float32)
