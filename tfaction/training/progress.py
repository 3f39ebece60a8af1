"""TensorBoard scalars (`tf.summary`) and a console progress bar.

Only the chief writes event files and prints; other workers get a no-op
summary writer, so a multi-worker run produces one set of curves.
"""

import os

import keras
import tensorflow as tf


class ProgressReporter:
    """Writes scalars to `<workdir>/<split>` and draws a progress bar.

    Args:
        workdir: run directory; event files go to `train/` and `eval/`.
        total_steps: steps of the whole run (the bar's target).
        is_chief: only the chief writes and prints.

    Example:

    ```python
    reporter = ProgressReporter(workdir, total_steps=1000, is_chief=True)
    reporter.log_train(step=10, scalars={"loss": 0.7, "learning_rate": 1e-3})
    reporter.log_eval(step=1000, scalars={"accuracy": 0.9})
    reporter.close()
    ```
    """

    def __init__(self, workdir, total_steps, is_chief):
        self.is_chief = is_chief
        self._writers = {}
        self._workdir = os.fspath(workdir)
        self._bar = (keras.utils.Progbar(total_steps, stateful_metrics=None)
                     if is_chief else None)

    def _writer(self, split):
        if split not in self._writers:
            self._writers[split] = (
                tf.summary.create_file_writer(os.path.join(self._workdir,
                                                           split))
                if self.is_chief else tf.summary.create_noop_writer())
        return self._writers[split]

    def _write(self, split, step, scalars):
        with self._writer(split).as_default(step=step):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
        self._writer(split).flush()

    def log_train(self, step, scalars):
        """Records training scalars at `step` and advances the bar."""
        self._write("train", step, scalars)
        if self._bar is not None:
            # Values are already interval means: show them as they are.
            self._bar.stateful_metrics.update(scalars)
            self._bar.update(step, list(scalars.items()))

    def log_eval(self, step, scalars):
        """Records evaluation results at `step` and prints them."""
        self._write("eval", step, scalars)
        if self.is_chief:
            text = " - ".join(f"{k}: {v:.4f}" for k, v in scalars.items())
            print(f"\neval at step {step}: {text}", flush=True)

    def close(self):
        """Flushes and closes the event files."""
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
