"""Learning-rate schedules built from the `optimizer` config section.

After `warmup_steps` of linear warm-up from 0, `optimizer.schedule` gives:

- `constant`: `lr`;
- `cosine`: `lr * ((1 - a) * 0.5 * (1 + cos(pi * t)) + a)`, with `t` the
  fraction of the decay steps done and `a` = `min_lr_ratio`;
- `step`: `lr * decay_rate ** floor(step / decay_steps)` (staircase, as
  TF-slim's `exponential_decay(staircase=True)`; ActionVLAD), no warm-up;
- `cosine_per_epoch`: `lr * ((1 - a) * 0.5 * (1 + cos(pi * e / (E + 1)))
  + a)` with `e = floor(step / steps_per_epoch)` the epoch and `E` the
  epochs of the run: the rate changes once per epoch and stays above `a *
  lr` in the last one, as PyTorch's `CosineAnnealingLR(T_max=E + 1,
  eta_min=a * lr)` stepped after every epoch (CARL), no warm-up.

Constant and cosine are `keras.optimizers.schedules.CosineDecay(
warmup_steps=...)` (a constant is a cosine with `alpha=1`), step is
`ExponentialDecay(staircase=True)`, and `cosine_per_epoch` is
`EpochCosineDecay` (registered for Keras serialisation). Schedules are
called with the optimizer step; only `cosine_per_epoch` turns it into an
epoch.
"""

import math

import keras
from keras import ops

from tfaction import errors

SCHEDULES = ("constant", "cosine", "step", "cosine_per_epoch")


@keras.saving.register_keras_serializable(package="tfaction")
class EpochCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine annealing stepped once per epoch, over `num_epochs + 1`.

    `lr(step) = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * e / t_max))
    + alpha)` with `e = floor(step / steps_per_epoch)` and `t_max =
    num_epochs + 1`: PyTorch's `CosineAnnealingLR(T_max=num_epochs + 1,
    eta_min=alpha * initial)` with `scheduler.step()` after every epoch.
    Epochs past `t_max` keep the floor.

    Args:
        initial_learning_rate: the rate of epoch 0.
        steps_per_epoch: optimizer steps per epoch (>= 1).
        num_epochs: epochs of the run (>= 1).
        alpha: the floor as a fraction of `initial_learning_rate`.
        name: schedule name.

    Example:

    >>> schedule = EpochCosineDecay(1.0, steps_per_epoch=10, num_epochs=3)
    >>> [round(float(schedule(s)), 4) for s in (0, 9, 10, 25, 39)]
    [1.0, 1.0, 0.8536, 0.5, 0.1464]
    """

    def __init__(self, initial_learning_rate, steps_per_epoch, num_epochs,
                 alpha=0.0, name="EpochCosineDecay"):
        super().__init__()
        if int(steps_per_epoch) < 1 or int(num_epochs) < 1:
            raise errors.ConfigError(
                f"EpochCosineDecay needs steps_per_epoch >= 1 and num_epochs "
                f">= 1, got {steps_per_epoch} and {num_epochs}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.steps_per_epoch = int(steps_per_epoch)
        self.num_epochs = int(num_epochs)
        self.alpha = float(alpha)
        self.name = name

    def __call__(self, step):
        # float64: near the end 1 + cos(pi * t) cancels to a few 1e-5,
        # which float32 would only resolve to ~1e-3 relative.
        step = ops.cast(step, "float64")
        epoch = ops.floor(step / float(self.steps_per_epoch))
        t = ops.minimum(epoch / float(self.num_epochs + 1), 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * t))
        rate = self.initial_learning_rate * (
            (1.0 - self.alpha) * cosine + self.alpha)
        return ops.cast(rate, "float32")

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "steps_per_epoch": self.steps_per_epoch,
                "num_epochs": self.num_epochs, "alpha": self.alpha,
                "name": self.name}


def build_learning_rate(optimizer_config, total_steps, steps_per_epoch=None):
    """Returns the learning rate (float or schedule) for an optimizer.

    Args:
        optimizer_config: the `optimizer` config section (`lr`, `schedule`,
            `warmup_steps` / `warmup_epochs`, `warmup_start_ratio` (the
            warm-up's first rate as a fraction of `lr`), `min_lr_ratio`,
            `decay_steps`, `decay_rate`).
        total_steps: number of optimizer steps of the whole run.
        steps_per_epoch: optimizer steps per epoch, for `warmup_epochs`
            and `cosine_per_epoch`.

    Returns:
        A float (constant, no warm-up) or a `keras.optimizers.schedules.
        CosineDecay` / `ExponentialDecay`, or an `EpochCosineDecay`.

    Raises:
        ConfigError: unknown schedule, warm-up not shorter than the run,
            or `cosine_per_epoch` without steps per epoch or with warm-up.

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
    if name == "cosine_per_epoch":
        return _epoch_cosine(lr, alpha, warmup, total_steps, steps_per_epoch)
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


def _epoch_cosine(lr, alpha, warmup, total_steps, steps_per_epoch):
    if warmup:
        raise errors.ConfigError(
            "optimizer.schedule='cosine_per_epoch' has no warm-up; set "
            "optimizer.warmup_steps/epochs to 0")
    if not steps_per_epoch:
        raise errors.ConfigError(
            "optimizer.schedule='cosine_per_epoch' needs the number of steps "
            "per epoch")
    steps_per_epoch = int(steps_per_epoch)
    num_epochs = max(1, -(-int(total_steps) // steps_per_epoch))
    return EpochCosineDecay(lr, steps_per_epoch, num_epochs, alpha=alpha)
