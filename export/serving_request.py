r"""Builds, writes and sends TensorFlow Serving requests for the clients.

`export.actionformer_request` and `export.actionvlad_request` read one
video into numpy inputs (batch of one) and hand them here, with the name of
the signature to call. This module turns them into the REST `:predict` body
(`rest_body`), the gRPC `PredictRequest` (`predict_request`, TensorProtos of
the inputs' exact dtypes and shapes) and sends that request to a server
(`send`), or runs the signature of a local SavedModel (`run_saved_model`).
`define_flags` and `serve` give every command the same flags:

```
--saved_model=models/X/N     run the SavedModel in this process
--grpc=HOST:PORT             send a PredictRequest to TF Serving instead
--model_name=NAME            model_spec.name of the gRPC request
--signature_name=NAME        signature to call (default: the client's)
--grpc_timeout=60            seconds to wait for the gRPC reply
--rest_body=request.json     write the REST :predict body
--grpc_request=request.pb    write the serialized PredictRequest
```

The frames clients (`export.carl_request`, `export.action_transformer_request`,
`export.adafocus_request`) read one record of a converted dataset
(`find_example`) and send its frames decoded (`uint8`, to `serving_default`)
or as the stored JPEG bytes (`jpeg`, to `serve_jpeg`); `define_frames_flags`
adds their shared flags (`--data_dir`, `--subset`, `--video_id`,
`--encoding`), `frames_signature_name`, `frames_rest_body` and
`frames_predict_request` build their requests (`frames_request_functions`
gives a client all three) and `run_frames_request` runs them.

Example:

```python
inputs = {"fps": np.array([30.0], np.float32)}
request = predict_request(inputs, "serving_default", "actionformer")
request_arrays(request)["fps"]          # array([30.], dtype=float32)
rest_body(inputs, "serving_default")    # {"signature_name": ..., "inputs":
                                        #  {"fps": [30.0]}}
outputs = send(request, "localhost:8500")  # {output name: numpy array}
```
"""

import base64
import sys

from absl import flags

from tfaction import errors
from tfaction.data import filesystems

DEFAULT_TIMEOUT_S = 60.0
# Encodings of the frames clients and the signatures they call (those of
# `tfaction.serving.carl`, `action_transformer` and `adafocus`, named here
# so that a client needs no model code).
ENCODINGS = ("uint8", "jpeg")
UINT8_SIGNATURE = "serving_default"
JPEG_SIGNATURE = "serve_jpeg"


class ServingRequestError(errors.TfactionError):
    """A request could not be sent or was refused by the server."""


def define_flags(model_name, flag_values=flags.FLAGS):
    """Defines the serving flags both request commands share.

    Args:
        model_name: default of `--model_name` (the served model's name).
        flag_values: the `FlagValues` to define them in.

    Example:

    ```python
    define_flags("actionvlad")  # then: serve(inputs, "serving_default")
    ```
    """
    f = dict(flag_values=flag_values)
    flags.DEFINE_string("saved_model", None,
                        "Exported version folder (models/X/N).", **f)
    flags.DEFINE_string(
        "grpc", None, "HOST:PORT of a TF Serving gRPC endpoint: send the "
        "PredictRequest there instead of running --saved_model.", **f)
    flags.DEFINE_string("model_name", model_name,
                        "Served model name (gRPC model_spec.name).", **f)
    flags.DEFINE_string(
        "signature_name", None, "Signature to call (default: the one the "
        "command's inputs are for).", **f)
    flags.DEFINE_float("grpc_timeout", DEFAULT_TIMEOUT_S,
                       "Seconds to wait for the gRPC reply.", **f)
    flags.DEFINE_string("rest_body", None,
                        "Write the REST :predict body here.", **f)
    flags.DEFINE_string(
        "grpc_request", None, "Write the serialized gRPC PredictRequest "
        "(binary protobuf) here.", **f)


def rest_body(inputs, signature_name):
    """TF Serving REST `:predict` body (columnar `inputs` format).

    Args:
        inputs: dict input name -> numpy array; object arrays hold bytes,
            which are sent base64-encoded as `{"b64": ...}`.
        signature_name: the signature to call.

    Returns:
        The JSON-serialisable body.

    Example:

    ```python
    rest_body({"frames": np.array([[b"\xff\xd8"]], object)}, "serving_default")
    # {"signature_name": "serving_default",
    #  "inputs": {"frames": [[{"b64": "/9g="}]]}}
    ```
    """
    def encode(x):
        if isinstance(x, list):
            return [encode(v) for v in x]
        return {"b64": base64.b64encode(x).decode("ascii")}

    return {"signature_name": signature_name,
            "inputs": {k: encode(v.tolist()) if v.dtype == object
                       else v.tolist() for k, v in inputs.items()}}


