"""gRPC path of the request clients (`export.*_request --grpc=HOST:PORT`).

The tiny exports of the other serving tests are reused: the ActivityNet
ActionFormer (`serving_default` and `serving_with_class_scores`, from
test_actionformer_resampled_export) and the two-stream ActionVLAD (JPEG
strings `frames` [B, T], `flow_x`, `flow_y` [B, T, S], from
test_actionvlad_export, exported here). For each:

1. the `PredictRequest` the client builds, parsed back, holds the REST
   body's inputs with the signature's names, dtypes and shapes;
2. the signature run on the request's inputs gives the outputs it gives on
   the REST body's inputs;
3. the command, run with `--grpc` against an in-process PredictionService
   (grpc.server on 127.0.0.1, serving the loaded SavedModels), prints what
   it prints for the local SavedModel, and writes `--grpc_request` /
   `--rest_body` files equal to the in-process requests.
"""

import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys

import grpc
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from export import actionformer_request
from export import actionvlad_request
from export import serving_request
from tests.serving import serving_helpers as helpers
from tests.serving.test_actionformer_resampled_export import (
    records,  # noqa: F401
)
from tests.serving.test_actionformer_resampled_export import (
    setup,  # noqa: F401
)
from tests.serving.test_actionvlad_export import streams  # noqa: F401
from tests.serving.test_actionvlad_export import two_stream  # noqa: F401
from tests.serving.test_actionvlad_export import videos  # noqa: F401
from tfaction import errors
from tfaction.serving import export_saved_model
from tfaction.serving.actionformer import CLASS_SCORES_SIGNATURE

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
T = 3  # ActionVLAD steps sent (the stand-in export's T)
RPC_TIMEOUT_S = 60.0


# --- fixtures ---------------------------------------------------------------
@pytest.fixture(scope="module")
def actionvlad(two_stream, videos, tmp_path_factory):  # noqa: F811
    """The two-stream export and one video in the HMDB51 frame layout."""
    root = tmp_path_factory.mktemp("actionvlad_grpc")
    path = export_saved_model(two_stream["module"],
                              root / "models" / "actionvlad")
    folder = root / "frames" / "video0"
    folder.mkdir(parents=True)
    video = videos[0]
    for prefix, frames in (("image", video["images"]),
                           ("flow_x", video["flow_x"]),
                           ("flow_y", video["flow_y"])):
        for i, data in enumerate(frames):
            (folder / f"{prefix}_{i + 1:05d}.jpg").write_bytes(data)
    split_list = root / "split.txt"
    split_list.write_text(f"video0 {len(video['images'])} 2\n")
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    inputs = actionvlad_request.request_inputs(
        str(folder), set(specs), T, stack=specs["flow_x"].shape[-1])
    return dict(path=pathlib.Path(path), root=root, folder=folder,
                split_list=split_list, signature=signature, inputs=inputs)


@pytest.fixture(scope="module", params=["serving_default",
                                        CLASS_SCORES_SIGNATURE])
def actionformer(request, setup, records):  # noqa: F811
    """One ActivityNet video's inputs for each signature."""
    ext_file = (setup["ext_file"] if request.param == CLASS_SCORES_SIGNATURE
                else None)
    video = setup["videos"][0]
    inputs = actionformer_request.request_inputs(
        video, str(ext_file) if ext_file else None)
    assert actionformer_request.signature_name(inputs) == request.param
    return dict(setup=setup, records=records, video=video,
                ext_file=ext_file, inputs=inputs,
                signature=setup["loaded"].signatures[request.param])


class _Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """PredictionService/Predict over loaded SavedModels, as TF Serving."""

    def __init__(self, models):
        self.models = models  # name -> loaded SavedModel
        self.calls = []  # (model name, signature name) of each Predict

    def Predict(self, request, context):
        spec = request.model_spec
        name = spec.signature_name or "serving_default"
        self.calls.append((spec.name, name))
        if spec.name not in self.models:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: {spec.name}")
        signatures = self.models[spec.name].signatures
        if name not in signatures:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"Serving signature name: {name!r} not found")
        inputs = {k: tf.constant(tf.make_ndarray(v))
                  for k, v in request.inputs.items()}
        try:
            outputs = signatures[name](**inputs)
        except (TypeError, ValueError, tf.errors.OpError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(spec)
        for k, v in outputs.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v.numpy()))
        return response


