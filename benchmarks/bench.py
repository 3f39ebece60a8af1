"""Runs the benchmarks of `make bench` and regenerates their table.

Each benchmark runs in its own process, one after the other (never side by
side: they would slow each other), with its preset flags. Its JSON result
goes to `--results_dir/<name>.json` (written to a temporary file and
renamed, so a failed run leaves the previous result whole), and the table
between the markers of `--readme` is rendered again from every result in
that folder (`benchmarks/report.py`).

Comparisons with the authors' code need their repositories and a Python
with PyTorch, both outside tfaction; each is given as
`--reference NAME=REPO[:PYTHON]` (PYTHON defaults to this one). Without a
benchmark's reference it prints our figures only and its rows have no
ratio. Names: `actionformer` (happyharrycn/actionformer_release with its
NMS extension built), `activitynet` (activitynet/ActivityNet, the official
evaluation code), `carl` (minghchen/CARL_code), `adafocus_v1`
(blackfeather-wang/AdaFocus) and `adafocus_v2` (LeapLabTHU/AdaFocusV2).

Usage:
    python benchmarks/bench.py [--only evaluation,carl]
        [--reference actionformer=/src/actionformer_release:/venv/bin/python]
        [--results_dir benchmarks/results] [--readme benchmarks/README.md]
"""

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One benchmark of `make bench`.

    Attributes:
        script: path from the repository root.
        args: its preset flags.
        references: reference name -> (repository flag, python flag).
    """
    script: str
    args: tuple = ()
    references: tuple = ()


BENCHMARKS = {
    "actionformer": Benchmark(
        "benchmarks/actionformer.py", ("--bench",),
        (("actionformer", "--reference_repo", "--reference_python"),)),
    "actionvlad": Benchmark("benchmarks/actionvlad.py", ("--bench",)),
    "action_transformer": Benchmark("benchmarks/action_transformer.py",
                                    ("--bench",)),
    "carl": Benchmark(
        "benchmarks/carl.py", ("--bench",),
        (("carl", "--reference_repo", "--reference_python"),)),
    "adafocus": Benchmark(
        "benchmarks/adafocus.py", ("--bench",),
        (("adafocus_v1", "--reference_repo_v1", "--reference_python"),
         ("adafocus_v2", "--reference_repo", "--reference_python"))),
    "data_pipeline": Benchmark("benchmarks/data_pipeline.py", ("--bench",)),
    "precision": Benchmark("benchmarks/precision.py", ("--bench",)),
    "conversion": Benchmark("benchmarks/conversion.py", ("--bench",)),
    "evaluation": Benchmark(
        "benchmarks/evaluation.py", ("--bench",),
        (("activitynet", "--reference_repo", "--reference_python"),)),
}


def parse_references(specs):
    """`NAME=REPO[:PYTHON]` flags -> dict name -> (repo, python).

    Raises:
        SystemExit: a malformed flag, an unknown name or a missing path.
    """
    known = {name for bench in BENCHMARKS.values()
             for name, _, _ in bench.references}
    refs = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        if not sep or not rest:
            sys.exit(f"--reference {spec!r}: expected NAME=REPO[:PYTHON]")
        if name not in known:
            sys.exit(f"--reference {spec!r}: unknown name {name!r}; "
                     f"expected one of {sorted(known)}")
        repo, _, python = rest.partition(":")
        python = python or sys.executable
        for path in (repo, python):
            if not os.path.exists(path):
                sys.exit(f"--reference {spec!r}: {path} does not exist")
        refs[name] = (repo, python)
    return refs


def command(name, refs):
    """The benchmark's command (argv), and how the table shows it."""
    bench = BENCHMARKS[name]
    argv = [sys.executable, bench.script, *bench.args]
    shown = ["python", bench.script, *bench.args]
    pythons = set()
    for ref, repo_flag, python_flag in bench.references:
        if ref not in refs:
            continue
        repo, python = refs[ref]
        argv += [repo_flag, repo]
        shown += [repo_flag, f"<{ref} repo>"]
        if python_flag not in pythons:  # one Python serves all references
            pythons.add(python_flag)
            argv += [python_flag, python]
            shown += [python_flag, "<python with torch>"]
    return argv, " ".join(shown)


def run(name, refs, results_dir):
    """Runs one benchmark; its checked result replaces the previous one.

    Returns:
        The result (dict) or None when the benchmark failed (its output
        says why; the previous result is kept).
    """
    argv, shown = command(name, refs)
    out = pathlib.Path(results_dir) / f"{name}.json"
    staged = out.with_suffix(".json.tmp")
    print(f"== {name}: {shown}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    proc = subprocess.run(argv + ["--output", str(staged)], cwd=ROOT,
                          stdout=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not staged.exists():
        print(f"== {name} FAILED (exit {proc.returncode}) after "
              f"{seconds:.0f} s; keeping the previous result",
              file=sys.stderr, flush=True)
        staged.unlink(missing_ok=True)
        return None
    result = json.loads(staged.read_text())
    result["command"] = shown
    try:
        report.check_rows(result, name)
    except report.ResultError as err:
        print(f"== {name} FAILED: {err}", file=sys.stderr, flush=True)
        staged.unlink(missing_ok=True)
        return None
    staged.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(staged, out)
    print(f"== {name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help="comma-separated benchmark names")
    parser.add_argument("--reference", action="append", default=[],
                        help="NAME=REPO[:PYTHON], repeated")
    parser.add_argument("--results_dir",
                        default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--readme", default=str(ROOT / "benchmarks" /
                                                "README.md"))
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"--only: unknown {unknown}; expected some of "
                 f"{list(BENCHMARKS)}")
    refs = parse_references(args.reference)
    pathlib.Path(args.results_dir).mkdir(parents=True, exist_ok=True)
    failed = [name for name in names
              if run(name, refs, args.results_dir) is None]
    readme = pathlib.Path(args.readme)
    table = report.render(report.load_results(args.results_dir))
    text = report.replace_table(readme.read_text(), table, str(readme))
    staged = readme.with_suffix(".md.tmp")
    staged.write_text(text)
    os.replace(staged, readme)
    print(f"== table of {readme} regenerated", file=sys.stderr)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
