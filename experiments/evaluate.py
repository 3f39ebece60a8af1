r"""Scores a prediction file against a ground-truth file.

```
python -m experiments.evaluate --metric=<name> --ground_truth=PATH \
    --predictions=PATH [--subset=validation] \
    [--tiou_thresholds=0.3:0.7:5] [--variant=...] \
    [--skip_unknown_labels] [--output_json=PATH] [...]
```

Metrics (name -> module implementing `run_cli(ground_truth, predictions,
options) -> dict` and `format_table(result) -> str`):

| name | module |
|---|---|
| activitynet_detection | tfaction.evaluation.activitynet_detection |
| activitynet_proposals | tfaction.evaluation.activitynet_proposals |
| ego4d_recall | tfaction.evaluation.ego4d_recall |
| ava_frame_ap | tfaction.evaluation.ava_frame_ap |
| video_accuracy | tfaction.evaluation.video_accuracy |
| charades_map | tfaction.evaluation.charades_map |
| framewise | tfaction.evaluation.framewise |
| adafocus_map | tfaction.evaluation.adafocus_map |

`options` holds every flag below by name: `tiou_thresholds` is a list of
floats (`np.linspace` values for `start:stop:num`) or None, `top_k` an int
(one value), a list of ints (several) or None, booleans are booleans, unset
flags None. The table is printed to stdout; `--output_json` writes the
result dict. On a terminal, stderr shows the elapsed time while the metric
runs (`--noprogress`: nothing). A `tfaction.errors` exception prints one
line to stderr and exits with status 1.

`--metric=framewise --alignment_dir=DIR` also draws the nearest-neighbour
alignment of video pairs (`tfaction.evaluation.framewise_visualization`):
a plot per pair, and with `--records` an MP4 and a contact sheet of the
frames (drawn before the scores; one line per pair is printed after the
table, and the result dict gets an `alignment` entry).
"""

import argparse
import importlib
import sys

from tfaction import progress

METRICS = {
    "activitynet_detection": "tfaction.evaluation.activitynet_detection",
    "activitynet_proposals": "tfaction.evaluation.activitynet_proposals",
    "ego4d_recall": "tfaction.evaluation.ego4d_recall",
    "ava_frame_ap": "tfaction.evaluation.ava_frame_ap",
    "video_accuracy": "tfaction.evaluation.video_accuracy",
    "charades_map": "tfaction.evaluation.charades_map",
    "framewise": "tfaction.evaluation.framewise",
    "adafocus_map": "tfaction.evaluation.adafocus_map",
}


def _thresholds(value):
    """tIoU thresholds: "a,b,c" or "start:stop:num" (np.linspace); typed
    values near a benchmark's linspace float become it (a note says so)."""
    from tfaction import errors
    from tfaction.evaluation import common

    def note(text):
        print(f"note: {text}", file=sys.stderr)

    try:
        return common.parse_thresholds(value, None, report=note).tolist()
    except errors.ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _ints(value):
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {value!r}") from None
    return out[0] if len(out) == 1 else out


