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
  baselines, and GFLOPs per video; with `early_exit_budgets`, V2+'s
  early exit (`tfaction.models.adafocus.early_exit`): thresholds on the
  max logit calibrated on the training videos for each budget `q`, the
  accuracy / mAP and expected GFLOPs at each budget (the authors'
  `test_early_exit.py`; Mini-Kinetics calibrates on 20,000 training
  videos: `early_exit_calibration_videos`).

The authors keep the checkpoint of the best validation epoch; this recipe
evaluates the final weights.

Trunk weights: `glance_weights` / `focus_weights` are the ImageNet `.pth`
files of torchvision's layout (`model.glance_variant` / `focus_variant`
"torchvision", the default), or, as the documented alternative,
keras.applications' ImageNet `.h5` files (variant "keras": MobileNetV2
`mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5`,
ResNet-50 v1 `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`, for
the focus and the ResNet-50 glance). Those are other networks (keras'
padding; ResNet v1 strides in the first 1x1 conv) with other weights, so
expect other numbers than the paper's. The frames stay ImageNet mean / std
normalised; a "keras" trunk converts them in the graph to its weights'
input (MobileNetV2 `x / 127.5 - 1`, ResNet-50 "caffe" BGR minus the mean).

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
from tfaction.models.adafocus.v1 import AdaFocusV1
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
        # authors' 96 x 96 initialisation), or keras.applications' .h5
        # (model.glance_variant / focus_variant "keras").
        "glance_weights": "",
        "focus_weights": "",
        "adafocus_weights": "",    # an authors' AdaFocus V2 .pth.tar
        "init_checkpoint": "",     # a tfaction run or checkpoint
        # The recipe refuses to start from random trunks unless True.
        "train_from_scratch": False,
        "random_patch_baseline": True,  # also score uniformly random patches
        # V2+ early exit at every evaluation: the budgets q (exit fractions
        # ~ q^k; the authors sweep 0.5, 0.6, ..., 3.9), each calibrated on
        # the training subset; () = off.
        "early_exit_budgets": (),
        "early_exit_calibration_videos": 0,  # 0: every training video
        # Export: bake the thresholds of budget `export_early_exit_budget`
        # from an evaluation's early_exit.json into the SavedModel
        # ("" = no early exit in the export).
        "export_early_exit_file": "",
        "export_early_exit_budget": 0.0,
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
    if minik:  # the authors' early exit calibrates on 20k training videos
        task.early_exit_calibration_videos = 20000
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
            f"{' and '.join(missing)} (local .pth files, or keras."
            f"applications .h5 files with the 'keras' trunk variants), or "
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


def _check_early_exit(config):
    budgets = config.early_exit_budgets
    if not isinstance(budgets, (tuple, list)) or not all(
            isinstance(q, (int, float)) and not isinstance(q, bool)
            and 0 < q < float("inf") for q in budgets):
        raise errors.ConfigError(
            f"task.early_exit_budgets={budgets!r} must be a tuple of "
            "numbers q > 0, e.g. (0.5, 1.0, 2.0); () turns early exit off")
    if int(config.early_exit_calibration_videos) < 0:
        raise errors.ConfigError(
            f"task.early_exit_calibration_videos="
            f"{config.early_exit_calibration_videos} must be >= 0 (0: every "
            "training video)")
    if bool(config.export_early_exit_file) != (
            float(config.export_early_exit_budget) > 0):
        raise errors.ConfigError(
            f"task.export_early_exit_file={config.export_early_exit_file!r}"
            f" and task.export_early_exit_budget="
            f"{config.export_early_exit_budget} go together: set both (an "
            "evaluation's early_exit.json and one of its budgets q > 0) or "
            "neither")


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
    _check_early_exit(config)
    for key, arch_key in _WEIGHTS:
        if config[key] and model[arch_key] == "small":
            raise errors.ConfigError(
                f"task.{key} is set but task.model.{arch_key}='small' has "
                "no pre-trained weights format")
    _check_trunk_variants(config)
    if require_trunk_weights:
        require_weights(config)


