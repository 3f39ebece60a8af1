"""AdaFocus V2 SavedModel: the served graph equals the task's evaluation.

A tiny synthetic AdaFocus dataset (`tfaction.data.synthetic.adafocus`, 12
videos of 4-6 frames of 37 x 45, 9 train / 3 val) is converted
(`--format=actnet_frames`). The synthetic recipe, shrunk (T = 4 frames,
the shorter side resized to 34 and the centre 33 x 33 cropped, so that the
patch centres go back through a crop and a resize; 13 x 13 patches), gets
a run directory: a checkpoint of the trainer's model with perturbed
weights and batch-norm statistics (a model that was not restored cannot
pass), its `config.json`, and the early-exit calibration of ITS OWN
evaluation (`trainer.evaluate()` with `early_exit_budgets`, which writes
`early_exit.json`). `python -m export.export_saved_model --workdir=...
--config.task.export_early_exit_file=... --config.task.
export_early_exit_budget=1.0` (a subprocess, as a user runs it) exports it
with that budget's thresholds.

A fresh Python process that imports only TensorFlow (keras and tfaction
blocked) loads the export and runs

* `serving_default` on the uint8 frames of all 12 videos (the T frames of
  TSN's evaluation sampling, decoded from the stored JPEGs, in time
  order);
* `serve_jpeg` on the same frames' JPEG bytes;
* both signatures on the requests `export.adafocus_request` builds (the
  REST body's inputs checked equal to the gRPC request's);
* bad requests: a frame that is not a JPEG, another number of frames than
  T, frames too small for the crop, and on both signatures a wrong rank or
  dtype and an empty batch (`serving_helpers.bad_input_calls`).

Its outputs must equal the task's evaluation of the same videos (the
REAL evaluation pipeline's frames, in the model's coarse-to-fine order,
through the model with the checkpoint's weights): the probabilities of
the exit step that `early_exit.apply_thresholds` picks with the file's
thresholds, that step, its GFLOPs (`flops.adafocus_v2_gflops`), and the
policy's patch centres, taken back to the input frames by an independent
map (a coordinate ramp sent through the pipeline's own resize and crop).
`saved_model_cli show --all` runs beside it; the warm-up records,
`models.config` and `batching_parameters.txt` are checked.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from export import adafocus_request as client
from export import serving_request
from experiments.configs import adafocus_v2_synthetic as recipe
from tests.serving import serving_helpers as helpers
from tfaction import errors
from tfaction import serving
from tfaction.data import frames_pipeline
from tfaction.data import schemas
from tfaction.data import tfrecord_io
from tfaction.data.formats.adafocus_lists import convert_adafocus_lists
from tfaction.data.synthetic.adafocus import generate_adafocus
from tfaction.models.adafocus import early_exit
from tfaction.models.adafocus import flops
from tfaction.serving import adafocus as serving_lib

HEIGHT, WIDTH = 37, 45  # stored frames
RESIZE, CROP, PATCH = 34, 33, 13
T = 4
BUDGET = 1.0
TOL = 1e-5
DCT = "INTEGER_ACCURATE"
MODEL_NAME = "adafocus"


# --- run directory and export -----------------------------------------------
@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A converted tiny synthetic AdaFocus dataset (9 train, 3 val)."""
    root = tmp_path_factory.mktemp("adafocus_synthetic")
    raw = root / "raw"
    generate_adafocus(raw, num_videos=12, seed=2, num_classes=3,
                      height=HEIGHT, width=WIDTH, num_distractors=1,
                      min_frames=4, max_frames=6)
    convert_adafocus_lists(
        [raw / "actnet_train_split.txt", raw / "actnet_val_split.txt"],
        raw / "frames", root / "records", dataset="actnet",
        class_list=raw / "classInd.txt")
    return root / "records"


