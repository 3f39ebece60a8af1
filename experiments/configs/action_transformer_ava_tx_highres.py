"""Video Action Transformer on AVA v2.1: Tx head, HighRes query (Table 3, R =
300: 24.4 val mAP).

The recipe: `tfaction.tasks.action_transformer_config.experiment_config`.
"""

from tfaction.tasks import action_transformer_config


def get_config():
    """Returns the experiment config."""
    return action_transformer_config.ava_experiment_config("tx")
