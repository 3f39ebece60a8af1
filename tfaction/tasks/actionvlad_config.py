"""ActionVLAD task config: defaults, types and cross-field rules.

* `task_config()`: the `task` section read by
  `tfaction.tasks.actionvlad.ActionVLADTask`, every key with its default;
  the `model` defaults are those of the `ActionVLAD` constructor (same
  argument names);
* `experiment_config(stage)`: a whole experiment, the HMDB51 RGB-stream
  recipe of rohitgirdhar/ActionVLAD's training scripts (`experiments/001_*`,
  `003_*`); every `actionvlad_*` recipe starts from it;
* `validate(config)`: unknown or missing keys and the rules that tie keys
  together (modality and flow stacks, crops inside the resized frame,
  trainable groups, weights of frozen layers), each as a `ConfigError`
  naming the key.

Stages of `experiment_config`:

* `stage1` (default): train the classifier only, NetVLAD frozen at the
  k-means centres (`task.centers_file`, from `python -m
  experiments.actionvlad_init_centers`), trunk frozen; Adam (eps 1e-4),
  lr 1e-2 x0.1 every 5,000 steps, 10,000 steps;
* `stage2`: start from the stage-1 run (`task.init_checkpoint`) and train
  classifier + NetVLAD + conv5 (`last_block`) at lr 1e-4 -> 1e-5 after
  5,000 steps, 8,000 steps.

Both: batch 16 videos of T = 25 frames, gradient norm clipped per variable
to 5, L2 4e-5 in TF-slim terms (Keras `L2(2e-5)`) on conv and classifier
kernels, none on NetVLAD; no dropout (disabled in the released code).
`task.trunk_weights` is the local ImageNet VGG16 file (Keras `.h5` or the
TF-slim checkpoint of the release); nothing is downloaded.

Example:

```python
from tfaction.tasks import actionvlad_config

config = actionvlad_config.experiment_config("stage2")
config.task.data_dir = "data/hmdb51/records/split1"
actionvlad_config.validate(config.task, weights_for=())
```
"""

import dataclasses

import ml_collections

from tfaction import config as config_lib
from tfaction import errors
from tfaction.data import frames_pipeline
from tfaction.models.actionvlad import model as model_lib

TASK_NAME = "actionvlad"
TASK_MODULE = "tfaction.tasks.actionvlad"
STAGES = ("stage1", "stage2")
# Caffe / VGG means in BGR order (after the RGB -> BGR flip).
BGR_MEAN = (104.0, 117.0, 123.0)
# Parts whose frozen layers need weights: (part, key giving them, name).
_WEIGHTED = (("trunk", "trunk_weights", "trunk"),
             ("netvlad", "centers_file", "NetVLAD layer"))
WEIGHTED_PARTS = tuple(part for part, _, _ in _WEIGHTED)
# FramesConfig fields the `frames` section may set.
FRAMES_KEYS = tuple(f.name for f in dataclasses.fields(
    frames_pipeline.FramesConfig))
# Frames keys whose values are tuples (lists from JSON or overrides).
_TUPLE_FRAMES_KEYS = ("crop_size", "crop_scales", "resize", "mean", "std")
# ActionVLAD arguments that are not `model` keys: the data gives
# input_channels (and num_classes), task.frames.crop_size gives crop_size.
_NOT_MODEL_KEYS = ("input_channels", "crop_size")


