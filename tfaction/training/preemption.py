"""SIGTERM handling: checkpoint at the next step boundary, then stop.

Schedulers (Kubernetes, Slurm, preemptible VMs) send SIGTERM some seconds
before killing a job. The handler only sets a flag; the training loop reads
it after each step, all workers agree through an all-reduce in the step (so
under MultiWorkerMirroredStrategy everybody saves the same step), the state
is checkpointed and training returns normally.
"""

import signal
import threading

from absl import logging


class SigtermWatcher:
    """Context manager that records SIGTERM instead of dying on it.

    Outside the main thread Python cannot install signal handlers; the
    watcher then stays inactive and says so in the log.

    Example:

    ```python
    with SigtermWatcher() as watcher:
        for step in range(n):
            train_step()
            if watcher.received:
                save_checkpoint()
                break
    ```
    """

    def __init__(self):
        self.received = False
        self._previous = None
        self._installed = False

    def _handle(self, signum, frame):
        del frame
        self.received = True
        logging.warning("received signal %d: checkpointing at the next step "
                        "boundary, then stopping", signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        else:
            logging.warning("not in the main thread: SIGTERM will not "
                            "trigger a checkpoint")
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False
        return False
