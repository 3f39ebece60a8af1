"""`--format=finegym`: FineGym events -> frame-label records for CARL.

The FineGym annotation file (`--input`, `finegym_annotation_info_v1.0.json`),
the Gym99 or Gym288 element lists (`--element_lists`, one subset each) and
a folder of videos (`--videos_root`: the downloaded YouTube videos, cut per
event here, or event clips already cut) become one record per event with
at least one labelled sub-action: its frames at 25 fps, 640x360, and the
element id of every frame (-1 outside the labelled sub-actions), as CARL's
`finegym_process.py` prepares them (`finegym.convert_finegym`).

Example:

    python -m tfaction.data.convert --format=finegym \
        --input=finegym_annotation_info_v1.0.json \
        --element_lists=gym99_train_element_v1.0.txt,gym99_val_element.txt \
        --videos_root=FineGym_Raw_database --num_workers=8 \
        --output_dir=data/finegym/records
"""

from tfaction.data.formats import registry

_FLAGS = (
    registry.flag("string", "input", None,
                  "FineGym annotation JSON (finegym_annotation_info_v1.0"
                  ".json).", required=True),
    registry.flag("string", "element_lists", None,
                  "Gym99 / Gym288 element lists ('<youtube_id>_E_<s>_<e>_"
                  "A_<s>_<e> <label>' lines), comma-separated; one subset "
                  "each.", required=True),
    registry.flag("list", "subsets", None,
                  "Subset names parallel to --element_lists (default from "
                  "the file names, gym99_val_element.txt -> val)."),
    registry.flag("string", "videos_root", None,
                  "Folder of the YouTube videos (<youtube_id>.mp4|mkv|webm) "
                  "or of the event clips (<youtube_id>_E_<s>_<e>.mp4).",
                  required=True),
    registry.flag("enum", "video_layout", "auto",
                  "raw: whole YouTube videos, each event cut out here; "
                  "events: event clips already cut; auto: from the file "
                  "names.", enum_values=["auto", "raw", "events"]),
    registry.flag("integer", "num_element_classes", None,
                  "Element classes; labels must be below it (default from "
                  "the list names: gym99 -> 99, gym288 -> 288).",
                  lower_bound=1),
    registry.flag("float", "fps", None,
                  "Frame rate of the records (default 25, the authors')."),
    registry.flag("integer", "frame_width", 640,
                  "Frame width after resizing (the authors' 640).",
                  lower_bound=1),
    registry.flag("integer", "frame_height", 360,
                  "Frame height after resizing (the authors' 360).",
                  lower_bound=1),
    registry.flag("integer", "jpeg_quality", 95, "JPEG quality.",
                  lower_bound=1, upper_bound=100),
)


def _convert(options):
    from tfaction.data.formats import finegym

    fps = finegym.FPS if options["fps"] is None else options["fps"]
    return finegym.convert_finegym(
        options["input"], options["element_lists"], options["videos_root"],
        options["output_dir"], subsets=options["subsets"],
        video_layout=options["video_layout"],
        num_element_classes=options["num_element_classes"], fps=fps,
        width=options["frame_width"], height=options["frame_height"],
        jpeg_quality=options["jpeg_quality"],
        **registry.writer_options(options))


def _report(info, options):
    from tfaction.data.formats import finegym

    return finegym.report_lines(info, options)


registry.register_format(
    "finegym",
    summary="FineGym annotation JSON + Gym99/Gym288 element lists + videos "
    "-> frame-label records (one per event, element id per frame)",
    flags=_FLAGS, convert=_convert, report=_report)
