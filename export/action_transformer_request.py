r"""Sends one keyframe's clip to an exported Action Transformer.

```
python -m export.action_transformer_request \
    --saved_model=models/action_transformer/1 --data_dir=data/ava/records \
    [--subset=val] [--video_id=ID [--timestamp=0902]] [--stride=1] \
    [--encoding=uint8|jpeg] [--top_actions=3] [--rest_body=request.json] \
    [--grpc=HOST:8500 [--model_name=action_transformer] \
     [--signature_name=NAME] [--num_frames=T]] [--grpc_request=request.pb]
```

Reads one keyframe record of a converted AVA-layout dataset
(`python -m tfaction.data.convert --format=ava` output), chooses the clip's
frames exactly as the keyframe pipeline does (`T` frames `--stride` apart,
the keyframe at `T // 2`, clamped to the stored clip; `T` is read from the
SavedModel's signature, or `--num_frames`), and sends them as TensorFlow
Serving would:

* `--encoding=uint8` (default): the frames decoded (as the pipeline
  decodes them) to `serving_default`, `frames` uint8 `[1, T, H, W, 3]`;
* `--encoding=jpeg`: the stored JPEG bytes unchanged to `serve_jpeg`,
  `frames` string `[1, T]` (a much smaller request: the REST body of a
  64-frame 400x400 uint8 clip is over 100 MB of JSON).

Resizing, normalisation, the model and person NMS run inside the model.
It prints one JSON line: the keyframe, its ground-truth people and the
detected people (box `[y1, x1, y2, x2]` normalised, person score and the
top actions, named by the `class_names` the model returns from its
`assets/classes.txt`). `--rest_body` writes the JSON body of the same
request (JPEGs base64-encoded as `{"b64": ...}`):

    curl -d @request.json \
        http://HOST:8501/v1/models/action_transformer:predict

With `--grpc=HOST:PORT` the same inputs go as a gRPC `PredictRequest`
(TensorProtos of the signature's dtypes) to TF Serving's
`PredictionService/Predict` instead (`--saved_model` is then optional:
give `--num_frames`); `--grpc_request` writes that request, serialized,
without sending it. The flags shared with the other request commands are
described in `export.serving_request`.
"""

import json
import sys

from absl import app
from absl import flags

from export import serving_request
from tfaction.data import filesystems

MODEL_NAME = "action_transformer"
ENCODINGS = ("uint8", "jpeg")
# The signatures of `tfaction.serving.action_transformer` (named here so
# that a client needs no model code).
UINT8_SIGNATURE = "serving_default"
JPEG_SIGNATURE = "serve_jpeg"


def define_flags(flag_values=flags.FLAGS):
    """Defines the command's flags (only when run as a command, so that
    importing this module claims no flag names)."""
    f = dict(flag_values=flag_values)
    serving_request.define_flags(MODEL_NAME, flag_values)
    flags.DEFINE_string("data_dir", None,
                        "Converted AVA-layout dataset folder.", **f)
    flags.DEFINE_string("subset", "val", "Subset to read.", **f)
    flags.DEFINE_string("video_id", None,
                        "Video to send (default: the subset's first).", **f)
    flags.DEFINE_string(
        "timestamp", None, "Keyframe timestamp as written in the CSV "
        "(default: the video's first keyframe).", **f)
    flags.DEFINE_integer(
        "num_frames", None, "Frames per clip, T (default: the SavedModel "
        "signature's).", lower_bound=1, **f)
    flags.DEFINE_integer("stride", 1, "Step between the chosen stored "
                         "frames (the recipe's clips.stride).",
                         lower_bound=1, **f)
    flags.DEFINE_enum("encoding", "uint8", ENCODINGS,
                      "uint8: decoded frames to serving_default; jpeg: the "
                      "stored JPEGs to serve_jpeg.", **f)
    flags.DEFINE_integer("top_actions", 3, "Actions printed per person.",
                         lower_bound=1, **f)


