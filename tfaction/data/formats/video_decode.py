"""Decoding video files with PyAV, resampled to a fixed frame rate.

Resampling is by timestamps, not by frame counting, so variable-frame-rate
files and files whose first timestamp is not 0 come out right: output frame k
(time `k / fps` after the first frame) is the decoded frame whose timestamp is
nearest to it (the earlier one on ties). Output frames cover the whole video:
`k / fps < duration`, with `duration = last timestamp + 1 / stream rate`
(relative to the first frame), so a 2.0 s video at `fps=10` gives 20 frames.
"""

import math

import av
import cv2
import numpy as np

from tfaction import errors
from tfaction.data import filesystems

# A file that decodes to less than half of its declared duration (and more
# than a second short) is reported as truncated. Generous on purpose: the
# declared duration may include a longer audio track.
TRUNCATED_FRACTION = 0.5
TRUNCATED_SECONDS = 1.0


def resize_short_side(image, short_side):
    """Resizes so that min(H, W) == short_side (aspect kept; area filter)."""
    if not short_side:
        return image
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    if scale == 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


class DecodedVideo:
    """Frames of one video file, optionally resampled to `fps`.

    Args:
        path: local video file.
        fps: output frame rate, or None to keep every decoded frame.
        short_side: resize so the short side has this many pixels (0/None:
            keep).
        video_id: the video (for errors).

    Iterating yields RGB uint8 [H, W, 3] frames. After iteration, `fps`
    (output rate), `duration` (seconds) and `num_frames` are set.

    Raises (while iterating):
        VideoDecodeError: the file cannot be opened, has no video stream,
            fails to decode, yields no frame, or decodes to less than half of
            the duration its container declares (truncated; containers such
            as MKV decode what is left without an error).

    Example:

    ```python
    video = DecodedVideo("a.mp4", fps=10, short_side=256)
    frames = list(video)
    print(video.num_frames, video.duration)
    ```
    """

    def __init__(self, path, fps=None, short_side=None, video_id=None):
        self.path = str(path)
        self.target_fps = None if not fps else float(fps)
        self.short_side = short_side
        self.video_id = video_id
        self.fps = None
        self.duration = None
        self.num_frames = 0

    def _error(self, message, cause=None):
        return errors.VideoDecodeError(
            message + (f" ({type(cause).__name__}: {cause})" if cause else ""),
            path=self.path, video_id=self.video_id)

    def _decoded(self):
        """Yields (time relative to the first frame, RGB frame); sets rate."""
        source = self.path
        try:
            if not filesystems.is_local(self.path):
                # Streamed; the file object is freed with the generator.
                source = filesystems.open_file(self.path)
            container = av.open(source)
        except Exception as e:  # FileNotFoundError, av.error.*Error
            raise self._error("cannot open video", e) from e
        with container:
            if not container.streams.video:
                raise self._error("file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads; order is kept
            rate = stream.average_rate or stream.guessed_rate
            self._source_rate = float(rate) if rate else None
            if stream.duration and stream.time_base:
                self._declared = float(stream.duration * stream.time_base)
            elif container.duration:  # microseconds, may include audio
                self._declared = container.duration / av.time_base
            else:
                self._declared = None
            first = None
            try:
                for i, frame in enumerate(container.decode(stream)):
                    if frame.time is not None:
                        t = float(frame.time)
                    elif self._source_rate:
                        t = i / self._source_rate
                    else:
                        raise self._error("frame has no timestamp and the "
                                          "stream no frame rate")
                    first = t if first is None else first
                    yield t - first, frame.to_ndarray(format="rgb24")
            except errors.DataError:
                raise
            except Exception as e:  # av.error.InvalidDataError, ...
                raise self._error("video stream fails to decode", e) from e

    def __iter__(self):
        self.num_frames = 0
        prev_t, prev = None, None
        k = 0  # next output index (resampling)
        deltas = []
        for t, image in self._decoded():
            if prev is not None:
                t = max(t, prev_t)  # tolerate non-monotonic timestamps
                deltas.append(t - prev_t)
                if self.target_fps is None:
                    yield self._emit(prev)
                else:
                    middle = (prev_t + t) / 2
                    while k / self.target_fps <= middle:
                        yield self._emit(prev)
                        k += 1
            prev_t, prev = t, image
        if prev is None:
            raise self._error("no frame could be decoded")
        if self._source_rate:
            step = 1.0 / self._source_rate
        else:
            step = float(np.median(deltas)) if deltas else 0.0
        self.duration = prev_t + step
        if (self._declared and self.duration < TRUNCATED_FRACTION
                * self._declared
                and self._declared - self.duration > TRUNCATED_SECONDS):
            raise self._error(
                f"decoded only {self.duration:.2f} s of the "
                f"{self._declared:.2f} s the file declares; it is probably "
                "truncated")
        if self.target_fps is None:
            yield self._emit(prev)
            self.fps = (self._source_rate if self._source_rate else
                        self.num_frames / self.duration)
        else:
            # Cover the video to its end: k / fps < duration.
            last = max(1, math.ceil(self.duration * self.target_fps - 1e-6))
            while k < last:
                yield self._emit(prev)
                k += 1
            self.fps = self.target_fps

    def _emit(self, image):
        self.num_frames += 1
        return resize_short_side(image, self.short_side)
