"""ActionFormer task config: defaults, types and cross-field rules.

* `task_config()`: the `task` section read by
  `tfaction.tasks.actionformer.ActionFormerTask`, every key with its
  default; the `model` defaults are those of the `ActionFormer` constructor
  (same argument names);
* `experiment_config()`: a whole experiment, the authors' THUMOS14 I3D
  recipe (values of their `configs/*.yaml` merged with
  `libs/core/config.py` defaults); every `actionformer_*` recipe starts
  from it and changes what its dataset needs;
* `validate(config)`: unknown or missing keys and the rules that tie keys
  together (levels, windows, regression ranges, feature projections,
  padding unit), each as a `ConfigError` naming the key.

Feature dimension, record encoding and classes come from the converted
dataset's `dataset_info.json` in `task.data_dir`.

Example:

```python
from tfaction.tasks import actionformer_config

config = actionformer_config.experiment_config()
config.task.data_dir = "data/thumos_i3d"
actionformer_config.validate(config.task)
```
"""

import ml_collections
import numpy as np

from tfaction import config as config_lib
from tfaction import errors
from tfaction.models.actionformer import model as model_lib
from tfaction.ops import soft_nms

TASK_NAME = "actionformer"
TASK_MODULE = "tfaction.tasks.actionformer"
# np.linspace floats, as the authors' datasets define them
# (linspace(0.3, 0.7, 5)[1] = 0.39999999999999997).
THUMOS_TIOUS = tuple(np.linspace(0.3, 0.7, 5).tolist())
# `evaluation.variant` values (`activitynet_detection` variants).
EVALUATION_VARIANTS = ("activitynet", "actionformer")
# ActionFormer arguments that are not `model` keys: task.max_seq_len
# gives max_seq_len (input_dim and num_classes, from the data, have no
# default).
_NOT_MODEL_KEYS = ("max_seq_len",)


def model_defaults():
    """The `model` section: `ActionFormer.__init__` arguments and defaults.

    A scalar default `window_size` is written once per pyramid level
    (`1 + arch[2]`), as the recipes list it.

    Returns:
        Dict argument name -> default.

    Example:

    ```python
    model_defaults()["embed_dim"]    # 512
    ```
    """
    defaults = config_lib.constructor_defaults(model_lib.ActionFormer,
                                               exclude=_NOT_MODEL_KEYS)
    levels = 1 + defaults["arch"][2]
    defaults["window_size"] = tuple(model_lib.level_windows(
        defaults["window_size"], levels))
    return defaults


def task_config():
    """Returns the `task` section with every key's default (locked).

    Returns:
        An `ml_collections.ConfigDict`.

    Example:

    ```python
    task = task_config()
    task.max_seq_len = 192
    ```
    """
    config = ml_collections.ConfigDict({
        "name": TASK_NAME,
        "module": TASK_MODULE,
        "data_dir": "",            # tfaction.data.convert output folder
        "train_subset": "training",
        "eval_subset": "validation",
        "max_seq_len": 2304,       # training length (pad / crop)
        "max_buffer_len_factor": 6.0,  # serving accepts this x max_seq_len
        "trunc_thresh": 0.5,       # part of a segment a crop must keep
        "crop_ratio": (0.9, 1.0),  # random crop of shorter videos; () = off
        "resample_length": 0,      # ActivityNet: resample to this length
        # ActivityNet dataset rules: drop duplicate annotations (training);
        # drop / clamp training annotations past the features.
        "remove_duplicate_segments": False,
        "clip_segments_to_features": False,
        "class_agnostic": False,   # ActivityNet: one "action" class
        "max_segments": 0,         # pad GT per video (0 = batch maximum)
        "shuffle_buffer_size": 64,
        # ActionFormer arguments (see its docstring); input_splits /
        # projection_dims: several concatenated feature sets, each with
        # its own 1x1 projection (channels in, out); None = one set.
        "model": model_defaults(),
        "loss": {
            "center_sample_radius": 1.5,  # positives near segment centres
            "loss_weight": 1.0,        # regression loss weight
            "label_smoothing": 0.0,
            "init_loss_norm": 100.0,   # initial positive-count normaliser
            "loss_norm_momentum": 0.9,  # its EMA momentum
            "focal_alpha": 0.25,
            "focal_gamma": 2.0,
        },
        "inference": {
            "pre_nms_thresh": 0.001,   # score threshold per level
            "pre_nms_topk": 2000,      # candidates kept per level
            "duration_thresh": 0.05,   # shortest segment (grid units)
            "nms_method": "gaussian",  # soft_nms.METHODS
            "iou_threshold": 0.1,
            "min_score": 0.001,
            "max_seg_num": 200,        # detections per video
            "multiclass_nms": True,    # NMS within each class
            "nms_sigma": 0.5,          # Gaussian Soft-NMS sigma
            "voting_thresh": 0.7,      # score voting IoU (0 = off)
            # ActivityNet: external video classifier scores (JSON).
            "ext_score_file": "",
            "fusion_topk_classes": 2,
            "fusion_topk_segments": 200,
        },
        "evaluation": {
            # Floats as given; recipes build them with np.linspace, as the
            # authors do (boundary matches depend on the last bits).
            "tiou_thresholds": THUMOS_TIOUS,
            # activitynet: the official ActivityNet evaluator; actionformer:
            # the authors' `libs/utils/metrics.py` (short / duplicated GT
            # removed; needed for recall_top_k).
            "variant": "activitynet",
            # k of Recall@kx at every threshold (the authors' Ego4D
            # metric, e.g. (1, 5)); () = off.
            "recall_top_k": (),
            # Predictions of classes absent from the evaluated GT do not
            # change the mAP (it averages over GT classes): drop them.
            "skip_unknown_labels": True,
        },
    })
    return config.lock()


