"""Distribution-strategy factory and the worker facts the trainer needs.

- `one_device`: `OneDeviceStrategy` on the first GPU, else the CPU.
- `mirrored`: `MirroredStrategy` over the given devices, else every visible
  GPU, else every logical CPU device.
- `multi_worker`: `MultiWorkerMirroredStrategy`; the cluster comes from the
  `TF_CONFIG` environment variable.
- `tpu`: `TPUStrategy` through `TPUClusterResolver` (TPU name or address,
  else `TPU_NAME`).

Model Garden's `official/common/distribute_utils.py` plays the same role.
"""

import itertools
import json
import os
import re

import tensorflow as tf

from tfaction import errors

STRATEGIES = ("one_device", "mirrored", "multi_worker", "tpu")

# What TensorFlow raises in a worker whose peer is gone: the coordination
# service's missed heartbeats abort every collective (Unavailable, Aborted,
# Cancelled), a collective timeout gives DeadlineExceeded.
PEER_FAILURES = (tf.errors.UnavailableError, tf.errors.AbortedError,
                 tf.errors.CancelledError, tf.errors.DeadlineExceededError)
_TASK_NAME = re.compile(r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)")
_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")

_COLLECTIVE_KEY_STRIDE = 100_000
_mirrored_count = itertools.count(1)


def get_strategy(name, *, devices=None, tpu=""):
    """Builds a `tf.distribute.Strategy` by name.

    Args:
        name: one of `STRATEGIES`.
        devices: optional device names for `mirrored` (e.g.
            `["GPU:0", "GPU:1"]` or `["CPU:0", "CPU:1"]`) or a single device
            for `one_device`. Ignored by `multi_worker` and `tpu`.
        tpu: TPU name or `grpc://` address for `tpu` ("" = `TPU_NAME` /
            the TPU VM's local TPU).

    Returns:
        The strategy.

    Raises:
        ConfigError: unknown name, bad `devices`, missing or malformed
            `TF_CONFIG` for `multi_worker`, or no TPU reachable for `tpu`.

    Example:

    ```python
    strategy = get_strategy("mirrored", devices=["CPU:0", "CPU:1"])
    with strategy.scope():
        model = task.build_model()
    ```
    """
    devices = list(devices or ())
    if name == "one_device":
        if len(devices) > 1:
            raise errors.ConfigError(
                f"strategy 'one_device' takes at most one device, got "
                f"{devices}")
        _check_devices_exist(devices)
        return tf.distribute.OneDeviceStrategy(
            devices[0] if devices else _default_device())
    if name == "mirrored":
        return _mirrored(devices)
    if name == "multi_worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _tpu(tpu)
    raise errors.ConfigError(
        f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")


def _default_device():
    return "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"


def _check_devices_exist(devices):
    """Fails fast: MirroredStrategy over a missing device hangs at run."""
    known = {(d.device_type, tf.DeviceSpec.from_string(d.name).device_index)
             for d in tf.config.list_logical_devices()}
    for device in devices:
        try:
            spec = tf.DeviceSpec.from_string(device)
        except ValueError as e:
            raise errors.ConfigError(f"bad device name {device!r}: {e}") from e
        if (spec.device_type and spec.device_type.upper(),
                spec.device_index or 0) not in known:
            names = ", ".join(d.name for d in tf.config.list_logical_devices())
            raise errors.ConfigError(
                f"device {device!r} does not exist; logical devices: {names}")


def _mirrored(devices):
    _check_devices_exist(devices)
    if not devices:
        gpus = tf.config.list_logical_devices("GPU")
        # Without GPUs, mirror over the logical CPU devices (tests split the
        # CPU with `tf.config.set_logical_device_configuration`).
        devices = [d.name for d in (gpus or
                                    tf.config.list_logical_devices("CPU"))]
    # Every MirroredStrategy numbers its collectives from the same keys, so a
    # second strategy in one process (a notebook cell run twice, train then
    # evaluate) can hit the first one's cached collective instances ("Shape
    # mismatch in the collective instance 100"). TF's own tests give each
    # strategy its own key range through this class attribute; so do we.
    cls = tf.distribute.MirroredStrategy
    previous = cls._collective_key_base
    cls._collective_key_base = next(_mirrored_count) * _COLLECTIVE_KEY_STRIDE
    try:
        return cls(devices)
    except (ValueError, RuntimeError) as e:
        raise errors.ConfigError(
            f"cannot build MirroredStrategy over {devices}: {e}") from e
    finally:
        cls._collective_key_base = previous


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    example = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", '
               '"host2:2222"]}, "task": {"type": "worker", "index": 0}}\'')
    if not raw:
        raise errors.ConfigError(
            "strategy 'multi_worker' reads the cluster from the TF_CONFIG "
            f"environment variable, which is not set; {example}")
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise errors.ConfigError(f"TF_CONFIG is not valid JSON ({e}); "
                                 f"{example}") from e
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise errors.ConfigError(
            f"TF_CONFIG needs 'cluster' and 'task' entries; {example}")
    job = cluster.get(task.get("type"))
    index = task.get("index")
    if not isinstance(job, list) or not isinstance(index, int) or not (
            0 <= index < len(job)):
        raise errors.ConfigError(
            f"TF_CONFIG task {task} is not in its cluster {cluster}")


