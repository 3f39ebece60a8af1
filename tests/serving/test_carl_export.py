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
  larger than T, and on both signatures each input with a wrong rank or
  dtype and an empty batch (`serving_helpers.bad_input_calls`).

Its embeddings must equal the task's own evaluation
(`CARLTask.embed_videos` on the pipeline's frames, with the checkpoint's
weights) within 1e-5, with zeros after each video's length; the JPEG
signature must equal the uint8 one (the same pixels: the JPEG bytes are
decoded as the pipeline decodes them). `saved_model_cli show --all` runs
beside it. The warm-up records, `models.config` and
`batching_parameters.txt` are checked in the export folder.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from export import carl_request as client
from export import serving_request
from experiments.configs import carl_synthetic as recipe
from tests.serving import serving_helpers as helpers
from tfaction import errors
from tfaction import serving
from tfaction.data import schemas
from tfaction.data import tfrecord_io
from tfaction.data.formats import tcc
from tfaction.data.synthetic import tcc as synthetic_tcc
from tfaction.serving import carl as serving_lib

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


def _perturb(model):
    """Noise on the weights (a fifth of each weight's spread) and random
    batch-norm statistics."""
    helpers.perturb_weights(model.weights, seed=7, spread=0.2, floor=0.01)


@pytest.fixture(scope="module")
def run(records, tmp_path_factory):
    """A run directory with a checkpoint; the export command started on it
    (`serving_helpers.run_and_export`)."""
    with helpers.run_and_export(tmp_path_factory.mktemp("carl_run"),
                                _config(records), MODEL_NAME,
                                _perturb) as run_:
        yield run_


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
        for encoding in serving_request.ENCODINGS})


@pytest.fixture(scope="module")
def served(run, reference, requests, tmp_path_factory):
    """Waits for the export; serves everything in a TF-only process."""
    path = helpers.exported_version(run["process"], run["logs"])
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
    for signature, frames in (("serving_default", reference["uint8"]),
                              ("serve_jpeg", reference["jpegs"])):
        calls.update(helpers.bad_input_calls(
            signature, {"frames": frames, "lengths": lengths},
            over_length={"frames": frames,
                         "lengths": lengths + frames.shape[1]}))
    # The gRPC requests' inputs are served (the REST bodies' inputs are
    # checked equal to them, in `test_rest_and_grpc_requests_carry_...`).
    return helpers.serve_with_requests(path, calls, root, client, requests, {
        "uint8": {"frames": "uint8", "lengths": "int32"},
        "jpeg": {"frames": "string", "lengths": "int32"}})


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
    helpers.assert_export_layout(export_dir, served["path"], MODEL_NAME)
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
    others = {"inputs['lengths']": ("DT_INT32", "(-1)"),
              "outputs['embeddings']": ("DT_FLOAT", f"(-1, -1, {D})")}
    helpers.assert_cli_lists(served["saved_model_cli"],
                             helpers.frames_signatures(others))


def test_bad_requests_are_explained(served):
    errors_ = served["errors"]
    assert {k for k in errors_ if not k.startswith(
        helpers.BAD_INPUT_PREFIX)} == {"bad_jpeg", "empty_uint8",
                                       "long_length"}
    error = errors_["bad_jpeg"]
    assert "not a JPEG" in error and "request row 1" in error, error
    assert "[3]" in error, error  # the frame index
    assert "height and width >= 1" in errors_["empty_uint8"]
    assert "lengths must not exceed T" in errors_["long_length"]


def test_bad_inputs_are_refused_naming_the_input(served):
    # Wrong rank / dtype of each input, an empty batch, lengths over T; on
    # both signatures.
    assert helpers.assert_bad_inputs_refused(
        served, over_length_message="lengths must not exceed T") == 12


def test_warmup_requests_cover_both_signatures(served):
    logs = helpers.warmup_requests(served["path"])
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
    for encoding in serving_request.ENCODINGS:
        assert requests[encoding]["lengths"].tolist() == [n]
        assert requests[encoding]["lengths"].dtype == np.int32
    assert client.signature_name(requests["uint8"]) == "serving_default"
    assert client.signature_name(requests["jpeg"]) == (
        serving_lib.JPEG_SIGNATURE)
    assert serving_request.UINT8_SIGNATURE == serving.SERVING_DEFAULT
    # --stride: every s-th stored frame, as views.eval_stride.
    strided = client.request_inputs(requests["video"], 3, "uint8")
    np.testing.assert_array_equal(strided["frames"],
                                  requests["uint8"]["frames"][:, ::3])
    assert strided["lengths"].tolist() == [len(range(0, n, 3))]


@pytest.mark.parametrize("encoding", serving_request.ENCODINGS)
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


def test_command_writes_rest_body_and_grpc_request(records, requests,
                                                   tmp_path, capsys):
    video_id = requests["video"]["video_id"]
    for encoding in serving_request.ENCODINGS:
        body, pb = tmp_path / f"{encoding}.json", tmp_path / f"{encoding}.pb"
        fv = helpers.command_flags(client, [
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
    helpers.assert_command_fails(client, capsys, [
        f"--data_dir={records}", "--video_id=nope",
        f"--rest_body={tmp_path / 'r.json'}"], "'nope'")
    helpers.assert_command_fails(client, capsys, [f"--data_dir={records}"],
                                 "nothing to do")
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
