"""ActionFormer SavedModel: served in a TensorFlow-only process, compared.

Every actionformer_* bundle is exported with its model (the authors'
weights and test settings; the ActivityNet-style one resamples each video
to its `max_seq_len` in the graph, is class-agnostic and gets raw
features). A fresh
Python process that imports only TensorFlow (started outside the
repository, where tfaction cannot even be imported) loads it and runs
`serving_default` on a batch of 1 (the bundle's evaluation video) and a
batch of 2 with different lengths (that video and a longer random one,
padded by the client), and on an input longer than `max_length` (rejected;
accepted when resampling). Its outputs must equal, per video, the Keras
model on the video alone (resampled and padded by the reference rules)
followed by `decode_candidates`, numpy `soft_nms` and `grid_to_seconds`:
same count, labels and order (up to exactly tied scores, which the graph
sorts stably), class names from the exported `assets/classes.txt`,
segments within 1e-6 of the video's span (at least 1e-5 s) and scores
within 1e-5. The batch-1 output must also match the authors' own final
output stored in the bundle. Bad requests made from the batch of 2 (each
input with a wrong rank or dtype, an empty batch:
`serving_helpers.bad_input_calls`) must be refused naming the input.
"""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from tfaction.data import segment_rules
from tfaction.models.actionformer.decoding import decode_candidates
from tfaction.models.actionformer.decoding import grid_to_seconds
from tfaction.models.actionformer.model import ActionFormer
from tfaction.models.actionformer.reference import load_reference_weights
from tfaction.ops.soft_nms import soft_nms
from tfaction.serving import ActionFormerExportModule
from tfaction.serving import batching_parameters
from tfaction.serving.actionformer import AGNOSTIC_LABEL
from tfaction.serving import export_saved_model
from tests.conftest import anchors_path
from tests.conftest import bundle_dirs
from tests.models import parity
from tests.serving import serving_helpers as helpers
from tests.serving import tensor_json

TOL = 1e-5
# Segments in seconds: float32 noise of the offsets is relative to their
# size, and an offset at the coarsest level spans up to the whole video:
# the bound grows with the video's span (1e-6 of it).
SEG_SPAN_TOL = 1e-6


def _seg_atol(length, settings, fps):
    span = ((length - 1) * settings["feature_stride"]
            + settings["feature_window"]) / fps
    return max(TOL, SEG_SPAN_TOL * span)


EXTRA_LENGTH = 219  # the second video of batch 2 is this much longer


# The bundles, listed at collection (one exported model per bundle).
BUNDLES = bundle_dirs(anchors_path(), "actionformer_",
                      ("config.json", "weights.npz", "inference.npz"))

# Runs in a fresh interpreter, cwd outside the repository: TensorFlow only
# (tfaction is not installed in the environment, only on the tests' path).
SERVE_SCRIPT = r"""
import json
import sys

# TensorFlow 2.17 imports Keras when it is installed; block it (and tfaction)
# so that any use of them by the SavedModel fails the run.
for blocked in ("keras", "tf_keras", "tfaction"):
    sys.modules[blocked] = None

import numpy as np
import tensorflow as tf
""" + helpers.TENSOR_JSON + r"""

saved_model, inputs_path, outputs_path = sys.argv[1:4]
bad_calls_path, bad_outputs_path = sys.argv[4:6]
serve = tf.saved_model.load(saved_model).signatures["serving_default"]
data = np.load(inputs_path)
outputs = {}
for case in ("batch1", "batch2"):
    result = serve(**{k: tf.constant(data[f"{case}_{k}"])
                      for k in ("features", "lengths", "fps")})
    # Strings as fixed-width bytes (np.load without pickles).
    outputs.update({f"{case}_{k}": v.numpy().astype(bytes)
                    if v.dtype == tf.string else v.numpy()
                    for k, v in result.items()})
error = "not sent"
if "too_long_features" in data:
    try:
        serve(**{k: tf.constant(data[f"too_long_{k}"])
                 for k in ("features", "lengths", "fps")})
        error = ""
    except tf.errors.InvalidArgumentError as e:
        error = e.message
# The bad requests (`serving_helpers.bad_input_calls`): each refusal's
# message.
refused, answered = {}, []
for key, (signature, inputs) in load_tensors(bad_calls_path).items():
    try:
        assert signature == "serving_default", signature
        serve(**{k: tf.constant(v) for k, v in inputs.items()})
        answered.append(key)
    except tf.errors.InvalidArgumentError as e:
        refused[key] = e.message
np.savez(outputs_path, **outputs)
imported = sorted(m for m, module in sys.modules.items() if module and
                  m.split(".")[0] in ("keras", "tf_keras", "tfaction"))
with open(outputs_path + ".json", "w") as f:
    json.dump({"error": error, "imported": imported}, f)
dump_tensors({"errors": refused, "answered": answered}, bad_outputs_path)
"""


