"""CARL task config: defaults, types, cross-field rules.

* `task_config()`: the `task` section read by `tfaction.tasks.carl.CARLTask`,
  every key with its default; the `model` defaults are the `CARL`
  constructor's (same argument names; `num_frames` and `crop_size` come
  from `views`), the `views` defaults are `FrameSequenceConfig`'s;
* `experiment_config(dataset)`: a whole experiment, the paper's recipe for
  "pouring", "penn_action" or "finegym" (Chen, Wei, Li, Cai, CVPR 2022, with
  the authors' released configs); every `carl_*` recipe starts from it;
* `validate(config)`: unknown or missing keys and the rules that tie keys
  together, each as a `ConfigError` naming the key.

The recipe (optimisation as the authors' training script):

* two augmented views of T frames of one video per step (T = 240 Pouring
  and FineGym, 80 PennAction), sequence contrastive loss (temperature 0.1,
  Gaussian prior of variance 10 frames^2, the other view of the same video
  as the only negatives);
* ResNet-50 v1.5 frame encoder with the stem and layer1 ... layer3 frozen
  (weights and batch-norm statistics), layer4 trained; transformer of 2
  layers (Pouring) or 3 (PennAction, FineGym); batch norms synchronised over
  replicas (the authors train with SyncBatchNorm);
* Adam (beta 0.9 / 0.999, epsilon 1e-8), learning rate 1e-4, **coupled** L2
  weight decay 1e-5 on every trainable variable (PyTorch Adam's
  `weight_decay`: `task.l2_weight_decay`, a loss term `0.5 * wd * ||w||^2`
  counted once per step; Keras' decoupled decay is off), cosine annealing
  stepped once per epoch over `epochs + 1` epochs without warm-up
  (`optimizer.schedule = "cosine_per_epoch"`), gradient norm clipped to 10,
  mixed precision (`mixed_float16`; the loss is computed in float32);
* 500 epochs (Pouring) or 300 (PennAction, FineGym), seed 1.

Trunk weights (`trunk_weights`, read once when the model is built):

* `model.trunk_variant = "v1.5"` (default): a PyTorch `.pth` of a
  torchvision ResNet-50: torchvision's ImageNet `resnet50-*.pth` (what the
  authors' code loads) or the BYOL `BYOL_1000.pth` of their README (also
  MoCo / SimCLR files; `tfaction.checkpoints.resnet50.
  load_resnet50_checkpoint`).
* `model.trunk_variant = "v1"`: the documented alternative,
  keras.applications' ImageNet ResNet50
  (`resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`, a local file,
  `load_keras_resnet50_weights`). This is ResNet-50 **v1** (the stride in
  the first 1x1 conv of a block, conv biases) with other ImageNet weights:
  a different network than the authors', so expect different numbers. Its
  weights expect keras.applications' "caffe" input (BGR pixels in [0, 255]
  minus the mean (103.939, 116.779, 123.68), no scaling); the data stay
  normalised with `views.mean` / `views.std` (ImageNet's), and the trunk
  converts them in the graph, so training, evaluation and export are the
  same for both variants.

A `.h5` with `trunk_variant="v1.5"`, or a `.pth` with `"v1"`, is refused
(`validate`), naming both keys.

Evaluation embeds every frame of every video of BOTH subsets (the probes
train on the training videos) and runs `evaluation.protocols`:
`"framewise"` (`tfaction.evaluation.framewise`, variant "carl": Kendall's
tau, retrieval precision@K, logistic-regression phase classification and
phase progression at the train fractions), `"few_shot"` (few-shot phase
classification) and `"finegym"` (FineGym's linear-layer probe).

Example:

```python
from tfaction.tasks import carl_config

config = carl_config.experiment_config("penn_action")
config.task.data_dir = "data/penn_action/records"
config.task.trunk_weights = "pretrained/BYOL_1000.pth"
carl_config.validate(config.task, require_trunk_weights=True)
```
"""

import dataclasses

import ml_collections
import numpy as np

