r"""Late fusion of ActionVLAD stream predictions (and external scores).

```
python -m experiments.actionvlad_fuse --rgb=runs/rgb/predictions.npz \
    --flow=runs/flow/predictions.npz --output=runs/fused.npz \
    [--flow_weight=0.667] [--external=idt.csv --external_weight=0.25] \
    [--split_list=train_test_lists/test_split1.txt]
```

Reads the `predictions.npz` files the ActionVLAD evaluation writes (or any
`.npz` / `.csv` scores file of `experiments.evaluate`), aligns them by video
id, fuses the logits `(1 - w) * rgb + w * flow` (RGB:flow = 1:2 by default)
and optionally `(1 - e) * l2n(fused) + e * l2n(external)` (iDT; videos the
external file lacks get zeros there), and writes `--output` (`video_ids`,
`scores`, and `labels` when the RGB file has them). Either stream may be
left out (only external fusion). Prints a JSON line with the video top-1 /
top-5 accuracy of each input and of the fusion, from `--split_list` or the
labels stored in the predictions.

Exit status: 0 on success, 2 for bad flags, 1 for unreadable or
inconsistent files.
"""

import json
import sys

from absl import app
from absl import flags

from tfaction import errors
from tfaction.data import filesystems


def define_flags(flag_values=flags.FLAGS):
    """Defines the command's flags (only when run as a command, so that
    importing this module claims no flag names)."""
    f = dict(flag_values=flag_values)
    flags.DEFINE_string("rgb", None, "RGB stream scores (.npz/.csv)", **f)
    flags.DEFINE_string("flow", None, "flow stream scores (.npz/.csv)", **f)
    flags.DEFINE_float("flow_weight", 0.667, "weight w of the flow logits",
                       **f)
    flags.DEFINE_string("external", None,
                        "external scores (e.g. iDT), .npz/.csv", **f)
    flags.DEFINE_float("external_weight", 0.25,
                       "weight e of the external scores", **f)
    flags.DEFINE_string("output", None, "fused scores (.npz)", **f)
    flags.DEFINE_string(
        "split_list", None, "test split list (`video_path num_frames "
        "class_id`) to score against; default: labels stored in the "
        "predictions", **f)


def _labels(path, ids):
    """Labels stored in a predictions .npz, aligned to `ids` (or None)."""
    if not path or not path.endswith(".npz"):
        return None
    with filesystems.load_numpy(path) as z:
        if "labels" not in z.files:
            return None
        index = {str(v): i for i, v in enumerate(z["video_ids"].tolist())}
        return z["labels"][[index[v] for v in ids]]


def fuse_files(rgb=None, flow=None, *, flow_weight=0.667, external=None,
               external_weight=0.25):
    """Fuses score files (see the module docstring).

    Args:
        rgb, flow: scores files of the two streams (either may be None).
        flow_weight: `w`.
        external: optional external scores file.
        external_weight: `e`.

    Returns:
        `(video_ids, fused [N, K], inputs)` with `inputs` name -> aligned
        scores of each input.

    Raises:
        ConfigError: no stream given.
        DataError / MalformedFileError: unreadable or mismatching files.
    """
    from tfaction.evaluation import video_accuracy
    from tfaction.models.actionvlad import fusion

    streams = {name: video_accuracy.read_scores(path)
               for name, path in (("rgb", rgb), ("flow", flow)) if path}
    if not streams:
        raise errors.ConfigError("give --rgb and/or --flow")
    ids = next(iter(streams.values()))[0]
    inputs = {name: fusion.align(ids, s_ids, scores, name=name)
              for name, (s_ids, scores) in streams.items()}
    if len(inputs) == 2:
        fused = fusion.fuse_streams(inputs["rgb"], inputs["flow"],
                                    flow_weight)
    else:
        fused = next(iter(inputs.values()))
    if external:
        e_ids, e_scores = video_accuracy.read_scores(external)
        inputs["external"] = fusion.align(ids, e_ids, e_scores,
                                          name="external", missing="zeros")
        fused = fusion.fuse_external(fused, inputs["external"],
                                     external_weight)
    return ids, fused, inputs


def main(argv):
    del argv
    import numpy as np

    from tfaction.evaluation import video_accuracy
    from tfaction.tasks import actionvlad

    try:
        ids, fused, inputs = fuse_files(
            flags.FLAGS.rgb, flags.FLAGS.flow, flow_weight=flags.FLAGS.flow_weight,
            external=flags.FLAGS.external, external_weight=flags.FLAGS.external_weight)
        if flags.FLAGS.split_list:
            split_ids, split_labels = video_accuracy.read_split_list(
                flags.FLAGS.split_list)
            index = {v: i for i, v in enumerate(ids)}
            missing = [v for v in split_ids if v not in index]
            if missing:
                raise errors.DataError(
                    f"no scores for {len(missing)} listed video(s), e.g. "
                    f"{missing[:3]}", path=flags.FLAGS.split_list)
            rows = np.array([index[v] for v in split_ids])
            labels = split_labels
        else:
            labels = _labels(flags.FLAGS.rgb or flags.FLAGS.flow, ids)
            rows = np.arange(len(ids))
        if flags.FLAGS.output:
            actionvlad.write_predictions(flags.FLAGS.output, video_ids=ids,
                                         scores=fused, labels=labels if not
                                         flags.FLAGS.split_list else None)
    except errors.TfactionError as e:
        sys.stderr.write(f"experiments.actionvlad_fuse: error: {e}\n")
        sys.exit(2 if isinstance(e, errors.ConfigError) else 1)
    result = {"num_videos": len(ids)}
    if labels is not None and np.asarray(labels).ndim == 1:
        k = sorted({1, min(5, fused.shape[1])})
        for name, scores in {**inputs, "fused": fused}.items():
            acc = video_accuracy.accuracies(scores[rows], labels, k)
            result[name] = {key: value for key, value in acc.items()
                            if key.startswith("top")}
    print(json.dumps(result))


if __name__ == "__main__":
    define_flags()
    filesystems.run_and_exit(app.run, main)
