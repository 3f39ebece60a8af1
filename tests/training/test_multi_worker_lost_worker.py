"""A MultiWorkerMirroredStrategy worker killed mid-run (SIGKILL).

Two launcher processes (`python -m experiments.train --strategy=
multi_worker`, TF_CONFIG on 127.0.0.1) train the test classifier. The
non-chief's input stops before step 6 (a gate file that never appears,
`classifier_task.py`), so the chief sits in step 6's all-reduce waiting for
it; after the chief's step-4 checkpoint the non-chief is killed with
SIGKILL there.

The chief must fail in bounded time with a non-zero exit and a message
naming the lost worker, saying to restart every worker and from which
checkpoint; the checkpoint it names must be the latest, complete and
restorable, with no half-written files beside it. Both workers started
again resume from it and end with exactly the weights of an uninterrupted
two-worker run (`runtime.deterministic=True`, same collectives).
"""

import re
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.training import launcher_helpers as helpers

pytestmark = pytest.mark.large

TOTAL_STEPS, STEPS_PER_EPOCH = 18, 6
GATE_EXAMPLES = 20  # per worker: 4 examples per step, so step 6 waits
# Seconds the chief may take to notice: TensorFlow's coordination service
# declares a worker dead after missed heartbeats (about 10 s), plus slack
# for a loaded 2-core machine.
FAILURE_BOUND = 120


def _launch(module, tmp_path, args, round_name):
    """Starts two workers; `args(index)` gives each one's arguments."""
    weights = module == "tests.training.mwms_worker"
    return helpers.start_workers(
        module,
        lambda i: ([str(tmp_path / f"{round_name}_weights{i}.npz")]
                   if weights else []) + args(i),
        lambda i: tmp_path / f"{round_name}_worker{i}.txt",
        env=helpers.DETERMINISTIC_ENV)


def _finish(procs, logs):
    for proc, log in zip(procs, logs):
        assert proc.wait(timeout=300) == 0, log.read_text()[-4000:]


def _weights(path):
    saved = np.load(path)
    return int(saved["step"]), [saved[f"arr_{i}"]
                                for i in range(len(saved.files) - 1)]


def test_killed_worker_fails_clearly_and_restart_resumes(classifier_records,
                                                         tmp_path):
    gate = tmp_path / "gate"

    def args(workdir, gated=False):
        gating = [f"--config.task.input_gate_file={gate}",
                  f"--config.task.input_gate_examples={GATE_EXAMPLES}"]
        return helpers.launcher_args(
            workdir, classifier_records, "--strategy=multi_worker",
            f"--config.trainer.steps_per_epoch={STEPS_PER_EPOCH}",
            *(gating if gated else []))

    workdir = tmp_path / "run"
    checkpoints = workdir / "checkpoints"
    procs = []
    try:
        procs, logs = _launch("experiments.train", tmp_path,
                              lambda i: args(workdir, gated=i == 1),
                              "killed")
        helpers.wait_for_checkpoint(str(workdir), 4, procs[0], logs[0])
        time.sleep(2)  # the chief reaches step 6's all-reduce
        procs[1].kill()  # SIGKILL: no handler, no goodbye to the chief
        assert procs[1].wait(timeout=30) != 0
        start = time.monotonic()
        try:
            code = procs[0].wait(timeout=FAILURE_BOUND)
        except Exception:  # a hang is the failure this test guards against
            pytest.fail(f"the chief still runs {FAILURE_BOUND}s after its "
                        f"peer died:\n{logs[0].read_text()[-3000:]}")
        elapsed = time.monotonic() - start
        chief_log = logs[0].read_text()
        assert code != 0, chief_log[-3000:]

        latest = tf.train.latest_checkpoint(str(checkpoints))
        message = re.search(
            r"lost worker 1 \(127\.0\.0\.1:\d+\) after step (\d+) .*"
            r"restart every worker .*resumes from checkpoint (\S+)",
            chief_log)
        assert message, chief_log[-3000:]
        assert message.group(2) == latest
        # The latest checkpoint is whole: every tensor reads, the position
        # is a checkpointed step, no staging files are left beside it.
        step = helpers.data_position(latest)[0]
        assert 4 <= step <= int(message.group(1)) < TOTAL_STEPS
        assert helpers.checkpoint_tensors(latest)
        assert not [p.name for p in checkpoints.iterdir()
                    if "_temp" in p.name]

        procs, logs = _launch("tests.training.mwms_worker", tmp_path,
                              lambda i: args(workdir), "restarted")
        _finish(procs, logs)
        # The restart logged (every `log_interval` = 2 steps) only steps
        # after the checkpoint: it resumed rather than started over.
        events = sorted((workdir / "train").iterdir(),
                        key=lambda p: p.stat().st_mtime)
        assert len(events) == 2
        logged = {event.step for event in map(
            tf.compat.v1.Event.FromString,
            tf.data.TFRecordDataset(str(events[1])).as_numpy_iterator())
            if event.summary.value}
        assert step < min(logged) <= step + 2 and max(logged) == TOTAL_STEPS

        procs, logs = _launch("tests.training.mwms_worker", tmp_path,
                              lambda i: args(tmp_path / "reference"),
                              "reference")
        _finish(procs, logs)
    finally:
        for proc in procs:
            helpers.stop(proc)

    reference_step, reference = _weights(tmp_path / "reference_weights0.npz")
    for index in range(2):
        final_step, final = _weights(
            tmp_path / f"restarted_weights{index}.npz")
        assert final_step == reference_step == TOTAL_STEPS
        assert len(final) == len(reference) > 1
        for got, want in zip(final, reference):
            np.testing.assert_array_equal(got, want)
    print(f"chief failed {elapsed:.1f}s after its peer's death, at step "
          f"{message.group(1)}; resumed from {latest}\n{message.group(0)}")
