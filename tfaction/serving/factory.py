"""`build_export_module(task, model)`: a task's serving module, by task name.

Serving owns the mapping from a task to its `ExportModule` (tasks know
nothing of serving): each family's serving module registers a builder
under its task name (`config.task.name`) with `register_export_module`;
`python -m export.export_saved_model` calls `build_export_module` with the
restored model.

Example:

```python
@register_export_module("my_classifier")
def my_export_module(task, model):
    return MyExportModule(model, top_k=task.config.top_k)

module = build_export_module(task, trainer.model)
```
"""

from tfaction import errors

_BUILDERS = {}


def register_export_module(task_name):
    """Decorator registering `builder(task, model) -> ExportModule`.

    Registering a name again replaces its builder (a module imported
    twice).

    Args:
        task_name: the task's registered name (`config.task.name`).

    Returns:
        The decorator; it returns the builder unchanged.

    Example:

    ```python
    @register_export_module("actionformer")
    def export_module_from_task(task, model):
        ...
    ```
    """
    def decorator(builder):
        _BUILDERS[task_name] = builder
        return builder

    return decorator


def build_export_module(task, model):
    """Returns the `ExportModule` serving `model`, a model of `task`.

    Args:
        task: a built Task; `task.config.name` picks the builder.
        model: the task's model, holding the weights to export (the EMA
            weights when the recipe evaluates with them).

    Returns:
        An `ExportModule`.

    Raises:
        ConfigError: no export module is registered for the task, or its
            builder rejects the config.

    Example:

    ```python
    module = build_export_module(task, trainer.model)
    export_saved_model(module, "models/actionformer")
    ```
    """
    name = task.config.get("name", "")
    builder = _BUILDERS.get(name)
    if builder is None:
        raise errors.ConfigError(
            f"task {name!r} (config.task.name) has no export module; "
            f"registered: {', '.join(sorted(_BUILDERS)) or 'none'} "
            "(tfaction.serving.register_export_module)")
    return builder(task, model)
