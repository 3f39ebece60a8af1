r"""Exports a trained ActionVLAD RGB + flow pair as one two-stream SavedModel.

```
python -m export.actionvlad_two_stream \
    --rgb_workdir=runs/actionvlad_rgb --flow_workdir=runs/actionvlad_flow \
    [--rgb_config=experiments/configs/actionvlad_hmdb51_rgb.py] \
    [--flow_config=experiments/configs/actionvlad_hmdb51_flow.py] \
    --export_dir=models/actionvlad_two_stream [--version=N] \
    [--flow_weight=0.667] [--model_name=<name>] \
    [--rgb_checkpoint=...] [--flow_checkpoint=...] \
    [--serving_base_path=/models/<name>] \
    [--rgb_config.x.y=...] [--flow_config.x.y=...]
```

Each stream is restored exactly as `export.export_saved_model` restores a
single model (its config: `--*_config`, a recipe `.py` or a `config.json`,
by default the run's `<*_workdir>/config.json`; same config checks,
`Trainer(evaluation_only=True)`, newest checkpoint of its workdir or
`--*_checkpoint`, EMA weights when the config evaluates with them); then
`tfaction.serving.TwoStreamExportModule`, built by
`tfaction.serving.actionvlad.two_stream_module_from_tasks`
(`serving_default`: RGB `frames` + `flow_x`, `flow_y` JPEGs; `serve_uint8`;
fused logits `(1 - w) * rgb + w * flow`, probabilities, top-k and their
`class_names`; the class list saved as `assets/classes.txt`) is written by
`tfaction.serving.export_saved_model`. Prints the new version's path. The
workdirs are only read.

The tasks must provide (as `tfaction.tasks.actionvlad.ActionVLADTask`
does)::

    class StreamTask(Protocol):
        class_names: list[str]          # the same for both streams
        config: ConfigDict              # task section: top_k, multi_label
        def frames_config(self, training: bool) -> FramesConfig: ...

Exit status: 0 on success, 2 for a bad command line / config / missing
checkpoint, 1 for other tfaction errors.
"""

import contextlib
import os

from absl import flags
from absl import logging

from experiments import command
from export import export_saved_model as single
from tfaction import errors

STREAMS = ("rgb", "flow")


