"""The cluster manifest (`experiments/cluster/tfjob.yaml`) runs what the
launcher accepts: its container command parses with `experiments.train`'s
own flags into a multi-worker training run of a recipe in the repository."""

import pathlib

import yaml

from experiments import train

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "experiments" / "cluster" / "tfjob.yaml"


def test_tfjob_command_is_a_multi_worker_training_run(monkeypatch):
    doc = yaml.safe_load(MANIFEST.read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("kubeflow.org/v1", "TFJob")
    worker = doc["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] >= 2
    (container,) = worker["template"]["spec"]["containers"]
    assert container["name"] == "tensorflow"  # the operator's convention
    command = container["command"]
    assert command[:3] == ["python", "-m", "experiments.train"]
    monkeypatch.chdir(ROOT)  # the recipe path is relative to the repository
    config, workdir, mode = train.parse_command_line(["train"] + command[3:])
    assert config.runtime.strategy == "multi_worker" and mode == "train"
    # every pod must reach the run directory and the records
    assert workdir.startswith(("gs://", "s3://"))
    assert config.task.data_dir.startswith(("gs://", "s3://"))
