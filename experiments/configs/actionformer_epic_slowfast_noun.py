"""ActionFormer on EPIC-Kitchens 100 nouns (SlowFast, 2304-d).

As the verb recipe, plus label smoothing 0.1 (published average 21.88).
The authors' `head_empty_cls` are the noun ids no annotation of the JSON
uses (their dataset's `empty_label_ids`, not a config value): converted
without `--class_list`, those ids are the converter's placeholder classes
and get the empty-class bias automatically. With `--class_list` there are
no placeholders: list such ids in `task.model.empty_classes`.
"""

from experiments.configs import actionformer_epic_slowfast_verb


def get_config():
    """Returns the config (`actionformer_config` describes every key)."""
    config = actionformer_epic_slowfast_verb.get_config()
    config.task.data_dir = "data/epic_slowfast_noun"
    config.task.loss.label_smoothing = 0.1
    return config
