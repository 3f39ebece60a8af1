"""Learning-rate schedules built from the `optimizer` config section.

After `warmup_steps` of linear warm-up from 0, `optimizer.schedule` gives:

- `constant`: `lr`;
- `cosine`: `lr * ((1 - a) * 0.5 * (1 + cos(pi * t)) + a)`, with `t` the
  fraction of the decay steps done and `a` = `min_lr_ratio`;
- `step`: `lr * decay_rate ** floor(step / decay_steps)` (staircase, as
  TF-slim's `exponential_decay(staircase=True)`; ActionVLAD), no warm-up.

Constant and cosine are `keras.optimizers.schedules.CosineDecay(
warmup_steps=...)` (a constant is a cosine with `alpha=1`), step is
`ExponentialDecay(staircase=True)`, so there is no custom schedule class to
serialise. Schedules are indexed by optimizer step, not by epoch.
"""

import keras

from tfaction import errors

SCHEDULES = ("constant", "cosine", "step")


def build_learning_rate(optimizer_config, total_steps, steps_per_epoch=None):
    """Returns the learning rate (float or schedule) for an optimizer.

    Args:
        optimizer_config: the `optimizer` config section (`lr`, `schedule`,
            `warmup_steps` / `warmup_epochs`, `warmup_start_ratio` (the
            warm-up's first rate as a fraction of `lr`), `min_lr_ratio`,
            `decay_steps`, `decay_rate`).
        total_steps: number of optimizer steps of the whole run.
        steps_per_epoch: optimizer steps per epoch, for `warmup_epochs`.

    Returns:
        A float (constant, no warm-up) or a `keras.optimizers.schedules.
        CosineDecay` / `ExponentialDecay`.

    Raises:
        ConfigError: unknown schedule, or warm-up not shorter than the run.

    Example:

    ```python
    lr = build_learning_rate(config.optimizer, total_steps=10_000)
    optimizer = keras.optimizers.AdamW(learning_rate=lr)
    ```
    """
    name = optimizer_config.schedule
    lr = float(optimizer_config.lr)
    warmup = int(optimizer_config.warmup_steps)
    warmup_epochs = float(optimizer_config.get("warmup_epochs", 0) or 0)
    if warmup_epochs:
        if warmup:
            raise errors.ConfigError(
                "set optimizer.warmup_steps or optimizer.warmup_epochs, "
                "not both")
        if not steps_per_epoch:
            raise errors.ConfigError(
                "optimizer.warmup_epochs needs the number of steps per "
                "epoch")
        # Per-iteration warm-up over whole epochs (ActionFormer).
        warmup = int(round(warmup_epochs * steps_per_epoch))
    if name not in SCHEDULES:
        raise errors.ConfigError(
            f"unknown optimizer.schedule {name!r}; expected one of "
            f"{', '.join(SCHEDULES)}")
    if lr <= 0:
        raise errors.ConfigError(f"optimizer.lr must be > 0, got {lr}")
    if warmup < 0 or (warmup and warmup >= total_steps):
        raise errors.ConfigError(
            f"optimizer.warmup_steps={warmup} must be >= 0 and shorter than "
            f"the run ({total_steps} steps)")
    if name == "constant" and not warmup:
        return lr
    if name == "step":
        return _step_decay(optimizer_config, lr, warmup)
    alpha = 1.0 if name == "constant" else float(optimizer_config.min_lr_ratio)
    if not 0.0 <= alpha <= 1.0:
        raise errors.ConfigError(
            f"optimizer.min_lr_ratio must be in [0, 1], got {alpha}")
    start = float(optimizer_config.get("warmup_start_ratio", 0.0) or 0.0)
    if not 0.0 <= start < 1.0:
        raise errors.ConfigError(
            f"optimizer.warmup_start_ratio must be in [0, 1), got {start}")
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr * start if warmup else lr,
        decay_steps=max(total_steps - warmup, 1),
        alpha=alpha,
        warmup_target=lr if warmup else None,
        warmup_steps=warmup)


def _step_decay(optimizer_config, lr, warmup):
    decay_steps = int(optimizer_config.get("decay_steps", 0) or 0)
    rate = float(optimizer_config.get("decay_rate", 0.1))
    if warmup:
        raise errors.ConfigError("optimizer.schedule='step' has no warm-up; "
                                 "set optimizer.warmup_steps/epochs to 0")
    if decay_steps <= 0 or not 0.0 < rate <= 1.0:
        raise errors.ConfigError(
            f"optimizer.schedule='step' needs optimizer.decay_steps > 0 and "
            f"0 < optimizer.decay_rate <= 1, got {decay_steps} and {rate}")
    return keras.optimizers.schedules.ExponentialDecay(
        lr, decay_steps=decay_steps, decay_rate=rate, staircase=True)