def _config(records):
    config = recipe.get_config()
    task = config.task
    task.data_dir = str(records)
    frames = task.frames
    frames.num_steps = T
    frames.resize = RESIZE
    frames.crop_size = (CROP, CROP)
    frames.test_crop = "center"
    frames.train_crop = "random"
    m = task.model
    m.patch_size = PATCH
    m.glance_size = (10, 10)
    m.small_filters = (4, 8)
    m.policy_hidden_units = 8
    m.policy_conv_filters = 4
    m.classifier_hidden_units = 8
    task.early_exit_budgets = (0.5, BUDGET)
    config.trainer.eval_batch_size = 4
    config.runtime.strategy = "one_device"
    config.runtime.logical_cpus = 0
    return config


def _perturb(model):
    """Noise on every weight (half of its spread) and random batch-norm
    variances, so that the policy's patches move between videos."""
    helpers.perturb_weights(model.weights, seed=7, spread=0.5, floor=0.05)


@pytest.fixture(scope="module")
def run(records, tmp_path_factory):
    """A run directory with a checkpoint and its early-exit calibration
    (its own evaluation's); the export command started on it with that
    calibration (`serving_helpers.run_and_export`)."""
    root = tmp_path_factory.mktemp("adafocus_run")
    calibration = root / "run" / "early_exit.json"
    with helpers.run_and_export(
            root, _config(records), MODEL_NAME, _perturb,
            export_flags=(
                f"--config.task.export_early_exit_file={calibration}",
                f"--config.task.export_early_exit_budget={BUDGET}"),
            evaluate=True) as run_:
        yield dict(run_, calibration=calibration)


# --- reference: evaluation pipeline + model + early exit ---------------------
def _stored(records):
    """video id -> (stored JPEG bytes, labels), over both subsets."""
    out = {}
    for shard in sorted(tf.io.gfile.glob(str(records / "*.tfrecord"))):
        for record in tfrecord_io.iterate_records(shard):
            ex = schemas.parse_frames(record, modalities=("rgb",))
            out[ex[schemas.VIDEO_ID].numpy().decode()] = (
                ex[schemas.IMAGE_ENCODED].numpy())
    return out


def _input_pixel_map(config):
    """Model-frame (row, col) -> input-frame pixels, independently of the
    module: a coordinate ramp through the pipeline's resize and crop
    (bilinear resizing keeps a ramp linear away from the border)."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    ramp = np.stack([rows, cols, rows], -1)[None, None]
    ex = frames_pipeline.augment_stage(
        {"frames": tf.constant(ramp), "indices": tf.zeros([1, 1], tf.int32),
         "frame_mask": tf.ones([1, 1], tf.bool)},
        config=config, training=False)
    mapped = ex["frames"].numpy()[0, 0]  # [CROP, CROP, 3]
    grid = np.arange(CROP, dtype=np.float64)

    def to_input(points):
        return np.stack([np.interp(points[..., 0], grid, mapped[:, 0, 0]),
                         np.interp(points[..., 1], grid, mapped[0, :, 1])],
                        -1)

    return to_input


@pytest.fixture(scope="module")
def reference(run, records):
    """Every video's request frames and the task's evaluation of them."""
    task, model = run["task"], run["model"]
    frames_config = task.frames_config()
    stored = _stored(records)
    features, ids = [], []
    for subset in ("train", "val"):
        for ex in task._tagged_examples(subset, 0, training_views=False,
                                        seed=0):
            ids.append(ex["video_id"].numpy().decode())
            features.append(ex["frames"].numpy())
    model_frames = np.stack(features)  # coarse-to-fine order
    out = model({"frames": model_frames}, training=False)
    logits = out["logits"].numpy()
    thresholds, _ = serving_lib.read_early_exit_thresholds(
        run["calibration"], BUDGET)
    steps, chosen = early_exit.apply_thresholds(logits, thresholds)
    centres = out["locations"].numpy() * (CROP - PATCH) + (PATCH - 1) / 2
    inverse = np.argsort(task.frame_order)
    centres = _input_pixel_map(frames_config)(centres[:, inverse])
    seen = (np.arange(T)[None] < steps[:, None])[:, inverse]
    centres[~seen] = -1.0
    jpegs, uint8 = [], []
    for vid in ids:
        encoded = stored[vid]
        n = len(encoded)
        tick = n / T
        chosen_frames = [encoded[int(tick / 2 + tick * i)] for i in range(T)]
        jpegs.append(chosen_frames)
        uint8.append([tf.io.decode_jpeg(f, channels=3, dct_method=DCT)
                      .numpy() for f in chosen_frames])
    gflops = flops.adafocus_v2_gflops(model)["per_frame"]
    return dict(ids=ids, jpegs=np.array(jpegs, dtype=object),
                uint8=np.array(uint8, np.uint8), logits=logits,
                probabilities=tf.nn.softmax(chosen).numpy(), steps=steps,
                centres=centres, gflops=steps * gflops, last=logits[:, -1],
                model_frames=model_frames)


@pytest.fixture(scope="module")
def requests(reference, records):
    """The request command's inputs for the first val video."""
    video = client.read_video(str(records), "val")
    return dict(video=video, **{
        encoding: client.request_inputs(video, T, encoding)
        for encoding in serving_request.ENCODINGS})