@pytest.fixture(scope="module", params=BUNDLES, ids=lambda p: p.name)
def anchor(request):
    root = request.param
    with open(root / "config.json") as f:
        config = json.load(f)["config"]
    inference = dict(np.load(root / "inference.npz"))
    if config["dataset"].get("force_upsampling"):
        # The features as on disk, before the dataset resamples them.
        video = str(inference["video_id"])
        with np.load(root / "features.npz") as raw:
            inference["feats"] = raw[f"{video}/0"].T
    return config, dict(np.load(root / "weights.npz")), inference


def _settings(config, inference):
    test = config["test_cfg"]
    model_cfg = config["model"]
    dataset = config["dataset"]
    resample = bool(dataset.get("force_upsampling"))
    if resample:  # the dataset's stride, before resampling
        stride = dataset["feat_stride"] * dataset["downsample_rate"]
        window = dataset["num_frames"]
    else:
        stride, window = inference["feat_stride"], inference["feat_num_frames"]
    num_classes = model_cfg["num_classes"]
    return dict(
        # A class-agnostic model lists the classes of the class scores.
        class_names=[f"class_{k}" for k in range(3 if resample
                                                 else num_classes)],
        class_agnostic=resample,
        resample_length=dataset["max_seq_len"] if resample else 0,
        feature_stride=float(stride), feature_window=float(window),
        max_buffer_len_factor=model_cfg["max_buffer_len_factor"],
        pre_nms_thresh=test["pre_nms_thresh"],
        pre_nms_topk=test["pre_nms_topk"],
        duration_thresh=test["duration_thresh"],
        iou_threshold=test["iou_threshold"], min_score=test["min_score"],
        max_seg_num=test["max_seg_num"],
        nms_method={"soft": "gaussian", "nms": "hard"}.get(
            test["nms_method"], test["nms_method"]),
        multiclass_nms=test["multiclass_nms"], nms_sigma=test["nms_sigma"],
        voting_thresh=test["voting_thresh"])


def _inputs(inference, input_dim, max_length):
    """Batch 1, batch 2 and (with a `max_length`) a too long input."""
    video = inference["feats"].T.astype(np.float32)          # [T, C]
    fps = np.float32(inference["fps"])
    long_length = len(video) + EXTRA_LENGTH
    other = np.random.RandomState(3).standard_normal(
        [long_length, input_dim]).astype(np.float32)
    batch2 = np.zeros([2, long_length, input_dim], np.float32)
    batch2[0, :len(video)] = video
    batch2[1] = other
    inputs = {
        "batch1_features": video[None],
        "batch1_lengths": np.array([len(video)], np.int32),
        "batch1_fps": np.array([fps], np.float32),
        "batch2_features": batch2,
        "batch2_lengths": np.array([len(video), long_length], np.int32),
        "batch2_fps": np.array([fps, 25.0], np.float32),
    }
    if max_length is not None:
        inputs.update(
            too_long_features=np.zeros([1, max_length + 1, input_dim],
                                       np.float32),
            too_long_lengths=np.array([max_length + 1], np.int32),
            too_long_fps=np.array([fps], np.float32))
    return inputs


