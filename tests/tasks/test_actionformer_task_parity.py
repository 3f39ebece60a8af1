"""The ActionFormer task's data, targets, losses, gradients and detections
against the authors' code.

Every actionformer_* bundle is converted to TFRecords with the package's
own converter (its `annotations.json` and its videos' feature files, one
folder per feature set), then the task (configured from the bundle's
`config.json`, the authors' dataset class choosing the dataset rules) must:

* produce the reference training batch from its input pipeline (features,
  mask; GT seconds -> grid and the dataset's GT rules as the reference
  dataset);
* assign the reference targets, count the positives, update the loss
  normaliser before use, and give the reference focal / DIoU / final losses;
* give every parameter's gradient of the final loss (`grads.npz`);
* turn the evaluation video into the reference's final detections through
  `validation_step` -> `aggregate_logs`, and score them.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.data.formats.activitynet_features import (
    convert_activitynet_features)
from tfaction.models.actionformer.reference import load_reference_weights
from tfaction.models.actionformer.reference import (
    model_kwargs_from_reference_config)
from tfaction.models.actionformer.reference import reference_weight_entries
from tfaction.tasks import actionformer as af_task
from tfaction.tasks import actionformer_config
from tests.models import parity

LOSS_RTOL = 1e-5
GRAD_TOL = 1e-4


# The authors' dataset classes whose GT rules the task reproduces by config:
# ActivityNet removes duplicate annotations and drops / clamps training
# annotations past the features (`libs/datasets/anet.py`).
_ACTIVITYNET = "anet"


def task_config(ref, data_dir, train_subset, eval_subset):
    """Our task section from the authors' merged config (`ref`)."""
    dataset, train_cfg, test_cfg = (ref["dataset"], ref["train_cfg"],
                                    ref["test_cfg"])
    config = actionformer_config.task_config()
    config.data_dir = str(data_dir)
    config.train_subset, config.eval_subset = train_subset, eval_subset
    config.max_seq_len = int(dataset["max_seq_len"])
    config.trunc_thresh = float(dataset["trunc_thresh"])
    config.crop_ratio = tuple(dataset["crop_ratio"] or ())
    if dataset.get("force_upsampling"):
        config.resample_length = int(dataset["max_seq_len"])
    config.class_agnostic = int(dataset["num_classes"]) == 1
    anet = ref["dataset_name"] == _ACTIVITYNET
    config.remove_duplicate_segments = anet
    config.clip_segments_to_features = anet
    kwargs = model_kwargs_from_reference_config(ref["model"], train_cfg)
    for key in ("input_dim", "num_classes", "max_seq_len"):
        kwargs.pop(key)
    for key, value in kwargs.items():
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v
                          for v in value)
        if isinstance(config.model[key], tuple) and isinstance(value, int):
            value = (value,) * (1 + kwargs["arch"][2])  # one per level
        config.model[key] = value
    config.loss.init_loss_norm = float(train_cfg["init_loss_norm"])
    config.loss.center_sample_radius = float(
        train_cfg["center_sample_radius"])
    config.loss.loss_weight = float(train_cfg["loss_weight"])
    config.loss.label_smoothing = float(train_cfg["label_smoothing"])
    inf = config.inference
    for key in ("pre_nms_thresh", "pre_nms_topk", "duration_thresh",
                "iou_threshold", "min_score", "max_seg_num", "nms_sigma",
                "voting_thresh"):
        inf[key] = type(inf[key])(test_cfg[key])
    inf.multiclass_nms = bool(test_cfg["multiclass_nms"])
    assert test_cfg["nms_method"] == "soft"
    inf.nms_method = "gaussian"
    return config


def write_feature_folders(root, meta, work):
    """The bundle's videos as feature files; returns the folders.

    A bundle with `features.npz` stores each video's arrays per feature
    folder (`<video>/<k>`, as on disk); otherwise (one folder) the training
    videos' raw features and the evaluation video's features are used.
    """
    dataset = meta["config"]["dataset"]
    prefix = dataset.get("file_prefix") or ""
    names = dataset.get("feature_folders") or ["features"]
    folders = [work / name for name in names]
    for folder in folders:
        folder.mkdir()
    stored = root / "features.npz"
    if stored.is_file():
        with np.load(stored) as data:
            for key in data.files:
                vid, k = key.split("/")
                np.save(folders[int(k)] / f"{prefix}{vid}.npy", data[key])
        return folders
    io = np.load(root / "io.npz")
    inference = np.load(root / "inference.npz")
    by_id = {str(io[f"video_id_{i}"]): io[f"raw_feats_{i}"]
             for i in range(parity.batch_size(io))}
    by_id[str(inference["video_id"])] = inference["feats"].T
    for vid, array in by_id.items():
        np.save(folders[0] / f"{prefix}{vid}.npy", array.astype(np.float32))
    return folders


