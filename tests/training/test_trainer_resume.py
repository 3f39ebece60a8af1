"""Exact resume of the launcher after SIGKILL and SIGTERM (subprocesses).

Three launcher runs start together: a reference that trains uninterrupted,
and two identical commands whose training input stops after 40 examples
(step 5 of 6 in the first epoch) until a gate file appears (see
`classifier_task.py`). Once both have written their step-4 checkpoint, one
gets SIGKILL (so its last checkpoint is step 4, mid-epoch) and the other
SIGTERM; then the gate opens. Both are started again with the same command;
each must end with exactly the reference's checkpointed state: weights,
optimizer slots, EMA shadows and data position. (The runs overlap to keep
the wall time down.)
"""

import json
import signal

import pytest
import tensorflow as tf

from tests.training import launcher_helpers as helpers

# 48 training videos / global batch 8 = 6 steps per epoch, 3 epochs.
TOTAL_STEPS, STEPS_PER_EPOCH = 18, 6
FIRST_CHECKPOINT = 4  # trainer.checkpoint_interval of the test config
GATE_EXAMPLES = 40  # the gated input stops before step 6
SIGNALS = {"sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM}


def _args(workdir, records, gate):
    # Counting the epoch's steps would read past the gate: give the count.
    return helpers.launcher_args(
        workdir, records, f"--config.trainer.steps_per_epoch={STEPS_PER_EPOCH}",
        f"--config.task.input_gate_file={gate}",
        f"--config.task.input_gate_examples={GATE_EXAMPLES}")


def _final_tensors(workdir):
    return helpers.checkpoint_tensors(
        str(workdir / "checkpoints" / f"ckpt-{TOTAL_STEPS}"))


@pytest.fixture(scope="module")
def runs(classifier_records, tmp_path_factory):
    """Runs reference + interrupted + resumed launchers; returns results."""
    root = tmp_path_factory.mktemp("resume")
    open_gate, gate = root / "open_gate", root / "gate"
    open_gate.touch()
    args = {"reference": _args(root / "reference", classifier_records,
                               open_gate)}
    args.update({name: _args(root / name, classifier_records, gate)
                 for name in SIGNALS})
    logs = {name: root / f"{name}.txt" for name in args}
    procs = {name: helpers.start("experiments.train", args[name], logs[name])
             for name in args}
    results = {}
    try:
        for name, signum in SIGNALS.items():
            helpers.wait_for_checkpoint(str(root / name), FIRST_CHECKPOINT,
                                        procs[name], logs[name])
            procs[name].send_signal(signum)
        gate.touch()
        for name in args:
            code = procs[name].wait(timeout=240)
            results[name] = {"code": code, "log": logs[name].read_text()}
        assert results["reference"]["code"] == 0, results["reference"]["log"]
        for name in SIGNALS:
            results[name]["position"] = helpers.data_position(
                tf.train.latest_checkpoint(str(root / name / "checkpoints")))
            logs[name] = root / f"{name}_resumed.txt"
            procs[name] = helpers.start("experiments.train", args[name],
                                        logs[name])
        for name in SIGNALS:
            code = procs[name].wait(timeout=240)
            assert code == 0, logs[name].read_text()[-4000:]
            results[name]["final"] = _final_tensors(root / name)
    finally:
        for proc in procs.values():
            helpers.stop(proc)
    results["reference"]["final"] = _final_tensors(root / "reference")
    results["reference"]["workdir"] = root / "reference"
    return results


def test_reference_run_writes_resolved_config(runs):
    run_dir = runs["reference"]["workdir"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["task"]["input_gate_examples"] == GATE_EXAMPLES
    assert config["task"]["name"] == "test_feature_classifier"
    assert config["trainer"]["steps_per_epoch"] == STEPS_PER_EPOCH
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]


def test_sigkill_mid_epoch_resumes_to_identical_weights(runs):
    run = runs["sigkill"]
    assert run["code"] == -signal.SIGKILL
    # It died inside the first epoch: the resumed run skipped 4 batches.
    assert run["position"] == (FIRST_CHECKPOINT, 0, FIRST_CHECKPOINT)
    helpers.assert_same_tensors(run["final"], runs["reference"]["final"])


def test_sigterm_checkpoints_then_exits_cleanly(runs):
    run = runs["sigterm"]
    assert run["code"] == 0, run["log"][-3000:]
    step, epoch, batch = run["position"]
    # Checkpointed at the step boundary after the signal (step 5 or 6).
    assert FIRST_CHECKPOINT < step <= GATE_EXAMPLES // 8 + 1
    assert f"stopped by SIGTERM at step {step}; checkpoint saved" in run["log"]
    assert (epoch, batch) == divmod(step, STEPS_PER_EPOCH)
    helpers.assert_same_tensors(run["final"], runs["reference"]["final"])
