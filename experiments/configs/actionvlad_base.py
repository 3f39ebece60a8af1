"""ActionVLAD recipe defaults: HMDB51 RGB stream, VGG16, two stages.

Values are those of rohitgirdhar/ActionVLAD's training scripts
(`experiments/001_*`, `003_*`). `get_config(stage)`:

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
"""

import ml_collections

from experiments.configs import base
from tfaction import errors

STAGES = ("stage1", "stage2")
# Caffe / VGG means in BGR order (after the RGB -> BGR flip).
BGR_MEAN = (104.0, 117.0, 123.0)


def get_config(stage="stage1"):
    """Returns the RGB-stream config of one training stage.

    Args:
        stage: "stage1" or "stage2" (the text after `:` in
            `--config=...py:<stage>`).

    Raises:
        ConfigError: unknown stage.
    """
    stage = stage or "stage1"
    if stage not in STAGES:
        raise errors.ConfigError(f"unknown ActionVLAD stage {stage!r}; "
                                 f"expected one of {STAGES}")
    config = base.get_config()
    task = config.task
    task.name = "actionvlad"
    task.module = "tfaction.tasks.actionvlad"
    task.data_dir = ""            # converter output (--format=hmdb51_frames)
    task.train_subset = "train"
    task.eval_subset = "test"
    task.frames = ml_collections.ConfigDict({
        "modality": "rgb",
        "sampler": "actionvlad",  # T uniform, deterministic, train and test
        "num_steps": 25,
        "flow_stack": 1,
        "resize": (256, 340),     # aspect not kept, as the reference
        "crop_size": (224, 224),
        "train_crop": "multiscale",  # h, w from 224 x {1, .875, .75, .66}
        "crop_scales": (1.0, 0.875, 0.75, 0.66),
        "flip": True,
        "test_crop": "center",
        # The reference's centre crop of a 256x340 frame.
        "test_crop_offsets": ((16, 60),),
        "mean": BGR_MEAN,
        "std": 1.0,
        "bgr": True,
        "shuffle_buffer_size": 256,
    })
    task.model = ml_collections.ConfigDict({
        "trunk": "vgg16",
        "endpoint": "conv5_3",    # pre-ReLU
        "filters": (32, 64, 64),  # the "small" trunk only
        "num_clusters": 64,
        "alpha": 1000.0,
        "trunk_weight_decay": 2e-5,       # slim l2_regularizer(4e-5)
        "classifier_weight_decay": 2e-5,
    })
    task.trunk_weights = ""        # local .h5 or slim checkpoint
    task.trunk_weights_format = "auto"
    task.centers_file = ""         # k-means centres (.npz)
    task.init_checkpoint = ""      # stage 2: the stage-1 run or checkpoint
    # A stage that freezes the trunk or NetVLAD refuses to start without
    # their weights (trunk_weights / centers_file / init_checkpoint);
    # True accepts random frozen layers on purpose.
    task.train_from_scratch = False
    task.trainable = ("classifier",)
    task.multi_label = False
    task.top_k = 5
    # `python -m experiments.actionvlad_init_centers` settings.
    task.centers = ml_collections.ConfigDict({
        "num_frames": 5000,        # random training frames (one per video
        "frames_per_video": 1,     # per pass), first 5,000 as the reference
        "max_descriptors": 1_000_000,
        "minibatch_threshold": 500_000,
        "seed_sample": 50_000,
        "batch_size": 16,
    })
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
        task.trainable = ("classifier", "netvlad", "last_block")
        opt.lr = 1e-4
        config.trainer.train_steps = 8000
    return config
