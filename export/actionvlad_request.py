r"""Sends one video's frames to an exported ActionVLAD and prints its classes.

```
python -m export.actionvlad_request --saved_model=models/actionvlad/1 \
    --frames_root=hmdb51/frames \
    --split_list=train_test_lists/test_split1.txt [--video=brush_hair/1] \
    [--num_steps=25] [--rest_body=request.json]
```

Reads a video folder of the HMDB51 / ActionVLAD layout
(`image_%05d.jpg`, `flow_x_%05d.jpg`, `flow_y_%05d.jpg`), chooses T frames
(and, when the SavedModel takes flow, T stacks of S flow frames; S is read
from the signature) with ActionVLAD's uniform sampling, sends the JPEG bytes
unchanged to `serving_default` exactly as TensorFlow Serving would (RGB
`frames` [1, T], flow `flow_x`, `flow_y` [1, T, S]; decoding, resizing,
cropping and normalisation run inside the model) and prints the top
classes with the video's label from the split list. `--rest_body` writes
the JSON body of the same request (JPEGs base64-encoded as `{"b64": ...}`):

    curl -d @request.json http://HOST:8501/v1/models/actionvlad:predict
"""

import base64
import json

from absl import app
from absl import flags

from tfaction.data import filesystems


def define_flags(flag_values=flags.FLAGS):
    """Defines the command's flags (only when run as a command, so that
    importing this module claims no flag names)."""
    f = dict(flag_values=flag_values)
    flags.DEFINE_string("saved_model", None,
                        "Exported version folder (models/X/N).", **f)
    flags.DEFINE_string("frames_root", None,
                        "Root of the video frame folders.", **f)
    flags.DEFINE_string(
        "split_list", None, "`video_path num_frames class_id` list; the "
        "video (default: its first line) and its label come from it.", **f)
    flags.DEFINE_string("video", None, "Video path under frames_root.", **f)
    flags.DEFINE_integer("num_steps", 8, "Frames (flow: stacks) to send, T.",
                         **f)
    flags.DEFINE_string("rest_body", None,
                        "Write the REST :predict body here.", **f)


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
    """TF Serving REST `:predict` body (columnar, binary as base64)."""
    def encode(x):
        if isinstance(x, (list, tuple)):
            return [encode(v) for v in x]
        return {"b64": base64.b64encode(x).decode("ascii")}

    return {"signature_name": "serving_default",
            "inputs": {k: encode(v.tolist()) for k, v in inputs.items()}}


def _video_and_label(split_list, video):
    for line in filesystems.read_text(split_list).splitlines():
        parts = line.split()
        if parts and (video is None or parts[0] == video):
            return parts[0], int(parts[2])
    raise SystemExit(f"video {video!r} is not in {split_list}")


def main(argv):
    del argv
    import tensorflow as tf

    video, label = _video_and_label(flags.FLAGS.split_list, flags.FLAGS.video)
    serve = tf.saved_model.load(filesystems.ensure_filesystem(
        flags.FLAGS.saved_model)).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    stack = specs["flow_x"].shape[-1] if "flow_x" in specs else None
    inputs = request_inputs(filesystems.join(flags.FLAGS.frames_root, video),
                            set(specs), flags.FLAGS.num_steps, stack)
    outputs = serve(**{k: tf.constant(v) for k, v in inputs.items()})
    names = outputs.get("top_k_names")
    top = [{"class": int(c), "score": round(float(s), 4)}
           for c, s in zip(outputs["top_k_classes"][0].numpy(),
                           outputs["top_k_scores"][0].numpy())]
    if names is not None:
        for entry, name in zip(top, names[0].numpy()):
            entry["name"] = name.decode()
    print(json.dumps({"video": video, "label": label, "top_k": top}))
    if flags.FLAGS.rest_body:
        filesystems.write_json(flags.FLAGS.rest_body, rest_body(inputs),
                               indent=None)


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["saved_model", "frames_root",
                                  "split_list"])
    filesystems.run_and_exit(app.run, main)
