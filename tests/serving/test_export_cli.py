"""`python -m export.export_saved_model` on the tests' classifier task.

A run directory is made in-process: the classifier's model gets known
weights and its EMA other known shadows, saved as a checkpoint by the
trainer's own `Checkpointer`. The command line (a subprocess, as a user runs
it) must restore that checkpoint, export the EMA weights (the config has
`ema.enabled` and `evaluate_with_ema`), print the version path, and the
SavedModel must give the Keras model's outputs with those weights. The
remaining cases call the same functions in-process (no TensorFlow start-up
per case): a missing checkpoint, an explicit checkpoint, EMA off, an
existing version, a bad command line, and the default config: the run's
own `config.json` when `--config` is omitted.
"""

import os
import shutil
import subprocess
import sys
import types

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from export import export_saved_model as cli
from tests.training import classifier_config
from tests.training import launcher_helpers
from tfaction import config as config_lib
from tfaction import errors
from tfaction import serving
from tfaction import tasks
from tfaction import training

CONFIG_FILE = "tests/training/classifier_config.py"


def _config(**ema):
    config = classifier_config.get_config()
    # In-process runs must not switch op determinism on for the whole
    # pytest process.
    config.runtime.deterministic = False
    config.ema.update(ema)
    return config


def _random_like(variables, seed):
    rng = np.random.RandomState(seed)
    return [rng.standard_normal(v.shape).astype(np.float32)
            for v in variables]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A workdir with one checkpoint; returns (workdir, weights, shadows)."""
    workdir = tmp_path_factory.mktemp("classifier_run")
    config = _config()
    task = tasks.build_task(config)
    trainer = training.Trainer(task, config, str(workdir),
                               evaluation_only=True)
    weights = _random_like(trainer.model.weights, 1)
    trainer.model.set_weights(weights)
    shadows = _random_like(trainer.ema.shadows, 2)
    for shadow, value in zip(trainer.ema.shadows, shadows):
        shadow.assign(value)
    trainer.position.assign(3, 0, 3)
    trainer.checkpointer.save(3)
    trainer.close()
    return workdir, weights, shadows


def _expected(weights, features):
    task = tasks.build_task(_config())
    model = task.build_model()
    model.set_weights(weights)
    logits = np.asarray(model(features, training=False))
    return logits


def _serve(path, features):
    loaded = tf.saved_model.load(path)
    return {k: v.numpy() for k, v in loaded.signatures["serving_default"](
        features=tf.constant(features)).items()}


def _features():
    return np.random.RandomState(5).standard_normal([3, 8, 4]).astype(
        np.float32)


def test_command_line_exports_ema_weights(run_dir, tmp_path):
    workdir, weights, shadows = run_dir
    export_dir = tmp_path / "models" / "classifier"
    done = subprocess.run(
        [sys.executable, "-m", "export.export_saved_model",
         f"--config={CONFIG_FILE}", f"--workdir={workdir}",
         f"--export_dir={export_dir}", "--config.task.hidden=8"],
        cwd=launcher_helpers.REPO_ROOT, capture_output=True, text=True,
        timeout=300, env=dict(os.environ,
                              TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1] == str(export_dir / "1")
    features = _features()
    served = _serve(str(export_dir / "1"), features)
    logits = _expected(shadows, features)
    np.testing.assert_allclose(served["logits"], logits, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(served["probabilities"],
                               tf.nn.softmax(logits), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(served["classes"], logits.argmax(-1))
    # The raw weights differ: the EMA shadows were exported.
    assert not np.allclose(served["logits"], _expected(weights, features))
    assert sorted(p.name for p in export_dir.iterdir()) == [
        "1", "batching_parameters.txt", "models.config"]
    # The workdir is only read.
    assert not (workdir / "config.json").exists()


def test_raw_weights_and_explicit_checkpoint(run_dir, tmp_path):
    workdir, weights, _ = run_dir
    path = cli.export(_config(evaluate_with_ema=False), str(workdir),
                      str(tmp_path / "clf"), version=4,
                      checkpoint=str(workdir / "checkpoints" / "ckpt-3"))
    assert path == str(tmp_path / "clf" / "4")
    features = _features()
    np.testing.assert_allclose(_serve(path, features)["logits"],
                               _expected(weights, features), rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(errors.ConfigError, match="already exists"):
        cli.export(_config(), str(workdir), str(tmp_path / "clf"), version=4)


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(errors.ConfigError, match="no checkpoint in"):
        cli.export(_config(), str(tmp_path / "empty_run"),
                   str(tmp_path / "models" / "clf"))
    assert not (tmp_path / "models" / "clf").exists()


def test_mismatching_checkpoint_is_a_clear_error(run_dir, tmp_path):
    workdir, _, _ = run_dir
    config = _config()
    config.task.hidden = 16  # another model than the checkpoint's
    with pytest.raises(errors.ConfigError, match="does not match"):
        cli.export(config, str(workdir), str(tmp_path / "clf"))


def test_command_line_parsing():
    config, options = cli.parse_command_line(
        ["export", f"--config={CONFIG_FILE}", "--workdir=runs/x",
         "--export_dir=models/x", "--version=3", "--config.task.hidden=5"])
    assert config.task.hidden == 5
    assert options == {"workdir": "runs/x", "export_dir": "models/x",
                       "version": 3, "checkpoint": None, "model_name": None,
                       "serving_base_path": None, "served_versions": None}
    _, options = cli.parse_command_line(
        ["export", f"--config={CONFIG_FILE}", "--workdir=runs/x",
         "--export_dir=models/x", "--served_versions=3",
         "--served_versions=1"])
    assert options["served_versions"] == [3, 1]
    with pytest.raises(errors.ConfigError, match="no_such_key"):
        cli.parse_command_line(
            ["export", f"--config={CONFIG_FILE}", "--workdir=runs/x",
             "--export_dir=models/x", "--config.task.no_such_key=1"])
    with pytest.raises(errors.ConfigError, match="version"):
        cli.parse_command_line(
            ["export", f"--config={CONFIG_FILE}", "--workdir=runs/x",
             "--export_dir=models/x", "--version=0"])
    with pytest.raises(errors.ConfigError, match="export_dir"):
        cli.parse_command_line(
            ["export", f"--config={CONFIG_FILE}", "--workdir=runs/x"])


def test_without_config_the_runs_config_json_is_used(run_dir, tmp_path):
    workdir, _, shadows = run_dir
    run = tmp_path / "run"
    shutil.copytree(workdir, run)
    config = _config()
    config.task.hidden = 8
    config_lib.write_config_json(config, run)
    argv = ["export", f"--workdir={run}", f"--export_dir={tmp_path / 'm'}"]
    parsed, options = cli.parse_command_line(argv)
    assert config_lib.to_json(parsed) == config_lib.to_json(config)
    overridden, _ = cli.parse_command_line(
        argv + ["--config.ema.evaluate_with_ema=false"])
    assert not overridden.ema.evaluate_with_ema
    path = cli.export(parsed, **options)
    features = _features()
    np.testing.assert_allclose(_serve(path, features)["logits"],
                               _expected(shadows, features), rtol=1e-5,
                               atol=1e-5)
    empty = tmp_path / "empty_run"
    with pytest.raises(errors.ConfigError, match="empty_run.*config.json"):
        cli.parse_command_line(["export", f"--workdir={empty}",
                                "--export_dir=models/x"])


def test_task_without_export_module_is_a_config_error():
    task = types.SimpleNamespace(
        config=ml_collections.ConfigDict({"name": "no_export"}))
    with pytest.raises(errors.ConfigError,
                       match="'no_export'.*has no export module"):
        serving.build_export_module(task, None)
