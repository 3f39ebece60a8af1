"""`--format={actnet,fcvid,minik}_frames`: AdaFocus split lists + frames.

The split lists of the AdaFocus / AdaFocus V2 data folders over their
frame folders become frames records (`adafocus_lists.
convert_adafocus_lists`):

* `actnet_frames`, `fcvid_frames`: `{actnet,fcvid}_{train,val}_split.txt`
  (`path,num_frames,label[,label[,label]]`), frames
  `DIR/frames/<path>/image_%05d.jpg`, class list `DIR/classInd.txt`;
* `minik_frames`: `mini_{train,val}_videofolder.txt` (`path num_frames
  label`), frames `DIR/<path>/img_%05d.jpg`, class list
  `DIR/minik_classInd.txt`.

Example:

    python -m tfaction.data.convert --format=actnet_frames \
        --input=DIR/actnet_train_split.txt,DIR/actnet_val_split.txt \
        --frames_root=DIR/frames --class_list=DIR/classInd.txt \
        --output_dir=out/actnet
"""

import functools

from tfaction.data.formats import frame_folder_flags
from tfaction.data.formats import registry

_FLAGS = (
    registry.flag("string", "input", None,
                  "Split list file(s), comma-separated.", required=True),
    *frame_folder_flags.FLAGS,
    registry.flag("string", "class_list", None,
                  "classInd.txt / minik_classInd.txt (line k names label "
                  "k).", required=True),
    registry.flag("list", "subsets", None,
                  "Subset names parallel to --input (default from the file "
                  "names, actnet_val_split.txt -> val)."),
    registry.flag("float", "fps", None, "fps to record."),
    registry.flag("string", "frame_template", None,
                  "1-indexed printf frame name (default image_%05d.jpg; "
                  "minik_frames: img_%05d.jpg)."),
    registry.flag("integer", "min_frames", 3,
                  "Drop (and count) videos with fewer frames, as the "
                  "authors' loader does.", lower_bound=1),
)

_SUMMARIES = {
    "actnet": "AdaFocus ActivityNet split lists (comma-separated, up to 3 "
              "labels) + frame folders -> frames records",
    "fcvid": "AdaFocus FCVID split lists (comma-separated, up to 3 labels) "
             "+ frame folders -> frames records",
    "minik": "AdaFocus Mini-Kinetics lists (space-separated) + frame "
             "folders -> frames records",
}


def _convert(dataset, options):
    from tfaction.data.formats import adafocus_lists

    return adafocus_lists.convert_adafocus_lists(
        options["input"], options["frames_root"], options["output_dir"],
        dataset=dataset, class_list=options["class_list"],
        subsets=options["subsets"], frame_pattern=options["frame_template"],
        fps=options["fps"], min_frames=options["min_frames"],
        jpeg_check=options["jpeg_check"], **registry.writer_options(options))


for _dataset, _summary in _SUMMARIES.items():
    registry.register_format(f"{_dataset}_frames", summary=_summary,
                             flags=_FLAGS,
                             convert=functools.partial(_convert, _dataset))
