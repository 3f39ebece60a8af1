"""Tasks: one module per model family, wiring model, data, losses, metrics.

`Task` is the interface the trainer drives; `register_task` / `build_task`
map `config.task.name` to a Task class. A family's module registers its task
when imported; a recipe names that module in `config.task.module`. A
family's config schema (`<family>_config`: defaults, types, `validate`) is
its Task class's `config_schema`.
"""

from tfaction.tasks.base_task import Task
from tfaction.tasks.registry import build_task
from tfaction.tasks.registry import config_schema
from tfaction.tasks.registry import get_task
from tfaction.tasks.registry import import_task_modules
from tfaction.tasks.registry import register_task
from tfaction.tasks.registry import registered_tasks
from tfaction.tasks.registry import validate_config

__all__ = [
    "Task",
    "build_task",
    "config_schema",
    "get_task",
    "import_task_modules",
    "register_task",
    "registered_tasks",
    "validate_config",
]