def build_parser():
    """The argument parser (every generic flag of every metric).

    Returns:
        `argparse.ArgumentParser`.

    Example:

    >>> args = build_parser().parse_args(["--metric=ego4d_recall",
    ...     "--ground_truth=g", "--predictions=p", "--top_k=1,5"])
    >>> args.top_k
    [1, 5]
    """
    p = argparse.ArgumentParser(
        prog="python -m experiments.evaluate",
        description="Official-equivalent evaluation of a prediction file.")
    p.add_argument("--metric", required=True, choices=sorted(METRICS))
    p.add_argument("--ground_truth", required=True, help="ground-truth file")
    p.add_argument("--predictions", required=True, help="prediction file")
    p.add_argument("--subset", default=None,
                   help="evaluated subset (default: the metric's, e.g. "
                        "'validation'; Ego4D: 'val')")
    p.add_argument("--tiou_thresholds", type=_thresholds, default=None,
                   help="tIoU thresholds: comma-separated (0.3,0.5,0.7) or "
                        "start:stop:num for np.linspace(start, stop, num) "
                        "(0.5:0.95:10). Typed values within 1e-9 of a "
                        "benchmark's linspace float (ActivityNet "
                        "0.5:0.95:10, THUMOS14 0.3:0.7:5, EPIC/Ego4D "
                        "0.1:0.5:5) are replaced by it, with a note on "
                        "stderr (default: the metric's, e.g. "
                        "linspace(0.5, 0.95, 10))")
    p.add_argument("--variant", default=None,
                   help="official-code variant (detection: activitynet | "
                        "actionformer | epic; ego4d_recall: official | "
                        "actionformer; adafocus_map: actnet | fcvid | "
                        "minik; others: see the metric)")
    p.add_argument("--epic_task", default=None,
                   choices=["verb", "noun", "action"],
                   help="activitynet_detection --variant=epic: the "
                        "EPIC-Kitchens 100 task scored (default action = "
                        "verb * 300 + noun); the ground truth may be "
                        "EPIC_100_validation.csv")
    p.add_argument("--skip_unknown_labels", action="store_true",
                   help="drop and count predictions whose label is not a "
                        "ground-truth class instead of failing")
    p.add_argument("--class_agnostic", action="store_true",
                   help="activitynet_detection: score every ground-truth "
                        "instance and prediction as one class (a "
                        "class-agnostic detector without class scores)")
    p.add_argument("--top_k", type=_ints, default=None,
                   help="k value(s), comma-separated (Recall@kx, top-k)")
    p.add_argument("--label_map", default=None, help="label map file")
    p.add_argument("--excluded_timestamps", default=None,
                   help="excluded key-frames CSV (AVA)")
    p.add_argument("--split_list", default=None, help="split list file")
    p.add_argument("--num_classes", type=int, default=None,
                   help="charades_map: number of classes (default 157)")
    p.add_argument("--video_info", default=None,
                   help="BSN video_info_new.csv for BSN-layout ground truth "
                        "(default: next to --ground_truth)")
    p.add_argument("--max_avg_nr_proposals", type=int, default=None,
                   help="AN_max of the proposal metric (default 100)")
    p.add_argument("--skip_missing_clips", action="store_true",
                   help="ego4d_recall: count GT of clips without predictions "
                        "as misses instead of failing")
    p.add_argument("--alignment_dir", default=None,
                   help="framewise: also draw the nearest-neighbour "
                        "alignment of video pairs here (plot PNG; with "
                        "--records an MP4 and a contact sheet too)")
    p.add_argument("--alignment_pairs", default=None,
                   help="framewise --alignment_dir: pairs of consecutive "
                        "val videos per dataset (default 1), or video ids "
                        "'query,candidate[;query,candidate...]'")
    p.add_argument("--alignment_stride", type=int, default=None,
                   help="framewise --alignment_dir: every n-th query frame "
                        "in the MP4 and contact sheet (default 1)")
    p.add_argument("--records", default=None,
                   help="framewise --alignment_dir: converted records "
                        "(--format=tcc file pattern) holding the frames")
    p.add_argument("--output_json", default=None,
                   help="write the result dict to this JSON file")
    progress.add_argument(p)
    return p


def load_metric(name):
    """Imports the module of metric `name`.

    Args:
        name: a key of `METRICS`.

    Returns:
        The module.

    Raises:
        MissingDependencyError: the module is not installed / not written.

    Example:

    >>> load_metric("activitynet_detection").__name__
    'tfaction.evaluation.activitynet_detection'
    """
    from tfaction import errors

    module = METRICS[name]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise errors.MissingDependencyError(
                f"metric {name!r} needs module {module}, which is missing "
                "from this installation") from e
        raise


def main(argv=None):
    """Runs the CLI; returns the exit status.

    Args:
        argv: arguments without the program name (default sys.argv[1:]).

    Returns:
        0 on success, 1 on a `tfaction.errors` error.

    Example:

    ```python
    main(["--metric=activitynet_detection", "--ground_truth=gt.json",
          "--predictions=preds.json"])
    ```
    """
    from tfaction import errors
    from tfaction.data import filesystems

    parser = build_parser()
    args = parser.parse_args(argv)
    given = [f"--{name}" for name in ("alignment_pairs", "alignment_stride",
                                      "records")
             if getattr(args, name) is not None]
    if given and not args.alignment_dir:
        parser.error(f"{', '.join(given)} need(s) --alignment_dir")
    if args.alignment_dir and args.metric != "framewise":
        parser.error("--alignment_dir is for --metric=framewise")
    options = vars(args).copy()
    progress.set_enabled(args.progress)
    try:
        module = load_metric(args.metric)
        alignment = None
        if args.alignment_dir:  # first: its flag and file errors come fast
            from tfaction.evaluation import framewise_visualization as vis
            with progress.Stage(f"framewise: drawing alignments into "
                                f"{args.alignment_dir}"):
                alignment = vis.run_cli(args.ground_truth, args.predictions,
                                        options)
        # The metrics are vectorised (no per-item loop to count): a line
        # with the elapsed time shows that a large file is being scored.
        with progress.Stage(f"{args.metric}: scoring {args.predictions}"):
            result = module.run_cli(args.ground_truth, args.predictions,
                                    options)
        print(module.format_table(result))
        if alignment is not None:
            result["alignment"] = alignment
            print(vis.format_lines(alignment))
        if args.output_json:
            filesystems.write_json(args.output_json, result)
    except errors.TfactionError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from tfaction.data import filesystems
    filesystems.exit_process(main())
