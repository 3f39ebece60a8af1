r"""Exports a trained experiment as a TF Serving SavedModel version.

```
python -m export.export_saved_model --workdir=runs/<name> \
    --export_dir=models/<name> [--config=experiments/configs/<name>.py] \
    [--version=N] [--checkpoint=runs/<name>/checkpoints/ckpt-1000] \
    [--model_name=<name>] [--serving_base_path=/models/<name>] \
    [--served_versions=N ...] [--config.x.y=...]
```

Without `--config`, the run's resolved `<workdir>/config.json` (written by
`experiments.train`) is the config, so the model matches its checkpoint
with no overrides repeated. With `--config` (a recipe `.py` or a
`config.json`), the config is read, locked and validated exactly as
`experiments.train` does (pass the overrides the run was trained with).
The task is built, its model restored from the newest checkpoint of
`--workdir/checkpoints` (or `--checkpoint`), the EMA weights swapped in
when `ema.enabled` and `ema.evaluate_with_ema` (the weights the recipe
evaluates), and `tfaction.serving.build_export_module(task, model)` is
written by `tfaction.serving.export_saved_model` to
`--export_dir/<version>/` (next integer by default) with `models.config`
and `batching_parameters.txt` beside it (`models.config` serves the newest
version, or with `--served_versions` (repeatable) exactly those). The
workdir is only read. Prints the new version's path.

Exit status: 0 on success, 2 for a bad command line / config / missing
checkpoint, 1 for other tfaction errors.
"""

import os

from absl import flags
from absl import logging

from experiments import command
from tfaction import errors


def define_flags(flag_values, sys_argv=None):
    """Defines the export flags on `flag_values`.

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
        "config.json (default: <workdir>/config.json)", flag_values,
        sys_argv=sys_argv)
    flags.DEFINE_string("workdir", None, "the training run directory",
                        flag_values=flag_values)
    flags.DEFINE_string("export_dir", None, "the model's serving base path "
                        "(versions are written under it)",
                        flag_values=flag_values)
    flags.DEFINE_integer("version", None, "version number (default: the "
                         "next integer)", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_string("checkpoint", None, "checkpoint path prefix "
                        "(default: the newest in <workdir>/checkpoints)",
                        flag_values=flag_values)
    define_server_flags(flag_values)
    flags.mark_flags_as_required(["workdir", "export_dir"],
                                 flag_values=flag_values)


# What models.config tells TF Serving; every export command takes them.
SERVER_FLAGS = ("model_name", "serving_base_path", "served_versions")


def define_server_flags(flag_values):
    """Defines `SERVER_FLAGS`: the served model's name, base path and
    version policy as `models.config` states them."""
    flags.DEFINE_string("model_name", None, "served model name (default: "
                        "the last component of --export_dir)",
                        flag_values=flag_values)
    flags.DEFINE_string("serving_base_path", None, "base path written to "
                        "models.config, as the server sees it (default: "
                        "--export_dir, absolute)", flag_values=flag_values)
    flags.DEFINE_multi_integer(
        "served_versions", None, "versions models.config pins (repeat the "
        "flag; default: serve the newest version)", lower_bound=1,
        flag_values=flag_values)


def parse_command_line(argv, flag_values=None):
    """Parses argv into a locked, checked config and the export options.

    Args:
        argv: the command line, program name first.
        flag_values: where the flags are defined (the global `FLAGS` for
            the command line); a fresh `FlagValues` when None.

    Returns:
        Tuple `(config, options)`, `options` a dict with `workdir`,
        `export_dir`, `version`, `checkpoint`, `model_name`,
        `serving_base_path`, `served_versions`.

    Raises:
        ConfigError: bad flag, unknown, missing or inconsistent config key,
            bad value, unreadable config file, no `--config` and no
            `<workdir>/config.json`; the message names the culprit.
    """
    (config,), flag_values = command.parse_configs(
        command.with_workdir_config(argv), flag_values, define_flags)
    command.validate(config)
    options = {name: flag_values[name].value
               for name in ("workdir", "export_dir", "version", "checkpoint",
                            *SERVER_FLAGS)}
    return config, options


def restore(trainer, checkpoint=None):
    """Restores `checkpoint` (default: the workdir's newest) into `trainer`.

    Args:
        trainer: an evaluation-only `tfaction.training.Trainer`.
        checkpoint: a checkpoint path prefix, or None.

    Returns:
        The restored checkpoint path.

    Raises:
        ConfigError: no checkpoint, or one that does not fit the model.
    """
    if checkpoint is None:
        path = trainer.restore()
        if path is None:
            raise errors.ConfigError(
                f"nothing to export: no checkpoint in "
                f"{trainer.checkpointer.directory}; train first or point "
                "--workdir at a trained run (or pass --checkpoint)")
        return path
    return trainer.checkpointer.restore(checkpoint)


def export(config, workdir, export_dir, version=None, checkpoint=None,
           model_name=None, serving_base_path=None, served_versions=None):
    """Builds the task's model, restores it and exports a version.

    Args:
        config: a checked experiment config.
        workdir: the training run directory (read only).
        export_dir: the model's serving base path.
        version: version number, or None for the next one.
        checkpoint: checkpoint path prefix, or None for the newest.
        model_name: served model name (default: basename of `export_dir`).
        serving_base_path: base path for `models.config`.
        served_versions: versions `models.config` pins (None: the newest).

    Returns:
        The new version's directory.

    Raises:
        ConfigError: no checkpoint, a mismatching checkpoint, a task
            without an export module (`tfaction.serving.
            register_export_module`), an existing version.

    Example:

    ```python
    config, options = parse_command_line(argv)
    path = export(config, **options)
    ```
    """
    import contextlib

    from tfaction import serving
    from tfaction import tasks
    from tfaction import training

    # Same dtype policy and seed as training and evaluation; the default
    # strategy: a SavedModel must not capture distributed variables.
    training.configure_runtime(config.runtime, config.trainer.seed)
    task = tasks.build_task(config)
    trainer = training.Trainer(task, config, workdir, evaluation_only=True)
    try:
        path = restore(trainer, checkpoint)
        logging.info("exporting %s", path)
        use_ema = trainer.ema is not None and config.ema.evaluate_with_ema
        with (trainer.ema.swapped_weights() if use_ema
              else contextlib.nullcontext()):
            module = serving.build_export_module(task, trainer.model)
            return serving.export_saved_model(
                module, export_dir, version=version, model_name=model_name,
                serving_base_path=serving_base_path,
                served_versions=served_versions)
    finally:
        trainer.close()


if __name__ == "__main__":
    command.run("export.export_saved_model", define_flags,
                parse_command_line,
                lambda parsed: os.fspath(export(parsed[0], **parsed[1])))
