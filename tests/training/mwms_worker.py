"""One MultiWorkerMirroredStrategy worker for the multi-worker test.

Runs the launcher's own functions (flag parsing, `build_trainer`, `run`)
with the launcher arguments it is given, then saves this worker's final
model weights, which the chief alone would otherwise keep.

Usage (with TF_CONFIG set):
    python -m tests.training.mwms_worker WEIGHTS.npz --config=... --workdir=...
"""

import sys

import keras
import numpy as np

from experiments import train


def main(argv):
    weights_path, launcher_args = argv[1], argv[2:]
    config, workdir, mode = train.parse_command_line(
        ["experiments.train"] + launcher_args)
    trainer = train.build_trainer(config, workdir, mode)
    result = train.run(trainer, mode)
    np.savez(weights_path, step=result["step"],
             *[keras.ops.convert_to_numpy(w) for w in trainer.model.weights])


if __name__ == "__main__":
    main(sys.argv)
