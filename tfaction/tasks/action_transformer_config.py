"""Video Action Transformer task config: defaults, types, cross-field rules.

* `task_config()`: the `task` section read by
  `tfaction.tasks.action_transformer.ActionTransformerTask`, every key with
  its default; the `model` defaults are the `ActionTransformer`
  constructor's (same argument names);
* `experiment_config(head)`: a whole experiment, the paper's AVA recipe
  (Girdhar et al., CVPR 2019, §3.5) with one of its heads; every
  `action_transformer_*` recipe starts from it;
* `validate(config)`: unknown or missing keys and the rules that tie keys
  together, each as a `ConfigError` naming the key.

The recipe: 64-frame clips at 400x400 around the keyframe, random flips and
crops; I3D (Kinetics-400) trunk with frozen batch-norm statistics, RPN and
heads from scratch; synchronous SGD (momentum 0.9), effective batch 30
clips, learning rate 0.1 with a linear warm-up from 0.01 over the first
1,000 iterations, then cosine annealing over 500K iterations; R = 300
proposals. Momentum, weight decay and the crop range are not given in the
paper ([interp]: momentum 0.9, no weight decay, crops of 70-100% of each
side). `task.trunk_weights` is the local I3D checkpoint (DeepMind's TF1
`rgb_imagenet/model.ckpt` or a keras-kinetics-i3d `.h5`); nothing is
downloaded.

Example:

```python
from tfaction.tasks import action_transformer_config

config = action_transformer_config.experiment_config("tx")
config.task.data_dir = "data/ava/records"
action_transformer_config.validate(config.task)
```
"""

import dataclasses

import ml_collections

from tfaction import config as config_lib
from tfaction import errors
from tfaction.data import keyframe_boxes_pipeline
from tfaction.layers import unit3d
from tfaction.models.action_transformer import model as model_lib

TASK_NAME = "action_transformer"
TASK_MODULE = "tfaction.tasks.action_transformer"
# ActionTransformer arguments that are not `model` keys: the data gives
# the classes.
_NOT_MODEL_KEYS = ("num_classes",)
# KeyframeBoxesConfig fields the `clips` section may set.
CLIPS_KEYS = tuple(
    f.name for f in dataclasses.fields(
        keyframe_boxes_pipeline.KeyframeBoxesConfig)
    if f.name not in ("num_classes", "class_ids", "batch_size",
                      "drop_remainder", "deterministic"))
_TUPLE_CLIPS_KEYS = ("image_size", "crop_scale", "mean", "std")
_TUPLE_MODEL_KEYS = ("anchor_scales", "anchor_aspect_ratios",
                     "location_spatial_units", "location_temporal_units")
BOX_SOURCES = ("detected", "groundtruth")
TRUNK_WEIGHT_FORMATS = ("auto", "tf1", "h5")
BATCH_NORMS = unit3d.BATCH_NORMS


