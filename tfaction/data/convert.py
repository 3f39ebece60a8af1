r"""Converts public dataset layouts to tfaction TFRecords (command line).

Formats (`--format`):

* `activitynet_features`: ActivityNet/THUMOS annotation JSON (or ActivityNet
  1.3 in the BSN layout + `--video_info`) + one `<prefix><video_id>.npy|.npz`
  feature file per video -> feature-sequence records, one shard set per subset.
* `hmdb51_frames`: frame folders + split lists -> frames records (RGB/flow).
* `charades_frames`: Charades v1 CSVs (`--input`) + RGB frame folders
  (`--frames_root`, `<id>/<id>-000001.jpg`) -> multi-label frames records
  (labels: the classes of each video's actions; none for empty `actions`).
* `actnet_frames`, `fcvid_frames`, `minik_frames`: the AdaFocus split lists
  (ActivityNet / FCVID `path,num_frames,label[,label...]`, Mini-Kinetics
  `path num_frames label`) + RGB frame folders -> frames records with up to
  3 labels per video.
* `ava`: AVA v2.x CSVs + videos -> keyframe-boxes records (person boxes,
  their actions and a clip of frames around each keyframe).
* `ego4d_mq`: Ego4D moment-query JSON + per-clip features ->
  feature-sequence records, one per clip.
* `tcc`: TCC-layout TFRecords (Pouring, PennAction, `--kind=tcc` synthetic)
  -> frame-label records (one per video, a phase label per frame; CARL).
* `finegym`: FineGym annotation JSON + Gym99 / Gym288 element lists +
  YouTube videos or event clips -> one frame-label record per event.
* `videos`: video files (glob, folder or list file) -> frames records, decoded
  with PyAV at `--fps`, optional TV-L1/Farneback optical flow.
* `verify`: re-read an output folder (`--input`) and check every shard
  against its dataset_info.json.

Each format is one module `tfaction/data/formats/<format>_cli.py` that
registers its flags and conversion (`tfaction.data.formats.registry`);
`--help` lists every flag with the formats it belongs to. A flag of another
format than `--format` is an error naming its format, as is an unknown
`--format` (the message lists the registered ones).

Output (in `--output_dir`): `<subset>-NNNNN-of-NNNNN.tfrecord`, `classes.txt`,
`dataset_info.json` (and `ground_truth.json` for feature formats), committed
atomically: a failed run leaves the previous output untouched. Bad input
stops the run with an error naming file / line / video / key; with
`--skip_corrupt`, bad videos are skipped, counted, printed and listed in
dataset_info.json instead.

Runners (`--runner`, every writing format): `local` (default) converts in
this process with `--num_workers` threads; `DirectRunner`, `FlinkRunner`,
`SparkRunner` or `DataflowRunner` run one Apache Beam pipeline per subset,
one video (event, record) per element (extra `tfaction[beam]`; further
pipeline options in `--beam_options`). Both write byte-identical shards and
metadata, through the same staging, verification and atomic commit
(`tfaction.data.formats.runners`).

Examples:

  python -m tfaction.data.convert --format=activitynet_features \
      --input=thumos_gt.json --features_dir=i3d_features \
      --feature_stride=4 --feature_window=16 --fps=30 --output_dir=out/thumos

  python -m tfaction.data.convert --format=activitynet_features \
      --input=anet_anno_action.json --video_info=video_info_new.csv \
      --features_dir=tsp_features --feature_stride=16 --feature_window=16 \
      --subsets=training,validation --output_dir=out/anet

  python -m tfaction.data.convert --format=hmdb51_frames \
      --input=lists/train_split1.txt,lists/test_split1.txt \
      --frames_root=hmdb51/frames --modalities=rgb,flow \
      --class_list=data/hmdb51/actions.txt --output_dir=out/hmdb51_s1

  python -m tfaction.data.convert --format=charades_frames \
      --input=Charades/Charades_v1_train.csv,Charades/Charades_v1_test.csv \
      --frames_root=Charades_v1_rgb \
      --class_list=Charades/Charades_v1_classes.txt --num_shards=64 \
      --num_workers=8 --output_dir=data/charades/records

  python -m tfaction.data.convert --format=actnet_frames \
      --input=ActivityNet/actnet_train_split.txt,\
ActivityNet/actnet_val_split.txt \
      --frames_root=ActivityNet/frames --class_list=ActivityNet/classInd.txt \
      --num_workers=8 --output_dir=data/actnet/records

  python -m tfaction.data.convert --format=ava \
      --input=ava_train_v2.1.csv,ava_val_v2.1.csv --videos_root=ava/videos \
      --excluded_timestamps=ava_train_excluded_timestamps_v2.1.csv \
      --output_dir=data/ava/records

  python -m tfaction.data.convert --format=videos --input='videos/*/*.mp4' \
      --fps=10 --short_side=256 --flow=tvl1 --output_dir=out/videos

  python -m tfaction.data.convert --format=videos --input='videos/*/*.mp4' \
      --flow=tvl1 --num_shards=64 --output_dir=gs://bucket/videos \
      --runner=DataflowRunner --beam_options="--project=p --region=r \
      --temp_location=gs://bucket/tmp --setup_file=./setup.py"
"""

