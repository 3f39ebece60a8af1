"""ActionVLAD on the synthetic colour x motion data, RGB stream.

`python -m tfaction.data.synthetic --kind=video_classification` writes an
HMDB51-layout dataset whose 8 classes are (blob colour, motion group) pairs,
each colour and each motion group shared by two classes: frames tell the
colour, flow the motion, so each stream alone is right about half of the
time (chance 1/8) and only their fusion tells every class. Frames are
64x80; a small VGG-shaped trunk (`model.trunk = "small"`) makes CPU
training take minutes.

Stages: `full` (default; there is no pre-trained trunk for this data, so
everything trains from the k-means initialisation), or the recipe's
`stage1` / `stage2` on top of it.
"""

from tfaction.tasks import actionvlad_config
from tfaction import errors

STAGES = ("full", "stage1", "stage2")


def get_config(stage="full"):
    """Returns the config of `stage` ("full", "stage1" or "stage2")."""
    stage = stage or "full"
    if stage not in STAGES:
        raise errors.ConfigError(f"unknown stage {stage!r}; expected one of "
                                 f"{STAGES}")
    config = actionvlad_config.experiment_config(
        "stage1" if stage == "full" else stage)
    task = config.task
    task.data_dir = "runs/actionvlad_demo/records"
    frames = task.frames
    frames.num_steps = 8
    frames.resize = None
    frames.crop_size = (56, 72)
    frames.test_crop_offsets = None     # centre crop
    task.model.trunk = "small"
    # No pre-trained trunk exists for this data: every layer starts from
    # its random initialisation (NetVLAD from k-means centres when
    # task.centers_file is given), also in the stage1 / stage2 variants.
    task.train_from_scratch = True
    task.model.filters = (32, 64, 64)
    task.model.num_clusters = 16
    task.centers.num_frames = 400
    task.centers.frames_per_video = 2
    config.trainer.train_steps = 0
    config.trainer.epochs = 15
    config.trainer.global_batch_size = 8
    config.trainer.eval_batch_size = 8
    config.trainer.checkpoint_interval = 200
    config.trainer.log_interval = 20
    opt = config.optimizer
    if stage == "full":
        task.trainable = ("all",)
        opt.lr = 1e-3
        opt.decay_steps = 200  # of 315 steps
    # MirroredStrategy over two replicas even on a CPU-only machine.
    config.runtime.strategy = "mirrored"
    config.runtime.logical_cpus = 2
    return config