def bundle_task_config(root, work):
    """The task section of bundle `root`, its data converted under `work`.

    The bundle's annotations and feature files become TFRecords with the
    package's converter; the training subset is that of the training
    batch's videos, the evaluation subset that of the inference video.
    """
    meta = json.loads((root / "config.json").read_text())
    ref = meta["config"]
    dataset = ref["dataset"]
    io = np.load(root / "io.npz")
    annotations = json.loads((root / "annotations.json").read_text())
    db = annotations["database"]
    folders = write_feature_folders(root, meta, work)
    eval_id = str(np.load(root / "inference.npz")["video_id"])
    records = work / "records"
    default_fps = dataset.get("default_fps")
    # The authors' datasets take any annotation as given (no duration
    # check), and their `default_fps` replaces the annotations' fps.
    convert_activitynet_features(
        root / "annotations.json", folders, records,
        feature_stride=float(dataset["feat_stride"]),
        feature_window=float(dataset["num_frames"]),
        feature_prefix=dataset.get("file_prefix") or "",
        fps=default_fps, force_fps=default_fps is not None,
        segment_tolerance=1e9)
    train_subset = db[str(io["video_id_0"])]["subset"].lower()
    eval_subset = db[eval_id]["subset"].lower()
    return task_config(ref, records, train_subset, eval_subset)


@pytest.fixture(scope="module")
def cases(actionformer_bundles, tmp_path_factory):
    out = []
    for root in actionformer_bundles:
        meta = json.loads((root / "config.json").read_text())
        io = dict(np.load(root / "io.npz"))
        inference = dict(np.load(root / "inference.npz"))
        config = bundle_task_config(root, tmp_path_factory.mktemp(root.name))
        task = af_task.ActionFormerTask(config)
        model = task.build_model()
        load_reference_weights(model, dict(np.load(root / "weights.npz")))
        out.append(dict(name=root.name, meta=meta, io=io, task=task,
                        model=model, inference=inference,
                        grads=dict(np.load(root / "grads.npz")),
                        weights=dict(np.load(root / "weights.npz"))))
    return out


def _train_batch(case):
    """The training batch, rows in the bundle's video order."""
    task, io = case["task"], case["io"]
    videos = parity.batch_size(io)
    ds = task.build_inputs(True, global_batch_size=videos, epoch=0, seed=0)
    batch = next(iter(ds))
    ids = [v.decode() for v in batch["video_id"].numpy()]
    order = [ids.index(str(io[f"video_id_{i}"])) for i in range(videos)]
    return {k: tf.gather(v, order) for k, v in batch.items()}


def test_training_batch_and_targets(cases):
    for case in cases:
        io, task, model = case["io"], case["task"], case["model"]
        batch = _train_batch(case)
        np.testing.assert_array_equal(batch["features"],
                                      parity.channels_last(io["input"]))
        np.testing.assert_array_equal(batch["mask"], io["mask"][:, 0])
        grid, valid = task.training_segments(batch)
        for i in range(parity.batch_size(io)):
            kept = np.asarray(valid[i])
            np.testing.assert_array_equal(
                np.asarray(grid[i])[kept], io[f"gt_segments_{i}"],
                err_msg=f"{case['name']} GT of video {i}")
            np.testing.assert_array_equal(
                np.asarray(batch["segment_labels"][i])[kept],
                io[f"gt_labels_{i}"], err_msg=f"{case['name']} labels {i}")
        outputs = model(task._model_inputs(batch), training=False)
        parts = task.compute_losses(batch, outputs)
        np.testing.assert_array_equal(parts["positive"], io["pos_mask"])
        assert int(parts["num_pos"]) == int(io["num_pos"])
        for i in range(parity.batch_size(io)):
            valid = io["mask"][i, 0]
            valid_points = np.asarray(outputs["mask"][i])
            np.testing.assert_array_equal(
                np.asarray(parts["cls_targets"][i])[valid_points],
                io[f"gt_cls_targets_{i}"][valid_points])
            pos = io["pos_mask"][i]
            np.testing.assert_allclose(
                np.asarray(parts["reg_targets"][i])[pos],
                io[f"gt_reg_targets_{i}"][pos], rtol=1e-6, atol=1e-6)
            assert valid.sum() == int(batch["length"][i])


def test_losses_and_gradients(cases):
    for case in cases:
        io, task, model = case["io"], case["task"], case["model"]
        batch = _train_batch(case)
        task.loss_normalizer.assign(float(io["loss_normalizer_before"]))
        entries = reference_weight_entries(model)
        variables = [var for _, var, _ in entries]
        with tf.GradientTape() as tape:
            # Dropout and drop path are off in the bundle: eval mode is the
            # same network (see the bundle README).
            outputs = model(task._model_inputs(batch), training=False)
            parts = task.compute_losses(batch, outputs)
            normalizer = task.update_loss_normalizer(parts["num_pos"])
            cls = tf.reduce_sum(parts["cls"]) / normalizer
            reg = tf.reduce_sum(parts["reg"]) / normalizer
            final = cls + task.config.loss.loss_weight * reg
        np.testing.assert_allclose(float(normalizer),
                                   float(io["loss_normalizer_used"]),
                                   rtol=1e-7)
        for got, key in ((cls, "loss_cls_loss"), (reg, "loss_reg_loss"),
                         (final, "loss_final_loss")):
            np.testing.assert_allclose(float(got), float(io[key]),
                                       rtol=LOSS_RTOL, err_msg=key)
        grads = tape.gradient(final, variables)
        # Some gradients are zero analytically (e.g. a key bias shifts every
        # logit of a query equally) and hold float noise only: compare those
        # absolutely, against the scale of the whole gradient.
        scale = np.sqrt(sum(float(np.sum(np.square(g)))
                            for g in case["grads"].values()))
        worst, noise = 0.0, 0
        for (key, var, convert), grad in zip(entries, grads):
            expected = convert(case["grads"][key])
            assert grad is not None, key
            what = f"{case['name']} grad {key}"
            if np.linalg.norm(expected) < 1e-6 * scale:
                noise += 1
                np.testing.assert_allclose(grad, expected, rtol=0,
                                           atol=1e-6 * scale, err_msg=what)
                continue
            worst = max(worst, parity.assert_parity(grad, expected, what,
                                                    tol=GRAD_TOL))
        print(f"{case['name']}: {len(entries)} gradients, max relative "
              f"error {worst:.2e} ({noise} analytically zero)")