from tfaction import config as config_lib
from tfaction import errors
from tfaction.data import frame_sequence_pipeline
from tfaction.evaluation import framewise
from tfaction.losses import sequence_contrastive_loss as scl
from tfaction.models.carl import model as model_lib

TASK_NAME = "carl"
TASK_MODULE = "tfaction.tasks.carl"
DATASETS = ("pouring", "penn_action", "finegym")
# FrameSequenceConfig fields the `views` section may set (the task sets the
# batch size and the determinism).
VIEWS_KEYS = tuple(
    f.name for f in dataclasses.fields(
        frame_sequence_pipeline.FrameSequenceConfig)
    if f.name not in ("batch_size", "drop_remainder", "deterministic"))
_TUPLE_VIEWS_KEYS = ("image_size", "crop_scale", "crop_ratio", "blur_sigma",
                     "mean", "std")
# CARL arguments that are not `model` keys: the views give them.
_NOT_MODEL_KEYS = ("num_frames", "crop_size")
_TUPLE_MODEL_KEYS = ("small_filters", "fc_units")
TRUNK_WEIGHT_FORMATS = ("auto", "pth", "h5")
PROTOCOLS = ("framewise", "few_shot", "finegym")
# The authors' evaluation settings per dataset (EVAL.* of their configs).
_EVALUATION = {
    "pouring": dict(fractions=(0.1, 0.5, 1.0), kendalls_tau_stride=5,
                    frames_per_chunk=1000),
    "penn_action": dict(fractions=(1.0,), kendalls_tau_stride=2,
                        frames_per_chunk=1000, per_action=True),
    "finegym": dict(fractions=(0.1, 0.5, 1.0), kendalls_tau_stride=5,
                    frames_per_chunk=6000, protocols=("finegym",),
                    num_phase_classes=99),
}
# Training videos of the authors' splits: validation every 50 epochs,
# checkpoints every 60 (in steps of one video).
_TRAIN_VIDEOS = {"pouring": 70, "penn_action": 1140}


def _views_defaults():
    defaults = frame_sequence_pipeline.FrameSequenceConfig()
    return {key: getattr(defaults, key) for key in VIEWS_KEYS}


def task_config():
    """Returns the `task` section with every key's default (locked).

    Returns:
        An `ml_collections.ConfigDict`.

    Example:

    ```python
    task = task_config()
    task.views.num_frames = 80
    ```
    """
    config = ml_collections.ConfigDict({
        "name": TASK_NAME,
        "module": TASK_MODULE,
        "data_dir": "",            # converter output (--format=tcc)
        "train_subset": "train",
        "eval_subset": "val",
        # FrameSequenceConfig fields (tfaction.data.frame_sequence_pipeline):
        # the two views of training, the whole videos of evaluation.
        "views": _views_defaults(),
        # CARL arguments and defaults (see its docstring); num_frames and
        # crop_size are views.num_frames and views.image_size.
        "model": config_lib.constructor_defaults(
            model_lib.CARL, exclude=_NOT_MODEL_KEYS),
        # Batch norms of the trained layers use the statistics of the whole
        # global batch (SyncBatchNorm), so N replicas train as one device.
        "sync_batch_norm": True,
        # Coupled L2 (PyTorch Adam's weight_decay): 0.5 * wd * sum(w^2) over
        # every trainable variable, added once per step.
        "l2_weight_decay": 1e-5,
        # sequence_contrastive_loss arguments.
        "losses": {
            "temperature": 0.1,
            "label_variance": 10.0,
            "positive_type": "gauss",
            "negative_type": "single_noself",
            "positive_window": 5.0,
            "masked_negative_weight": 1e-6,
        },
        # ResNet-50 weights: a torchvision / BYOL .pth (model.trunk_variant
        # "v1.5") or keras.applications' .h5 ("v1").
        "trunk_weights": "",
        "trunk_weights_format": "auto",  # auto, pth or h5
        "init_checkpoint": "",     # a tfaction run or checkpoint
        # The frozen conv1 ... layer3 need pretrained weights: refuse to
        # start without trunk_weights / init_checkpoint unless True.
        "train_from_scratch": False,
        "evaluation": {
            "protocols": ("framewise",),   # PROTOCOLS
            "variant": "carl",         # framewise variant: carl or tcc
            # PennAction: one model, metrics per action, then the mean.
            "per_action": False,
            "frames_per_chunk": 1000,  # transformer chunk (EVAL.FRAMES_PER_
            #                            BATCH), interpolated positions
            # Frames per trunk call within a chunk (MODEL.BASE_MODEL.
            # FRAMES_PER_BATCH): bounds memory; 0 = the whole chunk at once.
            "frames_per_trunk_batch": 40,
            "fractions": (0.1, 0.5, 1.0),  # of the training videos
            "kendalls_tau_stride": 5,
            "distance": "sqeuclidean",
            "retrieval_ks": (5, 10, 15),
            "num_phase_classes": 0,    # 0 = from the labels
            "few_shot_num_labeled": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
            "few_shot_num_episodes": 50,
            # FineGym probe: a linear layer on the frozen embeddings.
            "finegym": {
                "learning_rate": 50.0,
                "epochs": 100,
                "momentum": 0.9,
                "weight_decay": 1e-6,
                "batch_videos": 10,
                "seed": 0,
            },
            "write_embeddings": True,  # <workdir>/embeddings.npz
        },
    })
    return config.lock()