@pytest.fixture(scope="module")
def served(run, reference, requests, tmp_path_factory):
    """Waits for the export; serves everything in a TF-only process."""
    path = helpers.exported_version(run["process"], run["logs"])
    root = tmp_path_factory.mktemp("adafocus_serve")
    bad = reference["jpegs"][:2].copy()
    bad[1, 2] = b"not a jpeg"
    calls = {
        "uint8": ("serving_default", {"frames": reference["uint8"]}),
        "jpeg": ("serve_jpeg", {"frames": reference["jpegs"]}),
        "bad_jpeg": ("serve_jpeg", {"frames": bad}),
        "short": ("serving_default", {"frames": reference["uint8"][:, :3]}),
        "empty": ("serving_default", {
            "frames": np.zeros([1, T, 0, 5, 3], np.uint8)}),
    }
    for signature, frames in (("serving_default", reference["uint8"][:2]),
                              ("serve_jpeg", reference["jpegs"][:2])):
        # Over the model's T: the last frame once more.
        longer = np.concatenate([frames, frames[:, -1:]], axis=1)
        calls.update(helpers.bad_input_calls(
            signature, {"frames": frames}, over_length={"frames": longer}))
    return helpers.serve_with_requests(path, calls, root, client, requests, {
        "uint8": {"frames": "uint8"}, "jpeg": {"frames": "string"}})


# --- comparisons ------------------------------------------------------------
def test_export_command_wrote_a_version(served, run):
    export_dir = run["export_dir"]
    helpers.assert_export_layout(export_dir, served["path"], MODEL_NAME)
    assert "max_batch_size { value: 8 }" in (
        export_dir / "batching_parameters.txt").read_text()
    classes = (served["path"] / "assets" / "classes.txt").read_text()
    assert classes.splitlines() == run["task"].class_names


def test_fresh_process_needed_only_tensorflow(served):
    assert served["imported"] == []


def test_served_outputs_match_the_task_evaluation(served, reference):
    got = served["results"]["uint8"]
    steps = reference["steps"]
    # The calibrated budget makes some videos leave early, others not.
    assert steps.min() < T and len(set(steps.tolist())) > 1, steps
    np.testing.assert_array_equal(got["exit_step"], steps)
    assert got["exit_step"].dtype == np.int32
    np.testing.assert_allclose(got["gflops"], reference["gflops"],
                               rtol=1e-6)
    np.testing.assert_allclose(got["probabilities"],
                               reference["probabilities"], atol=TOL)
    np.testing.assert_allclose(got["patch_centres"], reference["centres"],
                               atol=1e-3)
    assert (got["patch_centres"] == -1).any()  # unreached frames
    seen = got["patch_centres"][..., 0] >= 0
    assert (got["patch_centres"][seen] <= [HEIGHT - 1, WIDTH - 1]).all()
    top = got["top_k_classes"][:, 0]
    np.testing.assert_array_equal(top, reference["probabilities"].argmax(-1))
    assert got["top_k_scores"].shape == got["class_names"].shape == (12, 3)


def test_jpeg_signature_matches_uint8_signature(served):
    results = served["results"]
    for key in ("probabilities", "patch_centres", "gflops"):
        np.testing.assert_allclose(results["jpeg"][key],
                                   results["uint8"][key], atol=1e-6)
    np.testing.assert_array_equal(results["jpeg"]["exit_step"],
                                  results["uint8"]["exit_step"])


