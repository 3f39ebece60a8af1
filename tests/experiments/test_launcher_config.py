"""`experiments.train` command line: locked configs, overrides, config.json."""

import json
import pathlib
import subprocess
import sys
import textwrap

import ml_collections
import pytest

from experiments import train
from tfaction import config as config_lib
from tfaction import errors

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = str(REPO_ROOT / "tests" / "training" / "classifier_config.py")


def parse(*args, config=CONFIG):
    return train.parse_command_line(
        ["train", f"--config={config}", "--workdir=/tmp/unused", *args])


def test_overrides_are_applied_with_their_types():
    config, workdir, mode = parse("--config.optimizer.lr=0.5",
                                  "--config.trainer.epochs=7",
                                  "--config.task.hidden=4",
                                  "--strategy=mirrored", "--mode=eval")
    assert config.optimizer.lr == 0.5 and isinstance(config.optimizer.lr,
                                                     float)
    assert config.trainer.epochs == 7 and config.task.hidden == 4
    assert config.runtime.strategy == "mirrored"
    assert (workdir, mode) == ("/tmp/unused", "eval")


@pytest.mark.parametrize("override, named", [
    ("--config.optimizer.lrx=0.1", "'optimizer.lrx'"),
    ("--config.trainer.schedule.kind=x", "'trainer.schedule'"),
    ("--config.task.new_key=1", "'task.new_key'"),
    ("--config.nosection.a=1", "'nosection'"),
])
def test_unknown_override_key_is_an_error_naming_it(override, named):
    with pytest.raises(errors.ConfigError,
                       match=f"unknown config key {named}") as info:
        parse(override)
    assert override.split("=")[0] in str(info.value)


def test_unknown_override_suggests_the_close_key():
    with pytest.raises(errors.ConfigError, match="did you mean 'lr'"):
        parse("--config.optimizer.lrx=0.1")


def _config_file(tmp_path, body):
    path = tmp_path / "recipe.py"
    path.write_text("from tfaction import config as config_lib\n"
                    "import ml_collections\n\n" + textwrap.dedent(body))
    return str(path)


def test_unknown_key_set_in_the_config_file_is_named(tmp_path):
    path = _config_file(tmp_path, """
        def get_config():
            config = config_lib.base_config()
            config.trainer.train_step = 10
            return config
        """)
    with pytest.raises(errors.ConfigError, match="train_step") as info:
        parse(config=path)
    assert path in str(info.value)


def test_config_not_matching_the_base_names_each_key(tmp_path):
    path = _config_file(tmp_path, """
        def get_config():
            config = config_lib.base_config()
            config.unlock()
            config.extra = ml_collections.ConfigDict({"a": 1})
            del config.ema["decay"]
            return config
        """)
    with pytest.raises(errors.ConfigError,
                       match=r"unknown config key 'extra.a'.*missing config "
                             r"key 'ema.decay'"):
        parse(config=path)


@pytest.mark.parametrize("args, message", [
    (["--config.optimizer.lr=abc"], "optimizer.lr"),
    (["--strategy=gpu_cluster"], "strategy"),
    (["--mode=predict"], "mode"),
    (["--config.runtime.strategy=gpu"], "unknown runtime.strategy 'gpu'"),
])
def test_bad_flag_values_are_config_errors(args, message):
    with pytest.raises(errors.ConfigError, match=message):
        parse(*args)


def test_missing_workdir_and_missing_file_are_config_errors(tmp_path):
    with pytest.raises(errors.ConfigError, match="workdir"):
        train.parse_command_line(["train", f"--config={CONFIG}"])
    missing = str(tmp_path / "nope.py")
    with pytest.raises(errors.ConfigError, match="nope.py"):
        parse(config=missing)


def test_command_line_exits_with_the_unknown_key():
    done = subprocess.run(
        [sys.executable, "-m", "experiments.train", f"--config={CONFIG}",
         "--workdir=/tmp/unused", "--config.optimizer.lrx=0.1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown config key 'optimizer.lrx'" in done.stderr


def test_base_config_is_locked_except_task():
    config = config_lib.base_config()
    config.task.anything = 1  # recipes add their own task keys
    with pytest.raises(AttributeError, match="stepz"):
        config.trainer.stepz = 1
    with pytest.raises(AttributeError, match="section"):
        config.section = 1


def test_check_keys_accepts_recipes_that_extend_base():
    config, _, _ = parse()
    config_lib.check_keys(config, config_lib.base_config())  # no error
    with pytest.raises(AttributeError):
        config.task.late_key = 1  # the launcher locked every section


def test_write_config_json_is_atomic_and_complete(tmp_path):
    config = config_lib.base_config()
    config.task.name = "x"
    path = config_lib.write_config_json(config, tmp_path)
    assert pathlib.Path(path) == tmp_path / "config.json"
    assert json.loads((tmp_path / "config.json").read_text()) == (
        json.loads(config.to_json()))
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_unknown_key_helper_reports_the_missing_prefix():
    config = ml_collections.ConfigDict({"a": {"b": 1}})
    assert config_lib.unknown_key(config, "a.b") is None
    assert "'a.c'" in config_lib.unknown_key(config, "a.c.d")
    assert "'a.b.c'" in config_lib.unknown_key(config, "a.b.c")


def test_launcher_strategy_names_match_the_factory():
    from tfaction import training  # imports TensorFlow

    assert train.STRATEGY_NAMES == training.STRATEGIES
