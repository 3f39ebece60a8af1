"""The launchers hide TensorFlow's C++ start-up log unless asked for it.

On a machine without a GPU, TensorFlow 2.17 prints `E ... Unable to
register cuDNN factory` lines at import, which read as failures. Importing
the launcher packages sets `TF_CPP_MIN_LOG_LEVEL=3` unless the variable is
already set; the converter CLI does the same before it loads TensorFlow.
"""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

_PROGRAM = """
import {package}
import tensorflow as tf
tf.constant(1.0) + 1.0
print("level", __import__("os").environ["TF_CPP_MIN_LOG_LEVEL"])
"""


def _run(package, level=None):
    env = {k: v for k, v in os.environ.items()
           if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    return subprocess.run(
        [sys.executable, "-c", _PROGRAM.format(package=package)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
        check=True)


def test_launcher_packages_silence_the_cpp_log():
    for package in ("experiments", "export"):
        done = _run(package)
        assert "level 3" in done.stdout
        assert "Unable to register" not in done.stderr, done.stderr
        assert "cuda" not in done.stderr.lower(), done.stderr


def test_an_explicit_level_is_kept():
    done = _run("experiments", level="1")
    assert "level 1" in done.stdout


def test_the_converter_cli_output_has_no_cpp_log(tmp_path):
    import json

    import numpy as np

    database = {"v1": {"subset": "training", "duration": 2.0, "fps": 10.0,
                       "annotations": [{"segment": [0.1, 0.5],
                                        "label": "a"}]}}
    (tmp_path / "gt.json").write_text(json.dumps({"database": database}))
    (tmp_path / "features").mkdir()
    np.save(tmp_path / "features" / "v1.npy", np.zeros((4, 2), np.float32))
    env = {k: v for k, v in os.environ.items()
           if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "tfaction.data.convert",
         "--format=activitynet_features", f"--input={tmp_path / 'gt.json'}",
         f"--features_dir={tmp_path / 'features'}", "--feature_stride=4",
         "--feature_window=8", f"--output_dir={tmp_path / 'out'}",
         "--noprogress"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote 1 record(s)" in done.stdout
    assert "Unable to register" not in done.stderr, done.stderr
