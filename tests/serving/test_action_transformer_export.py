"""Action Transformer SavedModel: the served graph equals the evaluation.

A tiny AVA-layout dataset is generated (`tfaction.data.synthetic.ava`,
3 videos of 96x80 frames) and converted (`--format=ava`, 12 stored frames
per keyframe). The synthetic recipe (I3D head) with 8-frame 64x64 clips
gets a run directory: its resolved `config.json` and a checkpoint of the
trainer's model with perturbed weights (so that a model that was not
restored cannot pass). `python -m export.export_saved_model --workdir=...`
(a subprocess, as a user runs it, reading the run's own `config.json`)
exports it.

A fresh Python process that imports only TensorFlow (started outside the
repository, with keras and tfaction blocked) loads the export and runs

* `serving_default` on the decoded frames the REAL evaluation pipeline
  (`keyframe_boxes_pipeline`, `training=False`) chose for the 2 validation
  keyframes (uint8, batch of 2, resized in the graph);
* `serve_jpeg` on the same frames' stored JPEG bytes;
* both signatures on the requests `export.action_transformer_request`
  builds, as the gRPC `PredictRequest` carries them (the REST body's
  inputs are checked equal to them);
* `serve_jpeg` with a frame that is not a JPEG, `serving_default` with
  empty frames, and on both signatures a wrong rank or dtype, an empty
  batch and T + 1 frames (`serving_helpers.bad_input_calls`).

Its outputs must equal the Keras model with the checkpoint's weights on the
pipeline's clips followed by `decoding.decode_detections` (the task's
evaluation settings), within 1e-4; the JPEG signature must equal the uint8
one (the pixels are the same: the JPEG bytes are decoded as the pipeline
decodes them). `saved_model_cli show --all` runs beside it. The class list
(`assets/classes.txt`), the warm-up records, `models.config` and
`batching_parameters.txt` are checked in the export folder.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from export import action_transformer_request as client
from export import serving_request
from experiments.configs import action_transformer_synthetic as recipe
from tests.serving import serving_helpers as helpers
from tfaction import errors
from tfaction import serving
from tfaction import tasks
from tfaction import training
from tfaction.data import keyframe_boxes_pipeline as pipeline_lib
from tfaction.data import schemas
from tfaction.data import tfrecord_io
from tfaction.data.formats import ava
from tfaction.data.synthetic import ava as synthetic_ava
from tfaction.models.action_transformer import decoding
from tfaction.serving import action_transformer as serving_lib

T = 8                # frames per clip
IMAGE_SIZE = (64, 64)  # the model's input size
VIDEO_SIZE = (96, 80)  # stored frames (resized in the graph)
N = 8                # the synthetic recipe's evaluation.max_detections
TOL = 1e-4
DCT = "INTEGER_ACCURATE"
MODEL_NAME = "action_transformer"
# The exported run uses the recipe's default head; serving is
# head-agnostic (the same outputs and decoding for every head).
HEAD = "tx"


# --- run directory and export -----------------------------------------------
@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A converted tiny AVA-layout dataset (2 validation keyframes)."""
    root = tmp_path_factory.mktemp("ava_synthetic")
    raw, out = root / "raw", root / "records"
    synthetic_ava.generate_ava(str(raw), num_videos=3, height=VIDEO_SIZE[0],
                               width=VIDEO_SIZE[1], duration=3, val_every=2)
    ava.convert_ava([str(raw / "ava_train_v2.1.csv"),
                     str(raw / "ava_val_v2.1.csv")], str(raw / "videos"),
                    str(out), label_map=str(
                        raw / "ava_action_list_synthetic.pbtxt"),
                    clip_frames=T + 4)
    return out


def _config(records, head=HEAD):
    config = recipe.get_config(head)
    config.task.data_dir = str(records)
    config.task.clips.num_frames = T
    config.task.clips.image_size = IMAGE_SIZE
    # Fewer proposals than the recipe's 32 (still more than N): less work
    # for the I3D head, which runs on every proposal's tube.
    config.task.model.num_proposals = 16
    config.runtime.deterministic = False
    return config


def _perturb(model, seed):
    """Adds noise (a fifth of each weight's spread) to the trainables."""
    helpers.perturb_weights(model.trainable_variables, seed, spread=0.2,
                            floor=0.01)


