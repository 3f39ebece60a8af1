"""The strategy factory: names, devices, TF_CONFIG and TPU errors."""

import json

import pytest
import tensorflow as tf

from tfaction import errors
from tfaction import training


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
