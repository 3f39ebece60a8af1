"""`--format=tcc`: TCC / CARL TFRecords -> frame-label records.

The TFRecords of the TCC dataset preparation (Pouring, PennAction: one
SequenceExample per video with context `name`, `len`, `label` and feature
lists `video` (JPEGs) and `frame_labels`) become one record per video with
`video/id`, `video/num_frames`, `video/fps`, the action in
`clip/label/index`, and feature lists `image/encoded` and
`frame/label/index` (`tcc.convert_tcc`). JPEG bytes are copied unchanged.

Example:

    python -m tfaction.data.convert --format=tcc \
        --input='pouring_tfrecords/pouring_*.tfrecord' \
        --output_dir=out/pouring
    python -m tfaction.data.convert --format=tcc \
        --input='penn_action_tfrecords/penn_action_*.tfrecord' --fps=30 \
        --num_shards=4 --output_dir=out/penn_action
"""

from tfaction.data.formats import registry

_FLAGS = (
    registry.flag("string", "input", None,
                  "TCC TFRecord files or globs (SequenceExamples with "
                  "context name/len/label and feature lists video, "
                  "frame_labels), comma-separated.", required=True),
    registry.flag("list", "subsets", None,
                  "Subset names, one per --input pattern (default from the "
                  "file names: pouring_val-0-of-1.tfrecord -> val)."),
    registry.flag("float", "fps", None,
                  "Frame rate of the stored frames (PennAction 30); default "
                  "unknown (video/fps = -1)."),
    registry.flag("enum", "tcc_layout", "auto",
                  "How a video's action is found: pouring (one class), "
                  "penn_action (from the name, 0001_baseball_pitch), generic "
                  "(the record's label / label_string), auto (from the file "
                  "names).", enum_values=["auto", "pouring", "penn_action",
                                          "generic"]),
    registry.flag("bool", "require_frame_labels", True,
                  "A record without frame_labels is an error (false: its "
                  "frames are labelled -1)."),
    registry.flag("bool", "decode_check", True,
                  "Decode every JPEG to check it (false: check only its "
                  "start / end markers)."),
)


def _convert(options):
    from tfaction.data.formats import tcc

    return tcc.convert_tcc(
        options["input"], options["output_dir"],
        layout=options["tcc_layout"], subsets=options["subsets"],
        fps=options["fps"],
        require_frame_labels=options["require_frame_labels"],
        decode_check=options["decode_check"],
        **registry.writer_options(options))


def _report(info, options):
    from tfaction.data.formats import tcc

    return tcc.report_lines(info, options)


registry.register_format(
    "tcc",
    summary="TCC TFRecords (Pouring, PennAction) -> frame-label records "
    "(JPEG frames, a phase label per frame, the action)", flags=_FLAGS,
    convert=_convert, report=_report)