@pytest.fixture(scope="module")
def run(records, tmp_path_factory):
    """A run directory with a checkpoint; the export command started on it
    (`serving_helpers.run_and_export`)."""
    with helpers.run_and_export(
            tmp_path_factory.mktemp("action_transformer_run"),
            _config(records), MODEL_NAME,
            lambda model: _perturb(model, seed=7)) as run_:
        yield run_


# --- reference: evaluation pipeline + Keras model + decoding ----------------
def _stored_frames(records):
    """(video id, timestamp text) -> the record's stored JPEG bytes."""
    out = {}
    for shard in tf.io.gfile.glob(str(records / "val-*.tfrecord")):
        for record in tfrecord_io.iterate_records(shard):
            ex = schemas.parse_keyframe_boxes(record)
            key = (ex[schemas.VIDEO_ID].numpy().decode(),
                   ex[schemas.CLIP_TIMESTAMP_TEXT].numpy().decode())
            out[key] = ex[schemas.IMAGE_ENCODED].numpy()
    return out


@pytest.fixture(scope="module")
def reference(run, records):
    """The evaluation batch, its requests and the Keras detections."""
    task, model = run["task"], run["model"]
    config = task.clips_config(batch_size=2)
    batch = next(iter(pipeline_lib.make_keyframe_boxes_dataset(
        task.data.files("val"), config, training=False)))
    stored = _stored_frames(records)
    keys = [(v.decode(), t.decode()) for v, t in zip(
        batch["video_id"].numpy(), batch["timestamp_text"].numpy())]
    indices = batch["frame_indices"].numpy()
    jpegs = np.array([[stored[key][i] for i in row]
                      for key, row in zip(keys, indices)], dtype=object)
    uint8 = np.stack([[tf.io.decode_jpeg(f, channels=3,
                                         dct_method=DCT).numpy()
                       for f in row] for row in jpegs])
    out = model(batch["frames"], training=False)
    ev = run["config"].task.evaluation
    want = decoding.decode_detections(
        out["proposals"], out["proposal_mask"], out["class_logits"],
        out["box_deltas"], nms_iou_threshold=ev.nms_iou_threshold,
        max_detections=int(ev.max_detections))
    return dict(keys=keys, jpegs=jpegs, uint8=uint8,
                frames=batch["frames"].numpy(),
                want={k: v.numpy() for k, v in want.items()})


@pytest.fixture(scope="module")
def requests(reference, records):
    """The request command's inputs for the first validation keyframe."""
    video_id, timestamp = reference["keys"][0]
    keyframe = client.read_keyframe(str(records), "val", video_id, timestamp)
    return dict(keyframe=keyframe, **{
        encoding: client.request_inputs(keyframe, T, 1, encoding)
        for encoding in serving_request.ENCODINGS})


@pytest.fixture(scope="module")
def served(run, reference, requests, tmp_path_factory):
    """Waits for the export; serves everything in a TF-only process."""
    path = helpers.exported_version(run["process"], run["logs"])
    root = tmp_path_factory.mktemp("action_transformer_serve")
    bad = reference["jpegs"].copy()
    bad[1, 3] = b"not a jpeg"
    calls = {"uint8": ("serving_default", {"frames": reference["uint8"]}),
             "jpeg": ("serve_jpeg", {"frames": reference["jpegs"]}),
             "bad_jpeg": ("serve_jpeg", {"frames": bad}),
             "empty_uint8": ("serving_default", {
                 "frames": np.zeros([1, T, 0, 5, 3], np.uint8)})}
    for signature, frames in (("serving_default", reference["uint8"]),
                              ("serve_jpeg", reference["jpegs"])):
        # Over the clip length: the last frame once more.
        longer = np.concatenate([frames, frames[:, -1:]], axis=1)
        calls.update(helpers.bad_input_calls(
            signature, {"frames": frames}, over_length={"frames": longer}))
    # The gRPC requests' inputs are served (the REST bodies' inputs are
    # checked equal to them, in `test_rest_and_grpc_requests_carry_...`).
    return helpers.serve_with_requests(path, calls, root, client, requests, {
        "uint8": {"frames": "uint8"}, "jpeg": {"frames": "string"}})


