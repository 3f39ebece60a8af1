r"""Sends one video's frames to an exported AdaFocus V2 model.

```
python -m export.adafocus_request --saved_model=models/adafocus/1 \
    --data_dir=data/actnet/records [--subset=val] [--video_id=ID] \
    [--num_steps=16] [--encoding=uint8|jpeg] [--rest_body=request.json] \
    [--grpc=HOST:8500 [--model_name=adafocus] [--signature_name=NAME]] \
    [--grpc_request=request.pb]
```

Reads one video record of a converted frames dataset (`python -m
tfaction.data.convert --format=actnet_frames`, `fcvid_frames`,
`minik_frames`), chooses `--num_steps` frames exactly as the evaluation
pipeline does (TSN: the centre frame of each of T equal segments; T must
be the model's, the recipe's `frames.num_steps`) and sends them in time
order as TensorFlow Serving would:

* `--encoding=uint8` (default): the frames decoded (as the pipeline
  decodes them) to `serving_default`, `frames` uint8 `[1, T, H, W, 3]`;
* `--encoding=jpeg`: the stored JPEG bytes unchanged to `serve_jpeg`,
  `frames` string `[1, T]`.

Resizing, cropping, normalisation, the coarse-to-fine frame order and
early exit (when the export has thresholds) run inside the model. It
prints one JSON line: the video, its labels (names), the top classes with
their probabilities, the focus patch centre of every frame sent (input
pixels; `(-1, -1)` for frames an early exit did not reach) and, with
early exit, the exit step and its GFLOPs. `--rest_body` writes the JSON
body of the same request (JPEGs base64-encoded as `{"b64": ...}`):

    curl -d @request.json http://HOST:8501/v1/models/adafocus:predict

With `--grpc=HOST:PORT` the same inputs go as a gRPC `PredictRequest` to
TF Serving's `PredictionService/Predict` instead (`--saved_model` is then
optional); `--grpc_request` writes that request, serialized, without
sending it. The flags shared with the other request commands are
described in `export.serving_request`.
"""

import json

from absl import flags

from export import serving_request

MODEL_NAME = "adafocus"


def define_flags(flag_values=flags.FLAGS):
    """Defines `--num_steps` and the frames clients' shared flags (only
    when run as a command, so that an import claims no flag names)."""
    serving_request.define_frames_flags(
        MODEL_NAME, "Converted frames dataset folder (--format="
        "actnet_frames / fcvid_frames / minik_frames).", flag_values)
    # Listed by --helpshort as this command's own.
    flags.adopt_module_key_flags(serving_request, flag_values)
    flags.DEFINE_integer("num_steps", 16, "Frames to send, T (the recipe's "
                         "frames.num_steps).", lower_bound=1,
                         flag_values=flag_values)


def read_video(data_dir, subset="val", video_id=None):
    """One video record of a converted frames dataset.

    Args:
        data_dir: a `tfaction.data.convert --format=actnet_frames` (or
            `fcvid_frames`, `minik_frames`) output folder.
        subset: the subset whose records are read.
        video_id: the wanted video (default: the subset's first record).

    Returns:
        Dict with `video_id`, `record` (the serialized record),
        `num_frames` (stored frames) and `labels` (the class names of its
        `clip/label/index` values, in file order).

    Raises:
        DataError: no such subset or video.
        MalformedFileError: `data_dir` is not a frames converter output.

    Example:

    ```python
    video = read_video("runs/adafocus_demo/records", "val")
    video["video_id"], video["labels"]   # ("v_00900", ["class_2"])
    ```
    """
    from tfaction.data import schemas

    data, record, ex = serving_request.find_example(
        data_dir, subset, video_id, schema="frames",
        converter="actnet_frames",
        parse=lambda r: schemas.parse_frames(r, modalities=("rgb",)))
    names = data.class_names
    labels = [names[int(i)] if 0 <= int(i) < len(names) else str(i)
              for i in ex[schemas.CLIP_LABEL_INDEX].numpy()]
    return {"video_id": ex[schemas.VIDEO_ID].numpy().decode(),
            "record": record, "labels": labels,
            "num_frames": int(ex[schemas.IMAGE_ENCODED].shape[0])}


