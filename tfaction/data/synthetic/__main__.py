"""Writes a small deterministic synthetic dataset in a public layout.

Usage:

    python -m tfaction.data.synthetic --kind=temporal_localization \\
        --out_dir=/tmp/tal_synth [--num_videos=60] [--seed=0] [--overwrite]
    python -m tfaction.data.synthetic --kind=video_classification \\
        --out_dir=/tmp/hmdb_synth [--num_videos=32] [--seed=0]
    python -m tfaction.data.synthetic --kind=ava \\
        --out_dir=/tmp/ava_synth [--num_videos=6] [--seed=0]
    python -m tfaction.data.synthetic --kind=tcc \\
        --out_dir=/tmp/tcc_synth [--num_videos=32] [--seed=0]
    python -m tfaction.data.synthetic --kind=adafocus \\
        --out_dir=/tmp/adafocus_synth [--num_videos=1200] [--seed=0]

`--out_dir` may be remote (`s3://...`): the dataset is written locally
first, then uploaded.

Prints a one-line JSON summary. See `tfaction.data.synthetic` for layouts.
"""

import json

from absl import app
from absl import flags

from tfaction.data import filesystems
from tfaction.data import synthetic

GENERATORS = synthetic.GENERATORS

_KIND = flags.DEFINE_enum(
    "kind", None, sorted(GENERATORS), "Which dataset to write.")
_OUT_DIR = flags.DEFINE_string(
    "out_dir", None, "Dataset folder to create (missing or empty).")
_NUM_VIDEOS = flags.DEFINE_integer(
    "num_videos", None,
    "Number of videos; default 60 (temporal_localization), 32 "
    "(video_classification, 4 per class), 12 (charades), 6 (ava), 32 "
    "(tcc) or 1200 (adafocus).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed (same seed, same bytes).")
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace a non-empty --out_dir.")
flags.mark_flags_as_required(["kind", "out_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    kwargs = {"seed": _SEED.value, "overwrite": _OVERWRITE.value}
    if _NUM_VIDEOS.value is not None:
        kwargs["num_videos"] = _NUM_VIDEOS.value
    generate = GENERATORS[_KIND.value]
    summary = generate(_OUT_DIR.value, **kwargs)
    summary.pop("videos", None)  # per-video details stay in the split lists
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    filesystems.run_and_exit(app.run, main)
