r"""Sends one video's frames to an exported CARL model.

```
python -m export.carl_request --saved_model=models/carl/1 \
    --data_dir=data/pouring/records [--subset=val] [--video_id=ID] \
    [--stride=1] [--encoding=uint8|jpeg] [--rest_body=request.json] \
    [--grpc=HOST:8500 [--model_name=carl] [--signature_name=NAME]] \
    [--grpc_request=request.pb]
```

Reads one video record of a converted frame-labelled dataset
(`python -m tfaction.data.convert --format=tcc` output), chooses its frames
exactly as the evaluation pipeline does (every `--stride`-th stored frame,
all of them by default: the recipes' `views.eval_stride`), and sends them
as TensorFlow Serving would, with their number in `lengths`:

* `--encoding=uint8` (default): the frames decoded (as the pipeline
  decodes them) to `serving_default`, `frames` uint8 `[1, T, H, W, 3]`;
* `--encoding=jpeg`: the stored JPEG bytes unchanged to `serve_jpeg`,
  `frames` string `[1, T]` (a much smaller request: the REST body of a
  300-frame 224x224 uint8 video is over 100 MB of JSON).

Cropping, resizing, normalisation and the chunked embedding of the whole
video run inside the model. It prints one JSON line: the video, its action,
the frames sent, the embedding size, the range of the embeddings' norms (1
for CARL's L2-normalised output) and the mean cosine similarity of
consecutive frames' embeddings and of frames of the same phase against
frames of different phases (the stored per-frame labels; a frame-wise
representation puts frames of one phase closer together). `--rest_body`
writes the JSON body of the same request (JPEGs base64-encoded as
`{"b64": ...}`):

    curl -d @request.json http://HOST:8501/v1/models/carl:predict

With `--grpc=HOST:PORT` the same inputs go as a gRPC `PredictRequest`
(TensorProtos of the signature's dtypes) to TF Serving's
`PredictionService/Predict` instead (`--saved_model` is then optional);
`--grpc_request` writes that request, serialized, without sending it. The
flags shared with the other request commands are described in
`export.serving_request`.
"""

import json

from absl import flags

from export import serving_request

MODEL_NAME = "carl"


def define_flags(flag_values=flags.FLAGS):
    """Defines `--stride` and `serving_request.define_frames_flags`' flags
    (only when run as a command: importing claims no flag names)."""
    serving_request.define_frames_flags(
        MODEL_NAME, "Converted frame-labelled dataset folder (--format=tcc "
        "output).", flag_values)
    # Listed by --helpshort as this command's own.
    flags.adopt_module_key_flags(serving_request, flag_values)
    flags.DEFINE_integer("stride", 1, "Send every this-many-th stored frame "
                         "(the recipe's views.eval_stride).", lower_bound=1,
                         flag_values=flag_values)


def read_video(data_dir, subset="val", video_id=None):
    """One video record of a converted frame-labelled dataset.

    Args:
        data_dir: `tfaction.data.convert --format=tcc` output folder.
        subset: the subset whose records are read.
        video_id: the wanted video (default: the subset's first record).

    Returns:
        Dict with `video_id`, `record` (the serialized record),
        `num_frames` (stored frames), `action` (the action's class name,
        or None when the record has none) and `frame_labels` (int64
        `[num_frames]`, the phase of every stored frame, -1 unlabelled).

    Raises:
        DataError: no such subset or video.
        MalformedFileError: `data_dir` is not a `--format=tcc` output.

    Example:

    ```python
    video = read_video("runs/carl_demo/records", "val")
    video["video_id"], video["num_frames"]   # ("0003_pour", 41)
    ```
    """
    from tfaction.data import schemas

    data, record, ex = serving_request.find_example(
        data_dir, subset, video_id, schema="frame_labels", converter="tcc",
        parse=schemas.parse_frame_labels)
    actions = ex[schemas.CLIP_LABEL_INDEX].numpy()
    names = data.class_names
    action = (names[int(actions[0])] if len(actions) and
              0 <= int(actions[0]) < len(names) else None)
    return {"video_id": ex[schemas.VIDEO_ID].numpy().decode(),
            "record": record,
            "num_frames": int(ex[schemas.IMAGE_ENCODED].shape[0]),
            "action": action,
            "frame_labels": ex[schemas.FRAME_LABEL_INDEX].numpy()}


