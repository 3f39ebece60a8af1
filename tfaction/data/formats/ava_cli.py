"""`--format=ava`: AVA annotation CSVs + videos -> keyframe-boxes records.

`ava_{train,val}_v2.x.csv` rows `video_id,timestamp,x1,y1,x2,y2,action_id,
person_id`, a label map, excluded-timestamps CSVs and a folder of videos
become one record per keyframe: the person boxes with their (multi-label)
actions and `--clip_frames` JPEG frames at `--fps` centred on the keyframe,
edge-padded at the video's ends (`ava.convert_ava`). The evaluation ground
truth (`ground_truth_<subset>.csv`) and label map (`label_map.pbtxt`) are
written beside the records.

Example:

    python -m tfaction.data.convert --format=ava \
        --input=ava_train_v2.1.csv,ava_val_v2.1.csv --videos_root=videos \
        --excluded_timestamps=ava_train_excluded_timestamps_v2.1.csv,\
ava_val_excluded_timestamps_v2.1.csv \
        --time_offset=900 --short_side=256 --output_dir=out/ava
"""

from tfaction.data.formats import registry

_FLAGS = (
    registry.flag("string", "input", None,
                  "AVA annotation CSVs (video_id,timestamp,x1,y1,x2,y2,"
                  "action_id,person_id), comma-separated; one subset each.",
                  required=True),
    registry.flag("string", "videos_root", None,
                  "Folder of the videos, <video_id>.<ext> (mp4, mkv, webm, "
                  "...).", required=True),
    registry.flag("string", "label_map", None,
                  "Label map pbtxt (item { name: \"...\" id: N }) or JSON "
                  "list, or 'ava' (the 80 AVA actions, default) / 'ava60' "
                  "(the official 60-class evaluation map)."),
    registry.flag("string", "eval_label_map", None,
                  "Label map written as label_map.pbtxt for the evaluator "
                  "(default: --label_map, or 'ava60' when --label_map is "
                  "the default 80-class list)."),
    registry.flag("string", "excluded_timestamps", None,
                  "Excluded-timestamps CSVs (video_id,timestamp), "
                  "comma-separated; their keyframes are skipped and "
                  "counted."),
    registry.flag("list", "subsets", None,
                  "Subset names parallel to --input (default from the file "
                  "names, ava_val_v2.1.csv -> val)."),
    registry.flag("float", "fps", None,
                  "Frame rate of the clips (default 25)."),
    registry.flag("integer", "clip_frames", 64,
                  "Frames per clip, centred on the keyframe (keyframe index "
                  "clip_frames // 2).", lower_bound=1),
    registry.flag("float", "time_offset", 0.0,
                  "Seconds subtracted from the CSV timestamps to get the "
                  "time in the video file (900 for videos cut to AVA's "
                  "15-minute segment; 0 for whole movies)."),
    registry.flag("integer", "short_side", None,
                  "Resize frames to this short side."),
    registry.flag("integer", "jpeg_quality", 95, "JPEG quality.",
                  lower_bound=1, upper_bound=100),
)


def _convert(options):
    from tfaction.data.formats import ava

    fps = ava.DEFAULT_FPS if options["fps"] is None else options["fps"]
    return ava.convert_ava(
        options["input"], options["videos_root"], options["output_dir"],
        label_map=options["label_map"],
        eval_label_map=options["eval_label_map"],
        excluded_timestamps=options["excluded_timestamps"],
        subsets=options["subsets"], fps=fps,
        clip_frames=options["clip_frames"],
        short_side=options["short_side"],
        jpeg_quality=options["jpeg_quality"],
        time_offset=options["time_offset"],
        **registry.writer_options(options))


def _report(info, options):
    from tfaction.data.formats import ava

    return ava.report_lines(info, options)


registry.register_format(
    "ava",
    summary="AVA CSVs + label map + videos -> keyframe-boxes records (boxes, "
    "multi-label actions, a clip of frames per keyframe)", flags=_FLAGS,
    convert=_convert, report=_report)