@pytest.fixture(scope="module")
def served(anchor, tmp_path_factory):
    """Exports the anchor model; serves the inputs in a TF-only process."""
    config, weights, inference = anchor
    model = ActionFormer.from_reference_config(
        config["model"], train_cfg=config["train_cfg"])
    load_reference_weights(model, weights)
    settings = _settings(config, inference)
    root = tmp_path_factory.mktemp("actionformer_export")
    export_dir = root / "models" / "actionformer"
    module = ActionFormerExportModule(model, **settings)
    path = export_saved_model(module, export_dir)
    inputs = _inputs(inference, model.input_dim, module.max_length)
    np.savez(root / "inputs.npz", **inputs)
    bad_calls = helpers.bad_input_calls(
        "serving_default", {k: inputs[f"batch2_{k}"] for k in
                            ("features", "lengths", "fps")},
        over_length=None if module.max_length is None else {
            k: inputs[f"too_long_{k}"] for k in ("features", "lengths",
                                                  "fps")})
    tensor_json.dump_tensors(bad_calls, root / "bad_calls.json")
    # `saved_model_cli` and the serving process run side by side.
    _, cli = helpers.run_tf_only(
        SERVE_SCRIPT, [path, root / "inputs.npz", root / "outputs.npz",
                       root / "bad_calls.json", root / "bad_outputs.json"],
        root, saved_model=path)
    with open(root / "outputs.npz.json") as f:
        info = json.load(f)
    bad = tensor_json.load_tensors(root / "bad_outputs.json")
    assert bad["answered"] == [], bad["answered"]
    bad_inputs = dict(calls=bad_calls, errors=bad["errors"], results={})
    return dict(model=model, settings=settings, inputs=inputs,
                max_length=module.max_length,
                outputs=dict(np.load(root / "outputs.npz")), info=info,
                path=pathlib.Path(path), export_dir=export_dir,
                inference=inference, saved_model_cli=cli,
                bad_inputs=bad_inputs)


def _keras_numpy(model, settings, features, length, fps):
    """One video: (resampled,) Keras model at its own padded length + host
    NMS."""
    stride = settings["feature_stride"]
    window = settings["feature_window"]
    features = features[:length]
    if settings["resample_length"]:
        ex = segment_rules.resample_features(
            {"features": features,
             "feature_stride": tf.constant(stride, tf.float32),
             "feature_window": tf.constant(window, tf.float32)},
            length=settings["resample_length"])
        features = ex["features"].numpy()
        stride = window = float(ex["feature_stride"])
        length = len(features)
    padded = model.padded_length(length)
    x = np.zeros([1, padded, model.input_dim], np.float32)
    x[0, :length] = features
    out = model({"features": x, "mask": np.arange(padded)[None] < length},
                training=False)
    levels = {k: [t[0] for t in model.split_levels(out[k])]
              for k in ("cls_logits", "offsets", "mask")}
    segs, scores, labels = decode_candidates(
        levels["cls_logits"], levels["offsets"], model.fpn_strides,
        masks=levels["mask"], pre_nms_thresh=settings["pre_nms_thresh"],
        pre_nms_topk=settings["pre_nms_topk"],
        duration_thresh=settings["duration_thresh"])
    segs, scores, labels = soft_nms(
        segs.numpy(), scores.numpy(), labels.numpy(),
        iou_threshold=settings["iou_threshold"],
        min_score=settings["min_score"],
        max_seg_num=settings["max_seg_num"], method=settings["nms_method"],
        multiclass=settings["multiclass_nms"], sigma=settings["nms_sigma"],
        voting_thresh=settings["voting_thresh"])
    duration = ((length - 1) * stride + window) / fps
    seconds = grid_to_seconds(segs, fps, stride, window, duration)
    return np.asarray(seconds), scores, labels


