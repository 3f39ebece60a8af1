r"""The README's REST and gRPC request examples, made by the request clients.

```
python -m export.request_examples > examples.md
```

prints, for each family, the command that sends a video to TF Serving,
the REST `:predict` body its client writes (`--rest_body`) with the `curl`
line that posts it, and the gRPC `PredictRequest` it sends (`--grpc`; as
protobuf text). Every body and request comes from the family's client
(`rest_body`, `grpc_request` of `export.<family>_request`) on a small fixed
video: two frames encoded as JPEG by TensorFlow (ActionFormer: a two-step
feature sequence of four channels), so the blocks show the exact layout a
server receives. Base64 and JPEG bytes are shortened for display (`...`);
everything else is as sent. The README holds this text between `BEGIN`
and `END`; `tests/serving/test_request_examples.py` regenerates it and
compares.

Example:

```python
text = markdown()          # the README section
examples()[0]["rest"]      # ActionFormer's REST body, as the client wrote it
```
"""

import json
import sys

import numpy as np

BEGIN = "<!-- request-examples:begin (python -m export.request_examples) -->"
END = "<!-- request-examples:end -->"
REST_PORT = 8501
GRPC_PORT = 8500
SHOWN_BYTES = 12  # of each JPEG (gRPC text) ...
SHOWN_BASE64 = 16  # ... and of each base64 string (REST JSON)
FRAME_SIZE = 8     # the example frames: 8 x 8 pixels


def example_frames():
    """The example video: two 8 x 8 JPEG frames (a dark and a light one).

    Returns:
        Object array `[1, 2]` of JPEG bytes.
    """
    import tensorflow as tf

    frames = [tf.io.encode_jpeg(np.full([FRAME_SIZE, FRAME_SIZE, 3], value,
                                        np.uint8)).numpy()
              for value in (64, 192)]
    return np.array([frames], dtype=object)


def _families():
    """Per family: title, model name, client, inputs, command line."""
    from export import action_transformer_request
    from export import actionformer_request
    from export import actionvlad_request
    from export import adafocus_request
    from export import carl_request

    jpegs = example_frames()
    # Multiples of 1/4: exact in float32, short in JSON.
    features = (np.arange(8, dtype=np.float32) / 4 - 1).reshape(1, 2, 4)
    return [
        dict(title="ActionFormer (features -> detections)",
             client=actionformer_request, model_name="actionformer",
             inputs={"features": features,
                     "lengths": np.array([2], np.int32),
                     "fps": np.array([30.0], np.float32)},
             command="python -m export.actionformer_request "
                     "--data_dir=data/thumos_i3d --subset=test"),
        dict(title="ActionVLAD (JPEG frames -> top-k classes)",
             client=actionvlad_request, model_name="actionvlad",
             inputs={"frames": jpegs},
             command="python -m export.actionvlad_request "
                     "--saved_model=models/actionvlad/1 "
                     "--frames_root=data/hmdb51_frames "
                     "--split_list=data/hmdb51_splits/test_split1.txt "
                     "--video=brush_hair/video_1 --num_steps=25"),
        dict(title="Video Action Transformer (a clip's JPEG frames -> "
                   "person boxes and actions)",
             client=action_transformer_request,
             model_name=action_transformer_request.MODEL_NAME,
             inputs={"frames": jpegs},
             command="python -m export.action_transformer_request "
                     "--data_dir=data/ava --encoding=jpeg --num_frames=64"),
        dict(title="CARL (a video's JPEG frames -> frame embeddings)",
             client=carl_request, model_name=carl_request.MODEL_NAME,
             inputs={"frames": jpegs, "lengths": np.array([2], np.int32)},
             command="python -m export.carl_request "
                     "--data_dir=data/pouring --encoding=jpeg"),
        dict(title="AdaFocus V1 / V2 (a video's JPEG frames -> classes, "
                   "focus patches)",
             client=adafocus_request, model_name=adafocus_request.MODEL_NAME,
             inputs={"frames": jpegs},
             command="python -m export.adafocus_request "
                     "--data_dir=data/actnet_frames --encoding=jpeg "
                     "--num_steps=16"),
    ]


def _short_base64(node):
    """The REST body with each `{"b64": ...}` shortened for display."""
    if isinstance(node, dict):
        if set(node) == {"b64"} and len(node["b64"]) > SHOWN_BASE64:
            return {"b64": node["b64"][:SHOWN_BASE64] + "..."}
        return {k: _short_base64(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_short_base64(v) for v in node]
    return node


def _short_request_text(request):
    """The `PredictRequest` as protobuf text, JPEG bytes shortened."""
    from google.protobuf import text_format

    shown = type(request)()
    shown.CopyFrom(request)
    for tensor in shown.inputs.values():
        for i, value in enumerate(tensor.string_val):
            if len(value) > SHOWN_BYTES:
                tensor.string_val[i] = value[:SHOWN_BYTES] + b"..."
    return text_format.MessageToString(shown)


def _json_text(node, indent=0):
    """JSON, one key per line, each list on one line (still valid JSON)."""
    if isinstance(node, dict) and set(node) != {"b64"}:
        pad = "  " * indent
        items = [f"{pad}  {json.dumps(k)}: {_json_text(v, indent + 1)}"
                 for k, v in node.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    return json.dumps(node)


def examples():
    """Every family's example, produced by its client.

    Returns:
        List of dicts: `title`, `model_name`, `signature_name`, `command`,
        `rest` (the REST body as the client wrote it) and `grpc` (its
        `PredictRequest`).
    """
    out = []
    for family in _families():
        client = family["client"]
        rest = client.rest_body(family["inputs"])
        grpc = client.grpc_request(family["inputs"],
                                   model_name=family["model_name"])
        out.append(dict(title=family["title"],
                        model_name=family["model_name"],
                        signature_name=rest["signature_name"],
                        command=family["command"], rest=rest, grpc=grpc,
                        client=client.__name__))
    return out


def markdown():
    """The README section: every family's command, REST body and gRPC
    request, between `BEGIN` and `END` (both included).

    Returns:
        The Markdown text, ending with a newline.
    """
    parts = [BEGIN, ""]
    for example in examples():
        name = example["model_name"]
        parts += [
            f"#### {example['title']}",
            "",
            f"Signature `{example['signature_name']}`. REST: "
            "`--rest_body=request.json`, then",
            "",
            "```sh",
            f"{example['command']} --rest_body=request.json",
            f"curl -d @request.json "
            f"http://localhost:{REST_PORT}/v1/models/{name}:predict",
            "```",
            "",
            "```json",
            _json_text(_short_base64(example["rest"])),
            "```",
            "",
            f"gRPC (`PredictionService/Predict`), the `PredictRequest` "
            "sent:",
            "",
            "```sh",
            f"{example['command']} --grpc=localhost:{GRPC_PORT} "
            f"--model_name={name}",
            "```",
            "",
            "```text",
            _short_request_text(example["grpc"]).rstrip("\n"),
            "```",
            "",
        ]
    parts.append(END)
    return "\n".join(parts) + "\n"


def readme_section(readme_text):
    """The request examples section of a README's text.

    Args:
        readme_text: the README's content.

    Returns:
        The text from `BEGIN` to `END` (both included), ending with a
        newline, or None when the README has no such section.
    """
    start = readme_text.find(BEGIN)
    end = readme_text.find(END, start + 1)
    if start < 0 or end < 0:
        return None
    return readme_text[start:end + len(END)] + "\n"


def main():
    """Prints `markdown()`."""
    sys.stdout.write(markdown())


if __name__ == "__main__":
    main()