import os
import sys

from absl import app
from absl import flags

from tfaction import errors
from tfaction import progress
from tfaction.data import filesystems
from tfaction.data.formats import registry


def define_flags(flag_values, formats):
    """Defines `--format`, `--[no]progress` and every format's flags.

    Args:
        flag_values: an `absl.flags.FlagValues`.
        formats: a `registry.Registry`.

    Returns:
        The `--format` and `--progress` flag holders.
    """
    fmt = flags.DEFINE_string(
        "format", None,
        "Input format: " + "; ".join(
            f"{name}: {formats.get(name).summary}"
            for name in formats.names()) + ".",
        flag_values=flag_values)
    shown = progress.define_flag(flag_values)
    for name in ["progress", *formats.define_flags(flag_values)]:
        # Key flags of this module: `--help` lists them, not only --helpfull.
        flags.declare_key_flag(name, flag_values=flag_values)
    return fmt, shown


_FORMAT, _PROGRESS = define_flags(flags.FLAGS,
                                  registry.load_builtin_formats())


def summary_lines(info, options):
    """Human-readable summary of a written dataset (printed by the CLI).

    The report of every format registered without its own `report`.

    Args:
        info: the dataset_info dict a writing format returns.
        options: the format's flag values (`output_dir` is used).

    Returns:
        Lines of text.
    """
    subsets = ", ".join(f"{name} {entry['num_records']}"
                        for name, entry in info["subsets"].items())
    lines = [f"wrote {info['num_records']} record(s) to "
             f"{options['output_dir']}: {subsets or 'no subset'}",
             f"skipped {info['skipped']['count']} corrupt video(s)"]
    for item in info["skipped"]["items"]:
        lines.append(f"  skipped {item['video_id']}: {item['message']}")
    if "missing_features" in info:
        lines.append(f"{info['missing_features']['count']} annotated "
                     "video(s) without a feature file (not converted; listed "
                     "in dataset_info.json)")
        past = info["segments_past_duration"]
        lines.append(f"{past['count']} segment(s) end after the duration "
                     f"(by at most {past['max_overrun']:.3f} s; kept)")
    return lines


def main(argv):
    """Converts (or verifies) as the parsed flags say; prints a summary.

    Args:
        argv: what absl left of the command line (the program name only).

    Returns:
        0 on success, 1 on bad input or flags (one line on stderr).
    """
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Before TensorFlow loads: hide its C++ start-up log unless asked for.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    progress.set_enabled(_PROGRESS.value)
    try:
        fmt = registry.FORMATS.get(_FORMAT.value)
        options = registry.FORMATS.options(fmt.name, flags.FLAGS)
        result = fmt.convert(options)
    except (errors.TfactionError, ValueError) as e:
        # A clear one-line message, not a traceback: the input is at fault.
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    for line in (fmt.report or summary_lines)(result, options):
        print(line)
    return 0


if __name__ == "__main__":
    filesystems.run_and_exit(app.run, main)
