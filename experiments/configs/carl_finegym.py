"""CARL on FineGym (Gym99 elements; Chen et al., CVPR 2022).

The recipe: `tfaction.tasks.carl_config.experiment_config("finegym")`: two
views of 240 frames of one event per step (overlapping temporal crops,
no blur), a 3-layer transformer, Adam 1e-4 with coupled L2 1e-5, cosine
annealing per epoch over 300 epochs; evaluation (at the end) embeds whole
events in chunks of up to 6,000 frames and trains FineGym's linear probe
(99 classes, SGD lr 50, 100 epochs) on 10 / 50 / 100 % of the training
events, scored by frame accuracy on val.

Data: `python -m tfaction.data.convert --format=tcc` of the FineGym event
records (frame labels = Gym99 element ids, -1 outside labelled
sub-actions) into `data/finegym/records`; for Gym288 set
`--config.task.evaluation.num_phase_classes=288`. Weights:
`--config.task.trunk_weights=<ResNet-50 .pth>`.
"""

from tfaction.tasks import carl_config


def get_config():
    """Returns the experiment config."""
    config = carl_config.experiment_config("finegym")
    config.task.data_dir = "data/finegym/records"
    return config
