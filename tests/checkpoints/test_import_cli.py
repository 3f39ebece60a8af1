"""`python -m tfaction.checkpoints.import`: a released checkpoint as a run.

Anchor: the first `actionformer_*` bundle holding the authors'
`epoch_001.pth.tar`. Its annotations and features are converted into a
data folder as the task parity test does, its merged config becomes our
`config.json`, and the command imports the file into a workdir. The
workdir is then restored the way `experiments.train --mode=eval` and
`export.export_saved_model` restore it (an evaluation-only trainer built
from `<workdir>/config.json`, its newest checkpoint), and must give the
bundle's network outputs (`io.npz`) at the parity tolerance and, through
the evaluation itself, its final detections (`inference.npz`). A failing
import writes no checkpoint.
"""

import contextlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from experiments import train
from tests.checkpoints.test_actionformer_checkpoint import _assert_holds
from tests.checkpoints.test_actionformer_checkpoint import _inputs
from tests.conftest import REPO_ROOT
from tests.models import parity
from tests.tasks.test_actionformer_task_parity import bundle_task_config
from tfaction import config as config_lib
from tfaction import errors
from tfaction.checkpoints import CheckpointError
from tfaction.checkpoints import import_cli
from tfaction.checkpoints import load_torch_checkpoint
from tfaction.models.actionformer.reference import reference_weight_entries
from tfaction.tasks import actionformer_config

RECIPE = REPO_ROOT / "experiments" / "configs" / "actionformer_thumos_i3d.py"


@pytest.fixture(scope="module")
def bundle(checkpoint_bundles, tmp_path_factory):
    """The bundle, its data folder and its experiment `config.json`."""
    root = checkpoint_bundles[0]
    work = tmp_path_factory.mktemp("import_" + root.name)
    config = actionformer_config.experiment_config()
    config.task = bundle_task_config(root, work)
    config.trainer.eval_batch_size = 1
    config_lib.write_config_json(config_lib.lock(config), work)
    return dict(parity.load_bundle(root), work=work,
                config_json=work / config_lib.CONFIG_JSON,
                checkpoint=root / "epoch_001.pth.tar",
                data_dir=config.task.data_dir)


def _argv(bundle, workdir, *extra, config=None):
    return ["import", "--family=actionformer",
            f"--checkpoint={bundle['checkpoint']}",
            f"--config={config or bundle['config_json']}",
            f"--workdir={workdir}", *extra]


def _import(argv):
    config, options = import_cli.parse_command_line(argv)
    return import_cli.import_checkpoint(config, **options)


def _eval_trainer(workdir):
    """The trainer `experiments.train --mode=eval` builds, restored."""
    config, workdir, mode = train.parse_command_line(
        ["train", "--mode=eval", f"--workdir={workdir}",
         f"--config={workdir}/config.json"])
    trainer = train.build_trainer(config, workdir, mode)
    assert trainer.restore() == f"{workdir}/checkpoints/ckpt-0"
    return trainer


def _evaluated_weights(trainer):
    """The weights evaluation and export use (EMA swapped in if so)."""
    use_ema = trainer.ema is not None and trainer.config.ema.evaluate_with_ema
    return trainer.ema.swapped_weights() if use_ema else (
        contextlib.nullcontext())