def trunk_weights_format(path):
    """"h5" (keras.applications' ImageNet weights) for a `.h5` file, else
    "pth" (a PyTorch file)."""
    return "h5" if str(path).endswith(".h5") else "pth"


def _check_trunk_variants(config):
    """Trunk variants against the weights files and the normalisation.

    keras.applications' `.h5` weights (the documented alternative: another
    network, other numbers) load into `"keras"` trunks only, PyTorch files
    (`*_weights`, `adafocus_weights`) into `"torchvision"` ones; a "keras"
    trunk converts ImageNet mean / std-normalised frames to its weights'
    input, so `frames.mean` / `frames.std` must be ImageNet's.
    """
    model = config.model
    for key, arch_key in _WEIGHTS:
        variant_key = arch_key.replace("_arch", "_variant")
        variant = model[variant_key]
        if variant not in model_common.TRUNK_VARIANTS:
            raise errors.ConfigError(
                f"task.model.{variant_key}={variant!r} must be one of "
                f"{model_common.TRUNK_VARIANTS}")
        if model[arch_key] == "small":
            continue
        if config[key]:
            wanted = ("keras" if trunk_weights_format(config[key]) == "h5"
                      else "torchvision")
            source = ("keras.applications'" if wanted == "keras"
                      else "PyTorch (torchvision layout)")
            if variant != wanted:
                raise errors.ConfigError(
                    f"task.{key}={config[key]!r} holds {source} weights, "
                    f"but task.model.{variant_key}={variant!r}; set "
                    f"task.model.{variant_key}={wanted!r}")
        if variant == "keras" and config.adafocus_weights:
            raise errors.ConfigError(
                f"task.adafocus_weights holds the authors' torchvision-"
                f"layout trunks, but task.model.{variant_key}='keras'")
        if variant == "keras":
            for name, want in (("mean", IMAGENET_MEAN), ("std",
                                                        IMAGENET_STD)):
                if tuple(config.frames[name]) != want:
                    raise errors.ConfigError(
                        f"task.frames.{name}={tuple(config.frames[name])} "
                        f"must be ImageNet's {want} with task.model."
                        f"{variant_key}='keras': the trunk converts "
                        f"ImageNet-normalised frames to its weights' input")


# --------------------------------------------------------------------------
# AdaFocus (V1): the four training stages of `tfaction.tasks.adafocus_v1`.
#
# The recipe (Wang et al., ICCV 2021, and the README commands of
# blackfeather-wang/AdaFocus; ActivityNet, P = 128): the data of V2 above
# (16 TSN frames, multi-scale crop + flip, ImageNet mean / std) in their
# natural order; a MobileNet-V2 glance on the full 224 frame, a ResNet-50
# focus on the patch, the `ActorCritic` policy over a 7 x 7 grid of patch
# origins and the GRU `RecurrentClassifier` (dropout 0.8). Batch 64, SGD
# momentum 0.9 with PyTorch's coupled L2 decay 1e-4, cosine annealing per
# epoch; the authors run epochs 0 ... E at `lr / 2 (1 + cos(pi e / E))`,
# these recipes run the E - 1 epochs 0 ... E - 2 at the same rates (the
# two left out are at < 1 % of the peak, as the V2 recipe does).
#
# Stages (what is not trained is frozen, in inference mode):
# 0. glance and focus as frame classifiers on full frames (cross-entropy of
#    the frame-averaged logits; `pretrain`): lr 0.01, E = 15;
# 1. focus + classifier on uniformly random patches: classifier lr 0.05,
#    focus x 0.01 (5e-4), E = 50;
# 2. the policy by PPO (reward: p(label) with its patch minus with a random
#    one): Adam 3e-4, 51 epochs (its rate is not scheduled);
# 3. the classifier on the deterministic (argmax) policy's patches: lr
#    0.005, E = 10.

V1_TASK_NAME = "adafocus_v1"
V1_TASK_MODULE = "tfaction.tasks.adafocus_v1"
V1_STAGES = (0, 1, 2, 3)
V1_PRETRAIN = ("both", "glance", "focus")
# PPO rewards of the authors' code (`get_reward`): p_t(label) minus that of
# a random patch, minus the previous step's, or p_t itself.
V1_REWARDS = ("random", "prev", "conf")
# Learning-rate groups: the glance and focus groups hold their frame heads.
V1_GROUPS = ("glance", "focus", "policy", "classifier")
# The groups each stage trains (stage 0: narrowed by `pretrain`).
V1_TRAINED = {0: ("glance", "focus"), 1: ("focus", "classifier"),
              2: ("policy",), 3: ("classifier",)}
