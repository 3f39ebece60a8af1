"""The converters' progress line: shown on a terminal only, with an ETA."""

import io

import pytest

from tfaction.data.formats import common
from tfaction.data.formats import progress


class _Tty(io.StringIO):
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
    clock, stream = _Clock(), _Tty()
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
    assert stream.getvalue() == ""
    progress.set_enabled(False)  # --noprogress
    tty = _Tty()
    with progress.Progress(3, stream=tty, force=True) as bar:
        bar.advance(3)
    assert tty.getvalue() == ""


def test_format_seconds():
    assert [progress.format_seconds(s) for s in (0.4, 59, 75.2, 3725)] == [
        "0s", "59s", "1m15s", "1h02m"]


def test_skipper_map_reports_every_video(monkeypatch):
    tty = _Tty()
    monkeypatch.setattr(progress.sys, "stderr", tty)
    skipper = common.Skipper()
    out = list(skipper.map(lambda x: x * 2, [1, 2, 3], subset="test"))
    assert out == [(1, 2), (2, 4), (3, 6)]
    assert "test: 3/3 videos" in tty.getvalue()
    assert tty.getvalue().endswith("\n")
