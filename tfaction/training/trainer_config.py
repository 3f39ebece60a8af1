"""Checks of the `trainer` config section, before anything is built."""

from tfaction import errors


def check_trainer_config(trainer_config, num_replicas):
    """Raises a ConfigError naming the first invalid `trainer.*` value.

    Args:
        trainer_config: the `trainer` section of an experiment config.
        num_replicas: replicas in sync (batch sizes must split over them).

    Raises:
        ConfigError: e.g. "trainer.global_batch_size=10 must be a positive
            multiple of the 4 replica(s)".

    Example:

    ```python
    check_trainer_config(config.trainer, strategy.num_replicas_in_sync)
    ```
    """
    c = trainer_config
    checks = [
        ("global_batch_size", c.global_batch_size > 0 and
         c.global_batch_size % num_replicas == 0,
         f"must be a positive multiple of the {num_replicas} replica(s)"),
        ("eval_batch_size", c.eval_batch_size >= 0 and
         c.eval_batch_size % num_replicas == 0,
         f"must be 0 (= global_batch_size) or a positive multiple of the "
         f"{num_replicas} replica(s)"),
        ("train_steps", c.train_steps >= 0, "must be >= 0"),
        ("epochs", c.epochs >= 0 and (c.epochs > 0 or c.train_steps > 0),
         "must be > 0 when trainer.train_steps is 0"),
        ("steps_per_epoch", c.steps_per_epoch >= 0,
         "must be >= 0 (0 = count the batches of one epoch)"),
        ("checkpoint_interval", c.checkpoint_interval > 0, "must be > 0"),
        ("max_checkpoints_to_keep", c.max_checkpoints_to_keep > 0,
         "must be > 0"),
        ("log_interval", c.log_interval > 0, "must be > 0"),
        ("eval_interval", c.eval_interval >= 0, "must be >= 0"),
        ("eval_steps", c.eval_steps >= 0, "must be >= 0 (0 = all)"),
    ]
    for key, ok, expected in checks:
        if not ok:
            raise errors.ConfigError(f"trainer.{key}={c[key]!r} {expected}")
