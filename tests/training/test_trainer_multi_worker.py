"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1.

Both workers run the launcher's code (`tests/training/mwms_worker.py`) with
`--strategy=multi_worker` and a TF_CONFIG naming free local ports. Their
training input stops before step 6 until a gate file appears (see
`classifier_task.py`); after the chief's step-4 checkpoint only the
non-chief gets SIGTERM, then the gate opens. Both workers must agree to stop
at the same step and checkpoint it, then, started again, finish with
identical weights; the chief alone keeps checkpoints, summaries and
config.json, and the non-chief's temporary checkpoint folder is gone.
"""

import re
import signal

import numpy as np
import tensorflow as tf

from tests.training import launcher_helpers as helpers

TOTAL_STEPS, STEPS_PER_EPOCH = 18, 6
GATE_EXAMPLES = 20  # per worker: 4 examples per step, so step 6 waits


def _start_workers(tmp_path, args, round_name):
    return helpers.start_workers(
        "tests.training.mwms_worker",
        lambda index: [str(tmp_path / f"weights{index}.npz"), *args],
        lambda index: tmp_path / f"{round_name}_worker{index}.txt")


def _wait_ok(procs, logs):
    for proc, log in zip(procs, logs):
        assert proc.wait(timeout=240) == 0, log.read_text()[-4000:]


def test_two_workers_agree_on_sigterm_and_end_identical(classifier_records,
                                                        tmp_path):
    workdir, gate = tmp_path / "run", tmp_path / "gate"
    args = helpers.launcher_args(
        workdir, classifier_records, "--strategy=multi_worker",
        f"--config.trainer.steps_per_epoch={STEPS_PER_EPOCH}",
        f"--config.task.input_gate_file={gate}",
        f"--config.task.input_gate_examples={GATE_EXAMPLES}")
    procs = []
    try:
        procs, logs = _start_workers(tmp_path, args, "first")
        helpers.wait_for_checkpoint(str(workdir), 4, procs[0], logs[0])
        procs[1].send_signal(signal.SIGTERM)  # the non-chief only
        gate.touch()
        _wait_ok(procs, logs)
        stops = [re.findall(r"stopped by SIGTERM at step (\d+)",
                            log.read_text()) for log in logs]
        assert stops[0] == stops[1] and len(stops[0]) == 1, stops
        stop_step = int(stops[0][0])
        assert 4 < stop_step < TOTAL_STEPS
        assert helpers.data_position(tf.train.latest_checkpoint(
            str(workdir / "checkpoints")))[0] == stop_step

        procs, logs = _start_workers(tmp_path, args, "second")
        _wait_ok(procs, logs)
    finally:
        for proc in procs:
            helpers.stop(proc)

    chief, other = (np.load(tmp_path / f"weights{i}.npz") for i in range(2))
    assert int(chief["step"]) == int(other["step"]) == TOTAL_STEPS
    assert chief.files == other.files and len(chief.files) > 1
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], other[name])
    # The chief's final checkpoint holds those weights.
    saved = helpers.checkpoint_tensors(
        tf.train.latest_checkpoint(str(workdir / "checkpoints")))
    assert any(np.array_equal(v, chief["arr_0"]) for v in saved.values())
    # One writer of everything: no worker temp folders, one event file per
    # run of the chief.
    assert sorted(p.name for p in workdir.iterdir()) == [
        "checkpoints", "config.json", "train"]
    assert len(list((workdir / "train").iterdir())) == 2
