"""Runs the synthetic recipes through their command-line launchers.

The learning tests call the same commands as `make demo` and
`make demo-actionvlad` (data, conversion, training, scoring), with smaller
data and fewer steps; the demo tests run the Makefile targets themselves.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ACTIONFORMER_CONFIG = "experiments/configs/actionformer_synthetic.py"
ACTIONVLAD_CONFIG = "experiments/configs/actionvlad_synthetic_{}.py"
TIOUS = "0.3,0.4,0.5,0.6,0.7"


def run(args, log_path, timeout=600):
    """Runs `args` in the repository root; returns its stdout + stderr.

    Args:
        args: the command line; a leading "-m" runs this interpreter.
        log_path: file that receives the output.
        timeout: seconds before the command is killed.

    Returns:
        The output as text. A non-zero exit fails the test with the
        output's tail.

    Example:

    >>> run(["-m", "tfaction.data.synthetic", "--help"], "/tmp/h.log")
    """
    if args[0] == "-m":
        args = [sys.executable, *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(args, cwd=REPO_ROOT, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    pathlib.Path(log_path).write_text(done.stdout)
    assert done.returncode == 0, (args, done.stdout[-4000:])
    return done.stdout


def actionformer_average_map(root, overrides=()):
    """`make demo` steps 1-4 in `root`; returns the validation mAP.

    Args:
        root: empty working folder.
        overrides: extra `--config.x.y=v` flags of `experiments.train`.

    Returns:
        `(average_mAP, mAP_per_tiou)` over tIoU 0.3:0.1:0.7 from the
        official ActivityNet metric (`experiments.evaluate`).

    Example:

    >>> actionformer_average_map(tmp, ["--config.trainer.epochs=8"])[0]
    """
    root = pathlib.Path(root)
    run(["-m", "tfaction.data.synthetic", "--kind=temporal_localization",
         f"--out_dir={root / 'raw'}"], root / "data.log")
    run(["-m", "tfaction.data.convert", "--format=activitynet_features",
         f"--input={root / 'raw' / 'annotations.json'}",
         f"--features_dir={root / 'raw' / 'features'}",
         "--feature_stride=4", "--feature_window=16",
         f"--output_dir={root / 'records'}"], root / "convert.log")
    run(["-m", "experiments.train", f"--config={ACTIONFORMER_CONFIG}",
         f"--workdir={root / 'train'}", "--mode=train_and_eval",
         f"--config.task.data_dir={root / 'records'}", *overrides],
        root / "train.log")
    result = root / "map.json"
    run(["-m", "experiments.evaluate", "--metric=activitynet_detection",
         f"--ground_truth={root / 'records' / 'ground_truth.json'}",
         f"--predictions={root / 'train' / 'predictions.json'}",
         "--subset=validation", f"--tiou_thresholds={TIOUS}",
         "--skip_unknown_labels", f"--output_json={result}"],
        root / "evaluate.log")
    scores = json.loads(result.read_text())
    return scores["average_mAP"], scores["mAP_per_tiou"]


def actionvlad_accuracies(root, num_videos, overrides=()):
    """`make demo-actionvlad` steps 1-5 in `root`; returns the accuracies.

    Args:
        root: empty working folder.
        num_videos: synthetic videos to generate (30% held out).
        overrides: extra `--config.x.y=v` flags of both streams'
            `experiments.actionvlad_init_centers` and `experiments.train`.

    Returns:
        The JSON line of `experiments.actionvlad_fuse` (RGB:flow = 1:2) as
        a dict: `num_videos` and `{"top1", "top5"}` of `rgb`, `flow` and
        `fused` on the held-out videos.

    Example:

    >>> actionvlad_accuracies(tmp, 80, ["--config.trainer.epochs=8"])
    """
    root = pathlib.Path(root)
    raw, records = root / "raw", root / "records"
    lists = raw / "train_test_lists"
    run(["-m", "tfaction.data.synthetic", "--kind=video_classification",
         f"--num_videos={num_videos}", f"--out_dir={raw}"], root / "data.log")
    run(["-m", "tfaction.data.convert", "--format=hmdb51_frames",
         f"--input={lists / 'train_split1.txt'},{lists / 'test_split1.txt'}",
         f"--frames_root={raw / 'frames'}", "--modalities=rgb,flow",
         f"--class_list={raw / 'actions.txt'}", f"--output_dir={records}"],
        root / "convert.log")
    for stream in ("rgb", "flow"):
        config = (f"--config={ACTIONVLAD_CONFIG.format(stream)}",
                  f"--config.task.data_dir={records}", *overrides)
        run(["-m", "experiments.actionvlad_init_centers", *config,
             f"--workdir={root / stream / 'init'}"], root / f"{stream}.log")
        run(["-m", "experiments.train", *config,
             f"--workdir={root / stream / 'train'}", "--mode=train_and_eval",
             "--config.task.centers_file="
             f"{root / stream / 'init' / 'centers.npz'}"],
            root / f"{stream}_train.log")
    output = run(["-m", "experiments.actionvlad_fuse",
                  f"--rgb={root / 'rgb' / 'train' / 'predictions.npz'}",
                  f"--flow={root / 'flow' / 'train' / 'predictions.npz'}",
                  f"--output={root / 'fused.npz'}",
                  f"--split_list={lists / 'test_split1.txt'}"],
                 root / "fuse.log")
    return fuse_result(output)


def fuse_result(output):
    """The JSON line `experiments.actionvlad_fuse` printed in `output`.

    Args:
        output: text holding one line that starts with `{"num_videos"`.

    Returns:
        That line, parsed.

    Example:

    >>> fuse_result('x\\n{"num_videos": 2, "fused": {"top1": 1.0}}\\n')
    {'num_videos': 2, 'fused': {'top1': 1.0}}
    """
    lines = [line for line in output.splitlines()
             if line.startswith('{"num_videos"')]
    assert len(lines) == 1, output[-4000:]
    return json.loads(lines[0])


def average_map(output):
    """The `average mAP: X` figure `experiments.evaluate` printed.

    Args:
        output: text holding one `average mAP: <float>` line.

    Returns:
        The float.

    Example:

    >>> average_map("0.3000  0.94\\naverage mAP: 0.8959\\n")
    0.8959
    """
    found = re.findall(r"^average mAP: ([0-9.]+)$", output, re.MULTILINE)
    assert len(found) == 1, output[-4000:]
    return float(found[0])


def make(target, log_path, timeout, **variables):
    """Runs `make <target> VAR=value ...` with this interpreter.

    The install step (`.venv/.installed`) is treated as done (`make -o`):
    the tests already run inside the environment.

    Args:
        target: Makefile target.
        log_path: file that receives the output.
        timeout: seconds before make is killed.
        **variables: Makefile variables to override (e.g. `AV_DEMO`).

    Returns:
        make's output as text.

    Example:

    >>> make("demo", "/tmp/demo.log", 1800, DEMO="/tmp/demo")
    """
    overrides = [f"{k}={v}" for k, v in variables.items()]
    return run(["make", "-o", ".venv/.installed", target,
                f"PY={sys.executable}", *overrides], log_path, timeout)
