"""Long launchers show progress on a terminal, and nothing with --noprogress.

`experiments.evaluate` shows the elapsed time while a metric runs;
`experiments.actionvlad_init_centers` counts the frames whose descriptors
are extracted (with an ETA) and times the clustering.
"""

import pytest

from experiments import actionvlad_init_centers
from experiments import evaluate
from tests.tasks import test_actionvlad_task as actionvlad_tests
from tests.test_progress import Tty
from tfaction import progress

# The converted synthetic HMDB51-layout data of the ActionVLAD task tests.
dataset = actionvlad_tests.dataset


@pytest.fixture(autouse=True)
def _enabled():
    progress.set_enabled(True)
    yield
    progress.set_enabled(True)


def _tty(monkeypatch):
    """Makes stderr a terminal-like stream (inside the test: pytest's own
    capture replaces a fixture's stderr when the test starts)."""
    stream = Tty()
    monkeypatch.setattr(progress.sys, "stderr", stream)
    return stream


def _evaluate(tmp_path, *extra):
    split = tmp_path / "test_split1.txt"
    split.write_text("run/a 10 0\njump/b 12 1\n")
    scores = tmp_path / "scores.csv"
    scores.write_text("run/a,0.9,0.1\njump/b,0.2,0.8\n")
    return evaluate.main(["--metric=video_accuracy",
                          f"--ground_truth={split}",
                          f"--predictions={scores}", "--top_k=1", *extra])


def test_evaluate_shows_elapsed_time_on_a_terminal(tmp_path, capsys,
                                                   monkeypatch):
    tty = _tty(monkeypatch)
    assert _evaluate(tmp_path) == 0
    assert "top1" in capsys.readouterr().out
    text = tty.getvalue()
    assert text.startswith(f"\rvideo_accuracy: scoring {tmp_path}")
    assert text.endswith("s elapsed\x1b[K\n")


def test_evaluate_noprogress_draws_nothing(tmp_path, monkeypatch):
    tty = _tty(monkeypatch)
    assert _evaluate(tmp_path, "--noprogress") == 0
    assert tty.getvalue() == ""


def test_init_centers_counts_frames_and_times_clustering(
        dataset, tmp_path, monkeypatch):
    tty = _tty(monkeypatch)
    config = actionvlad_tests.make_config(dataset, "flow")
    actionvlad_init_centers.init_centers(config, tmp_path / "on")
    text = tty.getvalue()
    assert "\rdescriptors: 12/12 frames" in text
    assert "\rclustering 6720 descriptors: " in text  # 12 x 20 x 28
    tty.truncate(0)
    tty.seek(0)
    progress.set_enabled(False)
    actionvlad_init_centers.init_centers(config, tmp_path / "off")
    assert tty.getvalue() == ""


def test_init_centers_noprogress_flag(monkeypatch):
    tty = _tty(monkeypatch)
    config = "experiments/configs/actionvlad_synthetic_rgb.py"
    for switch, shown in (["--noprogress"], False), ([], True):
        actionvlad_init_centers.parse_command_line(
            ["x", f"--config={config}", "--workdir=/tmp/x", *switch])
        with progress.Stage("step"):
            pass
        assert bool(tty.getvalue()) is shown