def _assert_video(served, case, row):
    inputs, outputs = served["inputs"], served["outputs"]
    length = int(inputs[f"{case}_lengths"][row])
    segs, scores, labels = _keras_numpy(
        served["model"], served["settings"],
        inputs[f"{case}_features"][row], length,
        float(inputs[f"{case}_fps"][row]))
    n = int(outputs[f"{case}_num_detections"][row])
    assert n == len(scores) > 0
    fps = float(inputs[f"{case}_fps"][row])
    parity.assert_same_ranking(
        (outputs[f"{case}_segments"][row, :n],
         outputs[f"{case}_scores"][row, :n],
         outputs[f"{case}_labels"][row, :n]), (segs, scores, labels),
        f"{case} row {row}", score_rtol=0, score_atol=TOL, seg_rtol=0,
        seg_atol=_seg_atol(length, served["settings"], fps))
    names = ([AGNOSTIC_LABEL] if served["settings"]["class_agnostic"]
             else served["settings"]["class_names"])
    assert outputs[f"{case}_class_names"][row, :n].tolist() == [
        names[k].encode() for k in outputs[f"{case}_labels"][row, :n]]
    # Rows past the detections are padding.
    assert (outputs[f"{case}_class_names"][row, n:] == b"").all()
    assert (outputs[f"{case}_labels"][row, n:] == -1).all()
    assert (outputs[f"{case}_scores"][row, n:] == 0).all()
    assert (outputs[f"{case}_segments"][row, n:] == 0).all()


def test_fresh_process_needed_only_tensorflow(served):
    assert served["info"]["imported"] == []


def test_output_shapes_and_dtypes(served):
    n = served["settings"]["max_seg_num"]
    out = served["outputs"]
    for case, batch in (("batch1", 1), ("batch2", 2)):
        assert out[f"{case}_segments"].shape == (batch, n, 2)
        assert out[f"{case}_segments"].dtype == np.float32
        assert out[f"{case}_scores"].shape == (batch, n)
        assert out[f"{case}_scores"].dtype == np.float32
        assert out[f"{case}_labels"].shape == (batch, n)
        assert out[f"{case}_labels"].dtype == np.int32
        assert out[f"{case}_num_detections"].shape == (batch,)
        assert out[f"{case}_num_detections"].dtype == np.int32
        assert out[f"{case}_class_names"].shape == (batch, n)
        assert out[f"{case}_class_names"].dtype.kind == "S"


def test_batch_of_one_matches_keras_and_numpy(served):
    _assert_video(served, "batch1", 0)


def test_batch_of_two_lengths_matches_keras_and_numpy(served):
    _assert_video(served, "batch2", 0)
    _assert_video(served, "batch2", 1)
    # The client's padding of the short video changes nothing (but float32
    # noise of the batched model: one ulp of a segment's seconds).
    out, inputs = served["outputs"], served["inputs"]
    seg_atol = _seg_atol(int(inputs["batch1_lengths"][0]), served["settings"],
                         float(inputs["batch1_fps"][0]))
    for key in ("segments", "scores", "labels", "num_detections"):
        np.testing.assert_allclose(
            out[f"batch2_{key}"][0], out[f"batch1_{key}"][0], rtol=0,
            atol=seg_atol if key == "segments" else TOL)
    np.testing.assert_array_equal(out["batch2_class_names"][0],
                                  out["batch1_class_names"][0])


def test_batch_of_one_matches_authors_final_output(served):
    ref = served["inference"]
    out = served["outputs"]
    n = int(out["batch1_num_detections"][0])
    assert n == len(ref["scores"])
    # The reference clamps to the annotated duration, the signature to the
    # features' span (the client sends no duration): compare below both.
    settings = served["settings"]
    length = int(served["inputs"]["batch1_lengths"][0])
    fps = float(ref["fps"])
    # After resampling: the span of the resampled features (float32 stride).
    span = min(((length - 1) * settings["feature_stride"]
                + settings["feature_window"]) / fps,
               ref["input"].shape[-1] * float(np.float32(ref["feat_stride"]))
               / fps)
    limit = min(float(ref["duration"]), span)
    parity.assert_same_ranking(
        (np.minimum(out["batch1_segments"][0, :n], limit),
         out["batch1_scores"][0, :n], out["batch1_labels"][0, :n]),
        (np.minimum(ref["segments_sec"], limit), ref["scores"],
         ref["labels"]), "authors' final output", score_rtol=0,
        score_atol=TOL, seg_rtol=0,
        seg_atol=_seg_atol(length, settings, fps))