@pytest.fixture(scope="module")
def server(setup, actionvlad):  # noqa: F811
    """(`HOST:PORT`, servicer) of an in-process PredictionService; stopped
    after the module."""
    srv = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    servicer = _Servicer({"actionformer": setup["loaded"],
                          "actionvlad": tf.saved_model.load(
                              str(actionvlad["path"]))})
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    assert port > 0
    srv.start()
    yield f"127.0.0.1:{port}", servicer
    srv.stop(grace=None).wait(timeout=10)


# --- helpers ----------------------------------------------------------------
def _run(signature, inputs):
    out = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in out.items()}


def _assert_request_matches(client, inputs, signature, model_name):
    """(1) the client's request, parsed back, = its REST body's inputs, of
    the signature's names, dtypes and shapes; (2) the signature gives the
    same outputs on both.

    Returns:
        The request's inputs (numpy) and the signature's outputs on them.
    """
    request = predict_pb2.PredictRequest.FromString(
        client.grpc_request(inputs).SerializeToString())
    body = json.loads(json.dumps(client.rest_body(inputs)))
    specs = signature.structured_input_signature[1]
    assert request.model_spec.name == model_name
    assert request.model_spec.signature_name == body["signature_name"]
    arrays = serving_request.request_arrays(request)
    rest = helpers.rest_arrays(
        body, {name: spec.dtype.name for name, spec in specs.items()})
    assert set(arrays) == set(rest) == set(specs)
    for name, spec in specs.items():
        got = arrays[name]
        assert request.inputs[name].dtype == spec.dtype.as_datatype_enum
        assert got.dtype == rest[name].dtype, name
        assert spec.shape.is_compatible_with(got.shape), (name, got.shape)
        assert got.shape == rest[name].shape
        np.testing.assert_array_equal(got, rest[name], err_msg=name)
    served = _run(signature, arrays)
    _assert_outputs_equal(served, _run(signature, rest))
    return arrays, served


def _assert_command_sent(client, inputs, servicer, calls, tmp_path):
    """The command made one Predict call and wrote the request files."""
    sent = serving_request.read_request(tmp_path / "request.pb")
    assert sent == client.grpc_request(inputs)
    spec = sent.model_spec
    assert servicer.calls[calls:] == [(spec.name, spec.signature_name)]
    assert json.loads((tmp_path / "request.json").read_text()) == (
        client.rest_body(inputs))


