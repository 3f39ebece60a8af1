"""Process-wide runtime settings of a run: seed, determinism, dtype policy.

These are global to the Python process, so they are set once, before the
strategy, the model and the datasets are built.

`runtime.deterministic` needs more than TensorFlow's op determinism on a
CPU: the oneDNN kernels TensorFlow uses there by default are outside it
(two identical ActionVLAD runs ended with a convolution bias that differed
in the last bits; with oneDNN off they were equal). oneDNN can only be
switched off before TensorFlow loads (`TF_ENABLE_ONEDNN_OPTS=0`), so the
launcher restarts itself with it off (`deterministic_relaunch_env`), and
`configure_runtime` warns when it is still on.
"""

import os

from absl import logging
import keras
import tensorflow as tf
# The only switch state TensorFlow reports: is oneDNN on in this process.
from tensorflow.python.util import _pywrap_util_port

from tfaction import errors

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"


def onednn_enabled():
    """Whether TensorFlow runs oneDNN's CPU kernels in this process.

    Returns:
        True when oneDNN is on (fixed when TensorFlow loaded, from
        `TF_ENABLE_ONEDNN_OPTS` and the platform's default).

    Example:

    >>> onednn_enabled()  # x86-64 Linux, TF_ENABLE_ONEDNN_OPTS unset
    True
    """
    return bool(_pywrap_util_port.IsMklEnabled())


def deterministic_relaunch_env(runtime_config, environ=None):
    """The environment to restart the process with for a deterministic run.

    Args:
        runtime_config: the `runtime` config section (`deterministic`).
        environ: the current environment (default `os.environ`).

    Returns:
        A copy of `environ` with `TF_ENABLE_ONEDNN_OPTS=0` when the run
        asks for `runtime.deterministic` and oneDNN is on in this process
        (and the environment does not already switch it off: no restart
        loop); None when the process can go on as it is.

    Example:

    ```python
    env = deterministic_relaunch_env(config.runtime)
    if env is not None:
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    ```
    """
    environ = os.environ if environ is None else environ
    if (not runtime_config.deterministic or not onednn_enabled() or
            environ.get(ONEDNN_ENV) == "0"):
        return None
    return {**environ, ONEDNN_ENV: "0"}


def configure_runtime(runtime_config, seed):
    """Seeds every RNG, sets determinism and the Keras dtype policy.

    Args:
        runtime_config: the `runtime` config section (`mixed_precision`,
            `deterministic`, `logical_cpus`).
        seed: the experiment seed (`trainer.seed`); seeds Python, NumPy,
            TensorFlow and Keras so model initialisation is reproducible.

    Raises:
        ConfigError: unknown `runtime.mixed_precision` policy, or
            `logical_cpus` requested after TensorFlow initialised.

    Example:

    ```python
    configure_runtime(config.runtime, seed=config.trainer.seed)
    strategy = get_strategy(config.runtime.strategy)
    ```
    """
    policy = runtime_config.mixed_precision
    if policy not in POLICIES:
        raise errors.ConfigError(
            f"unknown runtime.mixed_precision {policy!r}; expected one of "
            f"{', '.join(POLICIES)}")
    split_cpu(int(runtime_config.get("logical_cpus", 0) or 0))
    keras.utils.set_random_seed(int(seed))
    if runtime_config.deterministic:
        # Also makes tf.data keep element order with parallel map/interleave.
        tf.config.experimental.enable_op_determinism()
        if onednn_enabled():
            logging.warning(
                "runtime.deterministic: oneDNN CPU kernels are on and not "
                "covered by op determinism; results may differ in the last "
                "bits between runs. Set %s=0 before TensorFlow is imported "
                "(python -m experiments.train does).", ONEDNN_ENV)
    keras.config.set_dtype_policy(policy)


def split_cpu(count):
    """Splits the CPU into `count` logical devices when there is no GPU.

    Lets MirroredStrategy run replicas on a CPU-only machine (`make demo`,
    tests). Must run before TensorFlow initialises its runtime.

    Args:
        count: logical CPU devices wanted (<= 1: leave the CPU alone).

    Raises:
        ConfigError: the runtime is already initialised with another split.
    """
    if count <= 1 or tf.config.list_physical_devices("GPU"):
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu) or []
    if len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as e:
        raise errors.ConfigError(
            f"runtime.logical_cpus={count} must be set before TensorFlow "
            f"initialises (it has {max(len(current), 1)} CPU device(s))"
        ) from e
