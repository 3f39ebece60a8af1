"""Task config schemas: defaults from the models, rules, JSON round trips.

Every recipe (and stage) passes its family's `validate`; each rule names
the key that breaks it; the `model` defaults are the model constructor's;
and a resolved `config.json` restores the very same config (values and
tuple / None types), also through `experiments.train --config=...json`.
"""

import importlib
import inspect
import json

import pytest

from experiments import train
from tfaction import config as config_lib
from tfaction import errors
from tfaction.models.actionformer import model as actionformer_model
from tfaction.models.actionvlad import model as actionvlad_model
from tfaction.tasks import action_transformer_config
from tfaction.tasks import adafocus_config
from tfaction.tasks import actionformer_config
from tfaction.tasks import actionvlad_config
from tfaction.tasks import carl_config

RECIPES = [
    "actionformer_anet_i3d", "actionformer_anet_tsp",
    "actionformer_epic_slowfast_noun",
    "actionformer_epic_slowfast_verb", "actionformer_synthetic",
    "actionformer_thumos_i3d",
    *[f"actionformer_ego4d:{s}" for s in (
        "slowfast", "omnivore", "egovlp", "slowfast_egovlp",
        "omnivore_egovlp", "slowfast_omnivore_egovlp")],
    *[f"actionvlad_{r}:{s}" for r in ("charades_rgb", "hmdb51_flow",
                                      "hmdb51_rgb")
      for s in ("stage1", "stage2")],
    *[f"actionvlad_synthetic_{m}:{s}" for m in ("rgb", "flow")
      for s in ("full", "stage1", "stage2")],
    *[f"action_transformer_ava_{v}" for v in (
        "tx_highres", "tx_lowres", "i3d_head", "tx_i3d")],
    *[f"action_transformer_synthetic:{h}" for h in ("tx", "i3d",
                                                    "tx_i3d")],
    "carl_pouring", "carl_penn_action", "carl_finegym", "carl_synthetic",
    *[f"adafocus_v2_{d}:{v}" for d in ("actnet", "fcvid", "minik")
      for v in ("mbv2_p128", "res50_p96")],
    "adafocus_v2_synthetic",
    *[f"adafocus_v1_{d}:stage{s}" for d in ("actnet", "synthetic")
      for s in range(4)],
]


def _recipe(name):
    module, _, arg = name.partition(":")
    mod = importlib.import_module(f"experiments.configs.{module}")
    return mod.get_config(arg) if arg else mod.get_config()


