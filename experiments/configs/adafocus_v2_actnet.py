"""AdaFocus V2 on ActivityNet v1.3 (the authors' `scripts/train.sh`).

Published (README tables; mAP % @ GFLOPs per video, 16 frames):

| glance + focus | P = 96 | P = 128 | P = 160 |
|---|---|---|---|
| MobileNet-V2 + ResNet-50 | 77.4 @ 17.6 | 79.0 @ 27.0 | 79.9 @ 39.0 |
| ResNet-50 + ResNet-50 | 77.5 @ 24.8 | 78.9 @ 34.1 | 80.2 @ 46.1 |

`--config=experiments/configs/adafocus_v2_actnet.py:<glance>_p<P>` picks
the glance (`mbv2`: MobileNet-V2 on the 224 x 224 frame; `res50`:
ResNet-50 on a 96 x 96 downsample) and the patch size; default
`mbv2_p128`. Data: `python -m tfaction.data.convert --format=actnet_frames`
(`tfaction.data.formats.adafocus_lists`). Weights: `task.glance_weights`
and `task.focus_weights`, local ImageNet `.pth` files (for `res50` the
authors' `Initialization_model_prime_resnet50_patch_size_96.pth`). The
recipe itself: `tfaction.tasks.adafocus_config`.
"""

from tfaction.tasks import adafocus_config


def get_config(variant="mbv2_p128"):
    """Returns the config of `variant` ("<mbv2|res50>_p<patch size>")."""
    glance, patch_size = adafocus_config.parse_variant(variant)
    config = adafocus_config.experiment_config("actnet", glance,
                                               patch_size)
    config.task.data_dir = "data/actnet/records"
    return config