def experiment_config():
    """Returns the THUMOS14 I3D experiment (the base of every recipe).

    Returns:
        An `ml_collections.ConfigDict`, locked but for the task section's
        values.

    Example:

    ```python
    def get_config():
        config = actionformer_config.experiment_config()
        config.task.data_dir = "data/anet_tsp"
        config.task.max_seq_len = 192
        return config
    ```
    """
    config = config_lib.base_config()
    config.task = task_config()
    config.trainer.epochs = 35          # 30 + 5 warm-up epochs
    config.trainer.global_batch_size = 2
    config.trainer.eval_batch_size = 0  # = global batch (1 per GPU on 2)
    config.trainer.checkpoint_interval = 500
    config.trainer.log_interval = 20
    config.trainer.seed = 1234567891
    config.optimizer.name = "adamw"
    config.optimizer.lr = 1e-4
    config.optimizer.weight_decay = 0.05   # conv / dense kernels only
    config.optimizer.weight_decay_exclude = ()
    config.optimizer.epsilon = 1e-8
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup_epochs = 5
    config.optimizer.min_lr_ratio = 1e-8 / config.optimizer.lr
    config.optimizer.clip_norm = 1.0
    config.ema.enabled = True
    config.ema.decay = 0.999
    config.ema.evaluate_with_ema = True
    return config


def _require(ok, key, value, expected):
    if not ok:
        raise errors.ConfigError(f"task.{key}={value!r} {expected}")


def validate(config):
    """Checks an ActionFormer `task` section; builds nothing.

    Args:
        config: the `task` section.

    Raises:
        ConfigError: an unknown or missing key, or a value that does not
            fit the others, e.g. "task.model.window_size=(9, 9) needs one
            window per pyramid level: 6 (1 + task.model.arch[2])".

    Example:

    ```python
    validate(config.task)
    ```
    """
    config_lib.check_keys(config, task_config(), open_sections=(),
                          prefix="task.")
    m = config.model
    arch = tuple(m.arch)
    _require(len(arch) == 3 and min(arch) >= 0, "model.arch", m.arch,
             "needs 3 layer counts >= 0 (embedding convs, stem blocks, "
             "downsampling blocks)")
    levels = 1 + arch[2]
    if isinstance(m.window_size, (list, tuple)):
        _require(len(m.window_size) == levels, "model.window_size",
                 m.window_size, f"needs one window per pyramid level: "
                 f"{levels} (1 + task.model.arch[2]), or a single int")
    _require(len(m.regression_range) == levels and all(
        len(r) == 2 and r[0] < r[1] for r in m.regression_range),
        "model.regression_range", m.regression_range,
        f"needs one (lo, hi) pair with lo < hi per pyramid level: {levels} "
        "(1 + task.model.arch[2])")
    splits, dims = m.input_splits, m.projection_dims
    _require((splits is None) == (dims is None), "model.input_splits",
             splits, f"and task.model.projection_dims={dims!r} must both be "
             "set (one entry per feature set) or both be None")
    if splits is not None:
        _require(len(splits) == len(dims) > 0, "model.input_splits", splits,
                 f"and task.model.projection_dims={dims!r} need the same "
                 "number of entries (one per feature set)")
    div = model_lib.max_div_factor_of(
        model_lib.level_windows(m.window_size, levels))
    _require(config.max_seq_len > 0 and config.max_seq_len % div == 0,
             "max_seq_len", config.max_seq_len,
             f"must be a positive multiple of {div}, the model's padding "
             "unit (max_div_factor) for these windows and levels")
    _require(config.max_buffer_len_factor >= 1.0, "max_buffer_len_factor",
             config.max_buffer_len_factor, "must be >= 1")
    crop = tuple(config.crop_ratio)
    _require(not crop or (len(crop) == 2 and 0 < crop[0] <= crop[1] <= 1),
             "crop_ratio", config.crop_ratio,
             "must be () (no crop) or two ratios lo <= hi in (0, 1]")
    _require(0.0 <= config.trunc_thresh <= 1.0, "trunc_thresh",
             config.trunc_thresh, "must be in [0, 1]")
    _require(config.inference.nms_method in soft_nms.METHODS,
             "inference.nms_method", config.inference.nms_method,
             f"must be one of {soft_nms.METHODS}")
    ev = config.evaluation
    _require(ev.variant in EVALUATION_VARIANTS, "evaluation.variant",
             ev.variant, f"must be one of {EVALUATION_VARIANTS}")
    _require(all(isinstance(k, int) and k >= 1 for k in ev.recall_top_k),
             "evaluation.recall_top_k", ev.recall_top_k,
             "must be () or positive integers k of Recall@kx")
    _require(not ev.recall_top_k or ev.variant == "actionformer",
             "evaluation.recall_top_k", ev.recall_top_k,
             "needs task.evaluation.variant='actionformer' (the authors' "
             "Recall@kx)")
    _require(len(ev.tiou_thresholds) > 0 and all(
        0.0 <= t <= 1.0 for t in ev.tiou_thresholds),
        "evaluation.tiou_thresholds", ev.tiou_thresholds,
        "must be one or more floats in [0, 1] (e.g. "
        "tuple(np.linspace(0.1, 0.5, 5).tolist()))")