# --- comparisons ------------------------------------------------------------
def _assert_same_detections(got, want, atol=TOL):
    """Same people per clip (rows may swap only between tied scores)."""
    np.testing.assert_array_equal(got["num_detections"],
                                  want["num_detections"])
    for b, count in enumerate(want["num_detections"]):
        np.testing.assert_allclose(got["person_scores"][b],
                                   want["person_scores"][b], atol=atol,
                                   rtol=0)
        unused = list(range(count))
        for i in range(count):
            match = [j for j in unused if
                     abs(got["person_scores"][b, i]
                         - want["person_scores"][b, j]) <= atol and
                     np.allclose(got["boxes"][b, i], want["boxes"][b, j],
                                 atol=atol, rtol=0) and
                     np.allclose(got["scores"][b, i], want["scores"][b, j],
                                 atol=atol, rtol=0)]
            assert match, (b, i, got["boxes"][b, i], got["scores"][b, i])
            unused.remove(match[0])
        # Rows past the detections are zeros.
        for key in ("boxes", "scores", "person_scores"):
            assert not np.any(got[key][b, count:]), key


def test_export_command_wrote_a_version(served, run):
    export_dir = run["export_dir"]
    helpers.assert_export_layout(export_dir, served["path"], MODEL_NAME)
    batching = (export_dir / "batching_parameters.txt").read_text()
    assert "max_batch_size { value: 4 }" in batching
    assert "pad_variable_length_inputs: false" in batching
    # The workdir is only read.
    assert sorted(p.name for p in run["workdir"].iterdir()) == [
        "checkpoints", "config.json"]


def test_fresh_process_needed_only_tensorflow(served):
    assert served["imported"] == []


def test_served_detections_match_keras_model_and_decoding(served,
                                                          reference):
    got, want = served["results"]["uint8"], reference["want"]
    assert got["boxes"].shape == (2, N, 4)
    assert got["num_detections"].dtype == np.int32
    assert int(want["num_detections"].min()) > 0
    _assert_same_detections(got, want)
    # Person scores sorted, boxes inside the image, probabilities.
    assert np.all(np.diff(got["person_scores"], axis=1) <= 1e-7)
    assert got["boxes"].min() >= 0.0 and got["boxes"].max() <= 1.0
    assert got["scores"].min() >= 0.0 and got["scores"].max() <= 1.0


def test_jpeg_signature_matches_uint8_signature(served):
    results = served["results"]
    _assert_same_detections(results["jpeg"], results["uint8"], atol=1e-5)


def test_class_names_output_and_asset(served, run):
    names = list(run["task"].class_names)
    assert names == ["stand", "walk", "jump", "talk to", "watch (the lamp)"]
    for key in ("uint8", "jpeg"):
        assert served["results"][key]["class_names"].tolist() == [
            [n.encode() for n in names]] * 2
    assert (served["path"] / "assets" / "classes.txt").read_text() == (
        "".join(f"{n}\n" for n in names))


def test_signatures_names_dtypes_shapes(served):
    c = 5
    outputs = {"boxes": ["float32", [None, N, 4]],
               "scores": ["float32", [None, N, c]],
               "person_scores": ["float32", [None, N]],
               "num_detections": ["int32", [None]],
               "class_names": ["string", [None, c]]}
    assert served["listing"] == {
        "serving_default": {"inputs": {"frames": [
            "uint8", [None, T, None, None, 3]]}, "outputs": outputs},
        "serve_jpeg": {"inputs": {"frames": ["string", [None, T]]},
                       "outputs": outputs}}


def test_saved_model_cli_lists_signatures(served):
    outputs = {"outputs['boxes']": ("DT_FLOAT", f"(-1, {N}, 4)"),
               "outputs['scores']": ("DT_FLOAT", f"(-1, {N}, 5)"),
               "outputs['person_scores']": ("DT_FLOAT", f"(-1, {N})"),
               "outputs['num_detections']": ("DT_INT32", "(-1)"),
               "outputs['class_names']": ("DT_STRING", "(-1, 5)")}
    helpers.assert_cli_lists(served["saved_model_cli"],
                             helpers.frames_signatures(outputs, steps=T))


