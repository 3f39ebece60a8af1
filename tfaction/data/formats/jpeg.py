"""JPEG checks and encoding for frame converters (OpenCV, no TensorFlow ops).

`check_jpeg` really decodes the bytes: a header check alone misses truncated
files, and OpenCV's decoder returns a (partly grey) image for a truncated
JPEG with only a warning, so we also require the end-of-image marker.
"""

import cv2
import numpy as np

from tfaction import errors

_SOI = b"\xff\xd8\xff"  # start of image + first marker
_EOI = b"\xff\xd9"  # end of image
# Encoders and copy tools may pad a JPEG after its EOI marker; accept a little.
_EOI_SEARCH_BYTES = 64


def check_jpeg(data, *, path, video_id=None, grayscale=False):
    """Checks that `data` is a complete JPEG that decodes.

    Args:
        data: file bytes.
        path: the file (for errors).
        video_id: its video (for errors).
        grayscale: decode as one channel (flow images).

    Returns:
        The decoded image (H, W[, 3]) uint8.

    Raises:
        MissingFrameError: empty, not a JPEG, truncated, or undecodable.
    """
    check_jpeg_markers(data, path=path, video_id=video_id)
    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None or image.size == 0:
        raise errors.MissingFrameError("JPEG cannot be decoded", path=path,
                                       video_id=video_id)
    return image


def check_jpeg_markers(data, *, path, video_id=None):
    """Cheap check: JPEG start marker first, end-of-image marker at the end.

    Raises:
        MissingFrameError: empty, not a JPEG, or truncated.
    """
    if not data:
        raise errors.MissingFrameError("frame file is empty; expected a JPEG",
                                       path=path, video_id=video_id)
    if not data.startswith(_SOI):
        raise errors.MissingFrameError(
            f"not a JPEG (starts with {data[:4]!r}; expected FF D8 FF)",
            path=path, video_id=video_id)
    if _EOI not in data[-_EOI_SEARCH_BYTES:]:
        raise errors.MissingFrameError(
            "truncated JPEG (no end-of-image marker FF D9 at the end)",
            path=path, video_id=video_id)


def encode_jpeg(image, quality=95):
    """Encodes an RGB (H, W, 3) or grey (H, W) uint8 image as JPEG bytes."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV failed to encode a {image.shape} image")
    return buf.tobytes()


def decode_jpeg(data, grayscale=False):
    """Decodes JPEG bytes to RGB (H, W, 3) or grey (H, W) uint8."""
    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None:
        raise ValueError("cannot decode JPEG")
    return image if grayscale else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
