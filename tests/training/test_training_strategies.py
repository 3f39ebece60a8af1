"""The strategy factory: names, devices, TF_CONFIG and TPU errors."""

import json

import pytest
import tensorflow as tf

from tfaction import errors
from tfaction import training
from tfaction.training import strategies


def test_one_device_strategy_uses_one_replica():
    strategy = training.get_strategy("one_device")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1
    assert training.worker_info(strategy) == (None, 0, True)


def test_mirrored_over_given_devices():
    strategy = training.get_strategy("mirrored", devices=["CPU:0"])
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 1


def test_mirrored_defaults_to_every_logical_cpu_without_gpus():
    strategy = training.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == len(
        tf.config.list_logical_devices("GPU") or
        tf.config.list_logical_devices("CPU"))


@pytest.mark.parametrize("name", ["bogus", "", "Mirrored"])
def test_unknown_strategy_is_a_config_error_naming_it(name):
    with pytest.raises(errors.ConfigError, match=f"unknown strategy {name!r}"):
        training.get_strategy(name)


def test_missing_device_is_a_config_error():
    # MirroredStrategy over a device that does not exist would hang later.
    with pytest.raises(errors.ConfigError, match="'GPU:7' does not exist"):
        training.get_strategy("mirrored", devices=["CPU:0", "GPU:7"])
    with pytest.raises(errors.ConfigError, match="at most one device"):
        training.get_strategy("one_device", devices=["CPU:0", "CPU:1"])


@pytest.mark.parametrize("tf_config, message", [
    (None, "TF_CONFIG environment variable, which is not set"),
    ("{not json", "TF_CONFIG is not valid JSON"),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), "needs 'cluster' and"),
    (json.dumps({"cluster": {"worker": ["a:1"]},
                 "task": {"type": "worker", "index": 3}}),
     "is not in its cluster"),
])
def test_multi_worker_checks_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(errors.ConfigError, match=message):
        training.get_strategy("multi_worker")


def test_tpu_without_a_tpu_is_a_clear_config_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(errors.ConfigError, match="strategy 'tpu' found no TPU"):
        training.get_strategy("tpu")


def test_each_mirrored_strategy_gets_its_own_collective_keys(
        two_cpu_strategy):
    # Without distinct keys the second strategy's first all-reduce reuses
    # the first one's cached instance and fails with a shape mismatch.
    for shape in ([3], [1], [2, 2]):
        strategy = training.get_strategy("mirrored",
                                         devices=["CPU:0", "CPU:1"])
        total = tf.function(lambda: strategy.run(
            lambda: tf.distribute.get_replica_context().all_reduce(
                "SUM", tf.ones(shape))))()
        for value in strategy.experimental_local_results(total):
            assert value.numpy().tolist() == tf.fill(shape, 2.0).numpy(
            ).tolist()


# What a survivor's collective raised in a test where worker 1 was killed.
LOST_PEER_MESSAGE = (
    "{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_device_"
    "/job:worker/replica:0/task:0/device:CPU:0}} Collective ops is aborted "
    "by: Error reported from /job:worker/task:1: Task /job:worker/replica:0"
    "/task:1 heartbeat timeout.\nThe error could be from a previous "
    "operation. Restart your program to reset. [Op:CollectiveReduceV2]")


def test_lost_peers_names_the_other_tasks_with_their_addresses():
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec({"worker": ["10.0.0.1:2222", "10.0.0.2:2222",
                                         "10.0.0.3:2222"]}),
        task_type="worker", task_id=0)
    error = tf.errors.UnavailableError(None, None, LOST_PEER_MESSAGE)
    # This task (0, named by the op's device) is not a lost peer.
    assert strategies.lost_peers(resolver, error) == [
        "worker 1 (10.0.0.2:2222)"]
    assert strategies.peer_failure_cause(error) == (
        "Collective ops is aborted by: Error reported from /job:worker/"
        "task:1: Task /job:worker/replica:0/task:1 heartbeat timeout.")
    unrelated = tf.errors.UnavailableError(None, None, "socket closed")
    assert strategies.lost_peers(resolver, unrelated) == []


def test_input_pipeline_per_replica_gives_each_replica_its_pipeline():
    strategy = training.get_strategy("mirrored", devices=["CPU:0", "CPU:1"])
    options = strategies.input_options(strategy, per_replica=True)
    context = strategies.local_input_context(strategy, options)
    # As worker 0 of two single-replica MultiWorkerMirroredStrategy workers.
    assert (context.num_input_pipelines, context.input_pipeline_id,
            context.num_replicas_in_sync) == (2, 0, 2)
    assert strategies.input_options(strategy) is None
    with pytest.raises(errors.ConfigError, match="needs strategy 'mirrored'"):
        strategies.input_options(training.get_strategy("one_device"),
                                 per_replica=True)
