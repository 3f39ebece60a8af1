"""AdaFocus V2 task config: defaults, types and cross-field rules.

* `task_config()`: the `task` section read by
  `tfaction.tasks.adafocus.AdaFocusV2Task`, every key with its default;
  the `model` defaults are those of the `AdaFocusV2` constructor (same
  argument names; `num_frames` and `frame_size` come from `frames`);
* `experiment_config(dataset, glance, patch_size)`: a whole experiment,
  the authors' training script for ActivityNet ("actnet"), FCVID
  ("fcvid") or Mini-Kinetics ("minik"); every `adafocus_v2_*` recipe
  starts from it;
* `validate(config)`: unknown or missing keys and the rules that tie keys
  together, each as a `ConfigError` naming the key.

The recipe (Wang et al., CVPR 2022, and the authors' `scripts/train.sh`):

* data: 16 frames per video by TSN sampling (one random frame per equal
  segment in training, segment centres in evaluation), reordered
  coarse-to-fine (`frame_order`, their `--sample`); in training one
  multi-scale crop (scales 1, .875, .75, .66 of the shorter side, TSN's
  fixed offsets) and flip for all frames, resized to 224; in evaluation
  the centre 224 crop of frames resized to 256 (shorter side); ImageNet
  mean / std. A video with several labels trains on one of them at random
  (`label_choice`, the authors' loader permutes them on every access);
* model: MobileNet-V2 glance on the full frame (or ResNet-50 on a 96 x 96
  downsample), ResNet-50 focus on a `P x P` patch (96, 128 or 160), the
  `PolicySTN` (2048 units) and the `PoolingClassifier` (4096 units),
  dropout 0.2 before every head;
* training: one stage, two forward passes per batch (the policy's patches
  with its input detached, and uniformly random patches); per pass the
  cross-entropy of the classifier at all 16 steps and of the glance and
  focus heads on every frame, each against the video's label; the loss is
  the mean of the two passes;
* optimisation: SGD, momentum 0.9, learning rate 0.002 (Mini-Kinetics
  0.003) with per-group multipliers (`lr_multipliers`: policy 0.1, glance
  trunk and head 0.5, focus trunk and head 1, classifier 5), PyTorch's
  coupled L2 decay 1e-4 on every weight (`weight_decay`; Keras' decoupled
  decay is off), batch 32 (Mini-Kinetics 48), cosine annealing stepped per
  epoch (`optimizer.schedule = "cosine_per_epoch"`). The authors run
  epochs 0 ... 50 at `0.5 lr (1 + cos(pi e / 50))`, the last two at 0.1 %
  and 0 of the peak rate; this recipe runs the 49 epochs 0 ... 48 at the
  same rates (`cosine_per_epoch` with 49 epochs divides by 50) and leaves
  out those two;
* evaluation: the last step's logits of every validation video:
  `cal_map` mAP (`tfaction.evaluation.adafocus_map`; ActivityNet its first
  label, FCVID all labels: `map_labels`) and top-1 (Mini-Kinetics), the
  glance head alone and the classifier on uniformly random patches as
  baselines, and GFLOPs per video.

The authors keep the checkpoint of the best validation epoch; this recipe
evaluates the final weights.

Example:

```python
from tfaction.tasks import adafocus_config

config = adafocus_config.experiment_config("actnet", "mbv2", 128)
config.task.data_dir = "data/actnet/records"
config.task.glance_weights = "pretrained/mobilenet_v2-b0353104.pth"
config.task.focus_weights = "pretrained/resnet50-19c8e357.pth"
adafocus_config.validate(config.task, require_trunk_weights=True)
```
"""

import dataclasses

import ml_collections

from tfaction import config as config_lib
from tfaction import errors
from tfaction.data import frames_pipeline
from tfaction.models.adafocus import common as model_common
from tfaction.models.adafocus.v2 import AdaFocusV2

TASK_NAME = "adafocus_v2"
TASK_MODULE = "tfaction.tasks.adafocus"
DATASETS = ("actnet", "fcvid", "minik")
GLANCES = {"mbv2": "mobilenet_v2", "res50": "resnet50"}
FRAME_ORDERS = ("natural", "coarse_to_fine")
LABEL_CHOICES = ("first", "random")
MAP_LABELS = ("first", "all")
# Parameter groups with their own learning-rate multiplier.
GROUPS = ("policy", "glance", "focus", "classifier")
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
FRAMES_KEYS = tuple(f.name for f in dataclasses.fields(
    frames_pipeline.FramesConfig))
# Frames keys whose values are tuples (lists from JSON or overrides).
_TUPLE_FRAMES_KEYS = ("crop_size", "crop_scales", "resize", "mean", "std",
                      "test_crop_offsets")
