"""Tasks: one module per model family, wiring model, data, losses, metrics.

`Task` is the interface the trainer drives; `register_task` / `build_task`
map `config.task.name` to a Task class. A family's module registers its task
when imported; a recipe names that module in `config.task.module`.
"""

from tfaction.tasks.base_task import Task
from tfaction.tasks.registry import build_task
from tfaction.tasks.registry import get_task
from tfaction.tasks.registry import import_task_modules
from tfaction.tasks.registry import register_task
from tfaction.tasks.registry import registered_tasks

__all__ = [
    "Task",
    "build_task",
    "get_task",
    "import_task_modules",
    "register_task",
    "registered_tasks",
]
