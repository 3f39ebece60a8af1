"""CARL SavedModel: the served graph equals the task's evaluation.

A tiny TCC-layout dataset is generated (`tfaction.data.synthetic.tcc`, 8
videos of 12-30 frames of 40x40) and converted (`--format=tcc`). The
synthetic recipe, shrunk (32x32 frames, a 1-layer transformer of width 16,
8-d embeddings) and with `evaluation.frames_per_chunk = 10` (so that the
longer videos are embedded in several chunks, each with its positions
interpolated over the training length), gets a run directory: its resolved
`config.json` and a checkpoint of the trainer's model with perturbed
weights and batch-norm statistics (so that a model that was not restored
cannot pass). `python -m export.export_saved_model --workdir=...` (a
subprocess, as a user runs it, reading the run's own `config.json`)
exports it.

A fresh Python process that imports only TensorFlow (started outside the
repository, with keras and tfaction blocked) loads the export and runs

* `serving_default` on the decoded frames of the first two videos of the
  REAL evaluation pipeline (`CARLTask.build_inputs(training=False)`), a
  batch of two lengths padded with noise frames;
* `serve_jpeg` on the same frames' stored JPEG bytes (padded with empty
  strings, which are never decoded);
* both signatures on the requests `export.carl_request` builds, as the
  gRPC `PredictRequest` carries them (the REST body's inputs are checked
  equal to them);
* bad requests: a frame that is not a JPEG, empty frames, a length
  larger than T.

Its embeddings must equal the task's own evaluation
(`CARLTask.embed_videos` on the pipeline's frames, with the checkpoint's
weights) within 1e-5, with zeros after each video's length; the JPEG
signature must equal the uint8 one (the same pixels: the JPEG bytes are
decoded as the pipeline decodes them). `saved_model_cli show --all` runs
beside it. The warm-up records, `models.config` and
`batching_parameters.txt` are checked in the export folder.
"""

import base64
import json
import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from export import carl_request as client
from export import serving_request
from experiments.configs import carl_synthetic as recipe
from tfaction import config as config_lib
from tfaction import errors
from tfaction import serving
from tfaction import tasks
from tfaction import training
from tfaction.data import schemas
from tfaction.data import tfrecord_io
from tfaction.data.formats import tcc
from tfaction.data.synthetic import tcc as synthetic_tcc
from tfaction.serving import carl as serving_lib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
VIDEO_SIZE = 40        # stored frames (centre-cropped in the graph)
IMAGE_SIZE = (32, 32)  # the model's input size
TRAIN_FRAMES = 8       # views.num_frames: the positions' training length
CHUNK = 10             # evaluation.frames_per_chunk
D = 8                  # embedding size
TOL = 1e-5
DCT = "INTEGER_ACCURATE"
MODEL_NAME = "carl"


