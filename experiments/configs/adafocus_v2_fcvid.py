"""AdaFocus V2 on FCVID (the authors' `scripts/train.sh`).

Published (README table; mAP % over every label of a video, @ GFLOPs per
video, 16 frames, P = 128): MobileNet-V2 + ResNet-50 85.0 @ 27.0,
ResNet-50 + ResNet-50 84.5 @ 34.1.

`--config=experiments/configs/adafocus_v2_fcvid.py:<glance>_p<P>` picks
the glance (`mbv2` or `res50`) and the patch size; default `mbv2_p128`.
Data: `python -m tfaction.data.convert --format=fcvid_frames`
(`tfaction.data.formats.adafocus_lists`). Weights: `task.glance_weights`
and `task.focus_weights`, local ImageNet `.pth` files. The recipe itself:
`tfaction.tasks.adafocus_config`.
"""

from tfaction.tasks import adafocus_config


def get_config(variant="mbv2_p128"):
    """Returns the config of `variant` ("<mbv2|res50>_p<patch size>")."""
    glance, patch_size = adafocus_config.parse_variant(variant)
    config = adafocus_config.experiment_config("fcvid", glance,
                                               patch_size)
    config.task.data_dir = "data/fcvid/records"
    return config
