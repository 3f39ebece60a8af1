"""Video Action Transformer on AVA v2.1: I3D head baseline (Table 3: 20.5 at R
= 300; 21.3 at R = 64).

The recipe: `tfaction.tasks.action_transformer_config.experiment_config`.
"""

from tfaction.tasks import action_transformer_config


def get_config():
    """Returns the experiment config."""
    return action_transformer_config.ava_experiment_config("i3d")
