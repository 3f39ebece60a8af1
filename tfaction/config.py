"""Experiment configs: shared defaults and helpers for `ConfigDict` configs.

An experiment config has the shared sections of `base_config()` (`trainer`,
`optimizer`, `ema`, `runtime`) and a `task` section whose keys a task
family defines (`tfaction.tasks.actionformer_config`,
`tfaction.tasks.actionvlad_config`: defaults, types and `validate`).
Configs are locked: a key that the defaults do not define is an error naming
it, whether it comes from a config file or from a `--config.x.y=...`
override. The resolved config is written to `<workdir>/config.json`, from
which (with its seed) a run is reproducible: `read_config_json` restores it
with its types.

Example:

```python
config = my_recipe.get_config()
check_keys(config, base_config())
lock(config)
write_config_json(config, "runs/exp1")
same = read_config_json("runs/exp1/config.json")
```
"""

import difflib
import inspect
import json
import os

import ml_collections

from tfaction import errors

CONFIG_JSON = "config.json"
# Sections whose keys each recipe defines itself.
OPEN_SECTIONS = ("task",)


def base_config():
    """Returns the shared defaults, locked except for the `task` section.

    A recipe fills the `task` section (its family's `task_config()`, or
    keys of its own) and changes shared values. Every section but `task` is
    locked, so a typo such as `config.trainer.train_step = 10` fails in the
    recipe file; the launcher then locks the whole config before applying
    `--config.x.y=...` overrides. Each key is described where it is
    defined.

    Returns:
        An `ml_collections.ConfigDict`.

    Example:

    ```python
    config = base_config()
    config.task = my_task_config()
    config.optimizer.lr = 1e-4
    ```
    """
    config = ml_collections.ConfigDict()
    config.task = ml_collections.ConfigDict({
        "name": "",    # registered task (tfaction.tasks.register_task)
        "module": "",  # module(s), comma-separated, that register it
    })
    config.trainer = ml_collections.ConfigDict({
        "train_steps": 0,       # total optimizer steps; 0 = epochs * epoch
        "epochs": 1,            # passes over the training split
        "steps_per_epoch": 0,   # 0 = count the batches of one epoch once
        "global_batch_size": 32,  # examples per step over all replicas
        "eval_batch_size": 0,   # 0 = global_batch_size
        "eval_steps": 0,        # 0 = the whole evaluation split
        "eval_interval": 0,     # train_and_eval: every N steps (0 = at end)
        "checkpoint_interval": 1000,  # also at the end and on SIGTERM
        "max_checkpoints_to_keep": 3,
        "log_interval": 100,    # TensorBoard scalars and progress bar
        "seed": 0,              # initialisation and (seed, epoch) data order
    })
    config.optimizer = ml_collections.ConfigDict({
        "name": "adamw",        # sgd, adam, adamw, lamb
        "lr": 1e-3,             # peak learning rate
        "schedule": "cosine",   # constant, cosine, step, cosine_per_epoch
        "warmup_steps": 0,      # linear warm-up ...
        "warmup_epochs": 0,     # or in epochs (warmup_steps must be 0)
        "warmup_start_ratio": 0.0,  # ... from lr * this (0.1: 0.01 -> 0.1)
        "min_lr_ratio": 0.0,    # cosine floor, as a fraction of lr
        "decay_steps": 0,       # step: multiply by decay_rate every N steps
        "decay_rate": 0.1,
        "weight_decay": 0.0,    # decoupled weight decay (0 = off)
        "weight_decay_exclude": ("bias",),  # variable-name substrings
        "clip_norm": 0.0,       # global norm of the summed gradient (0 = off)
        "clip_norm_per_variable": 0.0,  # each variable's summed gradient
        "momentum": 0.9,        # sgd
        "beta_1": 0.9,          # adam, adamw, lamb
        "beta_2": 0.999,
        "epsilon": 1e-7,
    })
    config.ema = ml_collections.ConfigDict({
        "enabled": False,       # moving average of the weights
        "decay": 0.999,
        "evaluate_with_ema": True,
    })
    config.runtime = ml_collections.ConfigDict({
        "strategy": "one_device",  # mirrored, multi_worker, tpu (--strategy)
        "devices": (),          # mirrored / one_device devices (() = all)
        "tpu": "",              # TPU name or grpc:// address
        "mixed_precision": "float32",  # mixed_float16, mixed_bfloat16
        "logical_cpus": 0,      # split a GPU-less CPU into N devices
        "deterministic": False,  # tf.config.experimental.enable_op_determinism
        # mirrored: one input pipeline per replica, i.e. the data layout of
        # as many single-replica multi_worker workers (see strategies.py)
        "input_pipeline_per_replica": False,
    })
    config.lock()
    config.task.unlock()
    return config


def constructor_defaults(cls, exclude=()):
    """The keyword defaults of `cls.__init__`: a config section's defaults.

    A model's config section keeps the constructor's argument names and
    takes its defaults from here, so they are written once.

    Args:
        cls: a class.
        exclude: argument names left out (those the data gives).

    Returns:
        Dict argument name -> default, in signature order (arguments
        without a default, `*args` and `**kwargs` left out).

    Example:

    ```python
    constructor_defaults(ActionFormer, exclude=("max_seq_len",))
    ```
    """
    parameters = inspect.signature(cls.__init__).parameters
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.KEYWORD_ONLY)
    return {name: p.default for name, p in parameters.items()
            if name not in exclude and p.default is not p.empty
            and p.kind in kinds}


