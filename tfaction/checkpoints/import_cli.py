r"""Imports an authors' released checkpoint as a tfaction run directory.

```
python -m tfaction.checkpoints.import --family=actionformer \
    --checkpoint=epoch_034.pth.tar \
    --config=experiments/configs/actionformer_thumos_i3d.py \
    --workdir=runs/thumos_release [--weights=ema|model] \
    [--config.task.data_dir=data/thumos_i3d ...]
```

The config (a recipe or a `config.json`, with `--config.x.y=...`
overrides) is read, locked and validated as `experiments.train` does. The
task it names is built, and the model by `tasks.build_task(config)` ->
`task.build_model()` inside a `tfaction.training.Trainer`, so the
checkpoint holds what a training run saves at step 0 (model, task state,
EMA, the optimizer with empty slots, the data position). The family's
loader assigns the released weights, all-or-nothing; the
EMA shadows, if the config keeps an EMA, are set to the same weights, so
evaluation and export use them whether or not they evaluate with the EMA.
Only then are `<workdir>/checkpoints/ckpt-0` and the resolved
`<workdir>/config.json` written (staged beside them, moved into place, the
checkpoint state file last): a failed import leaves no checkpoint. The
workdir is then used as it is:

```
python -m experiments.train --mode=eval --workdir=runs/thumos_release \
    --config=runs/thumos_release/config.json
python -m export.export_saved_model --workdir=runs/thumos_release \
    --export_dir=models/thumos
```

`experiments.train --mode=train` on the workdir fine-tunes from the
imported weights (a run at step 0). As a training run does, the import
counts the steps of one training epoch (a pass over the training split)
unless `trainer.steps_per_epoch` is set.

Families (`register_family` adds one):

* `actionformer`: the `.pth.tar` of happyharrycn/actionformer_release
  (`--weights=ema`, the default: `state_dict_ema`, which the authors'
  `eval.py` loads; `--weights=model`: `state_dict`), through
  `tfaction.checkpoints.actionformer`;
* `actionvlad`: the TF-slim checkpoints of rohitgirdhar/ActionVLAD
  (`--checkpoint=<prefix>`), through `tfaction.checkpoints.actionvlad`.
  The released weights replace every layer, so any stage's recipe works:
  the import builds the model without the recipe's `trunk_weights` /
  `centers_file` / `init_checkpoint`, and the `config.json` it writes names
  the run itself as `task.init_checkpoint` (no trunk or centres files),
  which is what the model's weights are from then on.

Needs the data folder (`task.data_dir`): its `dataset_info.json` gives the
input dimension and the classes. Exit status: 0, 2 for a bad command line
or config, 1 for other errors (a checkpoint that does not fit the model).
"""

import copy
import dataclasses
import os

from absl import flags
from absl import logging

from tfaction import command
from tfaction import config as config_lib
from tfaction import errors
from tfaction.data import filesystems

PROGRAM = "tfaction.checkpoints.import"
# tf.train.CheckpointManager's state file: a checkpoint is visible once
# it exists.
_STATE_FILE = "checkpoint"
_FAMILIES = {}


@dataclasses.dataclass(frozen=True)
class Family:
    """How one model family's released checkpoints are imported.

    Attributes:
        name: the `--family` value.
        task_name: the `config.task.name` whose model the weights fit.
        load: `load(model, checkpoint, weights)` assigns the file's weights
            to the task's built model, all-or-nothing; returns what it
            loaded (a list of names).
        weights: the copies a file may hold (`--weights` values); the first
            is the default.
        configure: `configure(config, workdir) -> (build, saved)`: the
            config to build the model with and the one to write as the
            run's `config.json` (default: the given config for both).

    The model itself is built by the task (`tasks.build_task(config)` ->
    `task.build_model()`), as training builds it.

    Example:

    ```python
    family = get_family("actionformer")
    family.load(model, "epoch_035.pth.tar", family.check_weights(None))
    ```
    """

    name: str
    task_name: str
    load: object
    weights: tuple
    configure: object = None

    def check_weights(self, weights):
        """`weights`, or the default when None.

        Args:
            weights: a copy name, or None.

        Returns:
            The copy to load.

        Raises:
            ConfigError: not one of `self.weights`.
        """
        if weights is None:
            return self.weights[0]
        if weights not in self.weights:
            raise errors.ConfigError(
                f"--weights={weights!r}: the {self.name} family's "
                f"checkpoints hold {', '.join(self.weights)}")
        return weights

    def configs(self, config, workdir):
        """The configs to build the model with and to save with the run.

        Args:
            config: the experiment config given.
            workdir: the run directory being written.

        Returns:
            Tuple `(build, saved)` (both `config` unless `configure`).
        """
        if self.configure is None:
            return config, config
        return self.configure(config, os.fspath(workdir))


