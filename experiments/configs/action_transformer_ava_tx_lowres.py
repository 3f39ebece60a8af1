"""Video Action Transformer on AVA v2.1: Tx head, LowRes query (Table 1, R =
64: 17.8 with RPN boxes).

The recipe: `tfaction.tasks.action_transformer_config.experiment_config`.
"""

from tfaction.tasks import action_transformer_config


def get_config():
    """Returns the experiment config."""
    return action_transformer_config.ava_experiment_config("tx", "low_res")
