"""Video Action Transformer on AVA v2.1: Tx+I3D, the paper's best system (Table
3: 24.9 val mAP).

The recipe: `tfaction.tasks.action_transformer_config.experiment_config`.
"""

from tfaction.tasks import action_transformer_config


def get_config():
    """Returns the experiment config."""
    return action_transformer_config.ava_experiment_config("tx_i3d")
