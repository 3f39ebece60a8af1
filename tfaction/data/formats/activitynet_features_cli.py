"""`--format=activitynet_features`: annotation JSON + feature files.

ActivityNet/THUMOS annotation JSON (or ActivityNet 1.3 in the BSN layout +
`--video_info`) and one `<prefix><video_id>.npy|.npz` feature file per
video become feature-sequence records, one shard set per subset
(`activitynet_features.convert_activitynet_features`).

Example:

    python -m tfaction.data.convert --format=activitynet_features \
        --input=thumos_gt.json --features_dir=i3d_features \
        --feature_stride=4 --feature_window=16 --fps=30 --output_dir=out
"""

from tfaction.data.formats import registry

FLAGS = (
    registry.flag("string", "input", None, "Annotation JSON.",
                  required=True),
    registry.flag(
        "list", "features_dir", None,
        "Folder of per-video feature files; several folders "
        "(comma-separated, one feature set each) are concatenated along "
        "channels in that order.", required=True),
    registry.flag("float", "feature_stride", None,
                  "Frames between feature steps.", required=True),
    registry.flag("float", "feature_window", None,
                  "Frames per feature step.", required=True),
    registry.flag("float", "fps", None,
                  "fps of videos whose annotations have none."),
    registry.flag("bool", "force_fps", False,
                  "Use --fps for every video, also where the annotations "
                  "give one (ActionFormer's default_fps)."),
    registry.flag("enum", "layout", "auto",
                  "Annotation layout (auto: 'database' key -> activitynet, "
                  "else bsn).", enum_values=["auto", "activitynet", "bsn"]),
    registry.flag("string", "video_info", None,
                  "Video info CSV (BSN video_info_new.csv): subset for the "
                  "bsn layout; fills missing duration/fps otherwise."),
    registry.flag("list", "subsets", None,
                  "Subsets to convert (default all)."),
    registry.flag("string", "class_list", None,
                  "Class list file (one name per line) imposing the label "
                  "order, or a shipped list's name (thumos14, "
                  "activitynet13, epic_kitchens100_verb, ...); default: the "
                  "JSON's label_id order if complete, else sorted names."),
    registry.flag("string", "feature_prefix", None,
                  "Feature file prefix before the video id (e.g. v_); "
                  "default '' (activitynet) or the original v_ key (bsn)."),
    registry.flag("enum", "feature_ext", "auto", "Feature file extension.",
                  enum_values=["auto", ".npy", ".npz"]),
    registry.flag("string", "npz_key", "feats", "Array name in .npz files."),
    registry.flag("integer", "feature_dim", None,
                  "Required feature dimension C (default: the most "
                  "common)."),
    registry.flag("enum", "feature_encoding", "floats",
                  "How features are stored.",
                  enum_values=["tensor", "floats"]),
    registry.flag("enum", "feature_dtype", "float32",
                  "Storage dtype (tensor encoding).",
                  enum_values=["float32", "float16"]),
    registry.flag("float", "segment_tolerance", 1.0,
                  "Seconds a segment may end after the duration (kept, "
                  "reported)."),
    registry.flag("bool", "require_features", False,
                  "Fail on an annotated video without a feature file "
                  "(default: report)."),
)


def feature_options(options):
    """The feature and writer flags' values, as converter keywords.

    Args:
        options: the dict a format's `convert` receives (with the flags of
            `FLAGS` it declares).

    Returns:
        Keywords of `activitynet_features.convert_feature_videos`:
        `feature_stride`, `feature_window`, `fps`, `force_fps`,
        `feature_ext`, `npz_key`, `feature_dim`, `subsets`, `encoding`,
        `dtype`, `segment_tolerance`, `require_features`, `class_list` and
        the writer options.

    Example:

    ```python
    convert_feature_videos(videos, options["features_dir"],
                           options["output_dir"], **feature_options(options),
                           ...)
    ```
    """
    names = ("feature_stride", "feature_window", "fps", "force_fps",
             "feature_ext", "npz_key", "feature_dim", "subsets",
             "segment_tolerance", "require_features", "class_list")
    return dict({n: options[n] for n in names},
                encoding=options["feature_encoding"],
                dtype=options["feature_dtype"],
                **registry.writer_options(options))


def _convert(options):
    from tfaction.data.formats import activitynet_features

    return activitynet_features.convert_activitynet_features(
        options["input"], options["features_dir"], options["output_dir"],
        layout=options["layout"], video_info=options["video_info"],
        feature_prefix=options["feature_prefix"], **feature_options(options))


registry.register_format(
    "activitynet_features",
    summary="ActivityNet/THUMOS annotation JSON (or BSN layout + "
    "--video_info) + one feature file per video -> feature-sequence records",
    flags=FLAGS, convert=_convert)
