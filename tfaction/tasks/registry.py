"""Task registry: maps the `config.task.name` of an experiment to a Task class.

A task module registers its class with `@register_task("name")`; the launcher
imports the modules named in `config.task.module` (so a task defined outside
the package, e.g. in a test or a user's project, is found) and builds the task
with `build_task(config)`.

Example:

```python
from tfaction import tasks

@tasks.register_task("my_classifier")
class MyClassifier(tasks.Task):
    ...

task = tasks.build_task(config)  # config.task.name == "my_classifier"
```
"""

import importlib

from tfaction import errors

_TASKS = {}


def _qualified_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def register_task(name):
    """Class decorator registering a Task subclass under `name`.

    Re-registering the same class (a module imported twice) is allowed;
    registering a different class under a taken name is an error.

    Args:
        name: the name experiment configs use in `config.task.name`.

    Returns:
        The decorator; it returns the class unchanged.

    Raises:
        ConfigError: `name` is empty or already names another class.

    Example:

    ```python
    @register_task("actionformer")
    class ActionFormerTask(Task):
        ...
    ```
    """
    if not isinstance(name, str) or not name:
        raise errors.ConfigError(f"task name must be a non-empty string, got "
                                 f"{name!r}")

    def decorator(cls):
        known = _TASKS.get(name)
        if known is not None and _qualified_name(known) != _qualified_name(
                cls):
            raise errors.ConfigError(
                f"task name {name!r} is already registered by "
                f"{_qualified_name(known)}; cannot register "
                f"{_qualified_name(cls)} under it")
        _TASKS[name] = cls
        return cls

    return decorator


def registered_tasks():
    """Returns the sorted names of every registered task."""
    return sorted(_TASKS)


def get_task(name):
    """Returns the Task class registered under `name`.

    Args:
        name: a registered task name.

    Returns:
        The Task subclass.

    Raises:
        ConfigError: no task has that name; the message lists known names.

    Example:

    ```python
    cls = get_task("actionformer")
    ```
    """
    try:
        return _TASKS[name]
    except KeyError:
        known = ", ".join(registered_tasks()) or "none"
        raise errors.ConfigError(
            f"unknown task {name!r} (config.task.name); registered tasks: "
            f"{known}. Set config.task.module to the module that registers "
            f"it.") from None


def import_task_modules(modules):
    """Imports the modules that register tasks (`config.task.module`).

    Args:
        modules: module names, as a comma-separated string or a list.

    Raises:
        ConfigError: a module cannot be imported; names the module.

    Example:

    ```python
    import_task_modules("tfaction.tasks.actionformer,my_project.tasks")
    ```
    """
    if isinstance(modules, str):
        modules = modules.split(",")
    for module in modules:
        module = module.strip()
        if not module:
            continue
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise errors.ConfigError(
                f"cannot import task module {module!r} (config.task.module): "
                f"{e}") from e


def config_schema(task_config):
    """The config schema of the task a `task` section names.

    Imports `task_config["module"]` first, as `build_task` does.

    Args:
        task_config: the `task` section (a ConfigDict or a dict) with
            `name` and optionally `module`.

    Returns:
        The Task class's `config_schema` (a module with `task_config()` and
        `validate(config)`), or None for a task with a free-form section.

    Raises:
        ConfigError: no task name, a module that cannot be imported, an
            unknown task name.

    Example:

    ```python
    schema = config_schema(config.task)
    defaults = schema.task_config() if schema else None
    ```
    """
    name = task_config.get("name") if hasattr(task_config, "get") else None
    if not name:
        raise errors.ConfigError("config.task.name is not set; known tasks: "
                                 f"{', '.join(registered_tasks()) or 'none'}")
    import_task_modules(task_config.get("module", ""))
    return get_task(name).config_schema


def validate_config(config):
    """Checks the task section with its family's schema, building nothing.

    Args:
        config: an experiment `ConfigDict`.

    Raises:
        ConfigError: as `config_schema`, or the schema's `validate` (an
            unknown, missing or inconsistent `task.*` key, named).

    Example:

    ```python
    validate_config(config)  # before the strategy, data or model
    ```
    """
    schema = config_schema(config.get("task"))
    if schema is not None:
        schema.validate(config.task)


def build_task(config):
    """Imports `config.task.module`, then builds `config.task.name`'s Task.

    Args:
        config: an experiment `ConfigDict` whose `task` section has `name`
            and optionally `module`; the Task receives `config.task`.

    Returns:
        A Task instance.

    Raises:
        ConfigError: the config has no task name, a module cannot be imported
            or the task name is unknown.

    Example:

    ```python
    task = build_task(config)
    model = task.build_model()
    ```
    """
    task_config = config.get("task") if hasattr(config, "get") else None
    config_schema(task_config)  # imports the module, checks the name
    return get_task(task_config.name)(task_config)