def request_inputs(video, num_steps=16, encoding="uint8"):
    """The serving inputs of one video (batch of one), as numpy.

    The frames are chosen and decoded by the evaluation pipeline's own
    stages (`parse_stage`, `sample_stage` with TSN's evaluation sampling,
    `decode_stage`), uncropped.

    Args:
        video: `read_video` output.
        num_steps: frames to send, T.
        encoding: "uint8" (decoded frames) or "jpeg" (the stored bytes).

    Returns:
        `{"frames": uint8 [1, T, H, W, 3] or object [1, T] of JPEG
        bytes}`, in time order.

    Raises:
        ConfigError: an unknown encoding.

    Example:

    ```python
    inputs = request_inputs(read_video(data_dir), 8, encoding="jpeg")
    inputs["frames"].shape   # (1, 8)
    ```
    """
    import numpy as np

    from tfaction.data import frames_pipeline
    from tfaction.data import schemas

    serving_request.check_encoding(encoding)
    config = frames_pipeline.FramesConfig(
        sampler="tsn", num_steps=int(num_steps), test_crop="none")
    ex = frames_pipeline.parse_stage(0, video["record"], config=config)
    ex = frames_pipeline.sample_stage(ex, config=config, training=False,
                                      seed=0)
    indices = ex["indices"].numpy()[0]
    if encoding == "jpeg":
        encoded = ex[schemas.IMAGE_ENCODED].numpy()
        return {"frames": np.array([[encoded[i] for i in indices]],
                                   dtype=object)}
    ex = frames_pipeline.decode_stage(ex, config=config, training=False)
    return {"frames": ex["frames"].numpy()}


# `request_inputs` output -> its signature, REST body and gRPC request.
signature_name, rest_body, grpc_request = (
    serving_request.frames_request_functions(MODEL_NAME))


def summarize(video, outputs):
    """One JSON line: the video, its labels, the answer and the patches.

    Args:
        video: `read_video` output.
        outputs: the signature's outputs as numpy (batch of one).

    Returns:
        JSON text `{"video_id", "labels", "top_k": [{"class", "name",
        "score"}], "patch_centres": [[row, col], ...] (one per frame sent,
        rounded to 0.1 px), "exit_step", "gflops"}` (the last two null
        without early exit).

    Example:

    ```python
    print(summarize(video, outputs))
    ```
    """
    top = [{"class": int(c), "name": n.decode(), "score": round(float(s), 4)}
           for c, n, s in zip(outputs["top_k_classes"][0],
                              outputs["class_names"][0],
                              outputs["top_k_scores"][0])]
    exit_step = outputs.get("exit_step")
    gflops = outputs.get("gflops")
    return json.dumps({
        "video_id": video["video_id"], "labels": video["labels"],
        "top_k": top,
        "patch_centres": [[round(float(v), 1) for v in point]
                          for point in outputs["patch_centres"][0]],
        "exit_step": None if exit_step is None else int(exit_step[0]),
        "gflops": None if gflops is None else round(float(gflops[0]), 6)})


def run(flag_values):
    """Sends the chosen video's T = `--num_steps` frames; prints its
    classes and focus patches (`summarize`) when served.

    Args:
        flag_values: the parsed `define_flags` flags.

    Returns:
        The exit status (0, or 1 after printing a tfaction error).
    """
    fv = flag_values

    def prepare():
        video = read_video(fv.data_dir, fv.subset, fv.video_id)
        return video, request_inputs(video, fv.num_steps, fv.encoding), None

    return serving_request.run_frames_request(
        "export.adafocus_request", fv, prepare,
        lambda video, inputs, outputs: summarize(video, outputs))


if __name__ == "__main__":
    serving_request.run_frames_command(define_flags, run)
