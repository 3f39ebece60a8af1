"""`--format=hmdb51_frames`: HMDB51-style frame folders + split lists.

Split lists (`video_path num_frames class_id`) and RGB / flow frame folders
become frames records (`hmdb51.convert_hmdb51_frames`).

Example:

    python -m tfaction.data.convert --format=hmdb51_frames \
        --input=lists/train_split1.txt,lists/test_split1.txt \
        --frames_root=hmdb51/frames --modalities=rgb,flow \
        --class_list=actions.txt --output_dir=out/hmdb51_s1
"""

from tfaction.data.formats import frame_folder_flags
from tfaction.data.formats import registry

_FLAGS = (
    registry.flag("string", "input", None,
                  "Split list file(s), comma-separated.", required=True),
    *frame_folder_flags.FLAGS,
    registry.flag("string", "flow_root", None,
                  "Root of the flow folders (default --frames_root)."),
    registry.flag("list", "modalities", ["rgb"], "rgb and/or flow."),
    registry.flag("list", "subsets", None,
                  "Subset names parallel to --input (default from the file "
                  "names, train_split1.txt -> train)."),
    registry.flag("string", "class_list", None,
                  "Class list file (one name per line) imposing the label "
                  "order, or a shipped list's name (hmdb51); default: "
                  "folder names of the class ids."),
    registry.flag("string", "all_videos", None,
                  "AllVideos.txt: original names of renamed videos."),
    registry.flag("float", "fps", None, "fps to record."),
    registry.flag("string", "rgb_pattern", "image_%05d.jpg",
                  "RGB frame names (1-indexed)."),
    registry.flag("string", "flow_x_pattern", "flow_x_%05d.jpg",
                  "x-flow names (1-indexed)."),
    registry.flag("string", "flow_y_pattern", "flow_y_%05d.jpg",
                  "y-flow names (1-indexed)."),
)


def _convert(options):
    from tfaction.data.formats import hmdb51

    return hmdb51.convert_hmdb51_frames(
        options["input"], options["frames_root"], options["output_dir"],
        flow_root=options["flow_root"], modalities=options["modalities"],
        subsets=options["subsets"], all_videos=options["all_videos"],
        fps=options["fps"], rgb_pattern=options["rgb_pattern"],
        flow_x_pattern=options["flow_x_pattern"],
        flow_y_pattern=options["flow_y_pattern"],
        jpeg_check=options["jpeg_check"], class_list=options["class_list"],
        **registry.writer_options(options))


registry.register_format(
    "hmdb51_frames",
    summary="frame folders + split lists -> frames records (RGB/flow)",
    flags=_FLAGS, convert=_convert)
