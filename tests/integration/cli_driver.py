"""Runs a plan of `python -m <module> <args>` commands, importing once.

Usage: `python tests/integration/cli_driver.py PLAN.json RESULTS.json`.

PLAN.json is a list of `{"name", "module", "args"}`. TensorFlow and Keras
are imported once here; each command then runs in a forked child exactly as
`python -m <module> <args>` would (`runpy`, `sys.argv`, fresh absl flags),
its stdout and stderr captured at the file-descriptor level. The child ends
with `os._exit` once the command has finished, so the commands' own exit
path (tested separately by a real `python -m` run) plays no part. A command
that fails stops the plan. RESULTS.json gets one `{"name", "code",
"stdout", "stderr", "seconds"}` per command run.

Example:

```
echo '[{"name": "eval", "module": "experiments.evaluate",
        "args": ["--metric=video_accuracy", ...]}]' > plan.json
python tests/integration/cli_driver.py plan.json results.json
```
"""

import contextlib
import json
import os
import runpy
import sys
import tempfile
import time


def _run_child(module, args, out_path, err_path):
    """In the forked child: runs the command, then ends the process."""
    code = 1
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
        sys.argv = [module, *args]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (
                0 if e.code is None else 1)
    except BaseException:  # reported through stderr and the status
        import traceback
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            # A closed stream has nothing left to flush.
            with contextlib.suppress(ValueError, OSError):
                stream.flush()
        os._exit(code)


def run_step(module, args):
    """Runs one command in a forked child; returns (code, stdout, stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "stdout")
        err_path = os.path.join(tmp, "stderr")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_child(module, args, out_path, err_path)
        _, status = os.waitpid(pid, 0)
        with open(out_path, encoding="utf-8", errors="replace") as f:
            out = f.read()
        with open(err_path, encoding="utf-8", errors="replace") as f:
            err = f.read()
    return os.waitstatus_to_exitcode(status), out, err


def main(plan_path, results_path):
    # Imported before forking: each child starts with them loaded.
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    results = []
    for step in plan:
        start = time.monotonic()
        code, out, err = run_step(step["module"], step["args"])
        results.append({"name": step["name"], "code": code, "stdout": out,
                        "stderr": err,
                        "seconds": round(time.monotonic() - start, 2)})
        with open(results_path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
        if code != 0:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