def experiment_config(dataset="pouring"):
    """Returns the paper's experiment on `dataset`.

    Args:
        dataset: "pouring", "penn_action" or "finegym".

    Returns:
        An `ml_collections.ConfigDict`.

    Raises:
        ConfigError: unknown dataset.

    Example:

    ```python
    def get_config():
        config = carl_config.experiment_config("pouring")
        config.task.data_dir = "data/pouring/records"
        return config
    ```
    """
    if dataset not in DATASETS:
        raise errors.ConfigError(f"unknown CARL dataset {dataset!r}; "
                                 f"expected one of {DATASETS}")
    config = config_lib.base_config()
    config.task = task_config()
    task = config.task
    views = frame_sequence_pipeline.FrameSequenceConfig.for_dataset(dataset)
    for key in VIEWS_KEYS:
        task.views[key] = getattr(views, key)
    task.model.num_layers = 2 if dataset == "pouring" else 3
    for key, value in _EVALUATION[dataset].items():
        task.evaluation[key] = value
    trainer = config.trainer
    trainer.seed = 1
    trainer.epochs = 500 if dataset == "pouring" else 300
    trainer.train_steps = 0           # epochs x (one video per step)
    trainer.global_batch_size = 1     # one video (two views) per GPU
    trainer.eval_batch_size = 1       # one whole video per replica
    trainer.log_interval = 20
    videos = _TRAIN_VIDEOS.get(dataset)
    if videos:
        trainer.eval_interval = 50 * videos
        trainer.checkpoint_interval = 60 * videos
    else:  # FineGym: evaluated once training ends
        trainer.checkpoint_interval = 5000
    opt = config.optimizer
    opt.name = "adam"
    opt.lr = 1e-4
    opt.beta_1 = 0.9
    opt.beta_2 = 0.999
    opt.epsilon = 1e-8                # PyTorch's default
    opt.schedule = "cosine_per_epoch"
    opt.warmup_steps = 0
    opt.min_lr_ratio = 0.0
    opt.weight_decay = 0.0            # coupled L2: task.l2_weight_decay
    opt.clip_norm = 10.0
    config.runtime.mixed_precision = "mixed_float16"
    return config


def views_values(views):
    """The `views` section as `FrameSequenceConfig` keyword arguments.

    Args:
        views: the `task.views` section.

    Returns:
        A dict (sequences as tuples).
    """
    return config_lib.section_values(views, _TUPLE_VIEWS_KEYS)


def model_values(config):
    """The `CARL` keyword arguments of a `task` section.

    Args:
        config: the `task` section.

    Returns:
        A dict: the `model` keys (sequences as tuples) with `num_frames`
        and `crop_size` from `views`.
    """
    values = dict(config.model)
    for key in _TUPLE_MODEL_KEYS:
        values[key] = tuple(values[key])
    values["num_frames"] = int(config.views.num_frames)
    values["crop_size"] = tuple(config.views.image_size)
    return values


