"""The shared command-line convention of tfaction's commands.

Every command (`experiments.train`, `export.export_saved_model`,
`python -m tfaction.checkpoints.import`, ...) parses its flags into a
checked config (a bad flag, key or value is a `ConfigError`) and then does
its work. A config flag (`define_config_flag`) takes a recipe,
`file.py[:argument]` (its `get_config()`), or a resolved `config.json`
written by a run (restored with its types by
`tfaction.config.read_config_json`); either way the config is locked,
`--config.x.y=...` overrides apply and unknown keys fail. A
`tfaction.errors` error is printed as `<program>: error: <message>` (the
message says what to fix) and the process exits with status 2 for
configuration errors, 1 for others. Flags are defined only when a module
runs as a command, so importing it (tests, other launchers) claims no flag
names.

Example:

```python
from tfaction import command

if __name__ == "__main__":
    command.run("experiments.train", define_flags, parse_command_line,
                lambda parsed: train(*parsed))
```
"""

import importlib.util
import re
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from tfaction import config as config_lib
from tfaction import errors
from tfaction.data import filesystems


def _fail(program, error, status):
    sys.stderr.write(f"{program}: error: {error}\n")
    sys.exit(status)


def run(program, define_flags, parse_command_line, main):
    """Defines the flags on `absl.flags.FLAGS` and runs the command.

    Args:
        program: the name printed before error messages.
        define_flags: `define_flags(flag_values)`.
        parse_command_line: `parse_command_line(argv, flag_values)` ->
            parsed value; raises `ConfigError` for a bad command line.
        main: `main(parsed)`; its return value, unless None, is printed.
    """
    define_flags(flags.FLAGS)

    def parse(argv):
        try:
            return parse_command_line(argv, flags.FLAGS)
        except errors.ConfigError as e:
            _fail(program, e, 2)

    def run_main(parsed):
        try:
            result = main(parsed)
        except errors.TfactionError as e:
            _fail(program, e, 2 if isinstance(e, errors.ConfigError) else 1)
        if result is not None:
            print(result)

    # Via `filesystems` so that a run on s3:// paths exits with its own status.
    filesystems.run_and_exit(app.run, run_main, flags_parser=parse)


def parse_configs(argv, flag_values, define_flags, names=("config",),
                  explain=None):
    """Parses argv and returns the locked, checked configs of `names`.

    Args:
        argv: the command line, program name first.
        flag_values: where the flags are defined; None: a fresh
            `FlagValues` on which `define_flags(flag_values, sys_argv=argv)`
            defines them.
        define_flags: the command's flag definitions.
        names: the config-file flags to return, in order.
        explain: `explain(error, argv)` -> `ConfigError` naming the culprit
            of a parsing failure (default: `explain_config_error`).

    Returns:
        `(configs, flag_values)`.

    Raises:
        ConfigError: bad flag, unknown or missing config key, bad value,
            unreadable config file.
    """
    if flag_values is None:
        flag_values = flags.FlagValues()
        define_flags(flag_values, sys_argv=argv)
    try:
        flag_values(argv)
        configs = [flag_values[name].value for name in names]
        for config in configs:
            config_lib.lock(config)
    except (flags.Error, AttributeError, KeyError, OSError) as e:
        raise (explain or explain_config_error)(e, argv) from e
    for config in configs:
        config_lib.check_keys(config, config_lib.base_config())
    return configs, flag_values


def validate(config):
    """Checks the task section with its family's schema (builds nothing).

    Args:
        config: a locked experiment config from `parse_configs`.

    Raises:
        ConfigError: naming the unknown, missing or inconsistent key.
    """
    from tfaction import tasks  # imports TensorFlow

    tasks.validate_config(config)


class _ConfigFileParser(config_flags.config_flags.ConfigFileFlagParser):
    """`file.py[:argument]` as ml_collections does, or a `.json` config."""

    def parse(self, path):
        if path.endswith(".json"):
            return load_config(path)
        return super().parse(path)


def define_config_flag(name, help_string, flag_values, sys_argv=None):
    """Defines the config flag `--<name>` (a `.py` recipe or `.json`).

    Args:
        name: the flag name, e.g. "config".
        help_string: its help.
        flag_values: an `absl.flags.FlagValues`.
        sys_argv: the argv the overrides are read from (default `sys.argv`
            at parse time).

    Example:

    ```python
    define_config_flag("config", "experiment config", flag_values)
    ```
    """
    config_flags.DEFINE_config_file(
        name, None, help_string, flag_values=flag_values, lock_config=True,
        sys_argv=sys_argv)
    flag_values[name].parser = _ConfigFileParser(name)


def _flag_value(argv, name):
    for i, arg in enumerate(argv):
        match = re.fullmatch(rf"--?{name}(=(.*))?", arg)
        if match:
            return match.group(2) if match.group(1) else (
                argv[i + 1] if i + 1 < len(argv) else None)
    return None


def with_workdir_config(argv, config_flag="config", workdir_flag="workdir"):
    """`argv` with `--<config_flag>=<workdir>/config.json` if it has none.

    Lets a command that reads a finished run (export) take the run's own
    resolved config instead of the recipe and its overrides again.

    Args:
        argv: the command line, program name first.
        config_flag: the config flag's name.
        workdir_flag: the flag naming the run directory.

    Returns:
        The command line to parse.

    Raises:
        ConfigError: no config flag and no `config.json` in the workdir.

    Example:

    ```python
    argv = with_workdir_config(["export", "--workdir=runs/x", ...])
    ```
    """
    workdir = _flag_value(argv, workdir_flag)
    if _flag_value(argv, config_flag) is not None or workdir is None:
        return argv
    path = filesystems.join(workdir, config_lib.CONFIG_JSON)
    if not filesystems.exists(path):
        raise errors.ConfigError(
            f"--{config_flag} is not given and {path} does not exist (a "
            f"training run writes it): pass --{config_flag}=<recipe>.py or "
            f"a config.json, or point --{workdir_flag} at a trained run")
    return [*argv[:1], f"--{config_flag}={path}", *argv[1:]]


def _override_paths(argv):
    paths = []
    for arg in argv:
        match = re.match(r"--?(?:no)?config\.([^=]+)", arg)
        if match:
            paths.append(match.group(1))
    return paths


def load_config(spec):
    """The config of "file.py", "file.py:argument" or "config.json".

    Args:
        spec: a recipe (its `get_config(argument)`) or a resolved
            `config.json`.

    Returns:
        The ConfigDict (locked when read from JSON).

    Raises:
        ConfigError: unreadable JSON config, unknown keys in it.
        OSError: unreadable Python file.
    """
    if spec.endswith(".json"):
        return config_lib.read_config_json(spec)
    path, *arguments = spec.split(":", 1)
    module_spec = importlib.util.spec_from_file_location("_config", path)
    if module_spec is None:
        raise OSError(f"cannot load {path!r} as a Python file")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(*arguments)


def explain_config_error(error, argv):
    """Turns a flag-parsing failure into a ConfigError naming the culprit."""
    path = _flag_value(argv, "config")
    if path is not None:
        try:
            config = config_lib.lock(load_config(path))
        except errors.ConfigError as e:
            return e
        except (AttributeError, KeyError, TypeError, ValueError,
                OSError) as e:
            return errors.ConfigError(f"config file {path}: {e}")
        for override in _override_paths(argv):
            problem = config_lib.unknown_key(config, override)
            if problem:
                return errors.ConfigError(
                    f"{problem}, from --config.{override} (config file "
                    f"{path})")
    return errors.ConfigError(str(error))
