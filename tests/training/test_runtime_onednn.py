"""`runtime.deterministic` switches oneDNN off (launcher restart).

oneDNN's CPU kernels are outside TensorFlow's op determinism (two
identical ActionVLAD runs differed in a convolution's bias; see
`tfaction.training.runtime`), and their switch is read only when
TensorFlow loads:

* `deterministic_relaunch_env` asks for `TF_ENABLE_ONEDNN_OPTS=0` exactly
  when the run is deterministic and oneDNN is on, and never twice;
* `experiments.train` then replaces itself by the same command with that
  environment;
* in a process started with `TF_ENABLE_ONEDNN_OPTS=0`, oneDNN is off.

The end-to-end effect (identical weights after kills and restarts) is
`test_family_kill_resume.py` (large).
"""

import os
import subprocess
import sys

import pytest

from experiments import train
from tests.training.launcher_helpers import REPO_ROOT
from tfaction import config as config_lib
from tfaction.training import runtime


def _runtime(deterministic):
    config = config_lib.base_config()
    config.runtime.deterministic = deterministic
    return config


@pytest.mark.parametrize("deterministic, onednn, environ, wanted", [
    (True, True, {"A": "1"}, {"A": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}),
    (True, True, {"TF_ENABLE_ONEDNN_OPTS": "1"},
     {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    (False, True, {"A": "1"}, None),
    (True, False, {"A": "1"}, None),
    # Already restarted: no loop, whatever TensorFlow reports.
    (True, True, {"TF_ENABLE_ONEDNN_OPTS": "0"}, None),
])
def test_relaunch_env(monkeypatch, deterministic, onednn, environ, wanted):
    monkeypatch.setattr(runtime, "onednn_enabled", lambda: onednn)
    got = runtime.deterministic_relaunch_env(
        _runtime(deterministic).runtime, environ)
    assert got == wanted


@pytest.mark.parametrize("deterministic", [True, False])
def test_launcher_restarts_itself_with_onednn_off(monkeypatch,
                                                  deterministic):
    calls = []
    monkeypatch.setattr(runtime, "onednn_enabled", lambda: True)
    monkeypatch.delenv(runtime.ONEDNN_ENV, raising=False)
    monkeypatch.setattr(train.os, "execve",
                        lambda *args: calls.append(args))
    argv = ["--config=x.py", "--workdir=/tmp/w", "--config.a=1"]
    train.relaunch_for_determinism(_runtime(deterministic), argv)
    if not deterministic:
        assert calls == []
        return
    [(program, args, env)] = calls
    assert program == sys.executable
    assert args == [sys.executable, "-m", "experiments.train", *argv]
    assert env[runtime.ONEDNN_ENV] == "0"
    assert env["PATH"] == os.environ["PATH"]


def test_environment_switches_onednn_off():
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", "from tfaction.training import runtime; "
         "print(runtime.onednn_enabled())"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "False"