def require_weights(config):
    """The frozen ResNet-50 stages must start from weights.

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
        "task.trunk_weights is empty: the frame encoder's frozen stages "
        "(conv1 ... layer3 and their batch-norm statistics) would keep "
        "their random initialisation. Set task.trunk_weights to a local "
        "ResNet-50 .pth (torchvision's resnet50-*.pth or CARL's "
        "BYOL_1000.pth; with task.model.trunk_variant='v1' keras."
        "applications' resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
        "), or task.init_checkpoint, or "
        "task.train_from_scratch=True to train from random weights on "
        "purpose")


def weights_format(config):
    """The format of `task.trunk_weights` ("pth" or "h5")."""
    fmt = config.trunk_weights_format
    if fmt == "auto":
        fmt = "h5" if str(config.trunk_weights).endswith(".h5") else "pth"
    return fmt


def _fail(key, value, expected):
    raise errors.ConfigError(f"task.{key}={value!r} must be {expected}")


def _check_views(views):
    try:
        frame_sequence_pipeline.FrameSequenceConfig(**views_values(views))
    except (errors.ConfigError, TypeError, ValueError) as e:
        raise errors.ConfigError(f"task.views: {e}") from None


def _check_model(m):
    if m.trunk not in model_lib.TRUNKS:
        _fail("model.trunk", m.trunk, f"one of {model_lib.TRUNKS}")
    if m.trunk_variant not in model_lib.TRUNK_VARIANTS:
        _fail("model.trunk_variant", m.trunk_variant,
              f"one of {model_lib.TRUNK_VARIANTS}")
    for key in ("hidden_size", "num_heads", "ffn_units", "embedding_size",
                "projection_hidden_units"):
        if int(m[key]) < 1:
            _fail(f"model.{key}", m[key], ">= 1")
    if int(m.num_layers) < 0:
        _fail("model.num_layers", m.num_layers, ">= 0")
    if int(m.hidden_size) % int(m.num_heads):
        raise errors.ConfigError(
            f"task.model.hidden_size={m.hidden_size} must be divisible by "
            f"task.model.num_heads={m.num_heads}")
    if not 0.0 <= float(m.dropout) < 1.0:
        _fail("model.dropout", m.dropout, "in [0, 1)")


def _check_losses(losses):
    if losses.positive_type not in scl.POSITIVE_TYPES:
        _fail("losses.positive_type", losses.positive_type,
              f"one of {scl.POSITIVE_TYPES}")
    if losses.negative_type not in scl.NEGATIVE_TYPES:
        _fail("losses.negative_type", losses.negative_type,
              f"one of {scl.NEGATIVE_TYPES}")
    for key in ("temperature", "label_variance"):
        if not float(losses[key]) > 0:
            _fail(f"losses.{key}", losses[key], "> 0")
    if float(losses.masked_negative_weight) < 0:
        _fail("losses.masked_negative_weight", losses.masked_negative_weight,
              ">= 0")


def _check_evaluation(ev):
    protocols = tuple(ev.protocols)
    if not protocols or not set(protocols) <= set(PROTOCOLS):
        _fail("evaluation.protocols", protocols,
              f"a non-empty subset of {PROTOCOLS}")
    if ev.variant not in framewise.VARIANTS:
        _fail("evaluation.variant", ev.variant,
              f"one of {framewise.VARIANTS}")
    if "few_shot" in protocols and ev.variant == "tcc":
        raise errors.ConfigError(
            "task.evaluation.protocols has 'few_shot', but task.evaluation."
            "variant='tcc' already runs the few-shot protocol")
    fractions = tuple(ev.fractions)
    if not fractions or not all(0.0 < float(f) <= 1.0 for f in fractions):
        _fail("evaluation.fractions", fractions, "non-empty, each in (0, 1]")
    ks = tuple(ev.retrieval_ks)
    if not ks or min(int(k) for k in ks) < 1:
        _fail("evaluation.retrieval_ks", ks, "non-empty, each >= 1")
    shots = tuple(ev.few_shot_num_labeled)
    if "few_shot" in protocols and (not shots or min(shots) < 1):
        _fail("evaluation.few_shot_num_labeled", shots,
              "non-empty, each >= 1")
    for key in ("frames_per_chunk", "kendalls_tau_stride",
                "few_shot_num_episodes"):
        if int(ev[key]) < 1:
            _fail(f"evaluation.{key}", ev[key], ">= 1")
    if int(ev.frames_per_trunk_batch) < 0:
        _fail("evaluation.frames_per_trunk_batch", ev.frames_per_trunk_batch,
              ">= 0 (0: the whole chunk in one trunk call)")
    if int(ev.num_phase_classes) < 0:
        _fail("evaluation.num_phase_classes", ev.num_phase_classes,
              ">= 0 (0 = from the labels)")
    gym = ev.finegym
    for key in ("epochs", "batch_videos"):
        if int(gym[key]) < 1:
            _fail(f"evaluation.finegym.{key}", gym[key], ">= 1")
    if not float(gym.learning_rate) > 0:
        _fail("evaluation.finegym.learning_rate", gym.learning_rate, "> 0")


def _check_imagenet_views(views):
    """The v1 trunk converts ImageNet-normalised frames to "caffe" input."""
    for key, want in (("mean", frame_sequence_pipeline.IMAGENET_MEAN),
                      ("std", frame_sequence_pipeline.IMAGENET_STD)):
        if not np.allclose(tuple(views[key]), want, rtol=0, atol=1e-6):
            raise errors.ConfigError(
                f"task.views.{key}={tuple(views[key])} must be ImageNet's "
                f"{want} with task.model.trunk_variant='v1': the trunk "
                f"converts ImageNet-normalised frames to the 'caffe' input "
                f"of keras.applications' weights")


def _check_weights_variant(config):
    """keras.applications' .h5 weights need the v1 trunk, .pth the v1.5."""
    fmt, variant = weights_format(config), config.model.trunk_variant
    if fmt == "h5" and variant != "v1":
        raise errors.ConfigError(
            f"task.trunk_weights={config.trunk_weights!r} is a "
            f"keras.applications .h5 (ResNet-50 v1, stride in the first 1x1 "
            f"conv), but task.model.trunk_variant={variant!r} builds the "
            f"torchvision ResNet-50 v1.5 (stride in the 3x3 conv): v1 "
            f"weights would compute something else. Set "
            f"task.model.trunk_variant='v1' (keras.applications weights, "
            f"other numbers than the paper's), or use a torchvision / BYOL "
            f".pth")
    if fmt == "pth" and variant != "v1.5":
        raise errors.ConfigError(
            f"task.trunk_weights={config.trunk_weights!r} is a PyTorch .pth "
            f"(torchvision ResNet-50 v1.5), but task.model.trunk_variant="
            f"{variant!r} builds keras.applications' ResNet-50 v1. Set "
            f"task.model.trunk_variant='v1.5', or use keras.applications' "
            f"resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")


def validate(config, require_trunk_weights=False):
    """Checks a CARL `task` section; builds nothing.

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
    _check_views(config.views)
    _check_model(config.model)
    _check_losses(config.losses)
    _check_evaluation(config.evaluation)
    if float(config.l2_weight_decay) < 0:
        _fail("l2_weight_decay", config.l2_weight_decay, ">= 0")
    if config.trunk_weights_format not in TRUNK_WEIGHT_FORMATS:
        _fail("trunk_weights_format", config.trunk_weights_format,
              f"one of {TRUNK_WEIGHT_FORMATS}")
    if config.model.trunk == "resnet50" and (
            config.model.trunk_variant == "v1"):
        _check_imagenet_views(config.views)
    if config.trunk_weights:
        if config.model.trunk != "resnet50":
            raise errors.ConfigError(
                "task.trunk_weights loads a ResNet-50, but task.model.trunk="
                f"{config.model.trunk!r}")
        _check_weights_variant(config)
    if require_trunk_weights:
        require_weights(config)
