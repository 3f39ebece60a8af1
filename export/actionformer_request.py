r"""Sends one video to an exported ActionFormer and prints its detections.

```
python -m export.actionformer_request --saved_model=models/actionformer/1 \
    --data_dir=data/thumos_i3d [--subset=test] [--video_id=ID] [--top=10] \
    [--rest_body=request.json]
```

Reads the video's features from a converted dataset (`tfaction.data.convert`
output: TFRecords, `dataset_info.json`, `classes.txt`), calls the
`serving_default` signature of the SavedModel exactly as TensorFlow Serving
would (inputs `features` [1, T, C], `lengths` [1], `fps` [1]; only
TensorFlow is needed to run the model), and prints the top detections with
the video's ground truth. `--rest_body` also writes the JSON body of the
equivalent REST request, to send with

    curl -d @request.json http://HOST:8501/v1/models/actionformer:predict
"""

import sys

from absl import app
from absl import flags

from tfaction.data import filesystems

FLAGS = flags.FLAGS
_SAVED_MODEL = flags.DEFINE_string("saved_model", None,
                                   "Exported version folder (models/X/N).")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Converted feature-sequence dataset folder.")
_SUBSET = flags.DEFINE_string("subset", "validation", "Subset to read.")
_VIDEO_ID = flags.DEFINE_string("video_id", None,
                                "Video to send (default: the first).")
_TOP = flags.DEFINE_integer("top", 10, "Detections to print.")
_REST_BODY = flags.DEFINE_string("rest_body", None,
                                 "Write the REST :predict body here.")


def read_video(data_dir, subset, video_id=None):
    """The features and ground truth of one video of a converted dataset.

    Args:
        data_dir: `tfaction.data.convert --format=activitynet_features`
            output folder.
        subset: the subset whose records are read.
        video_id: the wanted video (default: the subset's first record).

    Returns:
        Dict with `video_id`, `features` [T, C] float32, `fps`, `segments`
        [S, 2] seconds, `labels` [S] and `class_names`.

    Raises:
        DataError: no such subset or video.
    """
    from tfaction import errors
    from tfaction.data import schemas
    from tfaction.data import tfrecord_io
    from tfaction.tasks import actionformer

    data = actionformer.open_dataset(data_dir)
    info = data.info
    for shard in data.files(subset):
        for record in tfrecord_io.iterate_records(shard):
            ex = schemas.parse_feature_sequence(
                record, feature_dim=int(info["feature_dim"]),
                encoding=info["feature_encoding"])
            vid = ex[schemas.VIDEO_ID].numpy().decode()
            if video_id is not None and vid != video_id:
                continue
            return {
                "video_id": vid,
                "features": ex["features"].numpy(),
                "fps": float(ex[schemas.VIDEO_FPS]),
                "segments": ex["segments"].numpy(),
                "labels": ex[schemas.SEGMENT_LABEL_INDEX].numpy(),
                "class_names": data.class_names,
            }
    raise errors.DataError(f"video {video_id!r} is not in subset {subset!r}",
                           path=data_dir, video_id=video_id)


def request_inputs(video):
    """The serving inputs of one video (batch of one), as numpy."""
    import numpy as np

    feats = video["features"][None].astype(np.float32)
    return {"features": feats,
            "lengths": np.array([feats.shape[1]], np.int32),
            "fps": np.array([video["fps"]], np.float32)}


def rest_body(inputs):
    """TF Serving REST `:predict` body (columnar `inputs` format)."""
    return {"signature_name": "serving_default",
            "inputs": {k: v.tolist() for k, v in inputs.items()}}


def predict(saved_model, inputs):
    """Runs `serving_default` of `saved_model` on `inputs` (numpy dict)."""
    import tensorflow as tf

    fn = tf.saved_model.load(filesystems.ensure_filesystem(
        saved_model)).signatures["serving_default"]
    out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def format_detections(video, outputs, top=10):
    """Text table: ground truth, then the top detections."""
    class_names = video.get("class_names")

    def name(k):
        k = int(k)
        return class_names[k] if class_names and 0 <= k < len(class_names) \
            else str(k)

    lines = [f"video {video['video_id']}: "
             f"{int(outputs['num_detections'][0])} detections"]
    lines.append("  ground truth:")
    for (s, e), k in sorted(zip(video["segments"].tolist(),
                                video["labels"].tolist())):
        lines.append(f"    {s:8.2f} - {e:8.2f} s  {name(k)}")
    lines.append(f"  top {top} detections:")
    n = min(top, int(outputs["num_detections"][0]))
    for i in range(n):
        s, e = outputs["segments"][0, i]
        lines.append(f"    {s:8.2f} - {e:8.2f} s  {name(outputs['labels'][0, i])}"
                     f"  score {outputs['scores'][0, i]:.3f}")
    return "\n".join(lines)


def main(argv):
    del argv
    from tfaction import errors

    try:
        video = read_video(_DATA_DIR.value, _SUBSET.value, _VIDEO_ID.value)
        inputs = request_inputs(video)
        if _REST_BODY.value:
            filesystems.write_json(_REST_BODY.value, rest_body(inputs),
                                   indent=None)
        outputs = predict(_SAVED_MODEL.value, inputs)
        print(format_detections(video, outputs, _TOP.value))
    except errors.TfactionError as e:
        sys.stderr.write(f"export.actionformer_request: error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(["saved_model", "data_dir"])
    filesystems.run_and_exit(app.run, main)