def request_inputs(video, stride=1, encoding="uint8"):
    """The serving inputs of one video (batch of one), as numpy.

    The frames are chosen and decoded by the evaluation pipeline's own
    stages (`choose_frames_stage` with `eval_stride = stride`,
    `decode_stage`).

    Args:
        video: `read_video` output.
        stride: step between the chosen stored frames.
        encoding: "uint8" (decoded frames) or "jpeg" (the stored bytes).

    Returns:
        `{"frames": uint8 [1, T, H, W, 3] or object [1, T] of JPEG bytes,
        "lengths": int32 [1] (T)}`.

    Raises:
        ConfigError: an unknown encoding.

    Example:

    ```python
    inputs = request_inputs(read_video(data_dir), encoding="jpeg")
    inputs["frames"].shape, inputs["lengths"]   # (1, 41), array([41])
    ```
    """
    import numpy as np

    from tfaction.data import frame_sequence_pipeline as pipeline_lib
    from tfaction.data import schemas

    serving_request.check_encoding(encoding)
    config = pipeline_lib.FrameSequenceConfig(eval_stride=int(stride))
    ex = pipeline_lib.parse_stage(0, video["record"])
    ex = pipeline_lib.choose_frames_stage(ex, config=config, training=False,
                                          seed=0)
    steps = ex["steps"].numpy()
    lengths = np.array([len(steps)], np.int32)
    if encoding == "jpeg":
        encoded = ex[schemas.IMAGE_ENCODED].numpy()
        return {"frames": np.array([[encoded[i] for i in steps]],
                                   dtype=object), "lengths": lengths}
    ex = pipeline_lib.decode_stage(ex, config=config)
    return {"frames": ex["frames"].numpy()[None], "lengths": lengths}


# `request_inputs` output -> its signature, REST body and gRPC request.
signature_name, rest_body, grpc_request = (
    serving_request.frames_request_functions(MODEL_NAME))


def summarize(video, inputs, outputs, stride=1):
    """One JSON line: the video and what its embeddings look like.

    Args:
        video: `read_video` output.
        inputs: the request's inputs (`request_inputs` output).
        outputs: the signature's outputs as numpy (batch of one).
        stride: the stride the frames were chosen with (to find their
            stored labels).

    Returns:
        JSON text `{"video_id", "action", "frames", "embedding_size",
        "norm_min", "norm_max", "adjacent_cosine", "same_phase_cosine",
        "other_phase_cosine"}` (cosines: means over pairs of the sent
        frames; the phase ones over labelled frames, null when no pair
        exists), figures rounded to 4 decimals.

    Example:

    ```python
    print(summarize(video, inputs, outputs))
    ```
    """
    import numpy as np

    n = int(inputs["lengths"][0])
    emb = np.asarray(outputs["embeddings"][0, :n], np.float64)
    norms = np.linalg.norm(emb, axis=1)
    unit = emb / np.maximum(norms, 1e-12)[:, None]
    cosine = unit @ unit.T
    labels = np.asarray(video["frame_labels"])[::int(stride)][:n]
    labelled = labels >= 0
    pair = labelled[:, None] & labelled[None, :] & ~np.eye(n, dtype=bool)
    same = pair & (labels[:, None] == labels[None, :])
    other = pair & (labels[:, None] != labels[None, :])

    def mean(mask):
        return round(float(cosine[mask].mean()), 4) if mask.any() else None

    adjacent = (round(float(np.mean(np.diag(cosine, 1))), 4) if n > 1
                else None)
    return json.dumps({
        "video_id": video["video_id"], "action": video["action"],
        "frames": n, "embedding_size": int(emb.shape[1]),
        "norm_min": round(float(norms.min()), 4),
        "norm_max": round(float(norms.max()), 4),
        "adjacent_cosine": adjacent, "same_phase_cosine": mean(same),
        "other_phase_cosine": mean(other)})


def run(flag_values):
    """Sends the chosen video's frames (every `--stride`-th); prints
    `summarize`'s line when served (not when only written).

    Args:
        flag_values: the parsed `define_flags` flags.

    Returns:
        The exit status (0, or 1 after printing a tfaction error).
    """
    fv = flag_values

    def prepare():
        video = read_video(fv.data_dir, fv.subset, fv.video_id)
        return video, request_inputs(video, fv.stride, fv.encoding), None

    return serving_request.run_frames_request(
        "export.carl_request", fv, prepare,
        lambda video, inputs, outputs: summarize(video, inputs, outputs,
                                                 fv.stride))


if __name__ == "__main__":
    serving_request.run_frames_command(define_flags, run)