def read_keyframe(data_dir, subset="val", video_id=None, timestamp=None):
    """One keyframe record of a converted AVA-layout dataset.

    Args:
        data_dir: `tfaction.data.convert --format=ava` output folder.
        subset: the subset whose records are read.
        video_id: the wanted video (default: the subset's first record).
        timestamp: the wanted keyframe's CSV timestamp text (default: the
            video's first record); compared as numbers, so "902" finds
            "0902".

    Returns:
        Dict with `video_id`, `timestamp` (the CSV text), `record` (the
        serialized record), `boxes` `[G, 4]` ground-truth people
        (normalised `[y1, x1, y2, x2]`), `labels` (per person, the label
        indices) and `class_names`.

    Raises:
        DataError: no such subset, video or keyframe.
    """
    from tfaction import errors
    from tfaction.data import schemas
    from tfaction.data import tfrecord_io
    from tfaction.tasks import converted_dataset

    data = converted_dataset.ConvertedDataset(
        data_dir, schema="keyframe_boxes", converter="ava")
    for shard in data.files(subset):
        for record in tfrecord_io.iterate_records(shard):
            ex = schemas.parse_keyframe_boxes(record)
            vid = ex[schemas.VIDEO_ID].numpy().decode()
            text = ex[schemas.CLIP_TIMESTAMP_TEXT].numpy().decode()
            if video_id is not None and vid != video_id:
                continue
            if timestamp is not None and _as_number(text) != _as_number(
                    timestamp):
                continue
            boxes = ex["boxes"].numpy()[:, [1, 0, 3, 2]]
            return {"video_id": vid, "timestamp": text, "record": record,
                    "boxes": boxes,
                    "labels": ex[schemas.BOX_LABEL_INDEX].to_list(),
                    "class_names": data.class_names}
    raise errors.DataError(
        f"no keyframe of video {video_id!r} at timestamp {timestamp!r} in "
        f"subset {subset!r}", path=data_dir, video_id=video_id)


def _as_number(text):
    try:
        return float(text)
    except ValueError:
        return text


def request_inputs(keyframe, num_frames, stride=1, encoding="uint8"):
    """The serving inputs of one keyframe's clip (batch of one), as numpy.

    The frames are chosen and decoded by the keyframe pipeline's own
    stages (`choose_frames_stage`, `decode_stage`).

    Args:
        keyframe: `read_keyframe` output.
        num_frames: T, frames per clip (the signature's).
        stride: step between chosen stored frames.
        encoding: "uint8" (decoded frames) or "jpeg" (the stored bytes).

    Returns:
        `{"frames": uint8 [1, T, H, W, 3]}` or
        `{"frames": object [1, T] of JPEG bytes}`.

    Raises:
        ConfigError: an unknown encoding.
    """
    import numpy as np

    from tfaction import errors
    from tfaction.data import keyframe_boxes_pipeline as pipeline_lib
    from tfaction.data import schemas

    if encoding not in ENCODINGS:
        raise errors.ConfigError(f"encoding must be one of {ENCODINGS}, got "
                                 f"{encoding!r}")
    config = pipeline_lib.KeyframeBoxesConfig(num_frames=int(num_frames),
                                              stride=int(stride))
    ex = pipeline_lib.parse_stage(0, keyframe["record"])
    ex = pipeline_lib.choose_frames_stage(ex, config=config, seed=0)
    if encoding == "jpeg":
        encoded = ex[schemas.IMAGE_ENCODED].numpy()
        chosen = [encoded[i] for i in ex["indices"].numpy()]
        return {"frames": np.array([chosen], dtype=object)}
    ex = pipeline_lib.decode_stage(ex, config=config)
    return {"frames": ex["frames"].numpy()[None]}


def signature_name(inputs):
    """`serve_jpeg` for JPEG inputs, else `serving_default`."""
    return (JPEG_SIGNATURE if inputs["frames"].dtype == object
            else UINT8_SIGNATURE)