def test_evaluation_reproduces_reference_detections(cases, tmp_path):
    for case in cases:
        task, model, inf = case["task"], case["model"], case["inference"]
        ds = task.build_inputs(False, global_batch_size=1)
        state = None
        for batch in ds:
            logs = task.validation_step(batch, model, [])
            state = task.aggregate_logs(
                state, [tf.nest.map_structure(np.asarray, logs)])
        (vid,) = state
        segs, scores, labels = state[vid]
        parity.assert_same_ranking(
            (segs, scores, labels),
            (inf["segments_sec"], inf["scores"], inf["labels"]),
            f"{case['name']} detections")
        metrics = task.reduce_aggregated_logs(state, 7)
        assert 0.0 <= metrics["average_mAP"] <= 1.0
        path = task.write_evaluation_outputs(str(tmp_path), 7)
        written = json.loads(open(path).read())
        assert written["step"] == 7
        assert len(written["results"][vid]) == len(scores)
        assert written["results"][vid][0]["label"] == (
            "action" if task.one_class_evaluation
            else task.class_names[int(labels[0])])


def test_weight_decay_only_on_kernels(cases):
    task, model = cases[0]["task"], cases[0]["model"]
    excluded = {id(v) for v in task.weight_decay_exclusions(model)}
    decayed = [v for v in model.trainable_variables if id(v) not in excluded]
    assert decayed and excluded
    for var in decayed:
        assert var.path.split("/")[-1] in ("kernel", "depthwise_kernel"), \
            var.path
    for var in model.trainable_variables:
        if id(var) in excluded:
            assert var.path.split("/")[-1] not in ("kernel",
                                                   "depthwise_kernel"), \
                var.path
    # Reference parameter groups: every Conv1d weight decays (LayerNorm
    # weights, biases, Scale and layer-scale do not).
    n_conv = sum(1 for key in cases[0]["weights"]
                 if key.endswith(".weight") and
                 not any(n in key for n in ("norm", ".ln1", ".ln2")))
    assert len(decayed) == n_conv


def test_adamw_step_decays_kernels_only(cases):
    task, model = cases[0]["task"], cases[0]["model"]
    optimizer = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(
        var_list=task.weight_decay_exclusions(model))
    variables = model.trainable_variables
    optimizer.build(variables)
    before = [np.array(v) for v in variables]
    optimizer.apply([tf.zeros_like(v) for v in variables], variables)
    excluded = {id(v) for v in task.weight_decay_exclusions(model)}
    for var, old in zip(variables, before):
        if id(var) in excluded:
            np.testing.assert_array_equal(var, old, err_msg=var.path)
        else:
            np.testing.assert_allclose(var, old * (1 - 0.1 * 0.5),
                                       rtol=1e-6, err_msg=var.path)
    for var, old in zip(variables, before):
        var.assign(old)


def test_unannotated_class_ids_get_the_empty_class_prior(tmp_path):
    """As the authors' training sets `head_empty_cls` to the class ids its
    dataset has no annotation of (EPIC-Kitchens), the task adds the
    converter's placeholder classes to `model.empty_classes`."""
    database = {"v1": {"subset": "training", "duration": 4.0, "fps": 30.0,
                       "annotations": [
                           {"segment": [0.5, 1.0], "label": "cut",
                            "label_id": 3},
                           {"segment": [1.5, 2.0], "label": "wash",
                            "label_id": 0}]}}
    (tmp_path / "gt.json").write_text(json.dumps({"database": database}))
    (tmp_path / "features").mkdir()
    np.save(tmp_path / "features" / "v1.npy", np.zeros((5, 2), np.float32))
    convert_activitynet_features(tmp_path / "gt.json", tmp_path / "features",
                                 tmp_path / "records", feature_stride=16,
                                 feature_window=32)
    config = actionformer_config.task_config()
    config.data_dir = str(tmp_path / "records")
    config.eval_subset = "training"
    config.model.empty_classes = (2,)
    kwargs = af_task.ActionFormerTask(config).model_kwargs()
    assert kwargs["num_classes"] == 4
    assert kwargs["empty_classes"] == [1, 2]
