r"""Trains and/or evaluates an experiment.

```
python -m experiments.train --config=experiments/configs/<name>.py \
    --workdir=runs/<name> [--config.optimizer.lr=2e-4 ...] \
    [--strategy=one_device|mirrored|multi_worker|tpu] \
    [--mode=train|eval|train_and_eval]
```

`--config` is a Python file whose `get_config()` returns an
`ml_collections.ConfigDict` extending `tfaction.config.base_config()` (a
task family's `experiment_config()`), or the resolved `config.json` of a
run: `--config=runs/<name>/config.json` reruns that experiment exactly.
The config is locked: an unknown key, in the file or in a
`--config.x.y=...` override, stops the launcher with an error naming the
key; the task section is then checked by its family's schema
(`tfaction.tasks.validate_config`) before anything is built. The resolved
config is written to `<workdir>/config.json` (`eval_config.json` in eval
mode) by the chief, then the task named by `config.task.name` (after
importing `config.task.module`) is trained by `tfaction.training.Trainer`.
Re-running the same command resumes from the newest checkpoint.

Multi-worker: start the same command on every host with `TF_CONFIG` set and
`--strategy=multi_worker`; the workdir must be on a shared file system.

With `runtime.deterministic=True` and TensorFlow's oneDNN CPU kernels on
(its default on x86 Linux), the launcher restarts itself once with
`TF_ENABLE_ONEDNN_OPTS=0`: those kernels are outside op determinism (see
`tfaction.training.runtime`).
"""

import json
import os
import sys

from absl import flags
from absl import logging

from experiments import command
from tfaction import config as config_lib
from tfaction import errors

MODES = ("train", "eval", "train_and_eval")
# Kept in sync with tfaction.training.STRATEGIES, without importing
# TensorFlow before the command line is known to be valid.
STRATEGY_NAMES = ("one_device", "mirrored", "multi_worker", "tpu")


def define_flags(flag_values, sys_argv=None):
    """Defines the launcher's flags on `flag_values`.

    Args:
        flag_values: an `absl.flags.FlagValues`.
        sys_argv: the argv the config overrides are read from (default
            `sys.argv` at parse time).

    Example:

    ```python
    flag_values = flags.FlagValues()
    define_flags(flag_values, sys_argv=argv)
    flag_values(argv)
    ```
    """
    command.define_config_flag(
        "config", "experiment config: recipe .py (get_config()) or a "
        "run's config.json", flag_values, sys_argv=sys_argv)
    flags.DEFINE_string("workdir", None, "run directory (checkpoints, "
                        "summaries, config.json)", flag_values=flag_values)
    flags.DEFINE_enum("mode", "train", MODES, "what to run",
                      flag_values=flag_values)
    flags.DEFINE_enum("strategy", None, STRATEGY_NAMES,
                      "overrides config.runtime.strategy",
                      flag_values=flag_values)
    flags.mark_flags_as_required(["config", "workdir"],
                                 flag_values=flag_values)


def parse_command_line(argv, flag_values=None):
    """Parses argv into a locked, checked config, workdir and mode.

    Args:
        argv: the command line, program name first.
        flag_values: where the flags are defined (the global `FLAGS` for
            the command line); a fresh `FlagValues` when None.

    Returns:
        Tuple `(config, workdir, mode)`.

    Raises:
        ConfigError: bad flag, unknown, missing or inconsistent config key,
            bad value, unreadable config file; the message names the
            culprit.

    Example:

    ```python
    config, workdir, mode = parse_command_line(
        ["train", "--config=experiments/configs/x.py", "--workdir=/tmp/r",
         "--config.optimizer.lr=0.01"])
    ```
    """
    (config,), flag_values = command.parse_configs(
        argv, flag_values, define_flags)
    if flag_values.strategy:
        config.runtime.strategy = flag_values.strategy
    if config.runtime.strategy not in STRATEGY_NAMES:
        raise errors.ConfigError(
            f"unknown runtime.strategy {config.runtime.strategy!r}; expected "
            f"one of {', '.join(STRATEGY_NAMES)}")
    command.validate(config)
    return config, flag_values.workdir, flag_values.mode


def build_trainer(config, workdir, mode="train"):
    """Sets the runtime, builds strategy, task and trainer; writes config.

    Args:
        config: a checked experiment config.
        workdir: the run directory.
        mode: one of `MODES`; "eval" builds an evaluation-only trainer
            (the training split is not read) and writes `eval_config.json`
            instead of `config.json`.

    Returns:
        A `tfaction.training.Trainer`.
    """
    from tfaction import tasks
    from tfaction import training
    from tfaction.data import filesystems

    training.configure_runtime(config.runtime, config.trainer.seed)
    strategy = training.get_strategy(config.runtime.strategy,
                                     devices=config.runtime.devices,
                                     tpu=config.runtime.tpu)
    if training.worker_info(strategy)[2]:  # only the chief writes
        filesystems.makedirs(workdir)
        config_lib.write_config_json(
            config, workdir,
            filename="eval_config.json" if mode == "eval" else
            config_lib.CONFIG_JSON)
    task = tasks.build_task(config)
    return training.Trainer(task, config, workdir, strategy,
                            evaluation_only=mode == "eval")


def relaunch_for_determinism(config, argv=None):
    """Restarts this launcher with oneDNN off if the run needs it.

    A deterministic run (`runtime.deterministic`) must not use oneDNN's CPU
    kernels, and TensorFlow reads its switch only when it loads: the
    process is replaced (`os.execve`, same pid, same arguments) by one with
    `TF_ENABLE_ONEDNN_OPTS=0`. Returns only when no restart is needed.

    Args:
        config: the checked experiment config.
        argv: the launcher's arguments after the program name (default
            `sys.argv[1:]`).

    Example:

    ```python
    config, workdir, mode = parse_command_line(sys.argv)
    relaunch_for_determinism(config)
    ```
    """
    from tfaction.training import runtime

    env = runtime.deterministic_relaunch_env(config.runtime)
    if env is None:
        return
    logging.info("runtime.deterministic: restarting with %s=0 (oneDNN "
                 "kernels are not deterministic)", runtime.ONEDNN_ENV)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = sys.argv[1:] if argv is None else list(argv)
    os.execve(sys.executable,
              [sys.executable, "-m", "experiments.train", *argv], env)


def run(trainer, mode):
    """Runs `mode` with `trainer`, then closes its summary writers.

    Args:
        trainer: from `build_trainer`.
        mode: "train", "eval" or "train_and_eval".

    Returns:
        The result dict: `step`, and `preempted` / `train` / `eval` as the
        mode produces them.

    Example:

    ```python
    result = run(build_trainer(config, workdir, "train"), "train")
    ```
    """
    try:
        if mode == "train":
            return trainer.train()
        if mode == "eval":
            metrics = trainer.evaluate()  # restores the checkpoint first
            return {"step": trainer.global_step, "eval": metrics}
        return trainer.train_and_evaluate()
    finally:
        trainer.close()


if __name__ == "__main__":
    # Global flags only for the command line: importing this module (tests,
    # other launchers) must not claim flag names on `absl.flags.FLAGS`.
    def _main(parsed):
        config, workdir, mode = parsed
        relaunch_for_determinism(config)
        result = run(build_trainer(config, workdir, mode), mode)
        logging.info("done: %s", json.dumps(result, default=float))

    command.run("experiments.train", define_flags, parse_command_line,
                _main)