def rest_body(inputs):
    """TF Serving REST `:predict` body (columnar `inputs` format) of
    `request_inputs` output, for its `signature_name` (JPEGs
    base64-encoded as `{"b64": ...}`)."""
    return serving_request.rest_body(inputs, signature_name(inputs))


def grpc_request(inputs, model_name=MODEL_NAME):
    """The gRPC `PredictRequest` of `request_inputs` output.

    Args:
        inputs: `request_inputs` output.
        model_name: the served model's name (`model_spec.name`).

    Returns:
        A `PredictRequest` for `signature_name(inputs)` (DT_UINT8 or
        DT_STRING `frames`); send it with
        `serving_request.send(request, "HOST:8500")`.
    """
    return serving_request.predict_request(inputs, signature_name(inputs),
                                           model_name)


def format_detections(keyframe, outputs, top_actions=3):
    """One JSON line: the keyframe, its ground truth and the detections.

    Args:
        keyframe: `read_keyframe` output.
        outputs: the signature's outputs as numpy (batch of one).
        top_actions: actions listed per detected person.

    Returns:
        JSON text `{"video_id", "timestamp", "ground_truth": [{"box",
        "actions"}], "detections": [{"box", "person_score", "actions":
        [{"class", "name", "score"}]}]}`; boxes `[y1, x1, y2, x2]`
        normalised, rounded to 4 decimals.
    """
    import numpy as np

    names = [n.decode() if isinstance(n, bytes) else str(n)
             for n in outputs["class_names"][0]]
    truth = [{"box": [round(float(v), 4) for v in box],
              "actions": [keyframe["class_names"][k]
                          if 0 <= k < len(keyframe["class_names"])
                          else str(k) for k in labels]}
             for box, labels in zip(keyframe["boxes"], keyframe["labels"])]
    detections = []
    for i in range(int(outputs["num_detections"][0])):
        scores = np.asarray(outputs["scores"][0, i])
        order = np.argsort(-scores, kind="stable")[:int(top_actions)]
        detections.append({
            "box": [round(float(v), 4) for v in outputs["boxes"][0, i]],
            "person_score": round(float(outputs["person_scores"][0, i]), 4),
            "actions": [{"class": int(k), "name": names[k],
                         "score": round(float(scores[k]), 4)}
                        for k in order]})
    return json.dumps({"video_id": keyframe["video_id"],
                       "timestamp": keyframe["timestamp"],
                       "ground_truth": truth, "detections": detections})


def run(flag_values):
    """Does what the parsed flags ask; prints the detections (if any).

    Args:
        flag_values: `FlagValues` with `define_flags`' flags, parsed.

    Returns:
        The exit status (0, or 1 after printing a tfaction error).
    """
    from tfaction import errors

    fv = flag_values
    try:
        keyframe = read_keyframe(fv.data_dir, fv.subset, fv.video_id,
                                 fv.timestamp)
        name = fv.signature_name or (
            JPEG_SIGNATURE if fv.encoding == "jpeg" else UINT8_SIGNATURE)
        signature, num_frames = None, fv.num_frames
        if fv.saved_model:
            signature = serving_request.load_signature(fv.saved_model, name)
            num_frames = num_frames or int(
                signature.structured_input_signature[1]["frames"].shape[1])
        if not num_frames:
            raise errors.ConfigError(
                "give --num_frames (the clip length T) or --saved_model "
                "(T is read from its signature)")
        inputs = request_inputs(keyframe, num_frames, fv.stride,
                                fv.encoding)
        outputs = serving_request.serve(inputs, signature_name(inputs),
                                        flag_values=fv, signature=signature)
    except errors.TfactionError as e:
        sys.stderr.write(f"export.action_transformer_request: error: {e}\n")
        return 1
    if outputs is not None:
        print(format_detections(keyframe, outputs, fv.top_actions))
    return 0


def main(argv):
    del argv
    return run(flags.FLAGS)


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["data_dir"])
    filesystems.run_and_exit(app.run, main)
