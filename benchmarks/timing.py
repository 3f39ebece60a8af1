"""Timing helpers shared by the benchmark scripts."""

import json
import os
import platform
import subprocess
import time


def median(values):
    """The median of a non-empty sequence of numbers, as a float."""
    values = sorted(values)
    n = len(values)
    return float(values[n // 2] if n % 2 else
                 (values[n // 2 - 1] + values[n // 2]) / 2)


def median_times(fns, iterations, warmup, first_calls=None, digits=3):
    """Median wall time of each function; the functions alternate.

    Alternating step by step makes load from other processes hit every
    function alike, so ratios within one run stay meaningful.

    Args:
        fns: zero-argument callables that block until their work is done.
        iterations: timed calls of each.
        warmup: untimed calls of each first.
        first_calls: optional list receiving the time of each function's
            first call (tracing and XLA compilation included), rounded to
            `digits`.
        digits: rounding of `first_calls`.

    Returns:
        List of median seconds, one per function.
    """
    for rep in range(warmup):
        for fn in fns:
            start = time.perf_counter()
            fn()
            if rep == 0 and first_calls is not None:
                first_calls.append(round(time.perf_counter() - start, digits))
    times = [[] for _ in fns]
    for _ in range(iterations):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return [median(t) for t in times]


def cpu_model():
    """The CPU's model name (Linux `/proc/cpuinfo`), for the JSON results."""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    # Not Linux: Python's own (possibly empty) description, said as such.
    return platform.processor() or "unknown (no /proc/cpuinfo)"


def child_result(cmd, what):
    """Runs a benchmark child process; returns its `RESULT {json}` line.

    Raises:
        RuntimeError: the child printed no result (with its stderr tail).
    """
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{what} failed (exit {proc.returncode}):"
                       f"\n{proc.stderr[-4000:]}")
