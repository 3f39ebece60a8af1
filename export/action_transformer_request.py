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

from absl import flags

from export import serving_request

MODEL_NAME = "action_transformer"


def define_flags(flag_values=flags.FLAGS):
    """Defines the clip flags (`--timestamp`, `--num_frames`, `--stride`,
    `--top_actions`) and the frames clients' shared ones; called only when
    run as a command (an import claims no flag names)."""
    f = dict(flag_values=flag_values)
    serving_request.define_frames_flags(
        MODEL_NAME, "Converted AVA-layout dataset folder.", flag_values)
    # Listed by --helpshort as this command's own.
    flags.adopt_module_key_flags(serving_request, flag_values)
    flags.DEFINE_string(
        "timestamp", None, "Keyframe timestamp as written in the CSV "
        "(default: the video's first keyframe).", **f)
    flags.DEFINE_integer(
        "num_frames", None, "Frames per clip, T (default: the SavedModel "
        "signature's).", lower_bound=1, **f)
    flags.DEFINE_integer("stride", 1, "Step between the chosen stored "
                         "frames (the recipe's clips.stride).",
                         lower_bound=1, **f)
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
    from tfaction.data import schemas

    def text(ex):
        return ex[schemas.CLIP_TIMESTAMP_TEXT].numpy().decode()

    data, record, ex = serving_request.find_example(
        data_dir, subset, video_id, schema="keyframe_boxes", converter="ava",
        parse=schemas.parse_keyframe_boxes,
        accept=lambda ex: timestamp is None or (
            _as_number(text(ex)) == _as_number(timestamp)),
        missing=f"no keyframe of video {video_id!r} at timestamp "
        f"{timestamp!r} in subset {subset!r}")
    return {"video_id": ex[schemas.VIDEO_ID].numpy().decode(),
            "timestamp": text(ex), "record": record,
            "boxes": ex["boxes"].numpy()[:, [1, 0, 3, 2]],
            "labels": ex[schemas.BOX_LABEL_INDEX].to_list(),
            "class_names": data.class_names}


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

    from tfaction.data import keyframe_boxes_pipeline as pipeline_lib
    from tfaction.data import schemas

    serving_request.check_encoding(encoding)
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


# `request_inputs` output -> its signature, REST body and gRPC request.
signature_name, rest_body, grpc_request = (
    serving_request.frames_request_functions(MODEL_NAME))


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

    def prepare():
        keyframe = read_keyframe(fv.data_dir, fv.subset, fv.video_id,
                                 fv.timestamp)
        name = fv.signature_name or (
            serving_request.JPEG_SIGNATURE if fv.encoding == "jpeg"
            else serving_request.UINT8_SIGNATURE)
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
        return keyframe, inputs, signature

    return serving_request.run_frames_request(
        "export.action_transformer_request", fv, prepare,
        lambda keyframe, inputs, outputs: format_detections(
            keyframe, outputs, fv.top_actions))


if __name__ == "__main__":
    serving_request.run_frames_command(define_flags, run)
