"""Process-wide runtime settings of a run: seed, determinism, dtype policy.

These are global to the Python process, so they are set once, before the
strategy, the model and the datasets are built.
"""

import keras
import tensorflow as tf

from tfaction import errors

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def configure_runtime(runtime_config, seed):
    """Seeds every RNG, sets determinism and the Keras dtype policy.

    Args:
        runtime_config: the `runtime` config section (`mixed_precision`,
            `deterministic`).
        seed: the experiment seed (`trainer.seed`); seeds Python, NumPy,
            TensorFlow and Keras so model initialisation is reproducible.

    Raises:
        ConfigError: unknown `runtime.mixed_precision` policy.

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
    keras.utils.set_random_seed(int(seed))
    if runtime_config.deterministic:
        # Also makes tf.data keep element order with parallel map/interleave.
        tf.config.experimental.enable_op_determinism()
    keras.config.set_dtype_policy(policy)
