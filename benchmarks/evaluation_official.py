"""Runs the official ActivityNet detection evaluation on two files; prints
`RESULT {json}` (its mAPs and the seconds it took).

The reference side of `benchmarks/evaluation.py`, run with the reference
Python (`--reference_python`: numpy, pandas and joblib installed). It
imports `ANETdetection` from `Evaluation/eval_detection.py` of the given
clone of activitynet/ActivityNet at run time and runs it as
`Evaluation/get_detection_performance.py` does (`evaluate()` on the
validation subset, tIoU `np.linspace(0.5, 0.95, 10)`), except for:

* `check_status=False`: the blocked-video list comes from a server this
  machine cannot reach (ActionFormer's copy of the code does the same);
* joblib workers: the code asks for one process per class (200); at most
  `--workers` are started (default: the CPU count), so its parallelism
  uses every core without 200 processes;
* the code is Python 2. Under Python 2 (numpy < 1.25: NumPy's generic
  sort, the tie order tfaction reproduces) it runs as it is, except that
  `json.load` keeps the file order of the `database` and `results` objects
  (objects of more than 4 keys; Python 2's dicts would visit videos in hash
  order, which reorders tied scores). Under Python 3 (<= 3.12) it is
  translated at run time with the standard library's 2to3 (`lib2to3`)
  into a temporary folder, with NumPy's removed alias `np.float` set to
  `float` at its top; NumPy >= 1.25 on an AVX-512 or AVX2 CPU then sorts
  tied scores in another order (its SIMD argsort), which moves the mAP
  slightly. Nothing is stored.

A Python 2 environment, outside the repository:

    pip2 install --target /work/refenv_py2_site numpy==1.16.6 \
        pandas==0.24.2 joblib==0.14.1
    # a `python` script running python2.7 with PYTHONPATH set to it

The timed span is what the official script does: import the module, read
both JSON files, evaluate.

Usage:
    python benchmarks/evaluation_official.py --reference_repo REPO \
        --ground_truth GT.json --predictions PRED.json [--workers 2]
"""

import argparse
import collections
import functools
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time


_NP_FLOAT_ALIAS = ("import numpy\n"
                   "numpy.float = getattr(numpy, 'float', float)\n")


def _translated_copy(evaluation_dir, out_dir):
    """2to3 of the two modules the evaluation needs, written to `out_dir`."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lib2to3's deprecation notice
        from lib2to3 import refactor

    fixers = refactor.get_fixers_from_package("lib2to3.fixes")
    tool = refactor.RefactoringTool(fixers)
    for name in ("eval_detection.py", "utils.py"):
        with open(os.path.join(evaluation_dir, name)) as f:
            source = f.read()
        text = str(tool.refactor_string(source, name))
        # NumPy >= 1.24 dropped the alias the code uses; set before its
        # first line, so joblib's worker processes get it when they import
        # the module.
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(_NP_FLOAT_ALIAS + text)


def _import_official(evaluation_dir, tmp):
    """The `eval_detection` module (translated into `tmp` under Python 3)."""
    folder = evaluation_dir
    if sys.version_info[0] >= 3:
        _translated_copy(evaluation_dir, tmp)
        folder = tmp
    sys.path.insert(0, folder)
    # joblib's worker processes import the module by name too.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [folder] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    import eval_detection
    if sys.version_info[0] < 3:
        eval_detection.json.load = functools.partial(
            json.load, object_pairs_hook=_file_order)
    return eval_detection


def _file_order(pairs):
    """Python 2 JSON objects: the large maps (videos) keep file order."""
    return collections.OrderedDict(pairs) if len(pairs) > 4 else dict(pairs)


def _capped_parallel(parallel, workers):
    """joblib's `Parallel` with at most `workers` processes."""
    def make(n_jobs=None, *args, **kwargs):
        return parallel(min(n_jobs or 1, workers), *args, **kwargs)
    return make


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference_repo", required=True,
                        help="clone of activitynet/ActivityNet")
    parser.add_argument("--ground_truth", required=True)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--workers", type=int,
                        default=multiprocessing.cpu_count())
    args = parser.parse_args()
    clock = getattr(time, "perf_counter", time.time)  # Python 2: time
    start = clock()
    import numpy as np
    import pandas as pd
    import joblib

    evaluation_dir = os.path.join(args.reference_repo, "Evaluation")
    tmp = tempfile.mkdtemp()
    try:
        official = _import_official(evaluation_dir, tmp)
        official.Parallel = _capped_parallel(official.Parallel, args.workers)
        thresholds = np.linspace(0.5, 0.95, 10)
        anet = official.ANETdetection(
            args.ground_truth, args.predictions, subset="validation",
            tiou_thresholds=thresholds, verbose=False, check_status=False)
        anet.evaluate()
        seconds = clock() - start
    finally:
        shutil.rmtree(tmp)
    ap = {label: anet.ap[:, cidx].tolist()
          for label, cidx in anet.activity_index.items()}
    print("RESULT " + json.dumps({
        "seconds": seconds, "average_mAP": float(anet.average_mAP),
        "mAP_per_tiou": [float(x) for x in anet.mAP],
        "ap_per_class": ap, "python": sys.version.split()[0],
        "numpy": np.__version__, "pandas": pd.__version__,
        "joblib": joblib.__version__, "workers": args.workers}))


if __name__ == "__main__":
    main()