def define_flags(flag_values, sys_argv=None):
    """Defines the two-stream export flags on `flag_values`."""
    for stream in STREAMS:
        command.define_config_flag(
            f"{stream}_config", f"the {stream} stream's experiment config: "
            f"recipe .py or config.json (default: <{stream}_workdir>/"
            "config.json)", flag_values, sys_argv=sys_argv)
        flags.DEFINE_string(f"{stream}_workdir", None,
                            f"the {stream} stream's training run directory",
                            flag_values=flag_values)
        flags.DEFINE_string(f"{stream}_checkpoint", None,
                            "checkpoint path prefix (default: the newest in "
                            f"<{stream}_workdir>/checkpoints)",
                            flag_values=flag_values)
    flags.DEFINE_string("export_dir", None, "the model's serving base path "
                        "(versions are written under it)",
                        flag_values=flag_values)
    flags.DEFINE_integer("version", None, "version number (default: the "
                         "next integer)", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_float("flow_weight", 0.667, "w in (1 - w) * rgb + w * flow "
                       "logits (ActionVLAD: 0.667)", lower_bound=0.0,
                       upper_bound=1.0, flag_values=flag_values)
    single.define_server_flags(flag_values)
    flags.mark_flags_as_required(
        ["rgb_workdir", "flow_workdir", "export_dir"],
        flag_values=flag_values)


def parse_command_line(argv, flag_values=None):
    """Parses argv into the two checked configs and the export options.

    Returns:
        Tuple `(rgb_config, flow_config, options)`; `options` holds
        `rgb_workdir`, `flow_workdir`, `rgb_checkpoint`, `flow_checkpoint`,
        `export_dir`, `version`, `flow_weight`, `model_name`,
        `serving_base_path`, `served_versions`.

    Raises:
        ConfigError: bad flag, unknown, missing or inconsistent config key,
            bad value, a stream without config (no `--*_config` and no
            `<*_workdir>/config.json`).
    """
    for stream in STREAMS:
        argv = command.with_workdir_config(argv, f"{stream}_config",
                                           f"{stream}_workdir")
    configs, flag_values = command.parse_configs(
        argv, flag_values, define_flags,
        names=[f"{s}_config" for s in STREAMS], explain=_explain)
    for config in configs:
        command.validate(config)
    names = [f"{s}_{k}" for s in STREAMS for k in ("workdir", "checkpoint")]
    names += ["export_dir", "version", "flow_weight",
              *single.SERVER_FLAGS]
    return (*configs, {name: flag_values[name].value for name in names})


def _explain(error, argv):
    """`experiments.train`'s explanation, tried on each stream's flags."""
    plain = str(errors.ConfigError(str(error)))
    for stream in STREAMS:
        flag = f"--{stream}_config"
        renamed = argv[:1]
        for i, arg in enumerate(argv[1:], 1):
            if arg.startswith(flag):
                renamed.append("--config" + arg[len(flag):])
                if arg == flag and i + 1 < len(argv):
                    renamed.append(argv[i + 1])
        explained = str(command.explain_config_error(error, renamed))
        if explained != plain:
            return errors.ConfigError(
                f"{stream} stream: " + explained.replace("--config", flag))
    return errors.ConfigError(plain)


@contextlib.contextmanager
def restored_stream(config, workdir, checkpoint=None, stream="rgb"):
    """Builds a stream's task and model and restores it (as `single.export`).

    Args:
        config: the stream's checked experiment config.
        workdir: its training run directory (read only).
        checkpoint: checkpoint path prefix, or None for the newest.
        stream: "rgb" or "flow" (named in errors).

    Yields:
        `(task, model)`, the model holding the weights the recipe evaluates
        (EMA swapped in when `ema.evaluate_with_ema`) until the exit.
    """
    from tfaction import tasks
    from tfaction import training

    training.configure_runtime(config.runtime, config.trainer.seed)
    task = tasks.build_task(config)
    trainer = training.Trainer(task, config, workdir, evaluation_only=True)
    try:
        try:
            path = single.restore(trainer, checkpoint)
        except errors.ConfigError as e:
            raise errors.ConfigError(
                f"{stream} stream: {e} (flags --{stream}_workdir, "
                f"--{stream}_checkpoint)") from e
        logging.info("exporting the %s stream from %s", stream, path)
        use_ema = trainer.ema is not None and config.ema.evaluate_with_ema
        with (trainer.ema.swapped_weights() if use_ema
              else contextlib.nullcontext()):
            yield task, trainer.model
    finally:
        trainer.close()


def export(rgb_config, flow_config, *, rgb_workdir, flow_workdir,
           export_dir, rgb_checkpoint=None, flow_checkpoint=None,
           version=None, flow_weight=0.667, model_name=None,
           serving_base_path=None, served_versions=None):
    """Restores both streams and exports the two-stream SavedModel.

    Returns:
        The new version's directory.

    Raises:
        ConfigError: no / mismatching checkpoint, streams with different
            classes, an existing version.

    Example:

    ```python
    rgb, flow, options = parse_command_line(argv)
    path = export(rgb, flow, **options)
    ```
    """
    from tfaction import serving
    from tfaction.serving import actionvlad as serving_actionvlad

    with restored_stream(rgb_config, rgb_workdir, rgb_checkpoint,
                         "rgb") as (rgb_task, rgb_model), restored_stream(
            flow_config, flow_workdir, flow_checkpoint, "flow") as (
            flow_task, flow_model):
        module = serving_actionvlad.two_stream_module_from_tasks(
            rgb_task, rgb_model, flow_task, flow_model,
            flow_weight=flow_weight)
        return serving.export_saved_model(
            module, export_dir, version=version, model_name=model_name,
            serving_base_path=serving_base_path,
            served_versions=served_versions)


if __name__ == "__main__":
    command.run("export.actionvlad_two_stream", define_flags,
                parse_command_line,
                lambda parsed: os.fspath(export(*parsed[:2], **parsed[2])))
