"""A one-line progress display on stderr for long commands (count, rate, ETA).

Converters, centre initialisation and evaluation run for minutes to hours;
`Progress` redraws one line on stderr with the count, the rate and the time
left, and `Stage` shows the elapsed time of one step that has no countable
items (clustering, scoring a metric). Both draw only where a person
watches: when the stream is a terminal and progress is enabled
(`set_enabled`; each command's `--noprogress` turns it off); redirected to a
log or run by CI, they write nothing.

Example:

```python
with Progress(len(videos), label="train") as bar:
    for video in videos:
        convert(video)
        bar.advance()
with Stage("clustering 100000 descriptors"):
    cluster()
```
"""

import sys
import threading
import time

_ENABLED = [True]

FLAG_HELP = ("Show a progress line (items done, rate, ETA or elapsed time) "
             "on stderr when it is a terminal; --noprogress turns it off.")


def set_enabled(enabled):
    """Turns the display on or off for the whole process.

    Args:
        enabled: False hides every later `Progress` and `Stage`.
    """
    _ENABLED[0] = bool(enabled)


def define_flag(flag_values):
    """Defines the boolean absl flag `--[no]progress` (default on).

    Args:
        flag_values: the `absl.flags.FlagValues` to define it on.

    Returns:
        The flag holder; pass its `.value` to `set_enabled` after parsing.

    Example:

    ```python
    _PROGRESS = progress.define_flag(flags.FLAGS)
    ...
    progress.set_enabled(_PROGRESS.value)
    ```
    """
    from absl import flags

    return flags.DEFINE_bool("progress", True, FLAG_HELP,
                             flag_values=flag_values)


def add_argument(parser):
    """Adds `--progress` / `--noprogress` (default on) to an argparse parser.

    Args:
        parser: an `argparse.ArgumentParser`; the parsed namespace gets a
            boolean `progress`.

    Example:

    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_argument(parser)
    >>> parser.parse_args(["--noprogress"]).progress
    False
    """
    parser.add_argument("--progress", dest="progress", action="store_true",
                        default=True, help=FLAG_HELP)
    parser.add_argument("--noprogress", dest="progress", action="store_false",
                        help="do not show the progress line")


def format_seconds(seconds):
    """Formats a duration for the display.

    Args:
        seconds: a duration (negative counts as 0).

    Returns:
        `'42s'`, `'1m15s'` or `'1h02m'`.

    Example:

    >>> format_seconds(75.2), format_seconds(3725)
    ('1m15s', '1h02m')
    """
    seconds = int(round(max(seconds, 0.0)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts items and redraws `label: done/total unit, rate, ETA, elapsed`.

    Args:
        total: items expected (None if unknown: no ETA).
        label: text before the counts (e.g. the subset).
        unit: what is counted; None shows the elapsed time only.
        stream: where to draw (default stderr).
        force: draw even if `stream` is not a terminal (tests).
        interval: seconds between redraws.
        clock: time source (tests).

    Example:

    ```python
    with Progress(num_frames, label="descriptors", unit="frames") as bar:
        for batch in batches:
            bar.advance(len(batch))
    ```
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
        text = f"{self.label}: " if self.label else ""
        if self.unit is not None:
            rate = self.done / elapsed
            counts = (f"{self.done}/{self.total}" if self.total is not None
                      else f"{self.done}")
            text += f"{counts} {self.unit}, {rate:.2f}/s, "
            if (self.total is not None and self.done
                    and self.done < self.total):
                remaining = (self.total - self.done) / rate
                text += f"ETA {format_seconds(remaining)}, "
        return text + f"{format_seconds(elapsed)} elapsed"

    def _draw(self, end=""):
        self._last = self.clock()
        self.stream.write("\r" + self.line() + "\x1b[K" + end)
        self.stream.flush()

    def advance(self, count=1):
        """Counts `count` more items; redraws at most every `interval`."""
        self.done += int(count)
        now = self.clock()
        if self.active and (self._last is None
                            or now - self._last >= self.interval
                            or self.done == self.total):
            self._draw()

    def close(self):
        """Ends the line (when anything was drawn)."""
        if self.active and self._last is not None:
            self._draw("\n")
            self._last = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Stage(Progress):
    """One step without countable items: `label: 12s elapsed`, kept current.

    Draws at once, then redraws every `interval` seconds from a background
    thread (the step itself, e.g. a scikit-learn or NumPy call, cannot
    report), and ends the line on `close`.

    Args:
        label: what is being done.
        stream, force, interval, clock: as for `Progress`.

    Example:

    ```python
    with Stage("clustering 100000 descriptors"):
        centers = kmeans(descriptors)
    ```
    """

    def __init__(self, label, stream=None, force=False, interval=1.0,
                 clock=time.monotonic):
        super().__init__(None, label=label, unit=None, stream=stream,
                         force=force, interval=interval, clock=clock)
        self._stop = threading.Event()
        self._ticker = None
        if self.active:
            self._draw()
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def _tick(self):
        while not self._stop.wait(self.interval):
            self._draw()

    def close(self):
        """Stops redrawing and ends the line with the total elapsed time."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        super().close()
