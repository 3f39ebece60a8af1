"""`--format=videos`: video files -> frames records.

Videos (a glob, a folder of `<class>/<video>` files or a list file) are
decoded with PyAV at `--fps`, optionally with TV-L1/Farneback optical flow
(`videos.convert_videos`).

Example:

    python -m tfaction.data.convert --format=videos \
        --input='videos/*/*.mp4' --fps=10 --short_side=256 --flow=tvl1 \
        --output_dir=out/videos
"""

from tfaction.data.formats import registry

_FLAGS = (
    registry.flag("string", "input", None,
                  "Glob, folder or list file.", required=True),
    registry.flag("float", "fps", None,
                  "Output frame rate (default: every frame)."),
    registry.flag("string", "class_list", None,
                  "Class list file (one name per line) imposing the label "
                  "order, or a shipped list's name; default: sorted "
                  "names."),
    registry.flag("integer", "short_side", None,
                  "Resize frames to this short side."),
    registry.flag("enum", "flow", "none", "Optical flow method.",
                  enum_values=["tvl1", "farneback", "none"]),
    registry.flag("float", "flow_bound", 20.0,
                  "Flow clipping bound (pixels)."),
    registry.flag("integer", "jpeg_quality", 95, "JPEG quality.",
                  lower_bound=1, upper_bound=100),
    registry.flag("string", "videos_root", None,
                  "Root for relative paths in a list file."),
    registry.flag("bool", "labels", True,
                  "Use folder / list labels (--nolabels: none)."),
    registry.flag("string", "subset", "train",
                  "Subset name (shard prefix)."),
)


def _convert(options):
    from tfaction.data.formats import videos

    return videos.convert_videos(
        options["input"], options["output_dir"], fps=options["fps"],
        short_side=options["short_side"], flow=options["flow"],
        flow_bound=options["flow_bound"],
        jpeg_quality=options["jpeg_quality"],
        videos_root=options["videos_root"], labels=options["labels"],
        subset=options["subset"], class_list=options["class_list"],
        **registry.writer_options(options))


registry.register_format(
    "videos",
    summary="video files (glob, folder or list file) -> frames records, "
    "decoded with PyAV, optional optical flow", flags=_FLAGS,
    convert=_convert)