# AdaFocusV2 arguments the data and `frames` give.
_NOT_MODEL_KEYS = ("num_classes", "num_frames", "frame_size")
# Trunk weights: (key, model argument naming the trunk).
_WEIGHTS = (("glance_weights", "glance_arch"), ("focus_weights",
                                                "focus_arch"))


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
        "data_dir": "",     # --format=actnet_frames / fcvid_frames / ...
        "train_subset": "train",
        "eval_subset": "val",
        # FramesConfig fields (tfaction.data.frames_pipeline).
        "frames": {
            "sampler": "tsn",
            "num_steps": 16,          # T, also the classifier's heads
            "resize": 256,            # shorter side
            "crop_size": (224, 224),  # the model's frame size
            "train_crop": "tsn_multiscale",
            "crop_scales": (1.0, 0.875, 0.75, 0.66),
            "flip": True,
            "test_crop": "center",
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "shuffle_buffer_size": 256,
        },
        "frame_order": "coarse_to_fine",  # or "natural"
        "label_choice": "random",  # several labels: train on a random one
        "map_labels": "first",     # "all" (FCVID): every label counts
        # AdaFocusV2 arguments and defaults (see its docstring).
        "model": config_lib.constructor_defaults(AdaFocusV2,
                                                 exclude=_NOT_MODEL_KEYS),
        "lr_multipliers": {"policy": 0.1, "glance": 0.5, "focus": 1.0,
                           "classifier": 5.0},
        "weight_decay": 1e-4,      # PyTorch SGD's coupled L2 decay
        # ImageNet trunk weights (.pth, torchvision layout; MobileNet-V2
        # also in the layout AdaFocus V2 builds; the ResNet-50 glance: the
        # authors' 96 x 96 initialisation).
        "glance_weights": "",
        "focus_weights": "",
        "adafocus_weights": "",    # an authors' AdaFocus V2 .pth.tar
        "init_checkpoint": "",     # a tfaction run or checkpoint
        # The recipe refuses to start from random trunks unless True.
        "train_from_scratch": False,
        "random_patch_baseline": True,  # also score uniformly random patches
    })
    return config.lock()


def experiment_config(dataset="actnet", glance="mbv2", patch_size=128):
    """Returns the authors' AdaFocus V2 experiment on `dataset`.

    Args:
        dataset: "actnet", "fcvid" or "minik".
        glance: "mbv2" (MobileNet-V2 on the full frame) or "res50"
            (ResNet-50 on 96 x 96 frames).
        patch_size: the focus patch side (96, 128 or 160 in the paper).

    Returns:
        An `ml_collections.ConfigDict`.

    Raises:
        ConfigError: unknown dataset or glance.

    Example:

    ```python
    config = experiment_config("minik", "res50", 128)
    ```
    """
    if dataset not in DATASETS:
        raise errors.ConfigError(f"unknown AdaFocus V2 dataset {dataset!r}; "
                                 f"expected one of {DATASETS}")
    if glance not in GLANCES:
        raise errors.ConfigError(f"unknown AdaFocus V2 glance {glance!r}; "
                                 f"expected one of {sorted(GLANCES)}")
    config = config_lib.base_config()
    config.task = task_config()
    task = config.task
    task.model.glance_arch = GLANCES[glance]
    task.model.patch_size = int(patch_size)
    task.map_labels = "all" if dataset == "fcvid" else "first"
    minik = dataset == "minik"
    config.trainer.global_batch_size = 48 if minik else 32
    config.trainer.eval_batch_size = 32
    config.trainer.epochs = 49
    config.trainer.checkpoint_interval = 1000
    config.trainer.log_interval = 50
    config.trainer.seed = 1007      # the authors' default seed
    opt = config.optimizer
    opt.name = "sgd"
    opt.momentum = 0.9
    opt.lr = 0.003 if minik else 0.002
    opt.schedule = "cosine_per_epoch"
    opt.weight_decay = 0.0          # coupled decay: task.weight_decay
    return config


def parse_variant(variant):
    """`"<glance>_p<patch size>"` (a recipe's `:variant`) -> its parts.

    Args:
        variant: e.g. "mbv2_p128" or "res50_p96"; "" or None means
            "mbv2_p128".

    Returns:
        `(glance, patch_size)`, e.g. `("mbv2", 128)`.

    Raises:
        ConfigError: not of that form, or an unknown glance.

    Example:

    >>> parse_variant("res50_p96")
    ('res50', 96)
    """
    variant = variant or "mbv2_p128"
    glance, _, patch = variant.partition("_p")
    if glance not in GLANCES or not patch.isdigit() or int(patch) < 1:
        raise errors.ConfigError(
            f"unknown AdaFocus V2 variant {variant!r}; expected "
            f"'<glance>_p<patch size>' with glance in {sorted(GLANCES)}, "
            "e.g. 'mbv2_p128'")
    return glance, int(patch)


