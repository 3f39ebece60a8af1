"""`--format=ego4d_mq`: official Ego4D MQ moments JSON + per-clip features.

`moments_train.json` / `moments_val.json` (videos -> clips -> annotators ->
labels) and one `<clip_uid>.npy|.npz` feature file per clip in each
features folder (or per video, `--feature_scope=video`) become
feature-sequence records, one per clip, with the clip's primary moments in
seconds from the clip's first feature window (`ego4d_mq.convert_ego4d_mq`).

Example:

    python -m tfaction.data.convert --format=ego4d_mq \
        --input=moments_val.json --features_dir=slowfast_features \
        --feature_stride=16 \
        --feature_window=32 --fps=30 --force_fps --output_dir=out
"""

from tfaction.data.formats import activitynet_features_cli
from tfaction.data.formats import registry

# Flags with the activitynet_features meaning, declared once there.
_SHARED = ("features_dir", "feature_stride", "feature_window", "fps",
           "force_fps", "subsets", "feature_ext", "npz_key", "feature_dim",
           "feature_encoding", "feature_dtype", "segment_tolerance",
           "require_features")
_FLAGS = (
    registry.flag("string", "input", None,
                  "Ego4D MQ moments JSON file(s), comma-separated "
                  "(moments_train.json,moments_val.json).", required=True),
    registry.flag("string", "class_list", None,
                  "Class list file (one name per line) imposing the label "
                  "order, or a shipped list's name; default ego4d_mq "
                  "(data/ego4d_mq/classes.txt), the ActionFormer authors' "
                  "label_id order."),
    registry.flag("float", "min_moment_duration", 0.25,
                  "Shortest moment kept, seconds (the authors' converter "
                  "drops shorter ones)."),
    registry.flag("enum", "feature_scope", "clip",
                  "clip: <clip_uid> feature files (already cut per clip); "
                  "video: <video_uid> files of whole videos, each clip "
                  "cut out on the feature grid.",
                  enum_values=["clip", "video"]),
) + tuple(f for f in activitynet_features_cli.FLAGS if f.name in _SHARED)


def _convert(options):
    from tfaction.data.formats import ego4d_mq

    options = dict(options, class_list=options["class_list"] or "ego4d_mq")
    return ego4d_mq.convert_ego4d_mq(
        options["input"], options["features_dir"], options["output_dir"],
        min_duration=options["min_moment_duration"],
        feature_scope=options["feature_scope"],
        **activitynet_features_cli.feature_options(options))


registry.register_format(
    "ego4d_mq",
    summary="official Ego4D MQ moments JSON (videos -> clips -> moments) + "
    "one feature file per clip -> feature-sequence records, one per clip",
    flags=_FLAGS, convert=_convert)