def task_config():
    """Returns the `task` section with every key's default (locked).

    Returns:
        An `ml_collections.ConfigDict`.

    Example:

    ```python
    task = task_config()
    task.frames.num_steps = 8
    ```
    """
    config = ml_collections.ConfigDict({
        "name": TASK_NAME,
        "module": TASK_MODULE,
        "data_dir": "",            # converter output (--format=hmdb51_frames)
        "train_subset": "train",
        "eval_subset": "test",
        # FramesConfig fields (tfaction.data.frames_pipeline).
        "frames": {
            "modality": "rgb",        # or "flow"
            "sampler": "actionvlad",  # T uniform, deterministic
            "num_steps": 25,          # frames (flow: stacks) per video
            "flow_stack": 1,          # flow frames per stack (rgb: 1)
            "resize": (256, 340),     # aspect not kept, as the reference
            "crop_size": (224, 224),
            "train_crop": "multiscale",  # h, w from 224 x crop_scales
            "crop_scales": (1.0, 0.875, 0.75, 0.66),
            "flip": True,
            "test_crop": "center",
            # The reference's centre crop of a 256x340 frame.
            "test_crop_offsets": ((16, 60),),
            "mean": BGR_MEAN,
            "std": 1.0,
            "bgr": True,
            "shuffle_buffer_size": 256,
        },
        # ActionVLAD arguments and defaults (see its docstring): trunk
        # (model_lib.TRUNKS), endpoint, filters, num_clusters, alpha,
        # trunk_weight_decay, classifier_weight_decay.
        "model": config_lib.constructor_defaults(model_lib.ActionVLAD,
                                                 exclude=_NOT_MODEL_KEYS),
        "trunk_weights": "",       # local .h5 or slim checkpoint
        "trunk_weights_format": "auto",  # auto, keras or slim
        "centers_file": "",        # k-means centres (.npz)
        "init_checkpoint": "",     # stage 2: the stage-1 run or checkpoint
        # A stage that freezes the trunk or NetVLAD refuses to start without
        # their weights (trunk_weights / centers_file / init_checkpoint);
        # True accepts random frozen layers on purpose.
        "train_from_scratch": False,
        "trainable": ("classifier",),  # model_lib.GROUPS, or ("all",)
        "multi_label": False,      # sigmoid + mAP (Charades)
        "top_k": 5,                # classes in the serving top-k
        # `python -m experiments.actionvlad_init_centers` settings.
        "centers": {
            "num_frames": 5000,        # random training frames (one per
            "frames_per_video": 1,     # video and pass), first 5,000 as
            "max_descriptors": 1_000_000,  # the reference
            "minibatch_threshold": 500_000,
            "seed_sample": 50_000,
            "batch_size": 16,
        },
    })
    return config.lock()


def experiment_config(stage="stage1"):
    """Returns the HMDB51 RGB-stream experiment of one training stage.

    Args:
        stage: "stage1" or "stage2" (the text after `:` in
            `--config=...py:<stage>`); "" or None = "stage1".

    Returns:
        An `ml_collections.ConfigDict`.

    Raises:
        ConfigError: unknown stage.

    Example:

    ```python
    def get_config(stage="stage1"):
        config = actionvlad_config.experiment_config(stage)
        config.task.data_dir = "data/hmdb51/records/split1"
        return config
    ```
    """
    stage = stage or "stage1"
    if stage not in STAGES:
        raise errors.ConfigError(f"unknown ActionVLAD stage {stage!r}; "
                                 f"expected one of {STAGES}")
    config = config_lib.base_config()
    config.task = task_config()
    config.task.model.trunk_weight_decay = 2e-5      # slim l2(4e-5)
    config.task.model.classifier_weight_decay = 2e-5
    config.trainer.global_batch_size = 16
    config.trainer.eval_batch_size = 4
    config.trainer.checkpoint_interval = 1000
    config.trainer.log_interval = 50
    opt = config.optimizer
    opt.name = "adam"
    opt.epsilon = 1e-4
    opt.schedule = "step"
    opt.decay_rate = 0.1
    opt.decay_steps = 5000
    opt.clip_norm_per_variable = 5.0
    opt.weight_decay = 0.0         # L2 is in the model's regularisers
    if stage == "stage1":
        opt.lr = 1e-2
        config.trainer.train_steps = 10000
    else:
        config.task.trainable = ("classifier", "netvlad", "last_block")
        opt.lr = 1e-4
        config.trainer.train_steps = 8000
    return config


def frames_values(frames):
    """The `frames` section as `FramesConfig` keyword arguments.

    Sequences become tuples (`test_crop_offsets`: tuple of pairs).

    Args:
        frames: the `task.frames` section.

    Returns:
        A dict.
    """
    values = config_lib.section_values(frames, _TUPLE_FRAMES_KEYS)
    if values.get("test_crop_offsets") is not None:
        values["test_crop_offsets"] = tuple(
            tuple(o) for o in values["test_crop_offsets"])
    return values