def frames_values(frames):
    """The `frames` section as `FramesConfig` keyword arguments.

    Args:
        frames: the `task.frames` section.

    Returns:
        A dict (sequences as tuples; `test_crop_offsets` pairs).
    """
    values = config_lib.section_values(frames, _TUPLE_FRAMES_KEYS)
    if values.get("test_crop_offsets") is not None:
        values["test_crop_offsets"] = tuple(
            tuple(o) for o in values["test_crop_offsets"])
    return values


def model_values(config):
    """The `AdaFocusV2` keyword arguments of a `task` section (without
    `num_classes`, which the data gives).

    Args:
        config: the `task` section.

    Returns:
        A dict.
    """
    values = config_lib.section_values(config.model, ("small_filters",))
    frames = frames_values(config.frames)
    values.update(num_frames=int(frames["num_steps"]),
                  frame_size=tuple(frames["crop_size"]))
    return values


def require_weights(config):
    """The trunks must start from weights (the recipe fine-tunes them).

    Args:
        config: the `task` section.

    Raises:
        ConfigError: naming every empty weights key, unless
            `adafocus_weights` or `init_checkpoint` restores the whole
            model or `train_from_scratch` accepts random trunks.
    """
    if (config.adafocus_weights or config.init_checkpoint
            or config.train_from_scratch):
        return
    missing = [f"task.{key}" for key, _ in _WEIGHTS if not config[key]]
    if missing:
        raise errors.ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
            f" empty: the recipe fine-tunes ImageNet trunks. Set "
            f"{' and '.join(missing)} (local .pth files), or "
            f"task.adafocus_weights / task.init_checkpoint, or "
            f"task.train_from_scratch=True to train from random weights on "
            f"purpose")


def _check_frames(config):
    frames = config.frames
    unknown = sorted(set(frames) - set(FRAMES_KEYS))
    if unknown:
        raise errors.ConfigError(
            f"unknown task.frames keys {unknown}; FramesConfig has "
            f"{sorted(FRAMES_KEYS)}")
    try:
        values = frames_pipeline.FramesConfig(**frames_values(frames))
    except errors.ConfigError as e:
        raise errors.ConfigError(f"task.frames: {e}") from None
    for key, allowed in (("modality", ("rgb",)),
                         ("sampler", ("tsn", "clip", "temporal_crop")),
                         ("num_clips", (1,))):
        if getattr(values, key) not in allowed:
            raise errors.ConfigError(
                f"task.frames.{key}={getattr(values, key)!r}: AdaFocus "
                f"needs one clip of RGB frames ({key} in {allowed})")
    if values.test_crop not in ("center", "none") or (
            values.test_crop_offsets is not None
            and len(values.test_crop_offsets) != 1):
        raise errors.ConfigError(
            f"task.frames.test_crop={values.test_crop!r}: AdaFocus scores "
            "one view per video ('center' or 'none')")
    return values


def validate(config, require_trunk_weights=False):
    """Checks an AdaFocus V2 `task` section; builds nothing.

    Args:
        config: the `task` section.
        require_trunk_weights: also apply `require_weights` (the task
            does when it builds the model; recipes leave the weights
            files to the command line).

    Raises:
        ConfigError: an unknown or missing key, or a value that does not
            fit the others, e.g. "task.model.patch_size=256 exceeds
            task.frames.crop_size=(224, 224)".

    Example:

    ```python
    validate(config.task)
    ```
    """
    config_lib.check_keys(config, task_config(), open_sections=("frames",),
                          prefix="task.")
    frames = _check_frames(config)
    for key, allowed in (("frame_order", FRAME_ORDERS),
                         ("label_choice", LABEL_CHOICES),
                         ("map_labels", MAP_LABELS)):
        if config[key] not in allowed:
            raise errors.ConfigError(f"task.{key}={config[key]!r} must be "
                                     f"one of {allowed}")
    model = config.model
    for key, choices in (("glance_arch", model_common.GLANCE_ARCHS),
                         ("focus_arch", model_common.FOCUS_ARCHS)):
        if model[key] not in choices:
            raise errors.ConfigError(f"task.model.{key}={model[key]!r} must "
                                     f"be one of {choices}")
    if int(model.patch_size) > min(frames.crop_size):
        raise errors.ConfigError(
            f"task.model.patch_size={model.patch_size} exceeds "
            f"task.frames.crop_size={tuple(frames.crop_size)}")
    for group, value in config.lr_multipliers.items():
        if group not in GROUPS or float(value) < 0:
            raise errors.ConfigError(
                f"task.lr_multipliers.{group}={value}: the groups are "
                f"{GROUPS}, each multiplier >= 0")
    if float(config.weight_decay) < 0:
        raise errors.ConfigError(f"task.weight_decay={config.weight_decay} "
                                 "must be >= 0")
    for key, arch_key in _WEIGHTS:
        if config[key] and model[arch_key] == "small":
            raise errors.ConfigError(
                f"task.{key} is set but task.model.{arch_key}='small' has "
                "no pre-trained weights format")
    if require_trunk_weights:
        require_weights(config)
