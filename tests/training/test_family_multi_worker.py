"""Every family under `--strategy=multi_worker`: 2 workers = 1 process.

For each family's tiny synthetic recipe (`family_runs.prepare`), two
worker processes on 127.0.0.1 (TF_CONFIG, one CPU replica each) train a few
steps with the launcher's functions (`mwms_worker.py`), and one process
trains the same steps with the same global batch: MirroredStrategy over two
logical CPUs with `runtime.input_pipeline_per_replica`, so that its two
replicas read their data exactly as the two workers do (input pipeline i
of 2; see `tests/data/test_family_input_sharding.py` for what that reads).
The final weights must be equal, bit for bit: a sum of two replicas'
values is the same in either order, and `runtime.deterministic` (with
oneDNN off) fixes every kernel, so nothing else may differ. CARL is the
exception, see `NOT_BIT_EXACT`.
"""

import time

import numpy as np
import pytest

from tests.training import family_runs
from tests.training import launcher_helpers as helpers

pytestmark = pytest.mark.large

EPOCHS = 2  # crosses an epoch boundary (2 to 4 steps an epoch here)
TIMEOUT = 600
# CARL's gradients differ between the two layouts in the last bits (a few
# ulps in every layer; not from its synchronized batch norms nor dropout,
# both ruled out by switching them off; the kernel behind it is not pinned
# down). Adam with its default epsilon=1e-8 blows such noise on gradients
# that vanish in exact arithmetic (biases before a batch norm) up to
# +-lr steps (1e-3 after 6 steps); with epsilon=1e-3, as CARL's task test
# uses for the same reason, the weights agree within 1.3e-7 (measured), so
# they are compared within 1e-6: (extra launcher args, absolute tolerance).
NOT_BIT_EXACT = {"carl": (["--config.optimizer.epsilon=1e-3"], 1e-6)}


def _weights(path):
    saved = np.load(path)
    return int(saved["step"]), [saved[f"arr_{i}"]
                                for i in range(len(saved.files) - 1)]


@pytest.mark.parametrize("family", family_runs.FAMILIES)
def test_two_workers_end_with_the_one_process_weights(family, tmp_path):
    run = family_runs.prepare(family, tmp_path / "data")
    steps = EPOCHS * run["steps_per_epoch"]
    extra, tolerance = NOT_BIT_EXACT.get(family, ([], 0.0))
    args = [*run["args"], f"--config.trainer.train_steps={steps}",
            "--config.trainer.log_interval=100", *extra]
    start = time.monotonic()
    procs = []
    try:
        procs, logs = helpers.start_workers(
            "tests.training.mwms_worker",
            lambda i: [str(tmp_path / f"worker{i}.npz"), *args,
                       f"--workdir={tmp_path / 'multi_worker'}",
                       "--strategy=multi_worker"],
            lambda i: tmp_path / f"worker{i}.txt",
            env=helpers.DETERMINISTIC_ENV)
        # Started together: the three processes overlap their start-up.
        procs.append(helpers.start(
            "tests.training.mwms_worker",
            [str(tmp_path / "one_process.npz"), *args,
             f"--workdir={tmp_path / 'one_process'}", "--strategy=mirrored",
             "--config.runtime.logical_cpus=2",
             "--config.runtime.input_pipeline_per_replica=True"],
            tmp_path / "one_process.txt", env=helpers.DETERMINISTIC_ENV))
        logs.append(tmp_path / "one_process.txt")
        for proc, log in zip(procs, logs):
            assert proc.wait(timeout=TIMEOUT) == 0, log.read_text()[-4000:]
    finally:
        for proc in procs:
            helpers.stop(proc)
    elapsed = time.monotonic() - start

    step, reference = _weights(tmp_path / "one_process.npz")
    assert step == steps and len(reference) > 1
    for index in range(2):
        got_step, got = _weights(tmp_path / f"worker{index}.npz")
        assert got_step == steps and len(got) == len(reference)
        for a, b in zip(got, reference):
            if tolerance:
                np.testing.assert_allclose(a, b, rtol=0, atol=tolerance)
            else:
                np.testing.assert_array_equal(a, b)
    worst = max(float(np.abs(a - b).max(initial=0))
                for a, b in zip(got, reference))
    print(f"{family}: 2 workers and 1 process, {steps} steps of "
          f"{run['global_batch']}: {elapsed:.0f}s, max |diff| {worst:.2g}")