def task_config():
    """Returns the `task` section with every key's default (locked).

    Returns:
        An `ml_collections.ConfigDict`.

    Example:

    ```python
    task = task_config()
    task.clips.num_frames = 32
    ```
    """
    config = ml_collections.ConfigDict({
        "name": TASK_NAME,
        "module": TASK_MODULE,
        "data_dir": "",        # converter output (--format=ava)
        "train_subset": "train",
        "eval_subset": "val",
        # KeyframeBoxesConfig fields (tfaction.data.keyframe_boxes_pipeline)
        "clips": {
            "num_frames": 64,          # T around the keyframe
            "stride": 1,               # every stored frame (25 fps)
            "image_size": (400, 400),
            "crop": True,              # random crops (training)
            "crop_scale": (0.7, 1.0),  # [interp] fraction of each side
            "min_box_size": 0.02,
            "flip": True,              # random horizontal flips
            "max_boxes": 32,           # people per keyframe (padded)
            "mean": 127.5,             # I3D pixels in [-1, 1]
            "std": 127.5,
            "bgr": False,
            "shuffle_buffer_size": 64,
            "cycle_length": None,
            "dct_method": "INTEGER_ACCURATE",
        },
        # ActionTransformer arguments and defaults (see its docstring).
        "model": config_lib.constructor_defaults(
            model_lib.ActionTransformer, exclude=_NOT_MODEL_KEYS),
        "trunk_weights": "",           # local I3D .ckpt prefix or .h5
        "trunk_weights_format": "auto",  # auto, tf1 or h5
        "trunk_weights_scope": "RGB",  # TF1 checkpoints: RGB / Flow / ""
        "init_checkpoint": "",         # a tfaction run or checkpoint
        # The frozen-statistics I3D needs its Kinetics weights: refuse to
        # start without trunk_weights / init_checkpoint unless True.
        "train_from_scratch": False,
        "losses": {
            "rpn_minibatch_size": 256,
            "rpn_positive_fraction": 0.5,
            "rpn_localization_weight": 2.0,
            "rpn_objectness_weight": 1.0,
            # Training prunes anchors that cross the image (TF OD API).
            "rpn_inside_anchors_only": True,
            "second_stage_batch_size": 64,
            "second_stage_positive_fraction": 0.25,
            # Ground-truth boxes join the proposals the second-stage
            # minibatch is sampled from (Detectron's practice; not in the
            # TF OD API): positives from the first step on, before the RPN
            # finds the people.
            "add_groundtruth_proposals": False,
            "localization_weight": 2.0,
            "classification_weight": 1.0,
        },
        "evaluation": {
            "boxes": "detected",       # or groundtruth (the paper's GT rows)
            "nms_iou_threshold": 0.6,
            "max_detections": 100,
            "rows_per_keyframe": 50,   # the official evaluator's cap
            "label_map": "",           # "" = the data's label_map.pbtxt
        },
    })
    return config.lock()


def experiment_config(head="tx", query="high_res"):
    """Returns the paper's AVA experiment with `head` and `query`.

    Args:
        head: "tx", "i3d" or "tx_i3d".
        query: "high_res" or "low_res" (Tx heads).

    Returns:
        An `ml_collections.ConfigDict`.

    Raises:
        ConfigError: unknown head or query.

    Example:

    ```python
    def get_config():
        config = action_transformer_config.experiment_config("tx_i3d")
        config.task.data_dir = "data/ava/records"
        return config
    ```
    """
    if head not in model_lib.HEADS:
        raise errors.ConfigError(f"unknown head {head!r}; expected one of "
                                 f"{model_lib.HEADS}")
    if query not in model_lib.QUERIES:
        raise errors.ConfigError(f"unknown query {query!r}; expected one "
                                 f"of {model_lib.QUERIES}")
    config = config_lib.base_config()
    config.task = task_config()
    config.task.model.head = head
    config.task.model.query = query
    config.trainer.global_batch_size = 30
    config.trainer.eval_batch_size = 30
    config.trainer.train_steps = 500_000
    config.trainer.checkpoint_interval = 5000
    config.trainer.log_interval = 100
    opt = config.optimizer
    opt.name = "sgd"
    opt.momentum = 0.9
    opt.lr = 0.1
    opt.schedule = "cosine"
    opt.warmup_steps = 1000
    opt.warmup_start_ratio = 0.1   # 0.01 -> 0.1
    opt.min_lr_ratio = 0.0
    opt.weight_decay = 0.0
    return config


def ava_experiment_config(head="tx", query="high_res"):
    """`experiment_config` on AVA v2.1 records, scored on the 60 classes.

    Args:
        head: "tx", "i3d" or "tx_i3d".
        query: "high_res" or "low_res".

    Returns:
        An `ml_collections.ConfigDict` reading `data/ava/records`
        (`--format=ava` output, all 80 classes) and evaluating with the
        official 60-class label map.
    """
    config = experiment_config(head, query)
    config.task.data_dir = "data/ava/records"
    config.task.evaluation.label_map = "ava60"
    return config


def clips_values(clips):
    """The `clips` section as `KeyframeBoxesConfig` keyword arguments.

    Args:
        clips: the `task.clips` section.

    Returns:
        A dict (sequences as tuples).
    """
    return config_lib.section_values(clips, _TUPLE_CLIPS_KEYS)


