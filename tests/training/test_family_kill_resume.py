"""Every family's launcher survives kills and resumes exactly (large).

Per family (`family_runs.prepare`: the synthetic recipe, tiny, with
`runtime.deterministic=True` and a checkpoint every 2 steps): a reference
launcher trains uninterrupted while the same command is started, killed at
a random moment after a randomly chosen checkpoint appears (seeded RNG;
SIGKILL and SIGTERM alternate, `KILLS` kills), and started again until it
completes. The last checkpoint of the killed-and-restarted run must hold
exactly the reference's tensors: weights, optimizer slots, EMA shadows,
the families' own state (e.g. ActionFormer's loss normaliser) and the data
position.

A SIGKILLed run exits with -9 and resumes from its last periodic
checkpoint (mid-epoch, steps after it recomputed); a SIGTERMed one saves
at the next step boundary, logs it and exits 0. Each family's figures
(kills survived, where each resumed from, wall times) are printed as one
JSON line (`pytest -s`).
"""

import json
import random
import signal
import time

import pytest
import tensorflow as tf

from tests.training import family_runs
from tests.training import launcher_helpers as helpers

pytestmark = pytest.mark.large

KILLS = 3  # per family, alternating SIGKILL / SIGTERM
MAX_STARTS = KILLS + 3  # kills that miss (run already done) end the loop
START_TIMEOUT = 600  # seconds for one launcher start (tracing included)
MAX_DELAY = 0.4  # seconds after the chosen checkpoint before the signal


def _latest_step(workdir):
    """The step of the newest checkpoint in `workdir` (0: none yet)."""
    latest = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    return helpers.data_position(latest)[0] if latest else 0


def _kill_target(rng, position, run, kills_left):
    """A checkpoint step after `position` that leaves room to be killed
    before the end, and for the kills still to come; None if none."""
    interval, total = run["checkpoint_interval"], run["total_steps"]
    candidates = [step for step in range(interval, total - interval, interval)
                  if step > position]
    if not candidates:
        return None
    return rng.choice(candidates[:max(1, len(candidates) - kills_left + 1)])


def _interrupted_run(run, workdir, root, rng):
    """Starts, kills and restarts the launcher until it completes.

    Returns one dict per start: `from_step` (the checkpoint it resumed
    from), `signal` (name of the signal sent, or None), `aimed_at` (the
    checkpoint step it was sent after), `code` (exit status), `log`,
    `to_step` (its last checkpoint).
    """
    args = [*run["args"], f"--workdir={workdir}"]
    pair = rng.sample((signal.SIGKILL, signal.SIGTERM), 2)  # which first
    signals = [pair[i % 2] for i in range(KILLS)]
    starts, total = [], run["total_steps"]
    for number in range(MAX_STARTS):
        position = _latest_step(workdir)
        if position >= total:
            break
        log = root / f"start{number}.txt"
        proc = helpers.start("experiments.train", args, log)
        try:
            record = {"from_step": position, "signal": None}
            target = (_kill_target(rng, position, run, len(signals))
                      if signals else None)
            if target is not None:
                helpers.wait_for_checkpoint(str(workdir), target, proc, log,
                                            timeout=START_TIMEOUT)
                time.sleep(rng.uniform(0.0, MAX_DELAY))
                if proc.poll() is None:
                    signum = signals.pop(0)
                    proc.send_signal(signum)
                    record.update(signal=signum.name, aimed_at=target)
            record["code"] = proc.wait(timeout=START_TIMEOUT)
        finally:
            helpers.stop(proc)
        record["log"] = log.read_text()
        record["to_step"] = _latest_step(workdir)
        starts.append(record)
    return starts


def _check_start(record, total):
    """The exit of one start matches what it was sent."""
    log = record["log"][-4000:]
    done = record["to_step"] >= total
    if record["signal"] is None or done:
        assert record["code"] == 0 and done, log
    elif record["signal"] == "SIGKILL":
        assert record["code"] == -signal.SIGKILL, log
        # The periodic checkpoint it was killed after (or a later one).
        assert record["to_step"] >= record["aimed_at"], log
    else:
        step = record["to_step"]
        assert record["code"] == 0, log
        assert f"stopped by SIGTERM at step {step}; checkpoint saved" in log


@pytest.mark.parametrize("family", family_runs.FAMILIES)
def test_kills_and_restarts_end_as_the_uninterrupted_run(family,
                                                         tmp_path):
    begin = time.monotonic()
    run = family_runs.prepare(family, tmp_path / "data")
    prepared = time.monotonic()
    reference_dir = tmp_path / "reference"
    reference_log = tmp_path / "reference.txt"
    # Concurrently with the interrupted run: halves the wall time.
    reference = helpers.start(
        "experiments.train", [*run["args"], f"--workdir={reference_dir}"],
        reference_log)
    try:
        rng = random.Random(f"kill-resume-{family}")
        starts = _interrupted_run(run, tmp_path / "interrupted", tmp_path,
                                  rng)
        code = reference.wait(timeout=START_TIMEOUT)
    finally:
        helpers.stop(reference)
    assert code == 0, reference_log.read_text()[-4000:]
    total = run["total_steps"]
    for record in starts:
        _check_start(record, total)
    survived = [r for r in starts
                if r["signal"] and r["to_step"] < total]
    assert {r["signal"] for r in survived} == {"SIGKILL", "SIGTERM"}, [
        {k: v for k, v in r.items() if k != "log"} for r in starts]
    final = f"ckpt-{total}"
    helpers.assert_same_tensors(
        helpers.checkpoint_tensors(
            str(tmp_path / "interrupted" / "checkpoints" / final)),
        helpers.checkpoint_tensors(
            str(reference_dir / "checkpoints" / final)))
    print(json.dumps({
        "family": family, "total_steps": total,
        "kills_survived": len(survived),
        "kills": [[r["signal"], r["from_step"], r["to_step"]]
                  for r in survived],
        "starts": len(starts),
        "prepare_s": round(prepared - begin, 1),
        "wall_s": round(time.monotonic() - prepared, 1)}))
