"""Tests for `python -m tfaction.data.synthetic`."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "tfaction.data.synthetic", *args],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)


@pytest.mark.parametrize("kind,num_videos,marker", [
    ("temporal_localization", 5, "annotations.json"),
    ("video_classification", 16, "actions.txt"),
])
def test_cli_writes_dataset_and_prints_summary(tmp_path, kind, num_videos,
                                               marker):
    out = tmp_path / kind
    result = _run(f"--kind={kind}", f"--out_dir={out}",
                  f"--num_videos={num_videos}", "--seed=7")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["num_videos"] == num_videos
    assert summary["out_dir"] == str(out)
    assert (out / marker).is_file()
    # A second run refuses to clobber the dataset unless told to.
    again = _run(f"--kind={kind}", f"--out_dir={out}")
    assert again.returncode != 0 and "not empty" in again.stderr
    assert _run(f"--kind={kind}", f"--out_dir={out}",
                "--overwrite").returncode == 0


def test_cli_rejects_unknown_kind(tmp_path):
    result = _run("--kind=kinetics", f"--out_dir={tmp_path / 'x'}")
    assert result.returncode != 0
    assert "kind" in result.stderr
    assert not (tmp_path / "x").exists()
