"""Keras optimizers built from the `optimizer` config section.

Weight decay is Keras' decoupled decay (`weight_decay`, AdamW-style, applied
by every Keras optimizer). SGD, Adam and AdamW are Keras' with each
variable's update one fused kernel (`tfaction.training.fused_sgd`,
`tfaction.training.fused_adam`). Gradient clipping
is NOT delegated to Keras: Keras 3 clips each replica's gradients before
the cross-replica sum, so `GlobalBatchOptimizer` clips the summed gradient
instead (`clip_norm`).
Under the `mixed_float16` policy the optimizer is wrapped in
`keras.optimizers.LossScaleOptimizer` (dynamic loss scaling).
"""

import keras

from tfaction import errors
from tfaction.training import fused_adam
from tfaction.training import fused_sgd
from tfaction.training import schedules

OPTIMIZERS = ("sgd", "adam", "adamw", "lamb")


def build_optimizer(optimizer_config, total_steps, exclude_variables=(),
                    steps_per_epoch=None):
    """Builds the optimizer (call it inside `strategy.scope()`).

    Args:
        optimizer_config: the `optimizer` config section: `name`, `lr`,
            `schedule`, `warmup_steps`, `min_lr_ratio`, `weight_decay`,
            `weight_decay_exclude` (variable-name substrings), `momentum`
            (sgd), `beta_1`, `beta_2`, `epsilon` (adam, adamw, lamb).
        total_steps: number of optimizer steps of the run (for the schedule).
        exclude_variables: variables never decayed, in addition to the
            `weight_decay_exclude` name patterns (e.g. a task's
            `weight_decay_exclusions`: ActionFormer decays conv/dense
            kernels only).
        steps_per_epoch: steps per epoch (for `warmup_epochs`).

    Returns:
        A `keras.optimizers.Optimizer`, wrapped in `LossScaleOptimizer` when
        the global dtype policy is `mixed_float16`.

    Raises:
        ConfigError: unknown optimizer name or bad hyper-parameter.

    Example:

    ```python
    with strategy.scope():
        optimizer = build_optimizer(config.optimizer, total_steps=1000)
        optimizer.build(model.trainable_variables)
    ```
    """
    name = optimizer_config.name
    if name not in OPTIMIZERS:
        raise errors.ConfigError(
            f"unknown optimizer.name {name!r}; expected one of "
            f"{', '.join(OPTIMIZERS)}")
    weight_decay = float(optimizer_config.weight_decay)
    if weight_decay < 0:
        raise errors.ConfigError(
            f"optimizer.weight_decay must be >= 0, got {weight_decay}")
    common = dict(
        learning_rate=schedules.build_learning_rate(
            optimizer_config, total_steps, steps_per_epoch),
        weight_decay=weight_decay or None)
    if name == "sgd":
        optimizer = fused_sgd.FusedSGD(
            momentum=float(optimizer_config.momentum), **common)
    else:
        cls = {"adam": fused_adam.FusedAdam,
               "adamw": fused_adam.FusedAdamW,
               "lamb": keras.optimizers.Lamb}[name]
        if name == "adamw" and not weight_decay:
            common["weight_decay"] = 0.0  # AdamW rejects None
        optimizer = cls(beta_1=float(optimizer_config.beta_1),
                        beta_2=float(optimizer_config.beta_2),
                        epsilon=float(optimizer_config.epsilon), **common)
    exclude = [s for s in optimizer_config.weight_decay_exclude if s]
    exclude_variables = list(exclude_variables)
    if exclude or exclude_variables:
        # Must happen before `build` (Keras refuses it afterwards).
        optimizer.exclude_from_weight_decay(
            var_list=exclude_variables or None, var_names=exclude or None)
    if keras.config.dtype_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
