"""Experiment-config helpers for `ml_collections.ConfigDict` configs.

An experiment config has the shared sections of
`experiments/configs/base.py` (`trainer`, `optimizer`, `ema`, `runtime`) and
a recipe-specific `task` section. Configs are locked: a key that the shared
defaults do not define is an error naming it, whether it comes from a config
file or from a `--config.x.y=...` override. The resolved config is written
to `<workdir>/config.json`, from which (with its seed) a run is reproducible.

Example:

```python
config = my_recipe.get_config()
check_keys(config, base.get_config())
lock(config)
write_config_json(config, "runs/exp1")
```
"""

import difflib
import json
import os

import ml_collections

from tfaction import errors

CONFIG_JSON = "config.json"
# Sections whose keys each recipe defines itself.
OPEN_SECTIONS = ("task",)


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


def check_keys(config, reference, open_sections=OPEN_SECTIONS):
    """Checks that `config` has exactly the keys of `reference`.

    Keys under `open_sections` are the recipe's own and are not compared
    (only the section itself must exist).

    Args:
        config: the experiment ConfigDict.
        reference: the shared defaults (`experiments.configs.base`).
        open_sections: top-level sections free for recipe keys.

    Raises:
        ConfigError: unknown or missing keys, each named.
    """
    def closed(paths):
        return {p for p in paths if p.split(".")[0] not in open_sections}

    have = closed(_leaf_paths(config))
    want = closed(_leaf_paths(reference))
    problems = [f"unknown config key {p!r}{_suggest(p, sorted(want))}"
                for p in sorted(have - want)]
    problems += [f"missing config key {p!r}" for p in sorted(want - have)]
    problems += [f"missing config section {s!r}" for s in open_sections
                 if s in reference and s not in config]
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