def test_signatures_names_dtypes_shapes(served):
    outputs = {"logits": ["float32", [None, 3]],
               "probabilities": ["float32", [None, 3]],
               "top_k_classes": ["int32", [None, 3]],
               "top_k_scores": ["float32", [None, 3]],
               "class_names": ["string", [None, 3]],
               "patch_centres": ["float32", [None, T, 2]],
               "exit_step": ["int32", [None]],
               "gflops": ["float32", [None]]}
    assert served["listing"] == {
        "serving_default": {"inputs": {
            "frames": ["uint8", [None, None, None, None, 3]]},
            "outputs": outputs},
        "serve_jpeg": {"inputs": {"frames": ["string", [None, None]]},
                       "outputs": outputs}}


def test_saved_model_cli_lists_signatures(served):
    centres = {"outputs['patch_centres']": (None, f"(-1, {T}, 2)")}
    helpers.assert_cli_lists(served["saved_model_cli"],
                             helpers.frames_signatures(centres))


def test_bad_requests_are_explained(served):
    errors_ = served["errors"]
    assert {k for k in errors_ if not k.startswith(
        helpers.BAD_INPUT_PREFIX)} == {"bad_jpeg", "short", "empty"}
    error = errors_["bad_jpeg"]
    assert "not a JPEG" in error and "request row 1" in error, error
    assert f"must hold T = {T} frames per video" in errors_["short"]
    assert "height and width >= 1" in errors_["empty"], errors_["empty"]


def test_bad_inputs_are_refused_naming_the_input(served):
    # Wrong rank / dtype, an empty batch, T + 1 frames; on both signatures.
    assert helpers.assert_bad_inputs_refused(
        served, over_length_message=f"must hold T = {T} frames") == 8


def test_warmup_requests_cover_both_signatures(served):
    logs = helpers.warmup_requests(served["path"])
    assert [r.model_spec.signature_name for r in logs] == [
        "serving_default", "serve_jpeg"]
    frames = [tf.make_ndarray(r.inputs["frames"]) for r in logs]
    assert frames[0].dtype == np.uint8 and frames[0].shape[:2] == (1, T)
    assert frames[1].shape == (1, T)
    assert frames[1][0, 0][:3] == b"\xff\xd8\xff"


# --- without early exit -----------------------------------------------------
def test_without_thresholds_the_last_step_decides(run, reference):
    module = serving.build_export_module(run["task"], run["model"])
    assert module.early_exit_thresholds is None  # config.json: no file
    out = module.signatures()["serving_default"](
        frames=tf.constant(reference["uint8"][:4]))
    assert "exit_step" not in out and "gflops" not in out
    np.testing.assert_allclose(
        out["probabilities"].numpy(),
        tf.nn.softmax(reference["last"][:4]).numpy(), atol=TOL)
    model = run["model"]
    locations = model({"frames": reference["model_frames"][:4]},
                      training=False)["locations"].numpy()
    centres = locations * (CROP - PATCH) + (PATCH - 1) / 2
    centres = centres[:, np.argsort(run["task"].frame_order)]
    want = _input_pixel_map(run["task"].frames_config())(centres)
    np.testing.assert_allclose(out["patch_centres"].numpy(), want,
                               atol=1e-3)


# --- request command --------------------------------------------------------
def test_request_inputs_are_the_pipeline_frames(requests, reference):
    index = reference["ids"].index(requests["video"]["video_id"])
    np.testing.assert_array_equal(requests["uint8"]["frames"],
                                  reference["uint8"][index:index + 1])
    assert requests["jpeg"]["frames"].tolist() == (
        reference["jpegs"][index:index + 1].tolist())
    assert client.signature_name(requests["uint8"]) == "serving_default"
    assert client.signature_name(requests["jpeg"]) == (
        serving_lib.JPEG_SIGNATURE)