def register_family(name, *, task_name, load, weights, configure=None):
    """Registers a family for `--family=<name>`.

    Args:
        name: the family name.
        task_name: the task whose model the checkpoints fit.
        load: `load(model, checkpoint, weights) -> list of names loaded`.
        weights: non-empty tuple of copy names; the first is the default.
        configure: optional `configure(config, workdir) -> (build, saved)`
            (see `Family`).

    Returns:
        The `Family`.

    Raises:
        ConfigError: `name` registered already, or no `weights`.

    Example:

    ```python
    register_family("carl", task_name="carl", load=load_carl_checkpoint,
                    weights=("model",))
    ```
    """
    if name in _FAMILIES:
        raise errors.ConfigError(f"checkpoint family {name!r} is already "
                                 "registered")
    if not weights:
        raise errors.ConfigError(f"family {name!r}: weights must name at "
                                 "least one copy")
    family = Family(name, task_name, load, tuple(weights), configure)
    _FAMILIES[name] = family
    return family


def get_family(name):
    """The registered `Family` called `name`.

    Args:
        name: a `--family` value.

    Returns:
        The `Family`.

    Raises:
        ConfigError: unknown family; the message lists the known ones.

    Example:

    ```python
    get_family("actionvlad").weights  # ("model",)
    ```
    """
    if name not in _FAMILIES:
        raise errors.ConfigError(
            f"unknown --family={name!r}; known families: "
            f"{', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[name]


def _load_actionformer(model, checkpoint, weights):
    from tfaction.checkpoints.actionformer import load_actionformer_checkpoint

    return load_actionformer_checkpoint(model, checkpoint, weights=weights)


def _load_actionvlad(model, checkpoint, weights):
    del weights  # one copy
    from tfaction.checkpoints.actionvlad import load_actionvlad_checkpoint

    return load_actionvlad_checkpoint(model, checkpoint)


def _configure_actionvlad(config, workdir):
    # The release holds every layer: the recipe's sources of frozen weights
    # are neither needed nor wanted; afterwards the run is the source.
    saved = copy.deepcopy(config)
    saved.task.trunk_weights = ""
    saved.task.centers_file = ""
    saved.task.init_checkpoint = workdir
    saved.task.train_from_scratch = False
    build = copy.deepcopy(saved)
    build.task.init_checkpoint = ""
    build.task.train_from_scratch = True
    return build, saved


register_family("actionformer", task_name="actionformer",
                load=_load_actionformer, weights=("ema", "model"))
register_family("actionvlad", task_name="actionvlad",
                load=_load_actionvlad, weights=("model",),
                configure=_configure_actionvlad)


def define_flags(flag_values, sys_argv=None):
    """Defines --config, --workdir, --family, --checkpoint and --weights.

    Args:
        flag_values: the `absl.flags.FlagValues` to define them on.
        sys_argv: where `--config.x.y=` overrides are read (default: the
            process's `sys.argv` when parsed).
    """
    command.define_config_flag(
        "config", "the recipe (.py, get_config()) or a config.json the "
        "imported run starts from", flag_values, sys_argv=sys_argv)
    flags.DEFINE_string("workdir", None, "run directory to create (must "
                        "hold no checkpoint)", flag_values=flag_values)
    flags.DEFINE_string("family", None, "model family: "
                        f"{', '.join(sorted(_FAMILIES))}",
                        flag_values=flag_values)
    flags.DEFINE_string("checkpoint", None, "the released checkpoint file "
                        "(or TF checkpoint prefix)", flag_values=flag_values)
    copies = "; ".join(f"{f.name}: {', '.join(f.weights)}"
                       for f in _FAMILIES.values())
    flags.DEFINE_string("weights", None, "which copy of the weights (the "
                        f"first is the default; {copies})",
                        flag_values=flag_values)
    flags.mark_flags_as_required(["config", "workdir", "family",
                                  "checkpoint"], flag_values=flag_values)


def parse_command_line(argv, flag_values=None):
    """Parses `argv` (program name first) into a config and the options.

    The config is locked and validated; `flag_values` receives the flags
    (a fresh `FlagValues` when None).

    Returns:
        Tuple `(config, options)`, `options` a dict with `workdir`,
        `family`, `checkpoint` and `weights` (the family's default filled
        in): the arguments of `import_checkpoint`.

    Raises:
        ConfigError: bad flag, config key or value, unknown family or
            weights, or a config of another task than the family's.

    Example:

    ```python
    config, options = parse_command_line(
        ["import", "--family=actionformer", "--checkpoint=e.pth.tar",
         "--config=runs/x/config.json", "--workdir=runs/y"])
    import_checkpoint(config, **options)
    ```
    """
    (config,), flag_values = command.parse_configs(
        argv, flag_values, define_flags)
    family = get_family(flag_values.family)
    _check_task(family, config)
    command.validate(family.configs(config, flag_values.workdir)[0])
    return config, {"workdir": flag_values.workdir, "family": family.name,
                    "checkpoint": flag_values.checkpoint,
                    "weights": family.check_weights(flag_values.weights)}


def _check_task(family, config):
    if config.task.name != family.task_name:
        raise errors.ConfigError(
            f"--family={family.name} imports into task "
            f"{family.task_name!r}, but config.task.name is "
            f"{config.task.name!r}")


def _check_no_checkpoint(directory):
    if filesystems.isdir(directory) and filesystems.listdir(directory):
        raise errors.ConfigError(
            f"{directory} is not empty: import into a new --workdir (an "
            "imported checkpoint must not mix with a run's)")


def _publish(staging, workdir, directory):
    """Moves the staged checkpoint and config.json into the workdir.

    The checkpoint state file goes last: until it is there, the workdir
    has no checkpoint. On a failure the files already moved are removed.
    """
    source = filesystems.join(staging, os.path.basename(directory))
    names = sorted(set(filesystems.listdir(source)) - {_STATE_FILE})
    moves = [(filesystems.join(source, n), filesystems.join(directory, n))
             for n in names]
    moves += [(filesystems.join(staging, config_lib.CONFIG_JSON),
               filesystems.join(workdir, config_lib.CONFIG_JSON)),
              (filesystems.join(source, _STATE_FILE),
               filesystems.join(directory, _STATE_FILE))]
    filesystems.makedirs(directory)
    done = []
    try:
        for temp, final in moves:
            filesystems.commit(temp, final)
            done.append(final)
    except BaseException:
        for final in done:
            filesystems.remove_quietly(final)
        raise


def import_checkpoint(config, workdir, family, checkpoint, weights=None):
    """Writes a released checkpoint as the tfaction checkpoint of a run.

    Args:
        config: a checked experiment config (`parse_command_line`).
        workdir: the run directory (created; its `checkpoints/` must be
            absent or empty).
        family: a registered family name.
        checkpoint: the released file (path or what the family's loader
            accepts).
        weights: the copy to import; None: the family's default.

    Returns:
        The checkpoint path prefix written (`<workdir>/checkpoints/ckpt-0`).

    Raises:
        ConfigError: unknown family or weights, a config of another task,
            a workdir that holds checkpoints, an unbuildable task.
        DataError: a missing data folder (named as `task.data_dir`), an
            unreadable checkpoint, or one that does not fit the model
            (`CheckpointError`); nothing is written then.

    Example:

    ```python
    config, options = parse_command_line(argv)
    prefix = import_checkpoint(config, **options)
    ```
    """
    import tensorflow as tf

    from tfaction import tasks
    from tfaction import training
    from tfaction.checkpoints.errors import CheckpointError
    from tfaction.training.trainer import CHECKPOINT_DIR

    entry = get_family(family)
    weights = entry.check_weights(weights)
    _check_task(entry, config)
    workdir = os.fspath(workdir)
    directory = filesystems.join(workdir, CHECKPOINT_DIR)
    _check_no_checkpoint(directory)
    config, saved = entry.configs(config, workdir)
    # The task's model under the run's dtype policy, as training builds it.
    training.configure_runtime(config.runtime, config.trainer.seed)
    task = tasks.build_task(config)
    staging = filesystems.temp_path_for(filesystems.join(workdir, "import"))
    trainer = training.Trainer(task, config, staging)
    try:
        try:
            loaded = entry.load(trainer.model, checkpoint, weights)
        except OSError as e:
            raise CheckpointError(f"cannot read the checkpoint: {e}",
                                  path=os.fspath(checkpoint)) from e
        logging.info("loaded %d weights (%s) from %s", len(loaded), weights,
                     checkpoint)
        if trainer.ema is not None:
            trainer.ema.reset()
        try:
            trainer.checkpointer.save(0)
            config_lib.write_config_json(saved, staging)
            _publish(staging, workdir, directory)
        finally:
            if filesystems.exists(staging):
                tf.io.gfile.rmtree(staging)
    finally:
        trainer.close()
    return tf.train.latest_checkpoint(directory)


def main():
    """Runs the command (`python -m tfaction.checkpoints.import`)."""
    command.run(PROGRAM, define_flags, parse_command_line,
                lambda parsed: import_checkpoint(parsed[0], **parsed[1]))


if __name__ == "__main__":
    main()
