"""The ActivityNet recipe served: resampling, class-agnostic, score fusion.

A tiny `actionformer_anet_tsp` model (features resampled to 72 steps, one
class, absolute position encoding, class-agnostic Soft-NMS with voting) on
synthetic videos of 48 to 160 steps is exported by
`build_export_module(task, model)` and served from the SavedModel with all
evaluation videos in one padded batch. Its detections must be the task's
own evaluated detections (`validation_step` -> `aggregate_logs` ->
`predictions`) of each video:

* `serving_default` = the evaluation without external scores: labelled
  "action" (class-agnostic);
* `serving_with_class_scores`, sent each video's row of a CUHK-format
  score file, = the evaluation with `inference.ext_score_file` set to that
  file (top-2 classes, `sqrt(class_score * score)`, class names from the
  file's `"class"` list, here in another order than the dataset's).
"""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from experiments.configs import actionformer_anet_tsp
from export import actionformer_request
from tfaction import errors
from tfaction import tasks
from tfaction.data.formats.activitynet_features import (
    convert_activitynet_features)
from tfaction.data.synthetic.temporal_localization import (
    generate_temporal_localization)
from tfaction.serving import ActionFormerExportModule
from tfaction.serving import build_export_module
from tfaction.serving import export_saved_model
from tfaction.serving.actionformer import AGNOSTIC_LABEL
from tfaction.serving.actionformer import CLASS_SCORES_SIGNATURE

LENGTH = 72  # max_seq_len = resample_length (the videos: 57 to 151)
SCORE_TOL = 1e-5
SEG_TOL = 1e-4  # seconds; the task clamps to the annotated duration


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("af_anet_synthetic")
    generate_temporal_localization(root / "raw", num_videos=10, seed=7,
                                   feature_dim=16, min_steps=48,
                                   max_steps=160, validation_fraction=0.4)
    convert_activitynet_features(root / "raw" / "annotations.json",
                                 root / "raw" / "features", root / "records",
                                 feature_stride=4, feature_window=16)
    return root / "records"


def make_config(records, ext_score_file=""):
    """The ANet recipe, shrunk: 3 levels, 16 channels, 72 steps."""
    config = actionformer_anet_tsp.get_config()
    task = config.task
    task.data_dir = str(records)
    task.max_seq_len = task.resample_length = LENGTH
    model = task.model
    model.embed_dim = model.head_dim = 16
    model.arch = (2, 1, 2)
    model.window_size = (7, 7, -1)
    model.regression_range = ((0, 4), (4, 8), (8, 10000))
    model.drop_path_rate = 0.0
    task.inference.max_seg_num = 30
    task.inference.fusion_topk_segments = 20   # < max_seg_num: truncates
    task.inference.ext_score_file = str(ext_score_file)
    return config


def _evaluated(task, model):
    """The task's evaluation: {video_id: [{segment, score, label}]}."""
    task.model = model
    logs = [tf.nest.map_structure(np.asarray,
                                  task.validation_step(b, model, []))
            for b in task.build_inputs(False, global_batch_size=2)]
    return task.predictions(task.aggregate_logs(None, logs))["results"]


@pytest.fixture(scope="module")
def setup(records, tmp_path_factory):
    root = tmp_path_factory.mktemp("af_anet_export")
    keras.utils.set_random_seed(11)
    plain = tasks.build_task(make_config(records))
    assert plain.config.class_agnostic and plain.one_class_evaluation
    model = plain.build_model()
    model({"features": np.zeros([1, LENGTH, model.input_dim], np.float32),
           "mask": np.ones([1, LENGTH], bool)}, training=False)
    videos = []
    ids = sorted(json.loads((records / "ground_truth.json").read_text())
                 ["database"])
    for video_id in ids:
        try:
            videos.append(actionformer_request.read_video(
                str(records), "validation", video_id))
        except errors.DataError:
            continue  # a training video
    # CUHK-format external scores; the file's own class order.
    rng = np.random.RandomState(5)
    names = list(reversed(plain.class_names))
    scores = {v["video_id"]: rng.uniform(0.0, 1.0, len(names)).tolist()
              for v in videos}
    ext_file = root / "cuhk_style_scores.json"
    ext_file.write_text(json.dumps({"results": scores, "class": names}))
    fused = tasks.build_task(make_config(records, ext_file))
    module = build_export_module(fused, model)
    path = pathlib.Path(export_saved_model(module, root / "models" / "anet"))
    steps = max(len(v["features"]) for v in videos)
    features = np.zeros([len(videos), steps, model.input_dim], np.float32)
    for i, v in enumerate(videos):
        features[i, :len(v["features"])] = v["features"]
    inputs = {"features": features,
              "lengths": np.array([len(v["features"]) for v in videos],
                                  np.int32),
              "fps": np.array([v["fps"] for v in videos], np.float32)}
    loaded = tf.saved_model.load(path)
    served = {}
    for name, extra in (("serving_default", {}),
                        (CLASS_SCORES_SIGNATURE, {"class_scores": np.array(
                            [scores[v["video_id"]] for v in videos])})):
        out = loaded.signatures[name](**{
            k: tf.constant(v) for k, v in dict(inputs, **extra).items()})
        served[name] = {k: v.numpy() for k, v in out.items()}
    return dict(
        plain=plain, fused=fused, model=model, videos=videos, names=names,
        module=module, path=path, loaded=loaded, inputs=inputs,
        served=served, ext_file=ext_file,
        expected={"serving_default": _evaluated(plain, model),
                  CLASS_SCORES_SIGNATURE: _evaluated(fused, model)})


