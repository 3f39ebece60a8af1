"""ActionVLAD RGB stream on HMDB51 (one split; `task.data_dir` per split).

Published (released models, split 1/2/3): 51.4 / 49.2 / 48.6 % video top-1,
one centre crop at test time. `--config=...py:stage1` or `:stage2`; see
`tfaction.tasks.actionvlad_config` and `experiments/actionvlad_hmdb51.sh`.
"""

from tfaction.tasks import actionvlad_config


def get_config(stage="stage1"):
    """Returns the config of `stage` ("stage1" or "stage2")."""
    config = actionvlad_config.experiment_config(stage)
    config.task.data_dir = "data/hmdb51/records/split1"
    return config
