"""AdaFocus V2 on the synthetic "find the small patch" data, CPU-sized.

`python -m tfaction.data.synthetic --kind=adafocus` writes an
ActivityNet-layout dataset (convert it with `--format=actnet_frames`)
whose class is the 3 x 3 cell pattern of one small glyph on a red (even
labels) or orange (odd labels) plate, drifting among distractor glyphs
over clutter in 97 x 97 frames. The glance sees the frames resized to
25 x 25 (bilinear, `align_corners=True`), which samples only the glyphs'
plates and grid lines: it finds the target and tells its plate colour
(half of the label) but cannot read the cells. The focus network reads
them at full resolution on a 25 x 25 patch if the policy puts the patch
on the 13 x 13 glyph.

Everything else is the AdaFocus V2 recipe (two passes per batch,
auxiliary glance and focus losses, per-group learning-rate multipliers,
SGD with coupled L2 decay, per-epoch cosine), with small trunks
(`"small"`: three 3x3 convs with 2x2 pools), 8 frames per video, no crop
or flip (the frames are already the model's size), 30 epochs, and
MirroredStrategy over two replicas even on a CPU-only machine. The policy
learns at the base rate (multiplier 1, not the paper's 0.1): it starts
from scratch and has far fewer steps.
"""

from tfaction.tasks import adafocus_config


def get_config():
    """Returns the synthetic AdaFocus V2 experiment."""
    config = adafocus_config.experiment_config("actnet", "mbv2", 25)
    task = config.task
    task.data_dir = "runs/adafocus_demo/records"
    frames = task.frames
    frames.num_steps = 8
    frames.resize = None
    frames.crop_size = (97, 97)
    frames.train_crop = "none"
    frames.test_crop = "none"
    frames.flip = False
    frames.shuffle_buffer_size = 512
    model = task.model
    model.glance_arch = "small"
    model.glance_size = (25, 25)
    model.focus_arch = "small"
    model.small_filters = (16, 32, 64)
    model.policy_hidden_units = 64
    model.policy_conv_filters = 16
    model.classifier_hidden_units = 128
    model.dropout = 0.2
    model.head_dropout = 0.2
    # No pre-trained trunk exists for this data, and the run is short: the
    # policy learns at the base rate (the paper's x0.1 fine-tunes it for
    # 50 epochs on ImageNet features), the other groups keep their
    # multipliers.
    task.train_from_scratch = True
    task.lr_multipliers.policy = 1.0
    config.trainer.epochs = 30
    config.trainer.global_batch_size = 16
    config.trainer.eval_batch_size = 16
    config.trainer.checkpoint_interval = 500
    config.trainer.log_interval = 20
    config.trainer.seed = 0
    config.optimizer.lr = 0.02
    config.runtime.strategy = "mirrored"
    config.runtime.logical_cpus = 2
    return config
