"""The shared command-line convention of tfaction's commands.

Every command parses its flags into a checked config (a bad flag, key or
value is a `ConfigError`) and then does its work; a `tfaction.errors` error
is printed as `<program>: error: <message>` (the message says what to fix)
and the process exits with status 2 for configuration errors, 1 for
others. Flags are defined only when the module runs as a command, so
importing it (tests, other launchers) claims no flag names.

Example:

```python
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

from experiments.configs import base
from tfaction import config as config_lib
from tfaction import errors


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

    app.run(run_main, flags_parser=parse)


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
        config_lib.check_keys(config, base.get_config())
    return configs, flag_values


def _config_file(argv):
    for i, arg in enumerate(argv):
        match = re.fullmatch(r"--?config(=(.*))?", arg)
        if match:
            return match.group(2) if match.group(1) else (
                argv[i + 1] if i + 1 < len(argv) else None)
    return None


def _override_paths(argv):
    paths = []
    for arg in argv:
        match = re.match(r"--?(?:no)?config\.([^=]+)", arg)
        if match:
            paths.append(match.group(1))
    return paths


def _load_config_file(spec):
    """`get_config()` of a config file ("file.py" or "file.py:argument")."""
    path, *arguments = spec.split(":", 1)
    module_spec = importlib.util.spec_from_file_location("_config", path)
    if module_spec is None:
        raise OSError(f"cannot load {path!r} as a Python file")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(*arguments)


def explain_config_error(error, argv):
    """Turns a flag-parsing failure into a ConfigError naming the culprit."""
    path = _config_file(argv)
    if path is not None:
        try:
            config = config_lib.lock(_load_config_file(path))
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
