"""Videos per second converting video files with optical flow: the local
path against Apache Beam's DirectRunner; prints one JSON line.

The videos are `tfaction.data.synthetic`'s video-classification clips
(moving, textured blobs), encoded as MPEG-4 files, converted by
`--format=videos` with `--flow` (TV-L1 by default) three ways:

* `local_1`: the default local path, one thread;
* `local_threads`: the local path with `--num_workers=<workers>` threads;
* `direct_<workers>`: `--runner=DirectRunner` with
  `--direct_num_workers=<workers> --direct_running_mode=multi_processing`
  (worker processes; their start-up, TensorFlow's import included, is in the
  time).

Each case converts into its own folder; the result also says whether the
three outputs are byte-identical (they must be).

Usage:
    python benchmarks/conversion.py [--videos 16] [--frames 24]
        [--size 112] [--flow tvl1] [--workers 2] [--output result.json]
        [--bench]

`--bench` (what `make bench` runs) is the defaults.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from benchmarks import timing  # noqa: E402
from tfaction.data.formats import runners  # noqa: E402
from tfaction.data.formats import videos  # noqa: E402
from tfaction.data.synthetic import ava as synthetic_ava  # noqa: E402
from tfaction.data.synthetic import \
    generate_video_classification  # noqa: E402


def _snapshot(folder):
    """{relative path: bytes} of every file below `folder`."""
    out = {}
    for path in sorted(pathlib.Path(folder).rglob("*")):
        if path.is_file():
            out[str(path.relative_to(folder))] = path.read_bytes()
    return out


def write_videos(root, num_videos, num_frames, size, fps=10):
    """Synthetic clips as `<root>/videos/<class>/<video>.mp4`.

    Returns:
        The videos folder.
    """
    summary = generate_video_classification(
        root / "frames_data", num_videos=num_videos, height=size,
        width=size, min_frames=num_frames, max_frames=num_frames, seed=0)
    folder = root / "videos"
    for video in summary["videos"]:
        frames_dir = root / "frames_data" / "frames" / video["path"]
        frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
                  for p in sorted(frames_dir.glob("image_*.jpg"))]
        target = folder / f"{video['path']}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        synthetic_ava.write_mp4(target, frames, fps)
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--flow", default="tvl1",
                        choices=["tvl1", "farneback"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output")
    parser.add_argument("--bench", action="store_true",
                        help="the `make bench` preset: the defaults above")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    loads = [timing.load_average()]
    direct = f"direct_{args.workers}"
    cases = {
        "local_1": dict(runner=runners.LOCAL),
        "local_threads": dict(runner=runners.LOCAL,
                              num_workers=args.workers),
        direct: dict(runner=runners.from_flags(
            "DirectRunner", f"--direct_num_workers={args.workers} "
            "--direct_running_mode=multi_processing")),
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        source = write_videos(tmp, args.videos, args.frames, args.size)
        rows, outputs = {}, {}
        for name, kwargs in cases.items():
            out = tmp / name
            began = time.perf_counter()
            info = videos.convert_videos(str(source), str(out), fps=None,
                                         flow=args.flow, num_shards=2,
                                         **kwargs)
            seconds = time.perf_counter() - began
            rows[name] = {"seconds": round(seconds, 2),
                          "videos_per_second": round(
                              info["num_records"] / seconds, 3)}
            outputs[name] = _snapshot(out)
    first = next(iter(outputs.values()))
    result = {
        "benchmark": "conversion",
        "videos": args.videos, "frames": args.frames,
        "size": [args.size, args.size], "flow": args.flow,
        "workers": args.workers, "cases": rows,
        f"{direct}_over_local_1": round(
            rows[direct]["videos_per_second"]
            / rows["local_1"]["videos_per_second"], 2),
        "identical_outputs": all(o == first for o in outputs.values()),
    }
    result["rows"] = table_rows(result)
    loads.append(timing.load_average())
    result.update(timing.run_facts(start, loads, devices=False))
    result["cpu_count"] = os.cpu_count()
    return timing.write_result(result, args.output)


def table_rows(result):
    """The `make bench` lines: Beam's DirectRunner and the local threads,
    each against the local path on one thread (videos/s, > 1 = faster)."""
    cases, workers = result["cases"], result["workers"]
    what = (f"conversion with {result['flow']} optical flow, videos/s "
            f"({result['videos']} synthetic videos of {result['frames']} "
            f"frames, {result['size'][0]}x{result['size'][1]})")
    base = cases["local_1"]["videos_per_second"]
    rows = []
    for name, label in ((f"direct_{workers}",
                         f"Beam DirectRunner, {workers} worker processes"),
                        ("local_threads", f"local path, {workers} threads")):
        ours = cases[name]["videos_per_second"]
        rows.append({"family": "Pipelines",
                     "measure": f"{what}: {label} vs the local path on one "
                                "thread",
                     "ours": ours, "reference": base, "unit": "videos/s",
                     "ratio": round(ours / base, 2),
                     "reference_name": "local path, one thread, same run",
                     "target": None, "met": None})
    return rows


if __name__ == "__main__":
    main()
