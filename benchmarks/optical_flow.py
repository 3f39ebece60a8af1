"""Cost of the converter's optical flow per frame pair; prints one JSON line.

`tfaction.data.formats.optical_flow.FlowEstimator` with "tvl1" (OpenCV's
Dual TV-L1, default parameters, as ActionVLAD's `dense_flow`) and
"farneback", on pairs of textured grey frames moving by a few pixels, at the
converter's usual size (`--short_side=256`: 256 x 340) or `--size`.
Reports seconds per pair (median), and what that means for a video of
`--frames` frames; one estimator runs on one thread (the converter runs
`--num_workers` of them side by side).

Usage:
    python benchmarks/optical_flow.py [--pairs 5] [--size 256,340]
        [--frames 502] [--output result.json]
"""

import argparse
import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import timing  # noqa: E402
from tfaction.data.formats.optical_flow import FlowEstimator  # noqa: E402


def _frames(height, width, count, seed=0):
    """A smooth random texture translated by (2, 1) pixels per frame."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.uniform(0, 255, (height + 64, width + 64)),
                           (0, 0), 3.0)
    return [np.ascontiguousarray(
        big[i:i + height, 2 * i:2 * i + width]).astype(np.uint8)
        for i in range(count)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--size", default="256,340")
    parser.add_argument("--frames", type=int, default=502,
                        help="video length for the per-video estimate")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    height, width = (int(x) for x in args.size.split(","))
    frames = _frames(height, width, args.pairs + 1)
    cv2.setNumThreads(1)
    result = {"benchmark": "optical_flow", "size": [height, width],
              "pairs": args.pairs, "opencv": cv2.__version__,
              "cpu": timing.cpu_model(), "cpu_count": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d")}
    for method in ("tvl1", "farneback"):
        estimator = FlowEstimator(method)
        estimator(frames[0], frames[1])  # warm-up
        times = []
        for a, b in zip(frames[:-1], frames[1:]):
            start = time.perf_counter()
            flow = estimator(a, b)
            times.append(time.perf_counter() - start)
        per_pair = statistics.median(times)
        result[method] = {
            "seconds_per_pair": round(per_pair, 4),
            "seconds_per_video": round(per_pair * (args.frames - 1), 1),
            # the texture moves by (2, 1) pixels: a sanity check
            "mean_flow": [round(float(x), 2)
                          for x in flow[8:-8, 8:-8].reshape(-1, 2).mean(0)]}
    result["tvl1_over_farneback"] = round(
        result["tvl1"]["seconds_per_pair"]
        / result["farneback"]["seconds_per_pair"], 1)
    timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