def predict_request(inputs, signature_name, model_name):
    """The gRPC `PredictRequest` of `inputs`.

    Args:
        inputs: dict input name -> numpy array, already of the signature's
            dtypes and shapes (object arrays of bytes become DT_STRING).
        signature_name: `model_spec.signature_name`.
        model_name: `model_spec.name`.

    Returns:
        A `tensorflow_serving.apis.predict_pb2.PredictRequest`.

    Example:

    ```python
    request = predict_request({"lengths": np.array([5], np.int32)},
                              "serving_default", "actionformer")
    request.inputs["lengths"].dtype  # 3 (DT_INT32)
    ```
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def request_arrays(request):
    """The inputs of a `PredictRequest` as numpy (bytes: object arrays).

    Args:
        request: a `PredictRequest`.

    Returns:
        Dict input name -> numpy array.

    Example:

    ```python
    request_arrays(read_request("request.pb"))["features"].shape
    ```
    """
    import tensorflow as tf

    return {k: tf.make_ndarray(v) for k, v in request.inputs.items()}


def write_request(path, request):
    """Writes the serialized `request` (binary protobuf) to `path`.

    Args:
        path: local path or URL.
        request: a `PredictRequest`.

    Example: see `read_request`.
    """
    filesystems.atomic_write_bytes(path, request.SerializeToString())


def read_request(path):
    """Reads a `PredictRequest` written by `write_request`.

    Args:
        path: local path or URL.

    Returns:
        The `PredictRequest`.

    Raises:
        MalformedFileError: the file is not a serialized PredictRequest.

    Example:

    ```python
    write_request("request.pb", request)
    assert read_request("request.pb") == request
    ```
    """
    from google.protobuf import message
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    try:
        request.ParseFromString(filesystems.read_bytes(path))
    except message.DecodeError as e:
        raise errors.MalformedFileError(
            f"not a serialized PredictRequest ({e})", path=path) from e
    return request


def send(request, target, timeout=DEFAULT_TIMEOUT_S):
    """Sends `request` to `PredictionService/Predict` at `target`.

    Args:
        request: a `PredictRequest`.
        target: `HOST:PORT` of the server's gRPC port (insecure channel).
        timeout: seconds to wait for the reply.

    Returns:
        Dict output name -> numpy array (strings: object arrays of bytes).

    Raises:
        ServingRequestError: the call failed (unreachable server, unknown
            model or signature, bad input, timeout); names the status.

    Example:

    ```python
    outputs = send(request, "localhost:8500")
    ```
    """
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout)
        except grpc.RpcError as e:
            raise ServingRequestError(
                f"gRPC Predict of model {request.model_spec.name!r} "
                f"signature {request.model_spec.signature_name!r} at "
                f"{target} failed: {e.code().name}: {e.details()}") from e
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def load_signature(saved_model, signature_name):
    """One signature of a SavedModel, as a concrete function.

    Args:
        saved_model: exported version folder (local or URL).
        signature_name: the signature.

    Returns:
        The function; its `structured_input_signature[1]` holds the input
        `TensorSpec`s by name.

    Raises:
        ConfigError: the SavedModel has no such signature.

    Example:

    ```python
    fn = load_signature("models/actionvlad/1", "serving_default")
    sorted(fn.structured_input_signature[1])  # ["frames"]
    ```
    """
    import tensorflow as tf

    signatures = tf.saved_model.load(
        filesystems.ensure_filesystem(saved_model)).signatures
    if signature_name not in signatures:
        raise errors.ConfigError(
            f"{saved_model} has no signature {signature_name!r} "
            f"(it has: {', '.join(sorted(signatures))})")
    return signatures[signature_name]


def run_saved_model(signature, inputs):
    """Calls a loaded signature on numpy inputs, as TF Serving would.

    Args:
        signature: `load_signature` output.
        inputs: dict input name -> numpy array.

    Returns:
        Dict output name -> numpy array.

    Example:

    ```python
    run_saved_model(load_signature(path, "serving_default"), inputs)
    ```
    """
    import tensorflow as tf

    out = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def serve(inputs, signature_name, flag_values=flags.FLAGS, signature=None):
    """Does what the `define_flags` flags ask with one request.

    Writes `--rest_body` and `--grpc_request` when given, then sends the
    request to `--grpc`, or else runs `--saved_model` in this process.

    Args:
        inputs: dict input name -> numpy array.
        signature_name: the signature the inputs are for (`--signature_name`
            overrides it).
        flag_values: the parsed flags.
        signature: the effective signature already loaded from
            `--saved_model`, if the command needed it (not loaded again).

    Returns:
        Dict output name -> numpy array, or None when the request was only
        written (no `--grpc`, no `--saved_model`).

    Raises:
        ServingRequestError: the gRPC call failed.
        ConfigError: no `--saved_model`, `--grpc`, `--rest_body` or
            `--grpc_request`: nothing to do.

    Example:

    ```python
    outputs = serve(inputs, "serving_default")
    ```
    """
    fv = flag_values
    name = fv.signature_name or signature_name
    if not (fv.saved_model or fv.grpc or fv.rest_body or fv.grpc_request):
        raise errors.ConfigError(
            "nothing to do: give --saved_model (run it here), --grpc "
            "(send to a server), --rest_body or --grpc_request")
    if fv.rest_body:
        filesystems.write_json(fv.rest_body, rest_body(inputs, name),
                               indent=None)
    if fv.grpc or fv.grpc_request:
        request = predict_request(inputs, name, fv.model_name)
        if fv.grpc_request:
            write_request(fv.grpc_request, request)
        if fv.grpc:
            return send(request, fv.grpc, fv.grpc_timeout)
    if fv.saved_model:
        if signature is None:
            signature = load_signature(fv.saved_model, name)
        return run_saved_model(signature, inputs)
    return None


def define_frames_flags(model_name, data_help, flag_values=flags.FLAGS):
    """Defines the flags every frames request command has.

    `define_flags`' serving flags, `--data_dir` (required by the command),
    `--subset` (default `val`), `--video_id` (default: the subset's first
    record) and `--encoding` (`uint8` or `jpeg`).

    Args:
        model_name: default of `--model_name` (the served model's name).
        data_help: help text of `--data_dir` (which converter's output).
        flag_values: the `FlagValues` to define them in.

    Example:

    ```python
    define_frames_flags("carl", "Converted --format=tcc dataset folder.")
    ```
    """
    f = dict(flag_values=flag_values)
    define_flags(model_name, flag_values)
    flags.DEFINE_string("data_dir", None, data_help, **f)
    flags.DEFINE_string("subset", "val", "Subset to read.", **f)
    flags.DEFINE_string("video_id", None,
                        "Video to send (default: the subset's first).", **f)
    flags.DEFINE_enum("encoding", "uint8", ENCODINGS,
                      "uint8: decoded frames to serving_default; jpeg: the "
                      "stored JPEGs to serve_jpeg.", **f)


def check_encoding(encoding):
    """Raises a `ConfigError` unless `encoding` is one of `ENCODINGS`.

    Example:

    ```python
    check_encoding("png")  # ConfigError: encoding must be one of ...
    ```
    """
    if encoding not in ENCODINGS:
        raise errors.ConfigError(f"encoding must be one of {ENCODINGS}, got "
                                 f"{encoding!r}")


def find_example(data_dir, subset, video_id=None, *, schema, converter,
                 parse, accept=None, missing=None):
    """The first record of a converted dataset's subset that is wanted.

    Args:
        data_dir: a `tfaction.data.convert` output folder.
        subset: the subset whose records are read.
        video_id: the wanted video (default: any).
        schema: the converter's schema (`ConvertedDataset` checks it).
        converter: the converter named in errors.
        parse: serialized record -> parsed example (`tfaction.data.schemas`
            parser of the schema).
        accept: optional further test of a parsed example.
        missing: the error message when no record is wanted (default: "no
            video ... in subset ...").

    Returns:
        `(dataset, record, example)`: the `ConvertedDataset` (its
        `class_names`), the serialized record and its parse.

    Raises:
        DataError: no such subset, or no wanted record in it.
        MalformedFileError: `data_dir` is not an output of the schema.

    Example:

    ```python
    data, record, ex = find_example(
        "records", "val", "0003_pour", schema="frame_labels",
        converter="tcc", parse=schemas.parse_frame_labels)
    ```
    """
    from tfaction.data import schemas
    from tfaction.data import tfrecord_io
    from tfaction.tasks import converted_dataset

    data = converted_dataset.ConvertedDataset(data_dir, schema=schema,
                                              converter=converter)
    for shard in data.files(subset):
        for record in tfrecord_io.iterate_records(shard):
            ex = parse(record)
            if video_id is not None and (
                    ex[schemas.VIDEO_ID].numpy().decode() != video_id):
                continue
            if accept is None or accept(ex):
                return data, record, ex
    raise errors.DataError(
        missing or f"no video {video_id!r} in subset {subset!r}",
        path=data_dir, video_id=video_id)


def frames_signature_name(inputs):
    """`serve_jpeg` for JPEG `frames` (object arrays), else
    `serving_default`.

    Example:

    ```python
    frames_signature_name({"frames": np.zeros([1, 4, 8, 8, 3], np.uint8)})
    # "serving_default"
    ```
    """
    return (JPEG_SIGNATURE if inputs["frames"].dtype == object
            else UINT8_SIGNATURE)


def frames_rest_body(inputs):
    """TF Serving REST `:predict` body (columnar `inputs` format) of a
    frames client's inputs, for their `frames_signature_name` (JPEGs
    base64-encoded as `{"b64": ...}`).

    Example:

    ```python
    frames_rest_body({"frames": np.array([[jpeg]], object)})
    # {"signature_name": "serve_jpeg", "inputs": {"frames": [[{"b64": ...}]]}}
    ```
    """
    return rest_body(inputs, frames_signature_name(inputs))


def frames_predict_request(inputs, model_name):
    """The gRPC `PredictRequest` of a frames client's inputs.

    Args:
        inputs: dict `frames` (uint8 or JPEG bytes) and any other inputs,
            as numpy of the signature's dtypes.
        model_name: the served model's name (`model_spec.name`).

    Returns:
        A `PredictRequest` for `frames_signature_name(inputs)` (DT_UINT8 or
        DT_STRING `frames`); send it with `send(request, "HOST:8500")`.

    Example:

    ```python
    frames_predict_request({"frames": frames}, "carl").model_spec.name
    ```
    """
    return predict_request(inputs, frames_signature_name(inputs), model_name)


def frames_request_functions(model_name):
    """A frames client's `signature_name`, `rest_body` and `grpc_request`.

    Args:
        model_name: the default `model_spec.name` of its gRPC requests.

    Returns:
        `(frames_signature_name, frames_rest_body, grpc_request)`, where
        `grpc_request(inputs, model_name=model_name)` is
        `frames_predict_request(inputs, model_name)`.

    Example:

    ```python
    signature_name, rest_body, grpc_request = frames_request_functions(
        "carl")
    grpc_request(inputs).model_spec.name  # "carl"
    ```
    """
    def grpc_request(inputs, model_name=model_name):
        """The gRPC `PredictRequest` of the client's `request_inputs`
        output (`frames_predict_request`); send it with
        `serving_request.send(request, "HOST:8500")`."""
        return frames_predict_request(inputs, model_name)

    return frames_signature_name, frames_rest_body, grpc_request


def run_frames_request(command, flag_values, prepare, summarize):
    """Runs a frames request command: its inputs, `serve`, the summary.

    Args:
        command: the command's module name (`export.carl_request`), which
            starts its error messages.
        flag_values: the parsed flags (`define_frames_flags`' and the
            command's own).
        prepare: zero-argument callable -> `(item, inputs, signature)`:
            what was read (a video, a keyframe), its request inputs and
            the signature already loaded from `--saved_model` (or None).
        summarize: `(item, inputs, outputs) -> text`, printed when the
            request was served (not when it was only written).

    Returns:
        The exit status: 0, or 1 after printing a tfaction error.

    Example:

    ```python
    run_frames_request("export.carl_request", fv, prepare,
                       lambda video, inputs, outputs: summarize(...))
    ```
    """
    try:
        item, inputs, signature = prepare()
        outputs = serve(inputs, frames_signature_name(inputs),
                        flag_values=flag_values, signature=signature)
    except errors.TfactionError as e:
        sys.stderr.write(f"{command}: error: {e}\n")
        return 1
    if outputs is not None:
        print(summarize(item, inputs, outputs))
    return 0


def run_frames_command(define_flags, run):
    """Runs a frames request command as the program, then exits.

    Defines its flags in `flags.FLAGS`, requires `--data_dir`, parses the
    command line (`absl.app.run`) and exits with `run(flags.FLAGS)`'s
    status.

    Args:
        define_flags: the command's `define_flags()`.
        run: the command's `run(flag_values)` -> exit status.

    Example:

    ```python
    if __name__ == "__main__":
        serving_request.run_frames_command(define_flags, run)
    ```
    """
    from absl import app

    define_flags()
    flags.mark_flags_as_required(["data_dir"])

    def main(argv):
        del argv
        return run(flags.FLAGS)

    filesystems.run_and_exit(app.run, main)
