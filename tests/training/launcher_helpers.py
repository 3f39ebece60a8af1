"""Helpers for tests that run `python -m experiments.train` as a process."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import tensorflow as tf

from tfaction.training import runtime

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG_FILE = "tests/training/classifier_config.py"
POSITION_KEY = "position/{}/.ATTRIBUTES/VARIABLE_VALUE"


def launcher_args(workdir, records, *overrides):
    """Arguments of the launcher for the test classifier config."""
    return ["--config=" + CONFIG_FILE, f"--workdir={workdir}",
            f"--config.task.train_files={records['train']}",
            f"--config.task.eval_files={records['eval']}", *overrides]


# What `experiments.train` restarts itself with for `runtime.deterministic`
# (oneDNN's CPU kernels are outside op determinism); for processes that run
# the launcher's functions without its restart.
DETERMINISTIC_ENV = {runtime.ONEDNN_ENV: "0"}


def start(module, args, log_path, env=None):
    """Starts `python -m module args` in the repo root, output to a file."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    log = open(log_path, "w")
    try:
        return subprocess.Popen([sys.executable, "-m", module, *args],
                                cwd=REPO_ROOT, env=full_env, stdout=log,
                                stderr=subprocess.STDOUT)
    finally:
        log.close()  # the child keeps its own descriptor


def free_ports(count):
    """`count` TCP ports free on 127.0.0.1 right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_workers(module, args_of, log_of, count=2, env=None):
    """Starts `count` MultiWorkerMirroredStrategy workers on 127.0.0.1.

    Each runs `python -m module args_of(index)` with a TF_CONFIG naming
    free local ports (worker 0 is the chief) and `env`, output to
    `log_of(index)`.

    Returns:
        `(processes, log paths)`, by worker index.
    """
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(count)]}
    procs, logs = [], []
    for index in range(count):
        tf_config = {"cluster": cluster,
                     "task": {"type": "worker", "index": index}}
        logs.append(log_of(index))
        procs.append(start(module, args_of(index), logs[-1],
                           env=dict(env or {},
                                    TF_CONFIG=json.dumps(tf_config))))
    return procs, logs


def run_launcher(args, log_path, timeout=240):
    """Runs the launcher to completion; fails the test on a bad exit."""
    proc = start("experiments.train", args, log_path)
    try:
        code = proc.wait(timeout=timeout)
    finally:
        stop(proc)
    assert code == 0, pathlib.Path(log_path).read_text()[-4000:]


def stop(proc):
    """Kills `proc` if it is still running and reaps it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def wait_for_checkpoint(workdir, step, proc, log_path, timeout=180):
    """Polls until checkpoint number >= `step` exists; returns its path."""
    directory = os.path.join(workdir, "checkpoints")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = tf.train.latest_checkpoint(directory)
        if latest and int(latest.rsplit("-", 1)[1]) >= step:
            return latest
        if proc.poll() is not None:
            raise AssertionError(
                "launcher ended before checkpoint %d:\n%s" % (
                    step, pathlib.Path(log_path).read_text()[-4000:]))
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint {step} after {timeout}s")


def checkpoint_tensors(path):
    """Every saved tensor of a checkpoint except the save counter."""
    reader = tf.train.load_checkpoint(path)
    return {key: reader.get_tensor(key)
            for key in reader.get_variable_to_shape_map()
            if not key.startswith(("save_counter", "_CHECKPOINTABLE"))}


def data_position(path):
    """`(step, epoch, batch_in_epoch)` saved in a checkpoint."""
    reader = tf.train.load_checkpoint(path)
    return tuple(int(reader.get_tensor(POSITION_KEY.format(name)))
                 for name in ("step", "epoch", "batch_in_epoch"))


def assert_same_tensors(actual, expected):
    """Exact equality of two `checkpoint_tensors` dicts."""
    assert sorted(actual) == sorted(expected)
    different = [k for k in expected
                 if not (actual[k].shape == expected[k].shape and
                         (actual[k] == expected[k]).all())]
    assert not different, f"tensors differ: {different}"
