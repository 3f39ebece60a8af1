"""Shared defaults every experiment config extends.

A recipe calls `base.get_config()`, fills its `task` section (free-form: the
task's own keys) and changes shared values. Every section but `task` is
locked, so a typo such as `config.trainer.train_step = 10` fails in the
recipe file; the launcher then locks the whole config before applying
`--config.x.y=...` overrides. Each key is described where it is defined.
"""

import ml_collections


def get_config():
    """Returns the shared defaults, locked except for the `task` section.

    Returns:
        An `ml_collections.ConfigDict`.

    Example:

    ```python
    from experiments.configs import base

    def get_config():
        config = base.get_config()
        config.task.name = "actionformer"
        config.task.module = "tfaction.tasks.actionformer"
        config.optimizer.lr = 1e-4
        return config
    ```
    """
    config = ml_collections.ConfigDict()
    config.task = ml_collections.ConfigDict({
        "name": "",    # registered task (tfaction.tasks.register_task)
        "module": "",  # module(s), comma-separated, that register it
    })
    config.trainer = ml_collections.ConfigDict({
        "train_steps": 0,       # total optimizer steps; 0 = epochs * epoch
        "epochs": 1,            # passes over the training split
        "steps_per_epoch": 0,   # 0 = count the batches of one epoch once
        "global_batch_size": 32,  # examples per step over all replicas
        "eval_batch_size": 0,   # 0 = global_batch_size
        "eval_steps": 0,        # 0 = the whole evaluation split
        "eval_interval": 0,     # train_and_eval: every N steps (0 = at end)
        "checkpoint_interval": 1000,  # also at the end and on SIGTERM
        "max_checkpoints_to_keep": 3,
        "log_interval": 100,    # TensorBoard scalars and progress bar
        "seed": 0,              # initialisation and (seed, epoch) data order
    })
    config.optimizer = ml_collections.ConfigDict({
        "name": "adamw",        # sgd, adam, adamw, lamb
        "lr": 1e-3,             # peak learning rate
        "schedule": "cosine",   # constant, cosine or step, after warm-up
        "warmup_steps": 0,      # linear warm-up from 0
        "warmup_epochs": 0,     # or in epochs (warmup_steps must be 0)
        "min_lr_ratio": 0.0,    # cosine floor, as a fraction of lr
        "decay_steps": 0,       # step: multiply by decay_rate every N steps
        "decay_rate": 0.1,
        "weight_decay": 0.0,    # decoupled weight decay (0 = off)
        "weight_decay_exclude": ("bias",),  # variable-name substrings
        "clip_norm": 0.0,       # global norm of the summed gradient (0 = off)
        "clip_norm_per_variable": 0.0,  # each variable's summed gradient
        "momentum": 0.9,        # sgd
        "beta_1": 0.9,          # adam, adamw, lamb
        "beta_2": 0.999,
        "epsilon": 1e-7,
    })
    config.ema = ml_collections.ConfigDict({
        "enabled": False,       # moving average of the weights
        "decay": 0.999,
        "evaluate_with_ema": True,
    })
    config.runtime = ml_collections.ConfigDict({
        "strategy": "one_device",  # mirrored, multi_worker, tpu (--strategy)
        "devices": (),          # mirrored / one_device devices (() = all)
        "tpu": "",              # TPU name or grpc:// address
        "mixed_precision": "float32",  # mixed_float16, mixed_bfloat16
        "logical_cpus": 0,      # split a GPU-less CPU into N devices
        "deterministic": False,  # tf.config.experimental.enable_op_determinism
    })
    config.lock()
    config.task.unlock()
    return config