def section_values(section, tuple_keys=()):
    """A config section as constructor keyword arguments.

    Args:
        section: a `ConfigDict` section (or mapping).
        tuple_keys: keys whose list values become tuples (a JSON round trip
            or a command-line override gives lists where the dataclass or
            constructor expects tuples).

    Returns:
        A plain dict.

    Example:

    >>> section_values({"size": [224, 224], "flip": True}, ("size",))
    {'size': (224, 224), 'flip': True}
    """
    values = dict(section)
    for key in tuple_keys:
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    return values


def lock(config):
    """Locks `config` and every nested ConfigDict (no new keys anywhere).

    `ConfigDict.lock()` returns early on an already locked dict, leaving
    sections that were unlocked later (like `task`) open; re-lock it all.

    Args:
        config: a ConfigDict.

    Returns:
        `config`.
    """
    config.unlock()
    return config.lock()


def _suggest(name, known):
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_key(config, path):
    """Returns the first prefix of dotted `path` missing from `config`.

    Args:
        config: a ConfigDict.
        path: dotted key path, e.g. "optimizer.lr".

    Returns:
        None when every component exists, else a message naming the missing
        key path, its parent's keys and the closest one.
    """
    node, done = config, []
    for part in path.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            where = ".".join(done) or "the config"
            known = (sorted(node.keys())
                     if isinstance(node, ml_collections.ConfigDict) else [])
            return (f"unknown config key {'.'.join(done + [part])!r} "
                    f"({where} has keys: {', '.join(known) or 'none'})"
                    f"{_suggest(part, known)}")
        node, done = node[part], done + [part]
    return None


def _leaf_paths(config, prefix=""):
    paths = set()
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict):
            paths |= _leaf_paths(value, path + ".")
        else:
            paths.add(path)
    return paths


def check_keys(config, reference, open_sections=OPEN_SECTIONS, prefix=""):
    """Checks that `config` has exactly the keys of `reference`.

    Keys under `open_sections` are the recipe's own and are not compared
    (only the section itself must exist).

    Args:
        config: the experiment ConfigDict (or one of its sections).
        reference: the defaults (`base_config()`, or a task family's
            `task_config()`).
        open_sections: top-level sections free for recipe keys.
        prefix: prepended to the key paths in messages, e.g. "task.".

    Raises:
        ConfigError: unknown or missing keys, each named.

    Example:

    ```python
    check_keys(config, base_config())
    check_keys(config.task, task_config(), open_sections=(), prefix="task.")
    ```
    """
    def closed(paths):
        return {p for p in paths if p.split(".")[0] not in open_sections}

    have = {prefix + p for p in closed(_leaf_paths(config))}
    want = {prefix + p for p in closed(_leaf_paths(reference))}
    problems = [f"unknown config key {p!r}{_suggest(p, sorted(want))}"
                for p in sorted(have - want)]
    problems += [f"missing config key {p!r}" for p in sorted(want - have)]
    problems += [f"missing config section {prefix + s!r}"
                 for s in open_sections if s in reference and s not in config]
    if problems:
        raise errors.ConfigError("; ".join(problems))


def to_json(config):
    """The config as indented JSON with sorted keys."""
    return json.dumps(json.loads(config.to_json_best_effort()), indent=2,
                      sort_keys=True) + "\n"


def write_config_json(config, workdir, filename=CONFIG_JSON):
    """Atomically writes the resolved config to `<workdir>/<filename>`.

    Args:
        config: the experiment ConfigDict.
        workdir: an existing directory (local or remote URL).
        filename: the file name.

    Returns:
        The path written.
    """
    from tfaction.data import filesystems  # imports TensorFlow

    path = os.path.join(os.fspath(workdir), filename)
    filesystems.atomic_write_text(path, to_json(config))
    return path


def _restore(value, reference):
    """A JSON value with the container types of `reference` (its default).

    Arrays become tuples (what configs hold) unless the default is a list;
    objects become ConfigDicts.
    """
    if isinstance(value, dict):
        known = (reference if isinstance(reference, ml_collections.ConfigDict)
                 else ml_collections.ConfigDict())
        return ml_collections.ConfigDict(
            {key: _restore(item, known.get(key)) for key, item in
             value.items()})
    if isinstance(value, list):
        inner = (reference[0] if isinstance(reference, (list, tuple)) and
                 reference else None)
        kind = list if isinstance(reference, list) else tuple
        return kind(_restore(item, inner) for item in value)
    return value


def read_config_json(path):
    """Restores a resolved config written by `write_config_json`.

    The task section's types come from its family's schema (the
    `config_schema` of the task named by `task.name`, after importing
    `task.module`): tuples stay tuples, `None` fields stay `None`. The
    result is locked, so `--config.x.y=...` overrides still apply and
    unknown keys still fail.

    Args:
        path: a `config.json` (local or remote URL).

    Returns:
        The locked `ml_collections.ConfigDict`.

    Raises:
        ConfigError: unreadable or malformed file, unknown or missing keys.

    Example:

    ```python
    config = read_config_json("runs/exp1/config.json")
    assert to_json(config) == to_json(original)
    ```
    """
    from tfaction import tasks  # imports TensorFlow
    from tfaction.data import filesystems

    try:
        data = filesystems.read_json(path)
    except (OSError, ValueError) as e:
        raise errors.ConfigError(f"config file {path}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("task"), dict):
        raise errors.ConfigError(
            f"config file {path}: expected a JSON object with a 'task' "
            "section (a config.json written by the launcher)")
    reference = base_config()
    schema = tasks.config_schema(data["task"])
    if schema is not None:
        reference.task = schema.task_config()
    config = _restore(data, reference)
    try:
        check_keys(config, reference)
    except errors.ConfigError as e:
        raise errors.ConfigError(f"config file {path}: {e}") from e
    return lock(config)
