"""CARL on Pouring (TCC's pouring videos; Chen et al., CVPR 2022).

The recipe: `tfaction.tasks.carl_config.experiment_config("pouring")`: two
views of 240 frames of one video per step, a 2-layer transformer, Adam
1e-4 with coupled L2 1e-5, cosine annealing per epoch over 500 epochs,
evaluation every 50 epochs (70 training videos) on phase classification
(10 / 50 / 100 % of the training videos), phase progression, Kendall's tau
(stride 5) and retrieval precision@5/10/15.

Data: `python -m tfaction.data.convert --format=tcc` of the public
`pouring_{train,val}-*.tfrecord` files into `data/pouring/records`.
Weights: `--config.task.trunk_weights=<ResNet-50 .pth>` (the authors'
`BYOL_1000.pth` or torchvision's `resnet50-*.pth`).
"""

from tfaction.tasks import carl_config


def get_config():
    """Returns the experiment config."""
    config = carl_config.experiment_config("pouring")
    config.task.data_dir = "data/pouring/records"
    return config
