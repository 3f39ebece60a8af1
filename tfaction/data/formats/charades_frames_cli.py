"""`--format=charades_frames`: Charades v1 CSVs + RGB frame folders.

`Charades_v1_{train,test}.csv` and frame folders `<id>/<id>-000001.jpg`
become multi-label frames records (labels: the classes of each video's
actions; none for empty `actions`; `charades.convert_charades_frames`).

Example:

    python -m tfaction.data.convert --format=charades_frames \
        --input=Charades_v1_train.csv,Charades_v1_test.csv \
        --frames_root=Charades_v1_rgb --output_dir=out/charades
"""

from tfaction.data.formats import frame_folder_flags
from tfaction.data.formats import registry

_FLAGS = (
    registry.flag("string", "input", None,
                  "Charades_v1_{train,test}.csv, comma-separated.",
                  required=True),
    *frame_folder_flags.FLAGS,
    registry.flag("list", "subsets", None,
                  "Subset names parallel to --input (default from the file "
                  "names, Charades_v1_test.csv -> test)."),
    registry.flag("string", "class_list", None,
                  "Charades_v1_classes.txt ('c000 name' lines), or a "
                  "shipped list's name; default charades "
                  "(data/charades/Charades_v1_classes_hf.txt)."),
    registry.flag("float", "fps", None,
                  "fps of the frame folders (default 24)."),
    registry.flag("string", "frame_pattern", "{id}-{index:06d}.jpg",
                  "Frame file names (str.format; {id}, 1-indexed "
                  "{index:06d})."),
    registry.flag("integer", "frame_step", 1,
                  "Keep every frame_step-th frame (recorded fps = fps / "
                  "frame_step).", lower_bound=1),
)


def _convert(options):
    from tfaction.data.formats import charades

    fps = charades.FPS if options["fps"] is None else options["fps"]
    return charades.convert_charades_frames(
        options["input"], options["frames_root"], options["output_dir"],
        subsets=options["subsets"], frame_pattern=options["frame_pattern"],
        fps=fps, frame_step=options["frame_step"],
        jpeg_check=options["jpeg_check"],
        class_list=options["class_list"] or "charades",
        **registry.writer_options(options))


registry.register_format(
    "charades_frames",
    summary="Charades v1 CSVs + RGB frame folders -> multi-label frames "
    "records", flags=_FLAGS, convert=_convert)