# Authors' checkpoint entries a stage-k model holds (the previous stage's
# files must hold those of stage k - 1).
V1_ENTRIES = {0: ("glancer", "focuser"), 1: ("glancer", "focuser", "fc"),
              2: ("glancer", "focuser", "fc", "policy"),
              3: ("glancer", "focuser", "fc", "policy")}
# Per stage: (optimizer, peak lr, the authors' E, epochs run, focus lr
# multiplier, coupled decay).
_V1_STAGE_RECIPES = {0: ("sgd", 0.01, 15, 14, 1.0, 1e-4),
                     1: ("sgd", 0.05, 50, 49, 0.01, 1e-4),
                     2: ("adam", 3e-4, 50, 51, 1.0, 0.0),
                     3: ("sgd", 0.005, 10, 9, 1.0, 1e-4)}


def v1_task_config():
    """The AdaFocus V1 `task` section with every key's default (locked).

    Returns:
        An `ml_collections.ConfigDict`: the data keys of V2's
        `task_config()` (frames in their natural order), the `AdaFocusV1`
        constructor's defaults under `model`, `stage` (0 to 3),
        `pretrain` (stage 0: "both", "glance" or "focus"),
        `lr_multipliers` per group (`V1_GROUPS`), `weight_decay`, `ppo`
        (stage 2), the weights keys and `random_patch_baseline`.

    Example:

    ```python
    task = v1_task_config()
    task.stage = 2
    task.ppo.epochs = 4
    ```
    """
    config = ml_collections.ConfigDict({
        "name": V1_TASK_NAME,
        "module": V1_TASK_MODULE,
        "data_dir": "",     # --format=actnet_frames / fcvid_frames / ...
        "train_subset": "train",
        "eval_subset": "val",
        "frames": task_config().frames.to_dict(),
        "frame_order": "natural",  # V1 glances in time order
        "label_choice": "random",
        "map_labels": "first",
        "model": config_lib.constructor_defaults(AdaFocusV1,
                                                 exclude=_NOT_MODEL_KEYS),
        "stage": 0,
        "pretrain": "both",        # stage 0: the frame classifiers trained
        "lr_multipliers": {group: 1.0 for group in V1_GROUPS},
        "weight_decay": 1e-4,      # PyTorch SGD's coupled L2 decay
        "ppo": {
            "gamma": 0.7,          # discount of the per-step rewards
            "clip": 0.2,           # ratio clipped to [1 - clip, 1 + clip]
            "epochs": 1,           # updates per rollout (K_epochs)
            "value_coef": 0.5,
            "entropy_coef": 0.01,
            "reward": "random",
            "std_epsilon": 1e-5,   # returns: (R - mean) / (std + this)
        },
        # Stage 0: ImageNet trunk weights (.pth, torchvision layout).
        "glance_weights": "",
        "focus_weights": "",
        # The authors' .pth.tar files (every entry each holds is loaded):
        # stage 1 from globalcnn + localcnn, stage 2 from a stage-1 file.
        "adafocus_weights": (),
        "init_checkpoint": "",     # stage k > 0: the stage k - 1 run
        "train_from_scratch": False,  # stage 0 from random trunks
        "random_patch_baseline": True,
    })
    return config.lock()


def parse_v1_stage(variant):
    """`"stage<k>"` (a V1 recipe's `:variant`) -> k.

    Args:
        variant: "stage0" ... "stage3"; "" or None means "stage0".

    Returns:
        The stage, an int in `V1_STAGES`.

    Raises:
        ConfigError: anything else.

    Example:

    >>> parse_v1_stage("stage2")
    2
    """
    variant = variant or "stage0"
    names = [f"stage{s}" for s in V1_STAGES]
    if variant not in names:
        raise errors.ConfigError(f"unknown AdaFocus V1 stage {variant!r}; "
                                 f"expected one of {names}")
    return int(variant[len("stage"):])


