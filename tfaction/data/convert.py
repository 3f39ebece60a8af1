r"""Converts public dataset layouts to tfaction TFRecords (command line).

Formats (`--format`):

* `activitynet_features`: ActivityNet/THUMOS annotation JSON (or ActivityNet
  1.3 in the BSN layout + `--video_info`) + one `<prefix><video_id>.npy|.npz`
  feature file per video -> feature-sequence records, one shard set per subset.
* `hmdb51_frames`: frame folders + split lists -> frames records (RGB/flow).
* `charades_frames`: Charades v1 CSVs (`--input`) + RGB frame folders
  (`--frames_root`, `<id>/<id>-000001.jpg`) -> multi-label frames records
  (labels: the classes of each video's actions; none for empty `actions`).
* `videos`: video files (glob, folder or list file) -> frames records, decoded
  with PyAV at `--fps`, optional TV-L1/Farneback optical flow.
* `verify`: re-read an output folder (`--input`) and check every shard
  against its dataset_info.json.

Output (in `--output_dir`): `<subset>-NNNNN-of-NNNNN.tfrecord`, `classes.txt`,
`dataset_info.json` (and `ground_truth.json` for feature formats), committed
atomically: a failed run leaves the previous output untouched. Bad input
stops the run with an error naming file / line / video / key; with
`--skip_corrupt`, bad videos are skipped, counted, printed and listed in
dataset_info.json instead.

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

  python -m tfaction.data.convert --format=videos --input='videos/*/*.mp4' \
      --fps=10 --short_side=256 --flow=tvl1 --output_dir=out/videos
"""

import os
import sys

from absl import app
from absl import flags

from tfaction import errors
from tfaction.data.formats import progress

FORMATS = ("activitynet_features", "hmdb51_frames", "charades_frames",
           "videos", "verify")

# --- Common -------------------------------------------------------------------
_FORMAT = flags.DEFINE_enum("format", None, FORMATS, "Input format.")
_PROGRESS = flags.DEFINE_bool(
    "progress", True,
    "Show a progress line (videos done, rate, ETA) on stderr when it is a "
    "terminal; --noprogress turns it off.")
_INPUT = flags.DEFINE_string(
    "input", None,
    "activitynet_features: annotation JSON. hmdb51_frames: split list "
    "file(s), comma-separated. charades_frames: Charades_v1_{train,test}.csv, "
    "comma-separated. videos: glob, folder or list file. verify: an output "
    "folder.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Output folder.")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "Shards per subset.",
                                   lower_bound=1)
_SKIP_CORRUPT = flags.DEFINE_bool(
    "skip_corrupt", False,
    "Skip bad videos (counted, printed, listed in dataset_info.json) "
    "instead of stopping.")
_VERIFY = flags.DEFINE_bool(
    "verify", True, "Read every written shard back before committing.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 1,
                                    "Threads reading/decoding videos.",
                                    lower_bound=1)
_CLASS_LIST = flags.DEFINE_string(
    "class_list", None,
    "Class list file (one name per line) imposing the label order; default "
    "activitynet_features: the JSON's label_id order if complete, else sorted "
    "names; hmdb51_frames: folder names of the class ids; videos: sorted "
    "names. charades_frames: Charades_v1_classes.txt ('c000 name' lines; "
    "default names c000..c156).")
_SUBSETS = flags.DEFINE_list(
    "subsets", None,
    "activitynet_features: subsets to convert (default all). "
    "hmdb51_frames, charades_frames: subset names parallel to --input "
    "(default from the file names, train_split1.txt -> train, "
    "Charades_v1_test.csv -> test).")
_FPS = flags.DEFINE_float(
    "fps", None,
    "activitynet_features: fps of videos whose annotations have none. "
    "videos: output frame rate (default: every frame). hmdb51_frames: fps "
    "to record. charades_frames: fps of the frame folders (default 24).")

# --- activitynet_features -----------------------------------------------------
_FEATURES_DIR = flags.DEFINE_list(
    "features_dir", None,
    "Folder of per-video feature files; several folders (comma-separated, "
    "one feature set each) are concatenated along channels in that order.")
_FORCE_FPS = flags.DEFINE_bool(
    "force_fps", False,
    "activitynet_features: use --fps for every video, also where the "
    "annotations give one (ActionFormer's default_fps).")
_LAYOUT = flags.DEFINE_enum("layout", "auto", ["auto", "activitynet", "bsn"],
                            "Annotation layout (auto: 'database' key -> "
                            "activitynet, else bsn).")
