"""ActionFormer on EPIC-Kitchens 100 nouns (SlowFast, 2304-d).

As the verb recipe, plus label smoothing 0.1 (published average 21.88).
Noun ids without an annotation get the empty-class bias automatically
(converter placeholders); `task.model.empty_classes` adds others.
"""

from experiments.configs import actionformer_epic_slowfast_verb


def get_config():
    """Returns the config (`actionformer_config` describes every key)."""
    config = actionformer_epic_slowfast_verb.get_config()
    config.task.data_dir = "data/epic_slowfast_noun"
    config.task.loss.label_smoothing = 0.1
    return config
