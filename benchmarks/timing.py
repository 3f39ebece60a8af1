"""Timing helpers shared by the benchmark scripts."""

import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import time


def peak_rss_gb():
    """This process's peak resident set size so far, in GB (1e9 bytes).

    Right after the imports it is the framework's own footprint.
    """
    # Linux reports kilobytes.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                 / 1e9, 3)


def rss_gb():
    """This process's resident set size now, in GB (1e9 bytes; Linux).

    Between two training steps it is what stays resident: the framework,
    the weights, the optimiser state and whatever the framework caches.
    """
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e9, 3)


def allocator_peak_gb():
    """TensorFlow's CPU allocator's peak bytes in use so far, in GB.

    The most memory that live tensors held at once (weights, optimiser
    state and activations), without the allocator's free blocks, the
    framework's code or its graphs; None where the allocator keeps no
    statistics (oneDNN off).
    """
    import tensorflow as tf

    try:
        info = tf.config.experimental.get_memory_info("CPU:0")
    except ValueError:
        return None
    return round(info["peak"] / 1e9, 3)


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


def git_commit(repo):
    """The short commit of a reference clone, as the rows name it.

    Returns:
        The commit, or "unknown commit (not a git work tree)" for an
        exported tree or a missing `git`.
    """
    try:
        return subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit (not a git work tree)"


def load_average():
    """The 1-minute load average, rounded to 2 decimals.

    Results record it before and after their runs: other processes on the
    same cores slow every figure.
    """
    return round(os.getloadavg()[0], 2)


def flag_args(args, names):
    """`--name value` arguments repeating parsed flags to a child process.

    Args:
        args: the parent's `argparse.Namespace`.
        names: the flags to pass on (attribute names).

    Returns:
        List of strings, e.g. `["--iterations", "3", "--warmup", "1"]`.
    """
    return [part for name in names
            for part in (f"--{name}", str(getattr(args, name)))]


def case_row(script, child_args, what, drop=("case",)):
    """Runs one case of a benchmark script in a fresh Python process.

    A process per case keeps each case's memory peak, tracing and
    compilation apart from the others'.

    Args:
        script: the benchmark script's path (its `__file__`).
        child_args: the child's command-line arguments for the case.
        what: the case's description in errors.
        drop: keys of the child's result to leave out (those naming the
            case, which the caller's row key already says).

    Returns:
        The child's `RESULT` dict without the `drop` keys.

    Raises:
        RuntimeError: the child printed no result (`child_result`).

    Example:

    ```python
    row = case_row(__file__, ["--child_case", "v2", "--warmup", "1"],
                   "case v2")
    ```
    """
    cmd = [sys.executable, str(pathlib.Path(script).resolve()), *child_args]
    row = child_result(cmd, what)
    return {k: v for k, v in row.items() if k not in drop}


def run_facts(start, loads, devices=True):
    """Where and when a benchmark ran, for the end of its JSON result.

    Args:
        start: `time.perf_counter()` at the run's start.
        loads: the load averages taken during the run (`load_average`).
        devices: also list the device types TensorFlow sees.

    Returns:
        Dict `tensorflow`, (`devices`,) `cpu_count`, `machine`, `cpu`,
        `date`, `load_average` (= `loads`) and `seconds` since `start`.

    Example:

    ```python
    result.update(run_facts(start, [load_average(), load_average()]))
    ```
    """
    import tensorflow as tf

    facts = {"tensorflow": tf.__version__}
    if devices:
        facts["devices"] = sorted({d.device_type for d in
                                   tf.config.list_physical_devices()})
    facts.update({
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "date": time.strftime("%Y-%m-%d"),
        # Other processes on the same cores slow every figure.
        "load_average": loads,
        "seconds": round(time.perf_counter() - start, 1),
    })
    return facts


def cases_result(header, run_cases, args, devices=True):
    """The result of a benchmark of cases, printed and written.

    Args:
        header: the result's first keys (`benchmark`, its sizes).
        run_cases: zero-argument callable -> dict case -> figures (run
            between two load-average readings).
        args: the parsed flags (`iterations`, `warmup`, `output`).
        devices: list the device types in the facts (`run_facts`).

    Returns:
        The result: `header`, `cases`, `iterations`, `warmup`, then
        `run_facts`.

    Example:

    ```python
    return cases_result({"benchmark": "carl"},
                        lambda: run_cases(args, cases), args)
    ```
    """
    start = time.perf_counter()
    loads = [load_average()]
    result = dict(header, cases=run_cases(), iterations=args.iterations,
                  warmup=args.warmup)
    loads.append(load_average())
    result.update(run_facts(start, loads, devices))
    return write_result(result, args.output)


def write_result(result, output=None):
    """Prints a benchmark's result as one JSON line (and writes it).

    Args:
        result: the JSON-serialisable result.
        output: optional path that also receives the line (`--output`).

    Returns:
        `result`, for `main` to return.
    """
    line = json.dumps(result)
    print(line)
    if output:
        pathlib.Path(output).write_text(line + "\n")
    return result
