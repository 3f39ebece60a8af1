"""AdaFocus (V1) on ActivityNet v1.3, one training stage per run.

Published (P = 128, MobileNet-V2 glance + ResNet-50 focus, 16 frames):
75.0 mAP at 26.6 GFLOPs per video (96: 71.9; 160: 76.0; 192: 76.7).

`--config=experiments/configs/adafocus_v1_actnet.py:stage<k>`, k = 0 ... 3,
in order (the authors' README commands; `tfaction.tasks.adafocus_config`,
V1 section). Stage 0 fine-tunes the ImageNet trunks (`task.glance_weights`,
`task.focus_weights`: torchvision `.pth` files); stage k > 0 starts from
stage k - 1: `--config.task.init_checkpoint=<the stage k - 1 workdir>`,
or the authors' files (`task.adafocus_weights`: stage 1 from
`('globalcnn.pth.tar', 'localcnn.pth.tar')`, stage 2 from
`128checkpoint.pth.tar`); it refuses to start without. Data: `python -m
tfaction.data.convert --format=actnet_frames`.
"""

from tfaction.tasks import adafocus_config


def get_config(stage="stage0"):
    """Returns the config of `stage` ("stage0" ... "stage3")."""
    config = adafocus_config.v1_experiment_config(
        "actnet", adafocus_config.parse_v1_stage(stage), 128)
    config.task.data_dir = "data/actnet/records"
    return config