def v1_experiment_config(dataset="actnet", stage=0, patch_size=128):
    """Returns the authors' AdaFocus V1 experiment of one training stage.

    Args:
        dataset: "actnet", "fcvid" or "minik" (`map_labels`).
        stage: 0, 1, 2 or 3 (see the table above).
        patch_size: the focus patch side (96, 128, 160 or 192).

    Returns:
        An `ml_collections.ConfigDict`. Stage k > 0 still needs the stage
        k - 1 model on the command line (`task.init_checkpoint` or
        `task.adafocus_weights`): the task refuses to start without it.

    Raises:
        ConfigError: unknown dataset or stage.

    Example:

    ```python
    config = v1_experiment_config("actnet", stage=2)
    config.task.init_checkpoint = "runs/adafocus_v1/stage1"
    ```
    """
    if dataset not in DATASETS:
        raise errors.ConfigError(f"unknown AdaFocus V1 dataset {dataset!r}; "
                                 f"expected one of {DATASETS}")
    if stage not in V1_STAGES:
        raise errors.ConfigError(f"unknown AdaFocus V1 stage {stage!r}; "
                                 f"expected one of {V1_STAGES}")
    name, lr, _, epochs, focus_multiplier, decay = _V1_STAGE_RECIPES[stage]
    config = config_lib.base_config()
    config.task = v1_task_config()
    task = config.task
    task.stage = stage
    task.model.patch_size = int(patch_size)
    task.model.dropout = 0.8        # the README commands
    task.map_labels = "all" if dataset == "fcvid" else "first"
    task.lr_multipliers.focus = focus_multiplier
    task.weight_decay = decay
    config.trainer.global_batch_size = 64
    config.trainer.eval_batch_size = 64
    config.trainer.epochs = epochs
    config.trainer.checkpoint_interval = 1000
    config.trainer.log_interval = 50
    config.trainer.seed = 1007      # the authors' default seed
    opt = config.optimizer
    opt.name = name
    opt.lr = lr
    opt.weight_decay = 0.0          # coupled decay: task.weight_decay
    if name == "sgd":
        opt.momentum = 0.9
        opt.schedule = "cosine_per_epoch"
    else:                           # PPO's torch.optim.Adam defaults
        opt.schedule = "constant"
        opt.epsilon = 1e-8
    return config


def v1_model_values(config):
    """The `AdaFocusV1` keyword arguments of a V1 `task` section (without
    `num_classes`, which the data gives)."""
    values = config_lib.section_values(config.model, ("small_filters",))
    frames = frames_values(config.frames)
    values.update(num_frames=int(frames["num_steps"]),
                  frame_size=tuple(frames["crop_size"]))
    if values.get("glance_size") is not None:
        values["glance_size"] = tuple(values["glance_size"])
    return values


def v1_trained_groups(config):
    """The learning-rate groups stage `config.stage` trains."""
    stage = int(config.stage)
    if stage == 0 and config.pretrain != "both":
        return (config.pretrain,)
    return V1_TRAINED[stage]


def v1_require_previous_stage(config):
    """Stage k starts from what stage k - 1 trained; stage 0 from weights.

    Args:
        config: a V1 `task` section.

    Returns:
        The key that provides the start: "init_checkpoint",
        "adafocus_weights", a trunk weights key or "train_from_scratch".

    Raises:
        ConfigError: naming what to set, e.g. "task.stage=2 starts from the
            stage-1 model: set task.init_checkpoint ...".
    """
    stage = int(config.stage)
    if config.init_checkpoint:
        return "init_checkpoint"
    if config.adafocus_weights:
        return "adafocus_weights"
    if stage == 0:
        if config.train_from_scratch:
            return "train_from_scratch"
        keys = [f"{g}_weights" for g in v1_trained_groups(config)]
        missing = [f"task.{k}" for k in keys if not config[k]]
        if not missing:
            return keys[0]
        raise errors.ConfigError(
            f"task.stage=0 fine-tunes ImageNet trunks but "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
            f" empty: set {' and '.join(missing)} (local .pth files), or "
            f"task.train_from_scratch=True to train from random weights on "
            f"purpose")
    raise errors.ConfigError(
        f"task.stage={stage} starts from the stage-{stage - 1} model: set "
        f"task.init_checkpoint to the workdir of the stage-{stage - 1} run "
        f"(or a checkpoint in its checkpoints/), or task.adafocus_weights to"
        f" the authors' .pth.tar file(s) holding the entries "
        f"{V1_ENTRIES[stage - 1]}")


