"""ActionVLAD on the synthetic colour x motion data, flow stream.

As `actionvlad_synthetic_rgb`, on stacks of 5 consecutive x/y flow images
(10 channels, mean 128) at each of the 8 sampled positions.
"""

from experiments.configs import actionvlad_synthetic_rgb


def get_config(stage="full"):
    """Returns the config of `stage` ("full", "stage1" or "stage2")."""
    config = actionvlad_synthetic_rgb.get_config(stage)
    frames = config.task.frames
    frames.modality = "flow"
    frames.flow_stack = 5
    frames.mean = (128.0,)  # every flow channel
    frames.bgr = False
    return config
