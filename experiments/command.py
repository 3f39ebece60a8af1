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
            of a parsing failure (default: `experiments.train`'s).

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
        if explain is None:
            from experiments import train  # train's messages

            explain = train._explain
        raise explain(e, argv) from e
    for config in configs:
        config_lib.check_keys(config, base.get_config())
    return configs, flag_values