_VIDEO_INFO = flags.DEFINE_string(
    "video_info", None,
    "Video info CSV (BSN video_info_new.csv): subset for the bsn layout; "
    "fills missing duration/fps otherwise.")
_FEATURE_STRIDE = flags.DEFINE_float("feature_stride", None,
                                     "Frames between feature steps.")
_FEATURE_WINDOW = flags.DEFINE_float("feature_window", None,
                                     "Frames per feature step.")
_FEATURE_PREFIX = flags.DEFINE_string(
    "feature_prefix", None,
    "Feature file prefix before the video id (e.g. v_); default '' "
    "(activitynet) or the original v_ key (bsn).")
_FEATURE_EXT = flags.DEFINE_enum("feature_ext", "auto",
                                 ["auto", ".npy", ".npz"],
                                 "Feature file extension.")
_NPZ_KEY = flags.DEFINE_string("npz_key", "feats", "Array name in .npz files.")
_FEATURE_DIM = flags.DEFINE_integer(
    "feature_dim", None,
    "Required feature dimension C (default: the most common).")
_FEATURE_ENCODING = flags.DEFINE_enum("feature_encoding", "floats",
                                      ["tensor", "floats"],
                                      "How features are stored.")
_FEATURE_DTYPE = flags.DEFINE_enum("feature_dtype", "float32",
                                   ["float32", "float16"],
                                   "Storage dtype (tensor encoding).")
_SEGMENT_TOLERANCE = flags.DEFINE_float(
    "segment_tolerance", 1.0,
    "Seconds a segment may end after the duration (kept, reported).")
_REQUIRE_FEATURES = flags.DEFINE_bool(
    "require_features", False,
    "Fail on an annotated video without a feature file (default: report).")

# --- hmdb51_frames, charades_frames -------------------------------------------
_FRAMES_ROOT = flags.DEFINE_string("frames_root", None,
                                   "Root of the RGB frame folders.")
_FLOW_ROOT = flags.DEFINE_string("flow_root", None,
                                 "Root of the flow folders (default "
                                 "--frames_root).")
_MODALITIES = flags.DEFINE_list("modalities", ["rgb"], "rgb and/or flow.")
_ALL_VIDEOS = flags.DEFINE_string(
    "all_videos", None, "AllVideos.txt: original names of renamed videos.")
_RGB_PATTERN = flags.DEFINE_string("rgb_pattern", "image_%05d.jpg",
                                   "RGB frame names (1-indexed).")
_FLOW_X_PATTERN = flags.DEFINE_string("flow_x_pattern", "flow_x_%05d.jpg",
                                      "x-flow names (1-indexed).")
_FLOW_Y_PATTERN = flags.DEFINE_string("flow_y_pattern", "flow_y_%05d.jpg",
                                      "y-flow names (1-indexed).")
_FRAME_PATTERN = flags.DEFINE_string(
    "frame_pattern", "{id}-{index:06d}.jpg",
    "charades_frames: frame file names (str.format; {id}, 1-indexed "
    "{index:06d}).")
_FRAME_STEP = flags.DEFINE_integer(
    "frame_step", 1,
    "charades_frames: keep every frame_step-th frame (recorded fps = "
    "fps / frame_step).", lower_bound=1)
_JPEG_CHECK = flags.DEFINE_enum(
    "jpeg_check", "decode", ["decode", "header"],
    "decode: decode every JPEG; header: start/end markers only.")

# --- videos -------------------------------------------------------------------
_SHORT_SIDE = flags.DEFINE_integer("short_side", None,
                                   "Resize frames to this short side.")
_FLOW = flags.DEFINE_enum("flow", "none", ["tvl1", "farneback", "none"],
                          "Optical flow method.")
_FLOW_BOUND = flags.DEFINE_float("flow_bound", 20.0,
                                 "Flow clipping bound (pixels).")
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 95, "JPEG quality.",
                                     lower_bound=1, upper_bound=100)
_VIDEOS_ROOT = flags.DEFINE_string("videos_root", None,
                                   "Root for relative paths in a list file.")
_LABELS = flags.DEFINE_bool("labels", True,
                            "Use folder / list labels (--nolabels: none).")
_SUBSET = flags.DEFINE_string("subset", "train",
                              "videos: subset name (shard prefix).")


def _require(*flag_holders):
    for holder in flag_holders:
        if holder.value is None:
            raise errors.ConfigError(
                f"--{holder.name} is required for --format={_FORMAT.value}")


