"""Fixtures of the training tests: classifier dataset, two-replica strategy."""

import pytest
import tensorflow as tf

from tests.training import classifier_data
from tfaction import training


@pytest.fixture(scope="session")
def classifier_records(tmp_path_factory):
    """Train/eval TFRecord patterns of the test classifier dataset."""
    return classifier_data.write_dataset(
        tmp_path_factory.mktemp("classifier_data"))


@pytest.fixture
def two_cpu_strategy():
    """MirroredStrategy over the two logical CPUs of tests/conftest.py."""
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.fail("tests/conftest.py did not split the CPU into two "
                    "logical devices: check it with tf.config."
                    "get_logical_device_configuration (calling "
                    "list_logical_devices first initialises the runtime, "
                    "after which the split is refused)")
    return training.get_strategy("mirrored", devices=["CPU:0", "CPU:1"])
