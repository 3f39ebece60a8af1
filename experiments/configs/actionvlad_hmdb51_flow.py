"""ActionVLAD flow stream on HMDB51 (10 stacked x/y flow pairs).

The trunk starts from a two-stream flow VGG16 (`task.trunk_weights`: the
release's `2-stream-pretrained/hmdb51/flow/splitN.ckpt`, or RGB ImageNet
weights whose first conv is averaged over colour and repeated x20).
25 stacks of 20 channels per video, mean 128, 5 test crops pooled into one
vector. Published: 59.0 / 59.7 / 60.6 % video top-1 (splits 1/2/3); fused
with RGB at 1:2 (`experiments.actionvlad_fuse`): 66.7 / 66.5 / 66.3.
"""

from tfaction.tasks import actionvlad_config


def get_config(stage="stage1"):
    """Returns the config of `stage` ("stage1" or "stage2")."""
    config = actionvlad_config.experiment_config(stage)
    task = config.task
    task.data_dir = "data/hmdb51/records/split1"
    task.frames.modality = "flow"
    task.frames.flow_stack = 10
    task.frames.mean = (128.0,)  # every flow channel
    task.frames.bgr = False
    task.frames.test_crop = "five"
    task.frames.test_crop_offsets = None
    return config
