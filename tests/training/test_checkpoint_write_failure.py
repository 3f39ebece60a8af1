"""A checkpoint write that fails part-way (a real I/O error from
TensorFlow's writer: the process's file-size limit, standing in for a full
disk) raises `CheckpointWriteError`, leaves the checkpoint folder as it was
(no staging folder, no partial files), keeps the previous checkpoint the
latest and restorable, and the next save works again.

It runs in a subprocess: the file-size limit applies to the whole process.
"""

import json
import subprocess
import sys

SCRIPT = r"""
import json, os, resource, signal, sys
import numpy as np
import tensorflow as tf
from tfaction import errors
from tfaction.training.checkpointing import Checkpointer

directory = sys.argv[1]
v = tf.Variable(tf.range(20000, dtype=tf.float32))
ckpt = Checkpointer(directory, tf.distribute.get_strategy(), max_to_keep=3,
                    v=v)
first = ckpt.save(1)
before = sorted(os.listdir(directory))
v.assign_add(tf.ones_like(v))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)


def failing_save(checkpointer, step):
    # The save's error message, under a 4 kB file limit (data: 80 kB).
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        checkpointer.save(step)
        return None
    except errors.CheckpointWriteError as e:
        return str(e)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


error = failing_save(ckpt, 2)
after = sorted(os.listdir(directory))
latest = ckpt.latest()
v.assign(tf.zeros_like(v))
restored = ckpt.restore_latest()
equal = bool(np.array_equal(v.numpy(), np.arange(20000, dtype=np.float32)))
third = ckpt.save(3)
# A first save that fails: nothing to resume from, and it says so.
fresh = Checkpointer(directory + "_fresh", tf.distribute.get_strategy(),
                     max_to_keep=3, v=v)
fresh_error = failing_save(fresh, 1)
fresh_left = sorted(os.listdir(directory + "_fresh"))
print("RESULT " + json.dumps(dict(
    first=first, before=before, error=error, after=after, latest=latest,
    restored=restored, equal=equal, third=third, fresh_error=fresh_error,
    fresh_left=fresh_left)))
"""


def test_failed_write_keeps_previous_checkpoint_and_leaves_nothing(tmp_path):
    directory = tmp_path / "checkpoints"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(directory)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line[-1][len("RESULT "):])
    first = result["first"]
    assert result["error"] is not None, "the failing save did not raise"
    assert "checkpoint 2" in result["error"]
    assert first in result["error"]  # names the checkpoint to resume from
    assert result["after"] == result["before"]  # no ckpt-2_temp, no ckpt-2.*
    assert result["latest"] == result["restored"] == first
    assert result["equal"]
    assert result["third"].endswith("ckpt-3")
    assert "no complete checkpoint yet" in result["fresh_error"]
    assert not any(name.startswith("ckpt-1") for name in result["fresh_left"])
