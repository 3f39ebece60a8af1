r"""Sends one video's frames to an exported ActionVLAD and prints its classes.

```
python -m export.actionvlad_request --saved_model=models/actionvlad/1 \
    --frames_root=hmdb51/frames \
    --split_list=train_test_lists/test_split1.txt [--video=brush_hair/1] \
    [--num_steps=25] [--rest_body=request.json] \
    [--grpc=HOST:8500 [--model_name=actionvlad] [--signature_name=NAME]] \
    [--grpc_request=request.pb]
```

Reads a video folder of the HMDB51 / ActionVLAD layout
(`image_%05d.jpg`, `flow_x_%05d.jpg`, `flow_y_%05d.jpg`), chooses T frames
(and, when the SavedModel takes flow, T stacks of S flow frames; S is read
from the signature) with ActionVLAD's uniform sampling, sends the JPEG bytes
unchanged to `serving_default` exactly as TensorFlow Serving would (RGB
`frames` [1, T], flow `flow_x`, `flow_y` [1, T, S]; decoding, resizing,
cropping and normalisation run inside the model) and prints the top
classes (ids, scores and the `class_names` the model returns from its
`assets/classes.txt`) with the video's label from the split list.
`--rest_body` writes the JSON body of the same request (JPEGs
base64-encoded as `{"b64": ...}`):

    curl -d @request.json http://HOST:8501/v1/models/actionvlad:predict

With `--grpc=HOST:PORT` the same JPEG strings go as a gRPC `PredictRequest`
(DT_STRING TensorProtos) to TF Serving's `PredictionService/Predict`
instead, and the classes it returns are printed (`--saved_model` is still
read, for the signature's inputs and S); `--grpc_request` writes that
request, serialized, without sending it. The flags shared with
`export.actionformer_request` are described in `export.serving_request`.
"""

import json
import sys

from absl import app
from absl import flags

from export import serving_request
from tfaction.data import filesystems


def define_flags(flag_values=flags.FLAGS):
    """Defines the command's flags (only when run as a command, so that
    importing this module claims no flag names)."""
    f = dict(flag_values=flag_values)
    serving_request.define_flags("actionvlad", flag_values)
    flags.DEFINE_string("frames_root", None,
                        "Root of the video frame folders.", **f)
    flags.DEFINE_string(
        "split_list", None, "`video_path num_frames class_id` list; the "
        "video (default: its first line) and its label come from it.", **f)
    flags.DEFINE_string("video", None, "Video path under frames_root.", **f)
    flags.DEFINE_integer("num_steps", 8, "Frames (flow: stacks) to send, T.",
                         **f)


def request_inputs(folder, input_names, num_steps, stack=None):
    """The `serving_default` inputs of one video, JPEG bytes as numpy.

    Args:
        folder: the video's frame folder.
        input_names: the signature's input names (`frames`, `flow_x`,
            `flow_y`).
        num_steps: T.
        stack: S, flow frames per stack (when flow is an input).

    Returns:
        Dict name -> numpy object array of bytes.
    """
    import numpy as np

    from tfaction.data import samplers

    def read(pattern, indices):
        return np.array([[filesystems.read_bytes(
            filesystems.join(folder, pattern % (i + 1))) for i in row]
            for row in np.atleast_2d(indices)], dtype=object)

    num_frames = len([f for f in filesystems.listdir(folder)
                      if f.startswith("image_")])
    inputs = {}
    if "frames" in input_names:
        idx = samplers.actionvlad_indices(num_frames, num_steps).numpy()
        inputs["frames"] = read("image_%05d.jpg", idx[None]).reshape(
            1, num_steps)
    if "flow_x" in input_names:
        idx = samplers.actionvlad_flow_indices(num_frames, num_steps,
                                               stack).numpy()
        idx = np.minimum(idx, num_frames - 2)  # n - 1 flow frames
        for axis in ("x", "y"):
            inputs[f"flow_{axis}"] = read(f"flow_{axis}_%05d.jpg",
                                          idx).reshape(1, num_steps, stack)
    return inputs


def rest_body(inputs):
    """TF Serving REST `:predict` body of `request_inputs` output for
    `serving_default` (columnar, JPEGs base64-encoded as `{"b64": ...}`)."""
    return serving_request.rest_body(inputs, "serving_default")


def grpc_request(inputs, model_name="actionvlad"):
    """The gRPC `PredictRequest` of `request_inputs` output.

    Args:
        inputs: `request_inputs` output.
        model_name: the served model's name (`model_spec.name`).

    Returns:
        A `PredictRequest` for `serving_default` (DT_STRING inputs); send
        it with `serving_request.send(request, "HOST:8500")`.
    """
    return serving_request.predict_request(inputs, "serving_default",
                                           model_name)


def format_top(video, label, outputs):
    """One JSON line: the video, its label and the top classes.

    Args:
        video: the video's path under the frames root.
        label: its class id from the split list.
        outputs: the signature's outputs as numpy (`top_k_classes`,
            `top_k_scores`, optional `class_names`).

    Returns:
        `{"video", "label", "top_k": [{"class", "score"[, "name"]}]}` as
        JSON text.
    """
    top = [{"class": int(c), "score": round(float(s), 4)}
           for c, s in zip(outputs["top_k_classes"][0],
                           outputs["top_k_scores"][0])]
    names = outputs.get("class_names")  # exports before class lists: none
    if names is not None:
        for entry, name in zip(top, names[0]):
            entry["name"] = name.decode()
    return json.dumps({"video": video, "label": label, "top_k": top})


def _video_and_label(split_list, video):
    for line in filesystems.read_text(split_list).splitlines():
        parts = line.split()
        if parts and (video is None or parts[0] == video):
            return parts[0], int(parts[2])
    raise SystemExit(f"video {video!r} is not in {split_list}")


def main(argv):
    del argv
    from tfaction import errors

    fv = flags.FLAGS
    try:
        video, label = _video_and_label(fv.split_list, fv.video)
        name = fv.signature_name or "serving_default"
        serve = serving_request.load_signature(fv.saved_model, name)
        specs = serve.structured_input_signature[1]
        stack = specs["flow_x"].shape[-1] if "flow_x" in specs else None
        inputs = request_inputs(filesystems.join(fv.frames_root, video),
                                set(specs), fv.num_steps, stack)
        outputs = serving_request.serve(inputs, name, signature=serve)
    except errors.TfactionError as e:
        sys.stderr.write(f"export.actionvlad_request: error: {e}\n")
        return 1
    print(format_top(video, label, outputs))
    return 0


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["saved_model", "frames_root",
                                  "split_list"])
    filesystems.run_and_exit(app.run, main)