def test_bad_requests_are_explained(served):
    error = served["errors"]["bad_jpeg"]
    assert "not a JPEG" in error and "request row 1" in error, error
    assert "[3]" in error, error  # the frame index
    error = served["errors"]["empty_uint8"]
    assert "height and width >= 1" in error, error
    assert not {"bad_jpeg", "empty_uint8"} & set(served["results"])


def test_bad_inputs_are_refused_naming_the_input(served):
    # Wrong rank / dtype, an empty batch, T + 1 frames; on both signatures.
    assert helpers.assert_bad_inputs_refused(
        served, over_length_message=f"expected shape [?,{T}") == 8


def test_warmup_requests_cover_both_signatures(served):
    logs = helpers.warmup_requests(served["path"])
    assert [r.model_spec.signature_name for r in logs] == [
        "serving_default", "serve_jpeg"]
    assert {r.model_spec.name for r in logs} == {MODEL_NAME}
    frames = [tf.make_ndarray(r.inputs["frames"]) for r in logs]
    assert frames[0].dtype == np.uint8
    assert frames[0].shape == (1, T, *IMAGE_SIZE, 3)
    assert frames[1].shape == (1, T)
    assert frames[1][0, 0][:3] == b"\xff\xd8\xff"


# --- request command --------------------------------------------------------
def test_request_inputs_are_the_pipeline_frames(requests, reference):
    np.testing.assert_array_equal(requests["uint8"]["frames"],
                                  reference["uint8"][:1])
    assert requests["jpeg"]["frames"].tolist() == (
        reference["jpegs"][:1].tolist())
    assert client.signature_name(requests["uint8"]) == "serving_default"
    assert client.signature_name(requests["jpeg"]) == (
        serving_lib.JPEG_SIGNATURE)
    assert serving_request.UINT8_SIGNATURE == serving.SERVING_DEFAULT


@pytest.mark.parametrize("encoding", serving_request.ENCODINGS)
def test_rest_and_grpc_requests_carry_the_same_inputs(served, requests,
                                                      encoding):
    inputs = requests[encoding]
    name = {"uint8": "serving_default", "jpeg": "serve_jpeg"}[encoding]
    request = client.grpc_request(inputs, model_name="at")
    assert (request.model_spec.name, request.model_spec.signature_name) == (
        "at", name)
    expected_dtype = {"uint8": tf.uint8, "jpeg": tf.string}[encoding]
    assert request.inputs["frames"].dtype == (
        expected_dtype.as_datatype_enum)
    grpc_name, grpc_arrays = served["calls"][f"grpc_{encoding}"]
    rest_name, rest_arrays = served["rest"][encoding]
    assert grpc_name == rest_name == name
    assert grpc_arrays["frames"].shape == rest_arrays["frames"].shape == (
        inputs["frames"].shape)
    assert grpc_arrays["frames"].dtype == rest_arrays["frames"].dtype
    np.testing.assert_array_equal(grpc_arrays["frames"],
                                  rest_arrays["frames"])
    np.testing.assert_array_equal(grpc_arrays["frames"], inputs["frames"])
    # Served (batch of one), the request gives the batch's first clip.
    got = served["results"][f"grpc_{encoding}"]
    first = {k: v[:1] for k, v in served["results"]["uint8"].items()}
    _assert_same_detections(got, first, atol=1e-5)
    assert got["class_names"].tolist() == first["class_names"].tolist()


def test_command_writes_rest_body_and_grpc_request(records, requests,
                                                   reference, tmp_path,
                                                   capsys):
    video_id, timestamp = reference["keys"][0]
    for encoding in serving_request.ENCODINGS:
        body, pb = tmp_path / f"{encoding}.json", tmp_path / f"{encoding}.pb"
        fv = helpers.command_flags(client, [
            f"--data_dir={records}", f"--video_id={video_id}",
            f"--timestamp={timestamp}", f"--num_frames={T}",
            f"--encoding={encoding}", f"--rest_body={body}",
            f"--grpc_request={pb}"])
        assert client.run(fv) == 0
        assert capsys.readouterr().out == ""  # written, not sent
        inputs = requests[encoding]
        assert serving_request.read_request(pb) == client.grpc_request(
            inputs)
        assert json.loads(body.read_text()) == json.loads(json.dumps(
            client.rest_body(inputs)))


