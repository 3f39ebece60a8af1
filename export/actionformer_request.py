r"""Sends one video to an exported ActionFormer and prints its detections.

```
python -m export.actionformer_request --saved_model=models/actionformer/1 \
    --data_dir=data/thumos_i3d [--subset=test] [--video_id=ID] [--top=10] \
    [--ext_score_file=cuhk_val_simp_share.json] [--rest_body=request.json] \
    [--grpc=HOST:8500 [--model_name=actionformer] [--signature_name=NAME]] \
    [--grpc_request=request.pb]
```

Reads the video's features from a converted dataset (`tfaction.data.convert`
output: TFRecords, `dataset_info.json`, `classes.txt`), calls the
`serving_default` signature of the SavedModel exactly as TensorFlow Serving
would (inputs `features` [1, T, C], `lengths` [1], `fps` [1]; only
TensorFlow is needed to run the model), and prints the top detections (with
the `class_names` the model returns) and the video's ground truth. With
`--ext_score_file` (video-level class scores in the CUHK format, e.g. for
the ActivityNet recipe) it sends the video's row of scores as
`class_scores` [1, K] to `serving_with_class_scores` instead. `--rest_body`
also writes the JSON body of the equivalent REST request, to send with

    curl -d @request.json http://HOST:8501/v1/models/actionformer:predict

With `--grpc=HOST:PORT` the same inputs go as a gRPC `PredictRequest`
(TensorProtos of the signature's dtypes) to TF Serving's
`PredictionService/Predict` instead, and the detections it returns are
printed (`--saved_model` is then not needed); `--grpc_request` writes that
request, serialized, without sending it. The flags shared with
`export.actionvlad_request` are described in `export.serving_request`.
"""

import sys

from absl import app
from absl import flags

from export import serving_request
from tfaction.data import filesystems

FLAGS = flags.FLAGS
serving_request.define_flags("actionformer")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Converted feature-sequence dataset folder.")
_SUBSET = flags.DEFINE_string("subset", "validation", "Subset to read.")
_VIDEO_ID = flags.DEFINE_string("video_id", None,
                                "Video to send (default: the first).")
_TOP = flags.DEFINE_integer("top", 10, "Detections to print.")
_EXT_SCORE_FILE = flags.DEFINE_string(
    "ext_score_file", None, "Video-level class scores (CUHK-format JSON): "
    "send the video's row to serving_with_class_scores.")


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


def request_inputs(video, ext_score_file=None):
    """The serving inputs of one video (batch of one), as numpy.

    Args:
        video: `read_video` output.
        ext_score_file: optional CUHK-format class score file; adds the
            video's `class_scores` [1, K] float64 (looked up by video id,
            with or without a `v_` prefix).

    Returns:
        Dict input name -> numpy array.

    Raises:
        MalformedFileError: a bad score file, or no scores for the video.
    """
    import numpy as np

    feats = video["features"][None].astype(np.float32)
    inputs = {"features": feats,
              "lengths": np.array([feats.shape[1]], np.int32),
              "fps": np.array([video["fps"]], np.float32)}
    if ext_score_file:
        from tfaction.models.actionformer import score_fusion

        scores = score_fusion.load_external_scores(ext_score_file)
        inputs["class_scores"] = scores.lookup(video["video_id"])[None]
    return inputs


def signature_name(inputs):
    """`serving_with_class_scores` for inputs with `class_scores`, else
    `serving_default`."""
    from tfaction.serving import actionformer as serving_actionformer
    from tfaction.serving import export_module

    return (serving_actionformer.CLASS_SCORES_SIGNATURE
            if "class_scores" in inputs else export_module.SERVING_DEFAULT)


def rest_body(inputs):
    """TF Serving REST `:predict` body (columnar `inputs` format) of
    `request_inputs` output, for its `signature_name`."""
    return serving_request.rest_body(inputs, signature_name(inputs))


def grpc_request(inputs, model_name="actionformer"):
    """The gRPC `PredictRequest` of `request_inputs` output.

    Args:
        inputs: `request_inputs` output.
        model_name: the served model's name (`model_spec.name`).

    Returns:
        A `PredictRequest` for `signature_name(inputs)`; send it with
        `serving_request.send(request, "HOST:8500")`.
    """
    return serving_request.predict_request(inputs, signature_name(inputs),
                                           model_name)


def predict(saved_model, inputs):
    """Runs the inputs' signature (`signature_name`) of `saved_model` on
    `inputs` (numpy dict)."""
    return serving_request.run_saved_model(serving_request.load_signature(
        saved_model, signature_name(inputs)), inputs)


def format_detections(video, outputs, top=10):
    """Text table: ground truth, then the top detections (named by the
    model's `class_names` output)."""
    class_names = video.get("class_names")

    def name(k):
        k = int(k)
        return class_names[k] if class_names and 0 <= k < len(class_names) \
            else str(k)

    def detection_name(i):
        if "class_names" in outputs:  # exports before class lists: none
            return outputs["class_names"][0, i].decode()
        return name(outputs["labels"][0, i])

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
        lines.append(f"    {s:8.2f} - {e:8.2f} s  {detection_name(i)}"
                     f"  score {outputs['scores'][0, i]:.3f}")
    return "\n".join(lines)


def main(argv):
    del argv
    from tfaction import errors

    try:
        video = read_video(_DATA_DIR.value, _SUBSET.value, _VIDEO_ID.value)
        inputs = request_inputs(video, _EXT_SCORE_FILE.value)
        outputs = serving_request.serve(inputs, signature_name(inputs))
        if outputs is not None:
            print(format_detections(video, outputs, _TOP.value))
    except errors.TfactionError as e:
        sys.stderr.write(f"export.actionformer_request: error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(["data_dir"])
    filesystems.run_and_exit(app.run, main)
