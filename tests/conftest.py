"""Shared pytest setup: quiet TensorFlow, two logical CPUs, shared-data paths."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

# MirroredStrategy tests need two devices; split the CPU before TF initialises
# its runtime (this must happen before any op runs).
# (`list_logical_devices` would itself initialise the runtime, so only the
# configuration is queried.)
_cpus = tf.config.list_physical_devices("CPU")
if not tf.config.get_logical_device_configuration(_cpus[0]):
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


def anchors_path():
    """`$TFACTION_ANCHORS`, or ../shared/anchors beside the repository."""
    return pathlib.Path(os.environ.get("TFACTION_ANCHORS",
                                       SHARED / "anchors"))


@pytest.fixture(scope="session")
def anchors_dir():
    """Folder of reference bundles: `$TFACTION_ANCHORS` or ../shared/anchors."""
    path = anchors_path()
    if not path.is_dir():
        pytest.fail(f"anchors folder {path} not found; set TFACTION_ANCHORS")
    return path


# Reference bundles produced for this repository by running the authors' code
# (each folder's README says how); checked beside those in `anchors_dir`.
REPO_ANCHORS = REPO_ROOT / "tests" / "anchors"


def bundle_dirs(anchors_dir, prefix, required=("config.json",)):
    """Every `<prefix>*` bundle in `anchors_dir` and in tests/anchors.

    Args:
        anchors_dir: the `anchors_dir` fixture's folder.
        prefix: folder-name prefix of the family's bundles.
        required: files a bundle folder must hold to be a case.

    Returns:
        Sorted list of bundle folders; fails the test when there is none.
    """
    dirs = sorted(
        p for root in (anchors_dir, REPO_ANCHORS) if root.is_dir()
        for p in root.glob(f"{prefix}*")
        if p.is_dir() and all((p / f).is_file() for f in required))
    if not dirs:
        pytest.fail(f"no {prefix}* bundle with {list(required)} under "
                    f"{anchors_dir} or {REPO_ANCHORS}")
    return dirs


@pytest.fixture(scope="session")
def actionformer_bundles(anchors_dir):
    """Every complete ActionFormer parity bundle (`actionformer_*`)."""
    return bundle_dirs(anchors_dir, "actionformer_",
                       ("config.json", "weights.npz", "io.npz",
                        "inference.npz", "grads.npz", "annotations.json"))


@pytest.fixture(scope="session")
def real_data_dir():
    """Real public annotation files (THUMOS14, ActivityNet 1.3)."""
    path = pathlib.Path(os.environ.get("TFACTION_REAL_DATA",
                                       SHARED / "data" / "real"))
    if not path.is_dir():
        pytest.fail(f"real data folder {path} not found; set "
                    "TFACTION_REAL_DATA")
    return path


@pytest.fixture
def two_cpu_strategy():
    """MirroredStrategy over the two logical CPUs of tests/conftest.py."""
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.fail("tests/conftest.py did not split the CPU into two "
                    "logical devices: check it with tf.config."
                    "get_logical_device_configuration (calling "
                    "list_logical_devices first initialises the runtime, "
                    "after which the split is refused)")
    from tfaction import training

    return training.get_strategy("mirrored", devices=["CPU:0", "CPU:1"])
