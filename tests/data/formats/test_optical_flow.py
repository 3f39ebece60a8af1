"""Flow quantisation (documented mapping) and flow direction."""

import numpy as np
import pytest

from tfaction.data.formats import jpeg
from tfaction.data.formats import optical_flow

from . import _builders as b


def test_quantisation_mapping():
    flow = np.array([-30.0, -20.0, -10.0, 0.0, 0.1, 10.0, 20.0, 25.0])
    q = optical_flow.quantize_flow(flow)
    # round((f + 20) / 40 * 255), clipped: 0, 0, 64 (63.75), 128 (127.5 half
    # to even), 128 (128.1), 191 (191.25), 255, 255.
    assert q.tolist() == [0, 0, 64, 128, 128, 191, 255, 255]
    assert q.dtype == np.uint8
    back = optical_flow.dequantize_flow(q)
    inside = np.abs(flow) <= 20
    assert np.all(np.abs(back[inside] - flow[inside]) <= 20 / 255 + 1e-6)
    assert optical_flow.quantize_flow(np.array([5.0]), bound=10).tolist() == [
        191]


@pytest.mark.parametrize("method", ["tvl1", "farneback"])
def test_flow_direction(method):
    frames = b.moving_square_frames(3, step=2)
    gray = [jpeg.decode_jpeg(jpeg.encode_jpeg(f, 100), grayscale=True)
            for f in frames]
    flow = optical_flow.FlowEstimator(method)(gray[0], gray[1])
    assert flow.shape == (64, 64, 2) and flow.dtype == np.float32
    inner = flow[26:38, 10:22]  # inside the square (x 8..24, y 24..40)
    assert inner[..., 0].mean() == pytest.approx(2.0, abs=0.5)
    assert abs(inner[..., 1].mean()) < 0.5
    x_jpeg, y_jpeg = optical_flow.encode_flow_jpegs(flow)
    x = jpeg.decode_jpeg(x_jpeg, grayscale=True)
    y = jpeg.decode_jpeg(y_jpeg, grayscale=True)
    assert x[26:38, 10:22].mean() > 128 + 5  # 2 px right -> ~140.8
    assert abs(y[26:38, 10:22].mean() - 128) < 3


def test_unknown_method():
    with pytest.raises(ValueError):
        optical_flow.FlowEstimator("lucas-kanade")
