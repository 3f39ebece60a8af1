"""The shared command-line convention of tfaction's commands.

Kept for the launchers of this folder (`from experiments import command`);
the implementation is `tfaction.command` (part of the installed package, so
package commands such as `python -m tfaction.checkpoints.import` use it
too). See there for the convention: config flags, overrides, error
messages and exit statuses.

Example:

```python
from experiments import command

command.run("experiments.train", define_flags, parse_command_line, main)
```
"""

from tfaction.command import define_config_flag
from tfaction.command import explain_config_error
from tfaction.command import load_config
from tfaction.command import parse_configs
from tfaction.command import run
from tfaction.command import validate
from tfaction.command import with_workdir_config

__all__ = ["define_config_flag", "explain_config_error", "load_config",
           "parse_configs", "run", "validate", "with_workdir_config"]
