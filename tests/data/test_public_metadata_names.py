"""Shipped class lists by name, from a checkout and from an installed wheel.

`--class_list=thumos14` (and every other name of
`tfaction.data.public_metadata.CLASS_LISTS`) reads the list in data/; a
wheel carries every tracked file of data/ as tfaction/public_data/, where
the same names resolve outside the repository.
"""

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

from tfaction import errors
from tfaction.data import public_metadata
from tfaction.data.formats import charades
from tfaction.data.formats import class_list as class_list_lib

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO / "data"


@pytest.mark.parametrize("name", sorted(public_metadata.CLASS_LISTS))
def test_every_name_reads_its_file(name):
    path = pathlib.Path(public_metadata.class_list_path(name))
    assert path == DATA / public_metadata.CLASS_LISTS[name]
    reader = (charades.read_charades_classes if name == "charades"
              else class_list_lib.read_class_list)
    by_name, by_path = reader(name), reader(str(path))
    assert len(by_name) == len(by_path) > 0
    assert [by_name.name(i) for i in range(len(by_name))] == [
        by_path.name(i) for i in range(len(by_path))]


def test_a_file_in_the_working_directory_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ava").write_text("only\n")
    assert public_metadata.class_list_path("ava") == "ava"
    assert len(class_list_lib.read_class_list("ava")) == 1
    assert public_metadata.class_list_path("data/x.txt") == "data/x.txt"


def test_data_dir_override_and_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(public_metadata.ENV_VAR, str(DATA))
    assert public_metadata.data_dir() == DATA
    monkeypatch.setenv(public_metadata.ENV_VAR, str(tmp_path))
    with pytest.raises(errors.ConfigError, match=public_metadata.ENV_VAR):
        public_metadata.class_list_path("thumos14")


def _tracked_data_files():
    out = subprocess.run(["git", "ls-files", "data"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.split()
    return sorted(p[len("data/"):] for p in out if not p.endswith(".gitignore"))


def test_wheel_ships_data_and_resolves_names_outside_the_checkout(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("needs the git checkout to list data/'s tracked files")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps",
         "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
         str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("tfaction-*.whl")
    with zipfile.ZipFile(wheel) as z:
        shipped = sorted(n[len("tfaction/public_data/"):] for n in z.namelist()
                         if n.startswith("tfaction/public_data/"))
        z.extractall(tmp_path / "site")
    assert shipped == _tracked_data_files()
    # The unpacked wheel on sys.path, run from elsewhere: names resolve to
    # the wheel's copy.
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"),
               TF_CPP_MIN_LOG_LEVEL="3")
    env.pop(public_metadata.ENV_VAR, None)
    run = subprocess.run(
        [sys.executable, "-c",
         "from tfaction.data import public_metadata as p\n"
         "from tfaction.data.formats import class_list as c\n"
         "print(p.class_list_path('ego4d_mq'))\n"
         "print(len(c.read_class_list('ego4d_mq')))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    path, count = run.stdout.split()
    assert path == str(tmp_path / "site" / "tfaction" / "public_data" /
                       "ego4d_mq" / "classes.txt")
    assert count == "110"