@pytest.fixture(scope="module")
def imported(bundle):
    """The workdir written by the command itself (default weights)."""
    workdir = bundle["work"] / "run_ema"
    result = subprocess.run(
        [sys.executable, "-m", "tfaction.checkpoints.import",
         *_argv(bundle, workdir)[1:]],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith(f"{workdir}/checkpoints/ckpt-0")
    return workdir


def test_workdir_layout_and_config(bundle, imported):
    assert sorted(os.listdir(imported)) == ["checkpoints", "config.json"]
    assert sorted(os.listdir(imported / "checkpoints")) == [
        "checkpoint", "ckpt-0.data-00000-of-00001", "ckpt-0.index"]
    assert (config_lib.to_json(config_lib.read_config_json(
        imported / "config.json")) == bundle["config_json"].read_text())


def test_evaluation_reproduces_the_authors(bundle, imported):
    trainer = _eval_trainer(imported)
    io, inf = bundle["io"], bundle["inference"]
    model = trainer.model
    # Model and EMA hold the imported copy: either is evaluated alike.
    _assert_holds(model, bundle["weights"])
    with _evaluated_weights(trainer):
        _assert_holds(model, bundle["weights"])
        out = model.forward_levels(_inputs(io), training=False)
    for level in range(model.num_levels):
        for name in ("backbone_feat", "fpn_feat", "cls_logits", "offsets"):
            key = {"backbone_feat": "backbone_features",
                   "fpn_feat": "fpn_features"}.get(name, name)
            parity.assert_parity(
                out[key][level], parity.channels_last(io[f"{name}_{level}"]),
                f"{name}_{level}")
    # The evaluation run of `experiments.train --mode=eval`.
    result = train.run(trainer, "eval")
    assert result["step"] == 0
    assert 0.0 <= result["eval"]["average_mAP"] <= 1.0
    written = json.loads((imported / "predictions.json").read_text())
    (detections,) = written["results"].values()
    names = trainer.task.class_names
    parity.assert_same_ranking(
        (np.array([d["segment"] for d in detections]),
         np.array([d["score"] for d in detections]),
         np.array([names.index(d["label"]) for d in detections])),
        (inf["segments_sec"], inf["scores"], inf["labels"]),
        "detections of the imported checkpoint")


def test_model_weights(bundle, tmp_path):
    workdir = tmp_path / "run_model"
    prefix = _import(_argv(bundle, workdir, "--weights=model"))
    assert prefix == f"{workdir}/checkpoints/ckpt-0"
    raw = {k[len("module."):]: v for k, v in
           load_torch_checkpoint(bundle["checkpoint"])["state_dict"].items()}
    trainer = _eval_trainer(workdir)
    _assert_holds(trainer.model, raw)
    with _evaluated_weights(trainer):
        _assert_holds(trainer.model, raw)


@pytest.mark.slow
def test_training_continues_from_the_import(bundle, tmp_path):
    workdir = tmp_path / "finetune"
    _import(_argv(bundle, workdir))
    config, workdir, mode = train.parse_command_line(
        ["train", f"--workdir={workdir}", f"--config={workdir}/config.json",
         "--config.trainer.train_steps=6"])  # past the 5 warm-up steps
    trainer = train.build_trainer(config, workdir, mode)
    result = train.run(trainer, mode)
    assert result["step"] == 6 and not result["preempted"]
    assert tf.train.latest_checkpoint(f"{workdir}/checkpoints").endswith(
        "ckpt-6")
    # Six AdamW steps at lr <= 1e-4 from the imported weights.
    moved = 0.0
    for key, variable, convert in reference_weight_entries(trainer.model):
        change = np.abs(np.asarray(variable) - convert(
            bundle["weights"][key]))
        assert change.max() < 1e-3, key
        moved = max(moved, change.max())
    assert moved > 0


def _assert_no_checkpoint(workdir):
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")) is None
    assert not (workdir / "config.json").exists()
    if workdir.exists():
        assert not [n for n in os.listdir(workdir) if n.startswith(".")]


def test_mismatching_models_write_nothing(bundle, tmp_path):
    # The THUMOS recipe's model (512 channels) on the bundle's data.
    workdir = tmp_path / "recipe"
    argv = _argv(bundle, workdir, f"--config.task.data_dir="
                 f"{bundle['data_dir']}", config=RECIPE)
    with pytest.raises(CheckpointError, match="does not match") as info:
        _import(argv)
    assert "epoch_001.pth.tar" in str(info.value)
    _assert_no_checkpoint(workdir)
    # Another number of classes.
    workdir = tmp_path / "classes"
    with pytest.raises(CheckpointError,
                       match="cls_head.cls_head.conv.weight"):
        _import(_argv(bundle, workdir, "--config.task.class_agnostic=True"))
    _assert_no_checkpoint(workdir)


def test_command_line_errors(bundle, imported, tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(errors.ConfigError, match="task 'actionvlad'"):
        _import([*_argv(bundle, workdir), "--family=actionvlad"])
    with pytest.raises(errors.ConfigError, match="known families: "
                       "actionformer, actionvlad"):
        _import([*_argv(bundle, workdir), "--family=carl"])
    with pytest.raises(errors.ConfigError, match="hold ema, model"):
        _import([*_argv(bundle, workdir), "--weights=best"])
    with pytest.raises(errors.DataError, match="task.data_dir"):
        _import([*_argv(bundle, workdir),
                 f"--config.task.data_dir={tmp_path / 'nowhere'}"])
    with pytest.raises(CheckpointError, match="missing.pth.tar"):
        _import([*_argv(bundle, workdir),
                 f"--checkpoint={tmp_path / 'missing.pth.tar'}"])
    _assert_no_checkpoint(workdir)
    # A workdir that holds a run's checkpoints is refused, untouched.
    before = sorted(os.listdir(imported / "checkpoints"))
    with pytest.raises(errors.ConfigError, match="new --workdir"):
        _import(_argv(bundle, imported))
    assert sorted(os.listdir(imported / "checkpoints")) == before


def test_command_exit_status(bundle, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tfaction.checkpoints.import",
         *_argv(bundle, tmp_path / "run", "--family=nope")[1:]],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 2
    assert "tfaction.checkpoints.import: error: unknown --family='nope'" in (
        result.stderr)
