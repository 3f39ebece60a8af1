"""A one-line progress display for long conversions (videos done, rate, ETA).

Converters run for minutes to hours (decoding video, computing optical
flow); `Progress` redraws one line on stderr with the count, the rate and
the time left. It is shown only where a person watches: when the stream is
a terminal and progress is enabled (`set_enabled`, the converter CLI's
`--noprogress` turns it off); redirected to a log or run by CI, it writes
nothing. No dependency beyond the standard library.

Example:

```python
with Progress(len(videos), label="train") as bar:
    for video in videos:
        convert(video)
        bar.advance()
```
"""

import sys
import time

_ENABLED = [True]


def set_enabled(enabled):
    """Turns the display on or off for the whole process."""
    _ENABLED[0] = bool(enabled)


def format_seconds(seconds):
    """`75.2` -> `'1m15s'`; `3725` -> `'1h02m'`."""
    seconds = int(round(max(seconds, 0.0)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts items and redraws `label: done/total videos, rate, ETA`.

    Args:
        total: items expected (None if unknown: no ETA).
        label: text before the counts (e.g. the subset).
        unit: what is counted.
        stream: where to draw (default stderr).
        force: draw even if `stream` is not a terminal (tests).
        interval: seconds between redraws.
        clock: time source (tests).
    """

    def __init__(self, total, label="", unit="videos", stream=None,
                 force=False, interval=0.5, clock=time.monotonic):
        self.total = None if total is None else int(total)
        self.label = label
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.active = _ENABLED[0] and (force or bool(isatty()))
        self.interval = float(interval)
        self.clock = clock
        self.done = 0
        self._start = clock()
        self._last = None

    def line(self):
        """The current text of the display."""
        elapsed = max(self.clock() - self._start, 1e-9)
        rate = self.done / elapsed
        counts = (f"{self.done}/{self.total}" if self.total is not None
                  else f"{self.done}")
        text = f"{self.label}: " if self.label else ""
        text += f"{counts} {self.unit}, {rate:.2f}/s"
        if self.total is not None and self.done and self.done < self.total:
            text += f", ETA {format_seconds((self.total - self.done) / rate)}"
        text += f", {format_seconds(elapsed)} elapsed"
        return text

    def advance(self, count=1):
        """Counts `count` more items; redraws at most every `interval`."""
        self.done += int(count)
        now = self.clock()
        if self.active and (self._last is None
                            or now - self._last >= self.interval
                            or self.done == self.total):
            self._last = now
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()

    def close(self):
        """Ends the line (when anything was drawn)."""
        if self.active and self._last is not None:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
            self._last = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