def frozen_parts(trainable):
    """The parts ("trunk", "netvlad") that `trainable` freezes.

    The trunk counts as frozen when any of it is (`last_block` alone
    leaves the earlier blocks frozen).

    Args:
        trainable: the `task.trainable` groups.

    Returns:
        A tuple of part names.
    """
    groups = tuple(trainable)
    if groups == ("all",):
        return ()
    return tuple(part for part in WEIGHTED_PARTS if part not in groups)


def require_weights(config, parts=WEIGHTED_PARTS):
    """Frozen `parts` must start from weights.

    Args:
        config: the `task` section.
        parts: the parts about to be built ("trunk", "netvlad").

    Raises:
        ConfigError: naming every empty key whose part the stage freezes,
            unless `init_checkpoint` restores the whole model or
            `train_from_scratch` accepts random frozen layers.

    Example:

    ```python
    require_weights(config.task, ("trunk",))
    ```
    """
    if config.init_checkpoint or config.train_from_scratch:
        return
    frozen = frozen_parts(config.trainable)
    missing = [(f"task.{key}", name) for part, key, name in _WEIGHTED
               if part in frozen and part in parts and not config[key]]
    if not missing:
        return
    keys = " and ".join(key for key, _ in missing)
    names = " and the ".join(name for _, name in missing)
    raise errors.ConfigError(
        f"{keys} {'is' if len(missing) == 1 else 'are'} empty, but "
        f"task.trainable={tuple(config.trainable)} freezes the {names}: it "
        f"would keep its random initialisation. Set {keys}, or "
        f"task.init_checkpoint (an earlier stage), or "
        f"task.train_from_scratch=True to train from random weights on "
        f"purpose")


def _check_frames(frames):
    unknown = sorted(set(frames) - set(FRAMES_KEYS))
    if unknown:
        raise errors.ConfigError(
            f"unknown task.frames keys {unknown}; FramesConfig has "
            f"{sorted(FRAMES_KEYS)}")
    try:
        values = frames_pipeline.FramesConfig(**frames_values(frames))
    except errors.ConfigError as e:
        raise errors.ConfigError(f"task.frames: {e}") from None
    if values.modality == "rgb" and values.flow_stack != 1:
        raise errors.ConfigError(
            f"task.frames.flow_stack={values.flow_stack} stacks flow frames; "
            "with task.frames.modality='rgb' it must be 1")
    resize, crop = values.resize, tuple(values.crop_size)
    if isinstance(resize, int) and min(crop) > resize:
        raise errors.ConfigError(
            f"task.frames.crop_size={crop} cannot fit a frame whose shorter "
            f"side is task.frames.resize={resize}")
    if isinstance(resize, tuple):
        offsets = values.test_crop_offsets or ((0, 0),)
        need = (max(y for y, _ in offsets) + crop[0],
                max(x for _, x in offsets) + crop[1])
        if need[0] > resize[0] or need[1] > resize[1]:
            raise errors.ConfigError(
                f"task.frames.crop_size={crop} at task.frames."
                f"test_crop_offsets={values.test_crop_offsets} needs frames "
                f"of at least {need}, larger than task.frames.resize="
                f"{resize}")


def validate(config, weights_for=WEIGHTED_PARTS):
    """Checks an ActionVLAD `task` section; builds nothing.

    Args:
        config: the `task` section.
        weights_for: the parts to be built from this config whose frozen
            layers need weights (`require_weights`); () skips that rule
            (a command that computes those weights, or only reads data).

    Raises:
        ConfigError: an unknown or missing key, or a value that does not
            fit the others, e.g. "task.frames.flow_stack=10 stacks flow
            frames; with task.frames.modality='rgb' it must be 1".

    Example:

    ```python
    validate(config.task)
    ```
    """
    config_lib.check_keys(config, task_config(), open_sections=("frames",),
                          prefix="task.")
    _check_frames(config.frames)
    if config.model.trunk not in model_lib.TRUNKS:
        raise errors.ConfigError(
            f"task.model.trunk={config.model.trunk!r} must be one of "
            f"{model_lib.TRUNKS}")
    groups = tuple(config.trainable)
    if groups != ("all",) and (not groups or not set(groups) <= set(
            model_lib.GROUPS)):
        raise errors.ConfigError(
            f"task.trainable={groups} must be ('all',) or some of "
            f"{model_lib.GROUPS}")
    require_weights(config, weights_for)