def run():
    """Runs the conversion selected by the parsed flags.

    Returns:
        The dataset_info dict, or for `verify` a dict subset -> records.
    """
    if _FORMAT.value is None:
        raise errors.ConfigError(
            f"--format is required; one of {', '.join(FORMATS)}")
    _require(_INPUT)
    fmt = _FORMAT.value
    if fmt == "verify":
        from tfaction.data.formats import output
        return output.verify_output(_INPUT.value)
    _require(_OUTPUT_DIR)
    common = dict(num_shards=_NUM_SHARDS.value,
                  skip_corrupt=_SKIP_CORRUPT.value, verify=_VERIFY.value,
                  num_workers=_NUM_WORKERS.value,
                  class_list=_CLASS_LIST.value)
    if fmt == "activitynet_features":
        _require(_FEATURES_DIR, _FEATURE_STRIDE, _FEATURE_WINDOW)
        from tfaction.data.formats import activitynet_features
        return activitynet_features.convert_activitynet_features(
            _INPUT.value, _FEATURES_DIR.value, _OUTPUT_DIR.value,
            feature_stride=_FEATURE_STRIDE.value,
            feature_window=_FEATURE_WINDOW.value, layout=_LAYOUT.value,
            video_info=_VIDEO_INFO.value, fps=_FPS.value,
            force_fps=_FORCE_FPS.value,
            feature_prefix=_FEATURE_PREFIX.value,
            feature_ext=_FEATURE_EXT.value, npz_key=_NPZ_KEY.value,
            feature_dim=_FEATURE_DIM.value, subsets=_SUBSETS.value,
            encoding=_FEATURE_ENCODING.value, dtype=_FEATURE_DTYPE.value,
            segment_tolerance=_SEGMENT_TOLERANCE.value,
            require_features=_REQUIRE_FEATURES.value, **common)
    if fmt == "hmdb51_frames":
        _require(_FRAMES_ROOT)
        from tfaction.data.formats import hmdb51
        return hmdb51.convert_hmdb51_frames(
            _INPUT.value, _FRAMES_ROOT.value, _OUTPUT_DIR.value,
            flow_root=_FLOW_ROOT.value, modalities=_MODALITIES.value,
            subsets=_SUBSETS.value, all_videos=_ALL_VIDEOS.value,
            fps=_FPS.value, rgb_pattern=_RGB_PATTERN.value,
            flow_x_pattern=_FLOW_X_PATTERN.value,
            flow_y_pattern=_FLOW_Y_PATTERN.value,
            jpeg_check=_JPEG_CHECK.value, **common)
    if fmt == "charades_frames":
        _require(_FRAMES_ROOT)
        from tfaction.data.formats import charades
        return charades.convert_charades_frames(
            _INPUT.value, _FRAMES_ROOT.value, _OUTPUT_DIR.value,
            subsets=_SUBSETS.value, frame_pattern=_FRAME_PATTERN.value,
            fps=charades.FPS if _FPS.value is None else _FPS.value,
            frame_step=_FRAME_STEP.value, jpeg_check=_JPEG_CHECK.value,
            **common)
    from tfaction.data.formats import videos
    return videos.convert_videos(
        _INPUT.value, _OUTPUT_DIR.value, fps=_FPS.value,
        short_side=_SHORT_SIDE.value, flow=_FLOW.value,
        flow_bound=_FLOW_BOUND.value, jpeg_quality=_JPEG_QUALITY.value,
        videos_root=_VIDEOS_ROOT.value, labels=_LABELS.value,
        subset=_SUBSET.value, **common)


def summary_lines(info):
    """Human-readable summary of a dataset_info dict (printed by the CLI)."""
    subsets = ", ".join(f"{name} {entry['num_records']}"
                        for name, entry in info["subsets"].items())
    lines = [f"wrote {info['num_records']} record(s) to "
             f"{_OUTPUT_DIR.value}: {subsets or 'no subset'}",
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
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Before TensorFlow loads: hide its C++ start-up log unless asked for.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    progress.set_enabled(_PROGRESS.value)
    try:
        result = run()
    except (errors.TfactionError, ValueError) as e:
        # A clear one-line message, not a traceback: the input is at fault.
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if _FORMAT.value == "verify":
        for subset, count in result.items():
            print(f"verified {subset}: {count} record(s)")
        return 0
    for line in summary_lines(result):
        print(line)
    return 0


if __name__ == "__main__":
    app.run(main)