def test_command_without_clip_length_is_explained(records, tmp_path,
                                                  capsys):
    helpers.assert_command_fails(client, capsys, [
        f"--data_dir={records}", f"--rest_body={tmp_path / 'r.json'}"],
        "--num_frames")
    helpers.assert_command_fails(client, capsys, [
        f"--data_dir={records}", "--video_id=nope", f"--num_frames={T}",
        f"--rest_body={tmp_path / 'r.json'}"], "'nope'")


def test_format_detections_names_the_actions(served, requests):
    got = served["results"]["grpc_jpeg"]
    text = client.format_detections(requests["keyframe"], got,
                                    top_actions=2)
    printed = json.loads(text)
    video_id, timestamp = requests["keyframe"]["video_id"], requests[
        "keyframe"]["timestamp"]
    assert (printed["video_id"], printed["timestamp"]) == (video_id,
                                                           timestamp)
    assert len(printed["detections"]) == int(got["num_detections"][0])
    assert printed["ground_truth"] and all(
        truth["actions"] for truth in printed["ground_truth"])
    first = printed["detections"][0]
    assert len(first["actions"]) == 2
    best = int(np.argmax(got["scores"][0, 0]))
    assert first["actions"][0]["class"] == best
    assert first["actions"][0]["name"] == (
        got["class_names"][0, best].decode())


# --- checkpoints ------------------------------------------------------------
def _unrestored(config, checkpoint, model, workdir):
    """Paths of `model`'s weights that a new trainer restoring
    `checkpoint` (as the export command does) does not get back."""
    task = tasks.build_task(config)
    trainer = training.Trainer(task, config, str(workdir),
                               evaluation_only=True)
    try:
        trainer.checkpointer.restore(str(checkpoint))
        return [a.path for a, b in zip(model.weights, trainer.model.weights)
                if not np.array_equal(a.numpy(), b.numpy())]
    finally:
        trainer.close()


def test_run_checkpoint_restores_every_weight(run, tmp_path):
    """The exported run (Tx head: its units are kept in a list, which
    `TracksListItems` puts into checkpoints) restores completely, so the
    export comparisons above test the trained weights."""
    assert _unrestored(run["config"], run["checkpoint"], run["model"],
                       tmp_path) == []


def test_i3d_head_checkpoint_restores_every_weight(records, tmp_path):
    """The same for the `i3d` head."""
    config = _config(records, head="i3d")
    task = tasks.build_task(config)
    trainer = training.Trainer(task, config, str(tmp_path / "a"),
                               evaluation_only=True)
    try:
        _perturb(trainer.model, seed=11)
        checkpoint = trainer.checkpointer.save(1)
        model = trainer.model
    finally:
        trainer.close()
    missing = _unrestored(config, checkpoint, model, tmp_path / "b")
    assert missing == [], f"{len(missing)} weights not restored: {missing}"


# --- factory and settings ---------------------------------------------------
def test_factory_builds_the_module_from_the_task(run):
    module = serving.build_export_module(run["task"], run["model"])
    assert isinstance(module, serving.ActionTransformerExportModule)
    assert (module.num_frames, module.image_size) == (T, IMAGE_SIZE)
    assert (module.max_detections, module.nms_iou_threshold) == (N, 0.6)
    assert module.class_names == list(run["task"].class_names)
    assert module.batching_parameters()["max_batch_size"] == 4


def test_bad_settings_raise_config_errors(run):
    model, task = run["model"], run["task"]
    config, names = task.clips_config(), list(task.class_names)
    with pytest.raises(errors.ConfigError, match="KeyframeBoxesConfig"):
        serving.ActionTransformerExportModule(model, {"num_frames": T},
                                              names)
    with pytest.raises(errors.ConfigError, match="max_detections"):
        serving.ActionTransformerExportModule(model, config, names,
                                              max_detections=0)
    with pytest.raises(errors.ConfigError, match="nms_iou_threshold"):
        serving.ActionTransformerExportModule(model, config, names,
                                              nms_iou_threshold=1.5)
    with pytest.raises(errors.ConfigError, match="4 class_names for a "
                       "model with 5"):
        serving.ActionTransformerExportModule(model, config, names[:4])
    with pytest.raises(errors.ConfigError, match="appears twice"):
        serving.ActionTransformerExportModule(model, config,
                                              names[:1] * len(names))
