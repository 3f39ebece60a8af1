"""The progress display of long commands: on a terminal only, with an ETA."""

import io

import pytest
from absl import flags

from tfaction import progress


class Tty(io.StringIO):
    """A terminal-like stream: `isatty()` is True."""

    def isatty(self):
        return True


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture(autouse=True)
def _enabled():
    progress.set_enabled(True)
    yield
    progress.set_enabled(True)


def test_line_counts_rate_and_eta():
    clock, stream = _Clock(), Tty()
    bar = progress.Progress(4, label="train", stream=stream, clock=clock,
                            interval=0.0)
    clock.now += 10.0
    bar.advance()
    assert bar.line() == ("train: 1/4 videos, 0.10/s, ETA 30s, 10s "
                          "elapsed")
    clock.now += 80.0
    bar.advance(3)
    bar.close()
    text = stream.getvalue()
    assert "\rtrain: 1/4 videos, 0.10/s, ETA 30s" in text
    assert text.endswith("train: 4/4 videos, 0.04/s, 1m30s elapsed"
                         "\x1b[K\n")


def test_silent_when_not_a_terminal_or_disabled():
    stream = io.StringIO()  # a log file, CI
    with progress.Progress(3, stream=stream) as bar:
        bar.advance(3)
    with progress.Stage("clustering", stream=stream):
        pass
    assert stream.getvalue() == ""
    progress.set_enabled(False)  # --noprogress
    tty = Tty()
    with progress.Progress(3, stream=tty, force=True) as bar:
        bar.advance(3)
    with progress.Stage("clustering", stream=tty):
        pass
    assert tty.getvalue() == ""


def test_stage_shows_elapsed_time_until_closed():
    clock, stream = _Clock(), Tty()
    stage = progress.Stage("clustering 10 descriptors", stream=stream,
                           clock=clock, interval=60.0)
    assert stream.getvalue() == "\rclustering 10 descriptors: 0s elapsed\x1b[K"
    clock.now += 75.0
    stage.close()
    assert stream.getvalue().endswith(
        "\rclustering 10 descriptors: 1m15s elapsed\x1b[K\n")
    assert stage._ticker is None  # the redrawing thread has ended


def test_format_seconds():
    assert [progress.format_seconds(s) for s in (0.4, 59, 75.2, 3725)] == [
        "0s", "59s", "1m15s", "1h02m"]


def test_command_line_switches():
    flag_values = flags.FlagValues()
    holder = progress.define_flag(flag_values)
    flag_values(["prog", "--noprogress"])
    assert holder.value is False
    import argparse
    parser = argparse.ArgumentParser()
    progress.add_argument(parser)
    assert parser.parse_args([]).progress is True
    assert parser.parse_args(["--noprogress"]).progress is False