def _assert_outputs_equal(got, want):
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def _command(module, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", module, *args],
                          cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


# --- ActionFormer -----------------------------------------------------------
def test_actionformer_request_matches_rest_body_and_signature(actionformer):
    arrays, served = _assert_request_matches(
        actionformer_request, actionformer["inputs"],
        actionformer["signature"], "actionformer")
    assert arrays["features"].dtype == np.float32
    assert arrays["lengths"].dtype == np.int32
    if "class_scores" in arrays:
        assert arrays["class_scores"].dtype == np.float64
    assert int(served["num_detections"][0]) > 0


def test_actionformer_command_over_grpc(actionformer, server, tmp_path):
    target, servicer = server
    setup_ = actionformer["setup"]
    video, inputs = actionformer["video"], actionformer["inputs"]
    args = [f"--data_dir={actionformer['records']}",
            f"--video_id={video['video_id']}", "--top=3",
            f"--grpc={target}", f"--grpc_timeout={RPC_TIMEOUT_S}",
            f"--grpc_request={tmp_path / 'request.pb'}",
            f"--rest_body={tmp_path / 'request.json'}"]
    if actionformer["ext_file"]:
        args.append(f"--ext_score_file={actionformer['ext_file']}")
    calls = len(servicer.calls)
    printed = _command("export.actionformer_request", *args)
    _assert_command_sent(actionformer_request, inputs, servicer, calls,
                         tmp_path)
    local = actionformer_request.predict(str(setup_["path"]), inputs)
    assert printed.strip() == actionformer_request.format_detections(
        video, local, top=3)


def test_actionformer_send_returns_the_local_outputs(actionformer, server):
    inputs = actionformer["inputs"]
    got = serving_request.send(actionformer_request.grpc_request(inputs),
                               server[0], RPC_TIMEOUT_S)
    _assert_outputs_equal(got, _run(actionformer["signature"], inputs))


# --- ActionVLAD -------------------------------------------------------------
def test_actionvlad_request_matches_rest_body_and_signature(actionvlad):
    arrays, _ = _assert_request_matches(
        actionvlad_request, actionvlad["inputs"], actionvlad["signature"],
        "actionvlad")
    assert arrays["frames"].shape == (1, T)
    assert arrays["flow_x"].shape == arrays["flow_y"].shape == (1, T, 2)
    assert arrays["frames"][0, 0][:2] == b"\xff\xd8"  # JPEG bytes as sent


def test_actionvlad_command_over_grpc(actionvlad, server, tmp_path):
    target, servicer = server
    calls = len(servicer.calls)
    printed = _command(
        "export.actionvlad_request", f"--saved_model={actionvlad['path']}",
        f"--frames_root={actionvlad['folder'].parent}",
        f"--split_list={actionvlad['split_list']}", f"--num_steps={T}",
        f"--grpc={target}", f"--grpc_request={tmp_path / 'request.pb'}",
        f"--rest_body={tmp_path / 'request.json'}")
    inputs = actionvlad["inputs"]
    _assert_command_sent(actionvlad_request, inputs, servicer, calls,
                         tmp_path)
    local = _run(actionvlad["signature"], inputs)
    assert json.loads(printed) == json.loads(
        actionvlad_request.format_top("video0", 2, local))
    assert json.loads(printed)["top_k"][0]["name"].startswith("class_")


# --- errors -----------------------------------------------------------------
def test_refused_call_names_model_and_status(actionvlad, server):
    request = serving_request.predict_request(actionvlad["inputs"],
                                              "serving_default", "nope")
    with pytest.raises(serving_request.ServingRequestError,
                       match="'nope'.*NOT_FOUND"):
        serving_request.send(request, server[0], RPC_TIMEOUT_S)
    request.model_spec.name = "actionvlad"
    request.model_spec.signature_name = "serve_nothing"
    with pytest.raises(serving_request.ServingRequestError,
                       match="FAILED_PRECONDITION.*serve_nothing"):
        serving_request.send(request, server[0], RPC_TIMEOUT_S)


def test_malformed_request_file_is_named(tmp_path):
    path = tmp_path / "request.pb"
    path.write_bytes(b"\xff\xff\xff not a proto")
    with pytest.raises(errors.MalformedFileError, match="PredictRequest"):
        serving_request.read_request(path)


def test_nothing_to_do_is_explained(actionvlad):
    flag_values = flags.FlagValues()
    serving_request.define_flags("actionvlad", flag_values)
    flag_values(["request"])
    with pytest.raises(errors.ConfigError, match="--grpc"):
        serving_request.serve(actionvlad["inputs"], "serving_default",
                              flag_values)


def test_request_only_is_written_not_sent(actionvlad, tmp_path):
    """--grpc_request without --grpc / --saved_model: written, not run;
    --model_name and --signature_name go into its model_spec."""
    flag_values = flags.FlagValues()
    serving_request.define_flags("actionvlad", flag_values)
    path = tmp_path / "request.pb"
    flag_values(["request", f"--grpc_request={path}", "--model_name=av",
                 "--signature_name=fused"])
    inputs = actionvlad["inputs"]
    assert serving_request.serve(inputs, "serving_default",
                                 flag_values) is None
    written = serving_request.read_request(path)
    assert (written.model_spec.name, written.model_spec.signature_name) == (
        "av", "fused")
    assert written == serving_request.predict_request(inputs, "fused", "av")
