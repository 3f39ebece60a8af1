"""The converters report every video on the progress line (terminal only)."""

from tfaction import progress
from tfaction.data.formats import common
from tests.test_progress import Tty


def test_skipper_map_reports_every_video(monkeypatch):
    progress.set_enabled(True)
    tty = Tty()
    monkeypatch.setattr(progress.sys, "stderr", tty)
    skipper = common.Skipper()
    out = list(skipper.map(lambda x: x * 2, [1, 2, 3], subset="test"))
    assert out == [(1, 2), (2, 4), (3, 6)]
    assert "test: 3/3 videos" in tty.getvalue()
    assert tty.getvalue().endswith("\n")