def _tpu(tpu):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise errors.ConfigError(
            f"strategy 'tpu' found no TPU (tpu={tpu!r}): set "
            "config.runtime.tpu to the TPU name or grpc:// address, or set "
            f"TPU_NAME, or run on a TPU VM. Cause: {e}") from e
    return tf.distribute.TPUStrategy(resolver)


def worker_info(strategy):
    """Returns `(task_type, task_id, is_chief)` of this process.

    Single-process strategies are their own chief. Under
    `MultiWorkerMirroredStrategy` the chief is the "chief" task, or worker 0
    when the cluster has no "chief" job (TF's convention).

    Args:
        strategy: a `tf.distribute.Strategy`.

    Returns:
        Tuple `(task_type or None, task_id, is_chief)`.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None, 0, True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    if task_type is None:  # single local worker
        return None, 0, True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    is_chief = (task_type == "chief" or
                (task_type == "worker" and task_id == 0 and not has_chief))
    return task_type, task_id, is_chief


def input_options(strategy, per_replica=False):
    """`tf.distribute.InputOptions` of the training input.

    Args:
        strategy: the run's `tf.distribute.Strategy`.
        per_replica: one input pipeline per replica
            (`runtime.input_pipeline_per_replica`): a MirroredStrategy over N
            devices then reads its data exactly as N single-replica
            MultiWorkerMirroredStrategy workers do (pipeline i of N), so one
            process reproduces a multi-worker run's batches.

    Returns:
        The options, or None for the strategy's default (one pipeline per
        worker).

    Raises:
        ConfigError: `per_replica` with a strategy other than
            MirroredStrategy (the only one TensorFlow supports it for).

    Example:

    ```python
    options = input_options(strategy, per_replica=True)
    dataset = strategy.distribute_datasets_from_function(fn, options)
    ```
    """
    if not per_replica:
        return None
    if not isinstance(strategy, tf.distribute.MirroredStrategy):
        raise errors.ConfigError(
            "runtime.input_pipeline_per_replica needs strategy 'mirrored', "
            f"got {type(strategy).__name__}")
    return tf.distribute.InputOptions(
        experimental_replication_mode=(
            tf.distribute.InputReplicationMode.PER_REPLICA))


def local_input_context(strategy, options=None):
    """The `tf.distribute.InputContext` this process's input pipeline gets.

    Asks the strategy itself (through `distribute_datasets_from_function`)
    instead of reading its private fields, so it is right for every strategy.

    Args:
        strategy: a `tf.distribute.Strategy`.
        options: the `tf.distribute.InputOptions` of the input (None: the
            default), see `input_options`.

    Returns:
        The first `tf.distribute.InputContext` the strategy hands to a dataset
        function in this process.
    """
    contexts = []

    def capture(context):
        contexts.append(context)
        return tf.data.Dataset.range(1)

    strategy.distribute_datasets_from_function(capture, options)
    return contexts[0]


def lost_peers(cluster_resolver, error):
    """The peers a multi-worker error names, other than this process.

    Args:
        cluster_resolver: the run's cluster (a MultiWorkerMirroredStrategy's
            `cluster_resolver`: its TF_CONFIG).
        error: the `tf.errors.OpError` a collective raised.

    Returns:
        List of `"worker 1 (127.0.0.1:2223)"`-style names (job, index and
        the address from TF_CONFIG), in order of first mention; empty when
        the message names no other task.

    Example:

    ```python
    except strategies.PEER_FAILURES as e:
        lost = lost_peers(strategy.cluster_resolver, e) or ["a peer"]
    ```
    """
    own = (cluster_resolver.task_type, cluster_resolver.task_id or 0)
    cluster = cluster_resolver.cluster_spec()
    names = []
    for job, index in _TASK_NAME.findall(getattr(error, "message",
                                                 str(error))):
        if (job, int(index)) == own:
            continue
        try:
            address = cluster.task_address(job, int(index))
        except ValueError:
            address = "not in TF_CONFIG"
        name = f"{job} {index} ({address})"
        if name not in names:
            names.append(name)
    return names


def peer_failure_cause(error):
    """The first line of a collective's error, without the op-name prefix.

    Example:
        "Collective ops is aborted by: ... heartbeat timeout. ..."
    """
    text = _FUNCTION_NODE.sub("", getattr(error, "message", str(error)))
    lines = text.strip().splitlines()
    return lines[0] if lines else type(error).__name__
