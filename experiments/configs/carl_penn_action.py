"""CARL on PennAction (13 actions, one model; Chen et al., CVPR 2022).

The recipe: `tfaction.tasks.carl_config.experiment_config("penn_action")`:
two views of 80 frames of one video per step, a 3-layer transformer, Adam
1e-4 with coupled L2 1e-5, cosine annealing per epoch over 300 epochs,
evaluation every 50 epochs (1,140 training videos in the authors' splits)
per action, then averaged over the 13 actions: phase classification (all
training videos), phase progression, Kendall's tau (stride 2) and
retrieval precision@5/10/15.

Data: `python -m tfaction.data.convert --format=tcc` of the
`penn_action_{train,val}-*.tfrecord` files (per-frame phase labels from
the LAV / TCC annotations) into `data/penn_action/records`. Weights:
`--config.task.trunk_weights=<ResNet-50 .pth>`.
"""

from tfaction.tasks import carl_config


def get_config():
    """Returns the experiment config."""
    config = carl_config.experiment_config("penn_action")
    config.task.data_dir = "data/penn_action/records"
    return config