# --- run directory and export -----------------------------------------------
@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A converted tiny TCC-layout dataset (6 train, 2 val videos)."""
    root = tmp_path_factory.mktemp("carl_synthetic")
    raw, out = root / "raw", root / "records"
    synthetic_tcc.generate_tcc(str(raw), num_videos=8, size=VIDEO_SIZE,
                               min_frames=12, max_frames=30)
    tcc.convert_tcc(str(raw / "*.tfrecord"), str(out))
    return out


def _config(records):
    config = recipe.get_config()
    task = config.task
    task.data_dir = str(records)
    task.views.num_frames = TRAIN_FRAMES
    task.views.image_size = IMAGE_SIZE
    m = task.model
    m.small_filters = (8, 16)
    m.fc_units = (16,)
    m.hidden_size = 16
    m.num_heads = 2
    m.ffn_units = 32
    m.num_layers = 1
    m.embedding_size = D
    m.projection_hidden_units = D
    task.evaluation.frames_per_chunk = CHUNK
    config.runtime.strategy = "one_device"
    config.runtime.logical_cpus = 0
    return config


def _perturb(model, seed):
    """Noise on the trainables (a fifth of each weight's spread) and random
    batch-norm statistics."""
    rng = np.random.RandomState(seed)
    for v in model.weights:
        value = v.numpy()
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 2.0, value.shape).astype(value.dtype))
            continue
        scale = 0.2 * max(float(value.std()), 0.01)
        v.assign(value + scale * rng.standard_normal(value.shape).astype(
            value.dtype))


@pytest.fixture(scope="module")
def run(records, tmp_path_factory):
    """A run directory with a checkpoint; the export command started on it.

    Returns:
        Dict with the config, the task, the model holding the checkpoint's
        weights, the workdir, the export_dir and the running export
        subprocess (with its stdout, stderr files).
    """
    root = tmp_path_factory.mktemp("carl_run")
    workdir, export_dir = root / "run", root / "models" / MODEL_NAME
    workdir.mkdir()
    config = _config(records)
    task = tasks.build_task(config)
    trainer = training.Trainer(task, config, str(workdir),
                               evaluation_only=True)
    _perturb(trainer.model, seed=7)
    trainer.position.assign(3, 0, 3)
    trainer.checkpointer.save(3)
    trainer.close()
    config_lib.write_config_json(config, str(workdir))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # It runs while the reference is computed; its output goes to files
    # (a full pipe would stall it).
    logs = [open(root / name, "w+") for name in ("stdout", "stderr")]
    process = subprocess.Popen(
        [sys.executable, "-m", "export.export_saved_model",
         f"--workdir={workdir}", f"--export_dir={export_dir}"],
        cwd=REPO_ROOT, env=env, stdout=logs[0], stderr=logs[1], text=True)
    try:
        yield dict(config=config, task=task, model=trainer.model,
                   workdir=workdir, export_dir=export_dir, process=process,
                   logs=logs)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for f in logs:
            f.close()


# --- reference: evaluation pipeline + the task's whole-video embedding ------
def _stored_frames(records):
    """video id -> the record's stored JPEG bytes."""
    out = {}
    for shard in tf.io.gfile.glob(str(records / "*.tfrecord")):
        for record in tfrecord_io.iterate_records(shard):
            ex = schemas.parse_frame_labels(record)
            out[ex[schemas.VIDEO_ID].numpy().decode()] = (
                ex[schemas.IMAGE_ENCODED].numpy())
    return out


@pytest.fixture(scope="module")
def reference(run, records):
    """The first evaluation batch, its requests and the task's embeddings."""
    task, model = run["task"], run["model"]
    features, labels = next(iter(task.build_inputs(
        False, global_batch_size=2)))
    lengths = tf.reduce_sum(tf.cast(features["mask"], tf.int32), axis=1)
    video_ids = [v.decode() for v in labels["video_id"].numpy()]
    stored = _stored_frames(records)
    n = lengths.numpy()
    steps = max(n)
    rng = np.random.RandomState(3)
    jpegs = np.full([2, steps], b"", dtype=object)
    uint8 = rng.randint(0, 256, [2, steps, VIDEO_SIZE, VIDEO_SIZE, 3]
                        ).astype(np.uint8)  # noise after each length
    for b, vid in enumerate(video_ids):
        jpegs[b, :n[b]] = stored[vid][:n[b]]
        uint8[b, :n[b]] = [tf.io.decode_jpeg(f, channels=3,
                                             dct_method=DCT).numpy()
                           for f in jpegs[b, :n[b]]]
    want = task.embed_videos(model, features["frames"], lengths).numpy()
    # The longest video in one model call, without chunks.
    longest = int(np.argmax(n))
    whole = model({"frames": features["frames"][longest:longest + 1,
                                                :n[longest]],
                   "mask": tf.ones([1, n[longest]], tf.bool)},
                  training=False)["embeddings"].numpy()[0]
    return dict(video_ids=video_ids, lengths=n.astype(np.int32),
                jpegs=jpegs, uint8=uint8, want=want, longest=longest,
                whole=whole)


@pytest.fixture(scope="module")
def requests(reference, records):
    """The request command's inputs for the first video of the batch."""
    video = client.read_video(str(records), "train",
                              reference["video_ids"][0])
    return dict(video=video, **{
        encoding: client.request_inputs(video, 1, encoding)
        for encoding in client.ENCODINGS})


# --- fresh TensorFlow-only process ------------------------------------------
SERVE_SCRIPT = r"""
import pickle
import sys

for blocked in ("keras", "tf_keras", "tfaction", "export", "experiments"):
    sys.modules[blocked] = None

import tensorflow as tf

path, calls_path, outputs_path = sys.argv[1:4]
with open(calls_path, "rb") as f:
    calls = pickle.load(f)
loaded = tf.saved_model.load(path)
listing = {
    name: {"inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in
                      fn.structured_input_signature[1].items()},
           "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in
                       fn.structured_outputs.items()}}
    for name, fn in loaded.signatures.items()}
results, errors = {}, {}
for key, (signature, inputs) in calls.items():
    fn = loaded.signatures[signature]
    try:
        out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        results[key] = {k: v.numpy() for k, v in out.items()}
    except tf.errors.InvalidArgumentError as e:
        errors[key] = e.message
imported = sorted(m for m, module in sys.modules.items() if module and
                  m.split(".")[0] in ("keras", "tf_keras", "tfaction"))
with open(outputs_path, "wb") as f:
    pickle.dump({"results": results, "errors": errors, "listing": listing,
                 "imported": imported}, f)
"""


def _rest_arrays(body, specs):
    """A REST body's columnar inputs as numpy of the signature's dtypes."""
    def decode(x):
        if isinstance(x, list):
            return [decode(v) for v in x]
        return base64.b64decode(x["b64"])

    out = {}
    for name, value in body["inputs"].items():
        if specs[name] == "string":
            out[name] = np.array(decode(value), dtype=object)
        else:
            out[name] = np.array(value, dtype=specs[name])
    return out


@pytest.fixture(scope="module")
def served(run, reference, requests, tmp_path_factory):
    """Waits for the export; serves everything in a TF-only process."""
    process = run["process"]
    process.wait(timeout=300)
    for f in run["logs"]:
        f.seek(0)
    stdout, stderr = (f.read() for f in run["logs"])
    assert process.returncode == 0, stderr[-4000:]
    path = pathlib.Path(stdout.strip().splitlines()[-1])
    root = tmp_path_factory.mktemp("carl_serve")
    lengths = reference["lengths"]
    bad = reference["jpegs"].copy()
    bad[1, 3] = b"not a jpeg"
    calls = {
        "uint8": ("serving_default", {"frames": reference["uint8"],
                                      "lengths": lengths}),
        "jpeg": ("serve_jpeg", {"frames": reference["jpegs"],
                                "lengths": lengths}),
        "bad_jpeg": ("serve_jpeg", {"frames": bad, "lengths": lengths}),
        "empty_uint8": ("serving_default", {
            "frames": np.zeros([1, 3, 0, 5, 3], np.uint8),
            "lengths": np.array([3], np.int32)}),
        "long_length": ("serve_jpeg", {
            "frames": reference["jpegs"],
            "lengths": lengths + reference["jpegs"].shape[1]})}
    # The gRPC requests' inputs are served (the REST bodies' inputs are
    # checked equal to them, in `test_rest_and_grpc_requests_carry_...`).
    rest = {}
    dtypes = {"uint8": {"frames": "uint8", "lengths": "int32"},
              "jpeg": {"frames": "string", "lengths": "int32"}}
    for encoding in client.ENCODINGS:
        inputs = requests[encoding]
        request = client.grpc_request(inputs)
        calls[f"grpc_{encoding}"] = (
            request.model_spec.signature_name,
            serving_request.request_arrays(request))
        body = json.loads(json.dumps(client.rest_body(inputs)))
        rest[encoding] = (body["signature_name"],
                          _rest_arrays(body, dtypes[encoding]))
    with open(root / "calls.pkl", "wb") as f:
        pickle.dump(calls, f)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    cli = subprocess.Popen(
        [str(pathlib.Path(sys.executable).parent / "saved_model_cli"), "show",
         "--all", "--dir", str(path)], cwd=root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = subprocess.run(
            [sys.executable, "-c", SERVE_SCRIPT, str(path),
             str(root / "calls.pkl"), str(root / "outputs.pkl")],
            cwd=root, env=env, capture_output=True, text=True, timeout=300)
        cli_out, cli_err = cli.communicate(timeout=300)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert done.returncode == 0, done.stderr[-4000:]
    with open(root / "outputs.pkl", "rb") as f:
        out = pickle.load(f)
    out.update(path=path, calls=calls, rest=rest,
               saved_model_cli=(cli.returncode, cli_out, cli_err))
    return out


# --- comparisons ------------------------------------------------------------
def _assert_embeddings(got, want, lengths, atol=TOL):
    assert got.dtype == np.float32
    assert got.shape == want.shape
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(got[b, :n], want[b, :n], atol=atol,
                                   rtol=0)
        assert not np.any(got[b, n:]), b  # zeros after the length


def test_export_command_wrote_a_version(served, run):
    export_dir = run["export_dir"]
    assert served["path"] == export_dir / "1"
    assert sorted(p.name for p in export_dir.iterdir()) == [
        "1", "batching_parameters.txt", "models.config"]
    assert f'name: "{MODEL_NAME}"' in (export_dir / "models.config"
                                        ).read_text()
    batching = (export_dir / "batching_parameters.txt").read_text()
    assert "max_batch_size { value: 4 }" in batching
    assert "pad_variable_length_inputs: true" in batching
    # The workdir is only read.
    assert sorted(p.name for p in run["workdir"].iterdir()) == [
        "checkpoints", "config.json"]


def test_fresh_process_needed_only_tensorflow(served):
    assert served["imported"] == []


def test_served_embeddings_match_the_task_evaluation(served, reference):
    got = served["results"]["uint8"]["embeddings"]
    lengths = reference["lengths"]
    assert len(set(lengths)) == 2  # padded: two lengths in the batch
    _assert_embeddings(got, reference["want"], lengths)
    # L2-normalised frames (CARL's evaluation output).
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(np.linalg.norm(got[b, :n], axis=-1), 1.0,
                                   atol=1e-5)


def test_long_videos_are_embedded_in_chunks(reference):
    """The longest video needs chunks; one call on the whole video (one
    chunk, other interpolated positions) gives other embeddings, so the
    comparison above checks the chunking."""
    b, n = reference["longest"], reference["lengths"][reference["longest"]]
    assert n > CHUNK
    assert np.abs(reference["whole"] - reference["want"][b, :n]).max() > 1e-3


def test_jpeg_signature_matches_uint8_signature(served, reference):
    results = served["results"]
    _assert_embeddings(results["jpeg"]["embeddings"],
                       results["uint8"]["embeddings"], reference["lengths"],
                       atol=1e-6)


def test_signatures_names_dtypes_shapes(served):
    outputs = {"embeddings": ["float32", [None, None, D]]}
    assert served["listing"] == {
        "serving_default": {"inputs": {
            "frames": ["uint8", [None, None, None, None, 3]],
            "lengths": ["int32", [None]]}, "outputs": outputs},
        "serve_jpeg": {"inputs": {
            "frames": ["string", [None, None]],
            "lengths": ["int32", [None]]}, "outputs": outputs}}


def test_saved_model_cli_lists_signatures(served):
    code, text, err = served["saved_model_cli"]
    assert code == 0, err[-4000:]
    for name, dtype, shape in (("serving_default", "DT_UINT8",
                                "(-1, -1, -1, -1, 3)"),
                               ("serve_jpeg", "DT_STRING", "(-1, -1)")):
        block = text[text.index(f"signature_def['{name}']"):]
        block, method = block.split("Method name is:", 1)
        assert method.split()[0] == "tensorflow/serving/predict"
        for key, key_dtype, key_shape in (("frames", dtype, shape),
                                          ("lengths", "DT_INT32", "(-1)")):
            entry = block[block.index(f"inputs['{key}'] tensor_info:"):]
            entry = entry.split("name:")[0]
            assert f"dtype: {key_dtype}" in entry, (name, key)
            assert f"shape: {key_shape}" in entry, (name, key)
        entry = block[block.index("outputs['embeddings'] tensor_info:"):]
        entry = entry.split("name:")[0]
        assert "dtype: DT_FLOAT" in entry and f"shape: (-1, -1, {D})" in (
            entry), name


def test_bad_requests_are_explained(served):
    errors_ = served["errors"]
    assert set(errors_) == {"bad_jpeg", "empty_uint8", "long_length"}
    error = errors_["bad_jpeg"]
    assert "not a JPEG" in error and "request row 1" in error, error
    assert "[3]" in error, error  # the frame index
    assert "height and width >= 1" in errors_["empty_uint8"]
    assert "lengths must not exceed T" in errors_["long_length"]


def test_warmup_requests_cover_both_signatures(served):
    from tensorflow_serving.apis import prediction_log_pb2

    warmup = served["path"] / "assets.extra" / "tf_serving_warmup_requests"
    logs = [prediction_log_pb2.PredictionLog.FromString(r).predict_log
            .request for r in tf.data.TFRecordDataset(str(warmup))
            .as_numpy_iterator()]
    assert [r.model_spec.signature_name for r in logs] == [
        "serving_default", "serve_jpeg"]
    assert {r.model_spec.name for r in logs} == {MODEL_NAME}
    frames = [tf.make_ndarray(r.inputs["frames"]) for r in logs]
    t = serving_lib.WARMUP_FRAMES
    assert frames[0].dtype == np.uint8
    assert frames[0].shape == (1, t, *IMAGE_SIZE, 3)
    assert frames[1].shape == (1, t)
    assert frames[1][0, 0][:3] == b"\xff\xd8\xff"
    for r in logs:
        assert tf.make_ndarray(r.inputs["lengths"]).tolist() == [t]


# --- request command --------------------------------------------------------
def test_request_inputs_are_the_pipeline_frames(requests, reference):
    n = reference["lengths"][0]
    np.testing.assert_array_equal(requests["uint8"]["frames"],
                                  reference["uint8"][:1, :n])
    assert requests["jpeg"]["frames"].tolist() == (
        reference["jpegs"][:1, :n].tolist())
    for encoding in client.ENCODINGS:
        assert requests[encoding]["lengths"].tolist() == [n]
        assert requests[encoding]["lengths"].dtype == np.int32
    assert client.signature_name(requests["uint8"]) == "serving_default"
    assert client.signature_name(requests["jpeg"]) == (
        serving_lib.JPEG_SIGNATURE)
    assert client.UINT8_SIGNATURE == serving.SERVING_DEFAULT
    # --stride: every s-th stored frame, as views.eval_stride.
    strided = client.request_inputs(requests["video"], 3, "uint8")
    np.testing.assert_array_equal(strided["frames"],
                                  requests["uint8"]["frames"][:, ::3])
    assert strided["lengths"].tolist() == [len(range(0, n, 3))]


@pytest.mark.parametrize("encoding", client.ENCODINGS)
def test_rest_and_grpc_requests_carry_the_same_inputs(served, requests,
                                                      reference, encoding):
    inputs = requests[encoding]
    name = {"uint8": "serving_default", "jpeg": "serve_jpeg"}[encoding]
    request = client.grpc_request(inputs, model_name="c")
    assert (request.model_spec.name, request.model_spec.signature_name) == (
        "c", name)
    expected_dtype = {"uint8": tf.uint8, "jpeg": tf.string}[encoding]
    assert request.inputs["frames"].dtype == (
        expected_dtype.as_datatype_enum)
    assert request.inputs["lengths"].dtype == tf.int32.as_datatype_enum
    grpc_name, grpc_arrays = served["calls"][f"grpc_{encoding}"]
    rest_name, rest_arrays = served["rest"][encoding]
    assert grpc_name == rest_name == name
    for key in ("frames", "lengths"):
        assert grpc_arrays[key].shape == rest_arrays[key].shape == (
            inputs[key].shape)
        assert grpc_arrays[key].dtype == rest_arrays[key].dtype
        np.testing.assert_array_equal(grpc_arrays[key], rest_arrays[key])
        np.testing.assert_array_equal(grpc_arrays[key], inputs[key])
    # Served alone, the request gives the batch's first video.
    n = reference["lengths"][0]
    got = served["results"][f"grpc_{encoding}"]["embeddings"]
    assert got.shape == (1, n, D)
    np.testing.assert_allclose(
        got[0], served["results"]["uint8"]["embeddings"][0, :n], atol=1e-6,
        rtol=0)


def _command_flags(argv):
    flag_values = flags.FlagValues()
    client.define_flags(flag_values)
    flag_values(["request", *argv])
    return flag_values


def test_command_writes_rest_body_and_grpc_request(records, requests,
                                                   tmp_path, capsys):
    video_id = requests["video"]["video_id"]
    for encoding in client.ENCODINGS:
        body, pb = tmp_path / f"{encoding}.json", tmp_path / f"{encoding}.pb"
        fv = _command_flags([
            f"--data_dir={records}", "--subset=train",
            f"--video_id={video_id}", f"--encoding={encoding}",
            f"--rest_body={body}", f"--grpc_request={pb}"])
        assert client.run(fv) == 0
        assert capsys.readouterr().out == ""  # written, not sent
        inputs = requests[encoding]
        assert serving_request.read_request(pb) == client.grpc_request(
            inputs)
        assert json.loads(body.read_text()) == json.loads(json.dumps(
            client.rest_body(inputs)))


def test_command_errors_are_explained(records, tmp_path, capsys):
    fv = _command_flags([f"--data_dir={records}", "--video_id=nope",
                         f"--rest_body={tmp_path / 'r.json'}"])
    assert client.run(fv) == 1
    assert "'nope'" in capsys.readouterr().err
    fv = _command_flags([f"--data_dir={records}"])
    assert client.run(fv) == 1
    assert "nothing to do" in capsys.readouterr().err
    with pytest.raises(errors.ConfigError, match="encoding"):
        client.request_inputs(client.read_video(str(records)), 1, "png")


def test_summary_line(served, requests, reference):
    got = served["results"]["grpc_jpeg"]
    printed = json.loads(client.summarize(requests["video"],
                                          requests["jpeg"], got))
    n = int(reference["lengths"][0])
    assert printed["video_id"] == reference["video_ids"][0]
    assert printed["action"] in ("pour", "spin_slide")
    assert (printed["frames"], printed["embedding_size"]) == (n, D)
    assert abs(printed["norm_min"] - 1) < 1e-4
    assert abs(printed["norm_max"] - 1) < 1e-4
    emb = got["embeddings"][0].astype(np.float64)
    adjacent = np.mean(np.sum(emb[1:] * emb[:-1], axis=1))
    assert abs(printed["adjacent_cosine"] - adjacent) < 1e-4
    for key in ("same_phase_cosine", "other_phase_cosine"):
        assert -1.0 <= printed[key] <= 1.0


# --- factory and settings ---------------------------------------------------
def test_factory_builds_the_module_from_the_task(run):
    module = serving.build_export_module(run["task"], run["model"])
    assert isinstance(module, serving.CARLExportModule)
    assert (module.image_size, module.frames_per_chunk) == (IMAGE_SIZE,
                                                            CHUNK)
    assert module.embedding_size == D
    assert module.class_names is None
    assert module.batching_parameters() == {
        "max_batch_size": 4, "pad_variable_length_inputs": True}


def test_bad_settings_raise_config_errors(run):
    model, task = run["model"], run["task"]
    config = task.views_config()
    with pytest.raises(errors.ConfigError, match="FrameSequenceConfig"):
        serving.CARLExportModule(model, {"image_size": IMAGE_SIZE}, CHUNK)
    with pytest.raises(errors.ConfigError, match="frames_per_chunk"):
        serving.CARLExportModule(model, config, 0)
    with pytest.raises(errors.ConfigError, match="serves a CARL model"):
        serving.CARLExportModule(model.trunk_model, config, CHUNK)
    with pytest.raises(errors.ConfigError, match=r"takes \(32, 32\) frames"):
        serving.CARLExportModule(model, task.views_config(
            image_size=(48, 48)), CHUNK)