def _assert_served_equals_evaluated(setup, signature):
    out = setup["served"][signature]
    expected = setup["expected"][signature]
    total = 0
    for row, video in enumerate(setup["videos"]):
        want = expected.get(video["video_id"], [])
        n = int(out["num_detections"][row])
        assert n == len(want), video["video_id"]
        total += n
        assert [s.decode() for s in out["class_names"][row, :n]] == [
            d["label"] for d in want]
        np.testing.assert_allclose(out["scores"][row, :n],
                                   [d["score"] for d in want], rtol=0,
                                   atol=SCORE_TOL)
        np.testing.assert_allclose(out["segments"][row, :n].reshape(-1, 2),
                                   [d["segment"] for d in want], rtol=0,
                                   atol=SEG_TOL)
        assert (out["class_names"][row, n:] == b"").all()
        assert (out["labels"][row, n:] == -1).all()
    assert total > 0


def test_videos_are_resampled_up_and_down(setup):
    lengths = setup["inputs"]["lengths"]
    assert lengths.min() < LENGTH < lengths.max()


def test_served_detections_equal_evaluated_without_scores(setup):
    _assert_served_equals_evaluated(setup, "serving_default")
    out = setup["served"]["serving_default"]
    assert set(out["class_names"].ravel()) <= {AGNOSTIC_LABEL.encode(), b""}


def test_served_detections_equal_evaluated_with_class_scores(setup):
    _assert_served_equals_evaluated(setup, CLASS_SCORES_SIGNATURE)
    out = setup["served"][CLASS_SCORES_SIGNATURE]
    # 2 classes x at most fusion_topk_segments detections, class-major.
    assert out["labels"].shape[1] == 2 * 20
    names = setup["names"]
    for row in range(len(setup["videos"])):
        n = int(out["num_detections"][row])
        labels = out["labels"][row, :n]
        assert n % 2 == 0 and len(set(labels[:n // 2])) == 1
        assert [names[k] for k in labels] == [
            s.decode() for s in out["class_names"][row, :n]]


def test_class_list_asset_is_the_score_files(setup):
    assert setup["module"].class_names == setup["names"]
    text = (setup["path"] / "assets" / "classes.txt").read_text()
    assert text.splitlines() == setup["names"]
    # Without an external file: the dataset's classes, same signatures.
    module = build_export_module(setup["plain"], setup["model"])
    assert module.class_names == list(setup["plain"].class_names)
    assert set(module.signature_definitions()) == {
        "serving_default", CLASS_SCORES_SIGNATURE}


def test_warmup_requests_call_both_signatures(setup):
    from tensorflow_serving.apis import prediction_log_pb2

    warmup = setup["path"] / "assets.extra" / "tf_serving_warmup_requests"
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in
            tf.data.TFRecordDataset(str(warmup)).as_numpy_iterator()]
    assert [log.predict_log.request.model_spec.signature_name
            for log in logs] == ["serving_default", CLASS_SCORES_SIGNATURE]
    request = logs[1].predict_log.request
    assert tf.make_ndarray(request.inputs["class_scores"]).shape == (
        1, len(setup["names"]))


def test_bad_class_scores_fail_clearly(setup):
    fn = setup["loaded"].signatures[CLASS_SCORES_SIGNATURE]
    inputs = {k: tf.constant(v[:1]) for k, v in setup["inputs"].items()}
    k = len(setup["names"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=">= 0"):
        fn(class_scores=tf.fill([1, k], tf.constant(-1.0, tf.float64)),
           **inputs)
    with pytest.raises(tf.errors.InvalidArgumentError, match="one row per"):
        fn(class_scores=tf.zeros([2, k], tf.float64), **inputs)


def test_bad_settings_raise_config_errors(setup):
    model = setup["model"]
    settings = dict(
        feature_stride=4, feature_window=16, max_buffer_len_factor=1.0,
        pre_nms_thresh=0.001, pre_nms_topk=2000, duration_thresh=0.001,
        iou_threshold=0.1, min_score=0.001, max_seg_num=30,
        nms_method="gaussian", multiclass_nms=False, nms_sigma=0.75,
        voting_thresh=0.9)
    with pytest.raises(errors.ConfigError, match="3 class_names for a "
                       "model with 1 classes"):
        ActionFormerExportModule(model, class_names=["a", "b", "c"],
                                 **settings)
    with pytest.raises(errors.ConfigError, match="fusion_topk_classes"):
        ActionFormerExportModule(model, class_names=["a"],
                                 class_agnostic=True, class_scores=True,
                                 **settings)
    with pytest.raises(errors.ConfigError, match="resample_length"):
        ActionFormerExportModule(model, class_names=["a"],
                                 class_agnostic=True, resample_length=-1,
                                 **settings)


def test_request_client_sends_the_class_scores(setup):
    video = setup["videos"][0]
    inputs = actionformer_request.request_inputs(video,
                                                 str(setup["ext_file"]))
    assert inputs["class_scores"].shape == (1, len(setup["names"]))
    body = actionformer_request.rest_body(inputs)
    assert body["signature_name"] == CLASS_SCORES_SIGNATURE
    served = actionformer_request.predict(str(setup["path"]), inputs)
    want = setup["served"][CLASS_SCORES_SIGNATURE]
    n = int(served["num_detections"][0])
    assert n == int(want["num_detections"][0]) > 0
    np.testing.assert_array_equal(served["class_names"][0],
                                  want["class_names"][0])
    text = actionformer_request.format_detections(video, served, top=2)
    assert served["class_names"][0, 0].decode() in text