def model_values(model):
    """The `model` section as `ActionTransformer` keyword arguments."""
    values = dict(model)
    for key in _TUPLE_MODEL_KEYS:
        values[key] = tuple(values[key])
    return values


def require_weights(config):
    """The I3D trunk must start from weights.

    Args:
        config: the `task` section.

    Raises:
        ConfigError: no `trunk_weights` nor `init_checkpoint`, unless
            `train_from_scratch`.
    """
    if config.trunk_weights or config.init_checkpoint or (
            config.train_from_scratch):
        return
    raise errors.ConfigError(
        "task.trunk_weights is empty: the I3D trunk (frozen batch-norm "
        "statistics) would keep its random initialisation. Set "
        "task.trunk_weights to a local I3D checkpoint (DeepMind's "
        "rgb_imagenet/model.ckpt or a keras-kinetics-i3d .h5), or "
        "task.init_checkpoint, or task.train_from_scratch=True to train "
        "from random weights on purpose")


def validate(config, require_trunk_weights=False):
    """Checks an Action Transformer `task` section; builds nothing.

    Args:
        config: the `task` section.
        require_trunk_weights: also apply `require_weights`.

    Raises:
        ConfigError: an unknown or missing key, or a value that does not
            fit the others, naming the key.

    Example:

    ```python
    validate(config.task)
    ```
    """
    config_lib.check_keys(config, task_config(), prefix="task.")
    try:
        keyframe_boxes_pipeline.KeyframeBoxesConfig(
            **clips_values(config.clips))
    except (errors.ConfigError, TypeError, ValueError) as e:
        raise errors.ConfigError(f"task.clips: {e}") from None
    m = config.model
    if m.head not in model_lib.HEADS:
        raise errors.ConfigError(f"task.model.head={m.head!r} must be one "
                                 f"of {model_lib.HEADS}")
    if m.query not in model_lib.QUERIES:
        raise errors.ConfigError(f"task.model.query={m.query!r} must be "
                                 f"one of {model_lib.QUERIES}")
    if m.trunk_batch_norm not in BATCH_NORMS:
        raise errors.ConfigError(
            f"task.model.trunk_batch_norm={m.trunk_batch_norm!r} must be "
            f"one of {BATCH_NORMS} ('batch' trains the statistics, for "
            "training from scratch)")
    if m.ffn_input not in ("attended", "query"):
        raise errors.ConfigError(f"task.model.ffn_input={m.ffn_input!r} "
                                 "must be 'attended' or 'query'")
    if config.evaluation.boxes not in BOX_SOURCES:
        raise errors.ConfigError(
            f"task.evaluation.boxes={config.evaluation.boxes!r} must be one "
            f"of {BOX_SOURCES}")
    if config.trunk_weights_format not in TRUNK_WEIGHT_FORMATS:
        raise errors.ConfigError(
            f"task.trunk_weights_format={config.trunk_weights_format!r} "
            f"must be one of {TRUNK_WEIGHT_FORMATS}")
    if config.trunk_weights and float(m.trunk_width_multiplier) != 1.0:
        raise errors.ConfigError(
            "task.trunk_weights loads I3D, whose width is 1.0; "
            f"task.model.trunk_width_multiplier={m.trunk_width_multiplier}")
    losses = config.losses
    for key in ("rpn_positive_fraction", "second_stage_positive_fraction"):
        if not 0.0 < float(losses[key]) <= 1.0:
            raise errors.ConfigError(f"task.losses.{key}={losses[key]} must "
                                     "be in (0, 1]")
    for key in ("rpn_minibatch_size", "second_stage_batch_size"):
        if int(losses[key]) < 1:
            raise errors.ConfigError(f"task.losses.{key}={losses[key]} must "
                                     "be >= 1")
    if int(m.num_proposals) < 1:
        raise errors.ConfigError(f"task.model.num_proposals="
                                 f"{m.num_proposals} must be >= 1")
    if require_trunk_weights:
        require_weights(config)