def _check_range(config, key, low, high=None, integer=False):
    value = config[key]
    ok = not isinstance(value, bool) and isinstance(
        value, int if integer else (int, float))
    if not ok or value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        kind = "an int" if integer else "a number"
        raise errors.ConfigError(f"task.ppo.{key}={value!r} must be {kind} "
                                 f"{bound}")


def v1_validate(config, require_previous_stage=False):
    """Checks an AdaFocus V1 `task` section; builds nothing.

    Args:
        config: the `task` section.
        require_previous_stage: also apply `v1_require_previous_stage` (the
            task does when it starts; recipes leave the weights to the
            command line).

    Raises:
        ConfigError: an unknown or missing key, or a value that does not fit
            the others, e.g. "task.stage=4 must be one of (0, 1, 2, 3)".

    Example:

    ```python
    v1_validate(config.task)
    ```
    """
    config_lib.check_keys(config, v1_task_config(),
                          open_sections=("frames",), prefix="task.")
    frames = _check_frames(config)
    stage = config.stage
    for key, value, allowed in (
            ("stage", stage if type(stage) is int else None, V1_STAGES),
            ("pretrain", config.pretrain, V1_PRETRAIN),
            ("frame_order", config.frame_order, FRAME_ORDERS),
            ("label_choice", config.label_choice, LABEL_CHOICES),
            ("map_labels", config.map_labels, MAP_LABELS),
            ("model.glance_arch", config.model.glance_arch,
             model_common.GLANCE_ARCHS),
            ("model.focus_arch", config.model.focus_arch,
             model_common.FOCUS_ARCHS),
            ("ppo.reward", config.ppo.reward, V1_REWARDS)):
        if value not in allowed:
            shown = stage if key == "stage" else value
            raise errors.ConfigError(f"task.{key}={shown!r} must be one of "
                                     f"{allowed}")
    if int(config.model.patch_size) > min(frames.crop_size):
        raise errors.ConfigError(
            f"task.model.patch_size={config.model.patch_size} exceeds "
            f"task.frames.crop_size={tuple(frames.crop_size)}")
    for group, value in config.lr_multipliers.items():
        if group not in V1_GROUPS or float(value) < 0:
            raise errors.ConfigError(
                f"task.lr_multipliers.{group}={value}: the groups are "
                f"{V1_GROUPS}, each multiplier >= 0")
    if float(config.weight_decay) < 0:
        raise errors.ConfigError(f"task.weight_decay={config.weight_decay} "
                                 "must be >= 0")
    ppo = config.ppo
    _check_range(ppo, "gamma", 0.0, 1.0)
    _check_range(ppo, "clip", 0.0)
    _check_range(ppo, "epochs", 1, integer=True)
    for key in ("value_coef", "entropy_coef", "std_epsilon"):
        _check_range(ppo, key, 0.0)
    weights = config.adafocus_weights
    if isinstance(weights, str) or not all(
            isinstance(w, str) and w for w in weights):
        raise errors.ConfigError(
            f"task.adafocus_weights={weights!r} must be a tuple of paths "
            "(e.g. ('globalcnn.pth.tar', 'localcnn.pth.tar'))")
    for key, arch_key in _WEIGHTS:
        if config[key] and config.model[arch_key] == "small":
            raise errors.ConfigError(
                f"task.{key} is set but task.model.{arch_key}='small' has "
                "no pre-trained weights format")
    _check_trunk_variants(config)
    if require_previous_stage:
        v1_require_previous_stage(config)


class V1Schema:
    """The V1 task's `config_schema`: `task_config()` and `validate()`."""

    task_config = staticmethod(v1_task_config)
    validate = staticmethod(v1_validate)