@pytest.mark.parametrize("encoding", serving_request.ENCODINGS)
def test_rest_and_grpc_requests_carry_the_same_inputs(served, requests,
                                                      reference, encoding):
    inputs = requests[encoding]
    grpc_name, grpc_arrays = served["calls"][f"grpc_{encoding}"]
    rest_name, rest_arrays = served["rest"][encoding]
    assert grpc_name == rest_name == client.signature_name(inputs)
    np.testing.assert_array_equal(grpc_arrays["frames"],
                                  rest_arrays["frames"])
    np.testing.assert_array_equal(grpc_arrays["frames"], inputs["frames"])
    index = reference["ids"].index(requests["video"]["video_id"])
    got = served["results"][f"grpc_{encoding}"]
    np.testing.assert_allclose(
        got["probabilities"][0],
        served["results"]["uint8"]["probabilities"][index], atol=1e-6)
    assert got["exit_step"][0] == reference["steps"][index]


def _class_names(records):
    return (records / "classes.txt").read_text().splitlines()


def test_command_prints_the_answer(records, served, requests, capsys):
    fv = helpers.command_flags(client, [
        f"--data_dir={records}", f"--num_steps={T}",
        f"--saved_model={served['path']}"])
    assert client.run(fv) == 0
    printed = json.loads(capsys.readouterr().out)
    video = requests["video"]
    assert printed["video_id"] == video["video_id"]
    assert printed["labels"] == video["labels"]
    assert len(printed["patch_centres"]) == T
    assert 1 <= printed["exit_step"] <= T
    assert printed["gflops"] > 0
    assert len(printed["top_k"]) == 3
    names = [entry["name"] for entry in printed["top_k"]]
    assert sorted(names) == sorted(_class_names(records))  # K = 3 = k


def test_command_errors_are_explained(records, tmp_path, capsys):
    helpers.assert_command_fails(client, capsys, [
        f"--data_dir={records}", "--video_id=nope",
        f"--rest_body={tmp_path / 'r.json'}"], "'nope'")
    with pytest.raises(errors.ConfigError, match="encoding"):
        client.request_inputs(client.read_video(str(records)), T, "png")


# --- factory and settings ---------------------------------------------------
def test_factory_reads_the_calibration_file(run, tmp_path):
    task, model = run["task"], run["model"]
    config = task.config
    config.export_early_exit_file = str(run["calibration"])
    config.export_early_exit_budget = 0.5
    try:
        module = serving.build_export_module(task, model)
        want, _ = serving_lib.read_early_exit_thresholds(
            run["calibration"], 0.5)
        np.testing.assert_array_equal(module.early_exit_thresholds, want)
        config.export_early_exit_budget = 2.0
        with pytest.raises(errors.ConfigError, match=r"q=2.0 is not in"):
            serving.build_export_module(task, model)
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps({"budgets": [{"budget": 2.0}]}))
        config.export_early_exit_file = str(broken)
        with pytest.raises(errors.MalformedFileError,
                           match=r"broken\.json: key 'budgets'"):
            serving.build_export_module(task, model)
        report = json.loads(run["calibration"].read_text())
        report["frame_order"] = list(range(T))
        moved = tmp_path / "order.json"
        moved.write_text(json.dumps(report))
        config.export_early_exit_file = str(moved)
        config.export_early_exit_budget = 0.5
        if list(task.frame_order) != list(range(T)):
            with pytest.raises(errors.ConfigError, match="frame order"):
                serving.build_export_module(task, model)
    finally:
        config.export_early_exit_file = ""
        config.export_early_exit_budget = 0.0


def test_bad_settings_raise_config_errors(run):
    task, model = run["task"], run["model"]
    args = (task.frames_config(), task.frame_order, task.class_names)
    with pytest.raises(errors.ConfigError, match="serves an AdaFocusV2"):
        serving.AdaFocusExportModule(model.focus, *args)
    with pytest.raises(errors.ConfigError, match="not a permutation"):
        serving.AdaFocusExportModule(model, args[0], [0, 0, 1, 2], args[2])
    with pytest.raises(errors.ConfigError, match="one per step"):
        serving.AdaFocusExportModule(model, *args,
                                     early_exit_thresholds=[1.0, 2.0])
    with pytest.raises(errors.ConfigError, match="one view of 4 RGB"):
        serving.AdaFocusExportModule(
            model, frames_pipeline.FramesConfig(num_steps=8), *args[1:])