def test_too_long_input_fails_with_clear_error(served):
    if served["max_length"] is None:
        # Resampled: any T is taken (batch 2 is longer than max_seq_len).
        assert served["inputs"]["batch2_features"].shape[1] > \
            served["model"].max_seq_len
        return
    error = served["info"]["error"]
    assert "max_length" in error, error
    assert str(served["max_length"]) in error


def test_bad_inputs_are_refused_naming_the_input(served):
    # Wrong rank / dtype of each input, an empty batch and (without
    # resampling) a T over max_length.
    expected = 7 if served["max_length"] is None else 8
    assert helpers.assert_bad_inputs_refused(
        served["bad_inputs"],
        over_length_message=f"max_length {served['max_length']}") == expected


def test_saved_model_cli_lists_signature(served):
    dim = served["model"].input_dim
    n = served["settings"]["max_seg_num"]
    helpers.assert_cli_lists(served["saved_model_cli"], {"serving_default": {
        "inputs['features']": ("DT_FLOAT", f"(-1, -1, {dim})"),
        "inputs['lengths']": ("DT_INT32", "(-1)"),
        "inputs['fps']": ("DT_FLOAT", "(-1)"),
        "outputs['segments']": ("DT_FLOAT", f"(-1, {n}, 2)"),
        "outputs['scores']": ("DT_FLOAT", f"(-1, {n})"),
        "outputs['labels']": ("DT_INT32", f"(-1, {n})"),
        "outputs['class_names']": ("DT_STRING", f"(-1, {n})"),
        "outputs['num_detections']": ("DT_INT32", "(-1)")}})


def test_warmup_requests_and_server_files(served):
    from tensorflow_serving.apis import prediction_log_pb2
    from tensorflow_serving.config import model_server_config_pb2

    warmup = served["path"] / "assets.extra" / "tf_serving_warmup_requests"
    records = list(tf.data.TFRecordDataset(str(warmup)).as_numpy_iterator())
    assert len(records) == 1
    log = prediction_log_pb2.PredictionLog.FromString(records[0])
    request = log.predict_log.request
    assert request.model_spec.name == "actionformer"
    assert request.model_spec.signature_name == "serving_default"
    assert sorted(request.inputs) == ["features", "fps", "lengths"]
    features = tf.make_ndarray(request.inputs["features"])
    assert features.dtype == np.float32 and features.shape[0] == 1
    assert features.shape[2] == served["model"].input_dim

    config = text_format.Parse(
        (served["export_dir"] / "models.config").read_text(),
        model_server_config_pb2.ModelServerConfig())
    (entry,) = config.model_config_list.config
    assert entry.name == "actionformer"
    assert entry.base_path == str(served["export_dir"].resolve())
    assert entry.model_platform == "tensorflow"

    batching = text_format.Parse(
        (served["export_dir"] / "batching_parameters.txt").read_text(),
        batching_parameters.batching_parameters_message())
    assert batching.max_batch_size.value >= 1
    assert batching.batch_timeout_micros.value >= 1
    assert batching.num_batch_threads.value >= 1
    assert batching.max_enqueued_batches.value >= 1
    assert batching.pad_variable_length_inputs
    names = served["settings"]["class_names"]
    assert (served["path"] / "assets" / "classes.txt").read_text() == \
        "".join(f"{name}\n" for name in names)
    # Only the integer version and the two files: no staging left over.
    assert sorted(p.name for p in served["export_dir"].iterdir()) == [
        "1", "batching_parameters.txt", "models.config"]