def _typed(value):
    """The value with its container and scalar types spelled out."""
    if hasattr(value, "items"):
        return {k: _typed(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, *[_typed(v) for v in value]]
    return [type(value).__name__, value]


def _validate(config):
    if config.task.name == action_transformer_config.TASK_NAME:
        action_transformer_config.validate(config.task)
    elif config.task.name == carl_config.TASK_NAME:
        carl_config.validate(config.task)
    elif config.task.name == adafocus_config.TASK_NAME:
        adafocus_config.validate(config.task)
    elif config.task.name == adafocus_config.V1_TASK_NAME:
        # The stage k - 1 model is left to the command line.
        adafocus_config.v1_validate(config.task)
    elif config.task.name == actionvlad_config.TASK_NAME:
        # The recipes leave the weights files to the command line.
        actionvlad_config.validate(config.task, weights_for=())
    else:
        actionformer_config.validate(config.task)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_validates_and_round_trips_through_json(name, tmp_path):
    config = _recipe(name)
    _validate(config)
    path = config_lib.write_config_json(config, tmp_path)
    restored = config_lib.read_config_json(path)
    assert _typed(restored.to_dict()) == _typed(config.to_dict())
    assert config_lib.to_json(restored) == config_lib.to_json(config)
    with pytest.raises(AttributeError):
        restored.task.model.new_key = 1  # locked


def test_model_defaults_are_the_constructors():
    parameters = inspect.signature(
        actionformer_model.ActionFormer.__init__).parameters
    model = actionformer_config.task_config().model
    assert model.regression_range == \
        actionformer_model.DEFAULT_REGRESSION_RANGE
    for key, value in model.items():
        default = parameters[key].default
        if key == "window_size":
            assert set(value) == {default}
        else:
            assert value == default, key
    assert "input_dim" not in model and "max_seq_len" not in model
    parameters = inspect.signature(
        actionvlad_model.ActionVLAD.__init__).parameters
    model = actionvlad_config.task_config().model
    assert sorted(model) == sorted(
        set(parameters) - {"self", "num_classes", "input_channels",
                           "crop_size", "kwargs"})
    for key, value in model.items():
        assert value == parameters[key].default, key


def _thumos_task():
    return actionformer_config.experiment_config().task


@pytest.mark.parametrize("change, named", [
    (lambda t: setattr(t.model, "window_size", (9, 9)),
     "task.model.window_size"),
    (lambda t: setattr(t.model, "regression_range", ((0, 4), (4, 100))),
     "task.model.regression_range"),
    (lambda t: setattr(t.model, "input_splits", (1024, 1024)),
     "task.model.projection_dims"),
    (lambda t: (setattr(t.model, "input_splits", (1, 2)),
                setattr(t.model, "projection_dims", (4,))),
     "same number of entries"),
    (lambda t: setattr(t, "max_seq_len", 2300), "task.max_seq_len=2300"),
    (lambda t: setattr(t, "crop_ratio", (0.9,)), "task.crop_ratio"),
    (lambda t: setattr(t, "crop_ratio", (0.5, 1.5)), "task.crop_ratio"),
    (lambda t: setattr(t.inference, "nms_method", "soft"),
     "task.inference.nms_method"),
    (lambda t: setattr(t.evaluation, "variant", "epic"),
     "task.evaluation.variant"),
    (lambda t: setattr(t.evaluation, "recall_top_k", (1, 5)),
     "needs task.evaluation.variant='actionformer'"),
    (lambda t: (setattr(t.evaluation, "variant", "actionformer"),
                setattr(t.evaluation, "recall_top_k", (0,))),
     "task.evaluation.recall_top_k"),
    (lambda t: setattr(t.evaluation, "tiou_thresholds", (0.5, 1.5)),
     "task.evaluation.tiou_thresholds"),
])
def test_actionformer_rules_name_the_key(change, named):
    task = _thumos_task()
    change(task)
    with pytest.raises(errors.ConfigError, match=named.replace(".", r"\.")):
        actionformer_config.validate(task)


def test_unknown_task_keys_are_named():
    task = _thumos_task()
    with task.unlocked():
        task.model.windw_size = 3
    with pytest.raises(errors.ConfigError,
                       match=r"unknown config key 'task.model.windw_size'"
                             r".*did you mean 'task.model.window_size'"):
        actionformer_config.validate(task)
    with pytest.raises(AttributeError):
        _thumos_task().model.windw_size = 3  # typos fail in the recipe


def _hmdb51_task(stage="stage1"):
    return actionvlad_config.experiment_config(stage).task


@pytest.mark.parametrize("change, named", [
    (lambda t: setattr(t, "trainable", ("classifier", "conv9")),
     "task.trainable"),
    (lambda t: setattr(t.frames, "flow_stack", 10), "task.frames.flow_stack"),
    (lambda t: setattr(t.frames, "modality", "depth"),
     "task.frames: FramesConfig.modality"),
    (lambda t: setattr(t.frames, "crop_size", (300, 224)),
     "task.frames.resize"),
    (lambda t: (setattr(t.frames, "resize", None),
                setattr(t.frames, "resize", 200)), "task.frames.resize=200"),
    (lambda t: setattr(t.model, "trunk", "resnet"), "task.model.trunk"),
])
def test_actionvlad_rules_name_the_key(change, named):
    task = _hmdb51_task()
    change(task)
    with pytest.raises(errors.ConfigError, match=named.replace(".", r"\.")):
        actionvlad_config.validate(task, weights_for=())


def test_actionvlad_frozen_parts_need_weights():
    task = _hmdb51_task()
    with pytest.raises(errors.ConfigError,
                       match="task.trunk_weights and task.centers_file"):
        actionvlad_config.validate(task)
    actionvlad_config.validate(task, weights_for=())  # k-means command
    task.trunk_weights = "vgg16.h5"
    with pytest.raises(errors.ConfigError, match="^task.centers_file is"):
        actionvlad_config.validate(task)
    actionvlad_config.require_weights(task, ("trunk",))
    stage2 = _hmdb51_task("stage2")
    stage2.init_checkpoint = "runs/stage1"
    actionvlad_config.validate(stage2)
    with pytest.raises(errors.ConfigError, match="unknown ActionVLAD stage"):
        actionvlad_config.experiment_config("stage3")


def test_rerun_from_config_json_gives_the_same_config(tmp_path):
    recipe = "experiments/configs/actionformer_synthetic.py"
    argv = ["train", f"--config={recipe}", f"--workdir={tmp_path}",
            "--config.task.max_seq_len=512",
            "--config.task.model.window_size=(5,5,5,5,5,5)"]
    first, _, _ = train.parse_command_line(argv)
    path = config_lib.write_config_json(first, tmp_path)
    again, workdir, _ = train.parse_command_line(
        ["train", f"--config={path}", f"--workdir={tmp_path}"])
    assert workdir == str(tmp_path)
    assert _typed(again.to_dict()) == _typed(first.to_dict())
    # Overrides still apply, typed by the restored config; unknown keys and
    # broken rules still fail.
    changed, _, _ = train.parse_command_line(
        ["train", f"--config={path}", f"--workdir={tmp_path}",
         "--config.optimizer.lr=0.5", "--config.task.crop_ratio=(0.5,1.0)"])
    assert changed.optimizer.lr == 0.5
    assert changed.task.crop_ratio == (0.5, 1.0)
    with pytest.raises(errors.ConfigError,
                       match="unknown config key 'task.model.windw_size'"):
        train.parse_command_line(
            ["train", f"--config={path}", f"--workdir={tmp_path}",
             "--config.task.model.windw_size=3"])
    with pytest.raises(errors.ConfigError, match=r"task\.max_seq_len=500"):
        train.parse_command_line(
            ["train", f"--config={path}", f"--workdir={tmp_path}",
             "--config.task.max_seq_len=500"])


def test_bad_config_json_is_a_config_error(tmp_path):
    path = tmp_path / "config.json"
    config = json.loads(config_lib.to_json(_recipe("actionformer_synthetic")))
    config["task"]["model"]["windw_size"] = 3
    path.write_text(json.dumps(config))
    with pytest.raises(errors.ConfigError, match="windw_size"):
        train.parse_command_line(
            ["train", f"--config={path}", f"--workdir={tmp_path}"])
    path.write_text("{not json")
    with pytest.raises(errors.ConfigError, match="config.json"):
        train.parse_command_line(
            ["train", f"--config={path}", f"--workdir={tmp_path}"])
