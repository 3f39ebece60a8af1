"""Hot swap: a version appears in the export directory only once complete.

TF Serving (with `models.config`'s default `latest` policy) polls a
model's base path and loads each new integer directory as soon as it sees
it. `export_saved_model` writes into a hidden staging directory and
renames it when the version is written and read back, so a poller must
never see a half-written version. Here a reader thread plays the server
while versions 2, 3 and 4 are exported beside a served version 1: it polls
the directory in a tight loop, records the size of every file of every
integer directory it sees, and loads each new version with
`tf.saved_model.load` and runs `serving_default` on it, as the server
does. Every file it saw must have had its final size, every version must
have had every part (`version_problems`) and loaded and run, and the
reader must have seen the staging directories (so it polled while the
exports were writing). `version_problems` itself is shown to catch a
version lacking its variables and one with a truncated warm-up file.
"""

import os
import pathlib
import shutil
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from tfaction import errors
from tfaction import serving
from tfaction.serving import saved_model_export

CLASS_NAMES = ["jump", "run"]
# What TF Serving needs of a version: the graph, the variables, the
# class-list asset and the warm-up records.
REQUIRED = ("saved_model.pb", "variables/variables.index",
            "assets/classes.txt", "assets.extra/tf_serving_warmup_requests")


class DenseExportModule(serving.ExportModule):
    """`serving_default`: x [B, 3] -> probabilities [B, 2] and the best
    class's name."""

    def input_specs(self):
        return {"x": tf.TensorSpec([None, 3], tf.float32)}

    def serve(self, inputs):
        logits = self.model(inputs["x"], training=False)
        return {"probabilities": tf.nn.softmax(logits),
                "class_names": self.class_name_lookup(
                    tf.argmax(logits, axis=-1))}

    def warmup_inputs(self):
        return {"x": np.ones([1, 3], np.float32)}


def version_problems(path):
    """What a server would find missing in a version folder.

    Args:
        path: an integer version folder.

    Returns:
        List of problems (empty: complete): a required file that is
        missing or empty, no variables data shard, a warm-up file that is
        not a whole TFRecord file.
    """
    path = pathlib.Path(path)
    problems = [f"{name} missing or empty" for name in REQUIRED
                if not (path / name).is_file() or
                not (path / name).stat().st_size]
    if not list(path.glob("variables/variables.data-*")):
        problems.append("no variables data shard")
    warmup = path / REQUIRED[-1]
    if warmup.is_file():
        try:
            sum(1 for _ in tf.data.TFRecordDataset(str(warmup)))
        except tf.errors.DataLossError as e:
            problems.append(f"warm-up records truncated: {e.message}")
    return problems


class PollingReader(threading.Thread):
    """Polls `export_dir` like a model server until stopped.

    Records the size of every file of every integer directory at every
    poll (`sizes`: path -> set of sizes), the problems of each version
    the first time it is seen, whether a staging directory was seen, and
    the result of loading and running each new version (`served`).
    """

    def __init__(self, export_dir):
        super().__init__(daemon=True)
        self.export_dir = pathlib.Path(export_dir)
        self.stop = threading.Event()
        self.sizes, self.problems, self.served = {}, {}, {}
        self.staging_seen = 0
        self.polls = 0
        self.failure = None

    def run(self):
        try:
            while not self.stop.is_set():
                self._poll()
            # Once more after the last export: a poll that began before
            # it finished has not seen its version.
            self._poll()
        except BaseException as e:  # reported by the test
            self.failure = e

    def _poll(self):
        self.polls += 1
        for entry in os.scandir(self.export_dir):
            if entry.name.startswith(saved_model_export.STAGING_PREFIX):
                self.staging_seen += 1
            if not entry.name.isdigit():
                continue
            for root, _, files in os.walk(entry.path):
                for name in files:
                    file = os.path.join(root, name)
                    self.sizes.setdefault(file, set()).add(
                        os.stat(file).st_size)
            version = int(entry.name)
            if version not in self.problems:
                self.problems[version] = version_problems(entry.path)
                loaded = tf.saved_model.load(entry.path)
                out = loaded.signatures["serving_default"](
                    x=tf.ones([2, 3]))
                self.served[version] = out["class_names"].numpy().tolist()


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_poller_never_sees_a_half_written_version(model, tmp_path):
    export_dir = tmp_path / "clf"
    module = DenseExportModule(model, class_names=CLASS_NAMES)
    serving.export_saved_model(module, export_dir)
    reader = PollingReader(export_dir)
    reader.start()
    try:
        for _ in range(3):
            serving.export_saved_model(module, export_dir)
    finally:
        reader.stop.set()
        reader.join(timeout=60)
    assert reader.failure is None, reader.failure
    assert sorted(reader.problems) == [1, 2, 3, 4]
    assert reader.problems == {v: [] for v in (1, 2, 3, 4)}
    assert reader.staging_seen > 0, "the reader never polled mid-export"
    for version, names in reader.served.items():
        assert set(names) <= set(n.encode() for n in CLASS_NAMES), version
    # Every size the reader saw of every file is its final size.
    for file, sizes in reader.sizes.items():
        assert sizes == {os.stat(file).st_size}, (file, sizes)
    assert sorted(p.name for p in export_dir.iterdir()) == [
        "1", "2", "3", "4", "batching_parameters.txt", "models.config"]


def test_version_problems_catches_half_written_versions(model, tmp_path):
    module = DenseExportModule(model, class_names=CLASS_NAMES)
    path = pathlib.Path(serving.export_saved_model(module, tmp_path / "m"))
    assert version_problems(path) == []
    no_variables = tmp_path / "no_variables"
    shutil.copytree(path, no_variables)
    shutil.rmtree(no_variables / "variables")
    assert version_problems(no_variables) == [
        "variables/variables.index missing or empty",
        "no variables data shard"]
    truncated = tmp_path / "truncated"
    shutil.copytree(path, truncated)
    warmup = truncated / REQUIRED[-1]
    warmup.write_bytes(warmup.read_bytes()[:-3])
    (problem,) = version_problems(truncated)
    assert problem.startswith("warm-up records truncated"), problem


def test_models_config_states_the_version_policy(model, tmp_path):
    from tensorflow_serving.config import model_server_config_pb2

    module = DenseExportModule(model, class_names=CLASS_NAMES)
    latest, pinned = tmp_path / "latest", tmp_path / "pinned"
    serving.export_saved_model(module, latest)
    serving.export_saved_model(module, pinned, version=5,
                               served_versions=[5, 3])

    def policy(export_dir):
        config = text_format.Parse(
            (export_dir / "models.config").read_text(),
            model_server_config_pb2.ModelServerConfig())
        (entry,) = config.model_config_list.config
        return entry.model_version_policy

    assert policy(latest).WhichOneof("policy_choice") == "latest"
    assert policy(latest).latest.num_versions == 1
    assert list(policy(pinned).specific.versions) == [3, 5]


def test_bad_version_policy_is_explained(model, tmp_path):
    module = DenseExportModule(model, class_names=CLASS_NAMES)
    for versions in ([], [0, 2]):
        with pytest.raises(errors.ConfigError, match="served versions"):
            serving.export_saved_model(module, tmp_path / "m",
                                       served_versions=versions)
    assert not (tmp_path / "m").exists()
