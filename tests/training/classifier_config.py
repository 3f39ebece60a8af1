"""Test experiment config for the tests-only feature classifier task.

Data paths are set with `--config.task.train_files=...` /
`--config.task.eval_files=...`.
"""

from tfaction import config as config_lib


def get_config():
    """Returns a small, deterministic classifier experiment."""
    config = config_lib.base_config()
    config.task.name = "test_feature_classifier"
    config.task.module = "tests.training.classifier_task"
    config.task.train_files = ""
    config.task.eval_files = ""
    config.task.num_classes = 3
    config.task.feature_dim = 4
    config.task.num_steps = 8
    config.task.hidden = 8
    config.task.input_gate_file = ""
    config.task.input_gate_examples = 0

    config.trainer.epochs = 3
    config.trainer.global_batch_size = 8
    config.trainer.checkpoint_interval = 4
    config.trainer.log_interval = 2
    config.trainer.seed = 7

    config.optimizer.name = "adamw"
    config.optimizer.lr = 0.02
    config.optimizer.warmup_steps = 2
    config.optimizer.weight_decay = 1e-3
    config.optimizer.clip_norm = 1.0

    config.ema.enabled = True
    config.ema.decay = 0.9

    config.runtime.deterministic = True
    return config
