"""Every command on `s3://` paths, against a real S3 server on 127.0.0.1.

A moto S3 server (`moto.server.ThreadedMotoServer`) runs in this process;
tensorflow-io's S3 file system reaches it through `S3_ENDPOINT` (with the
scheme; tensorflow-io always uses path-style addressing), `S3_USE_HTTPS=0`,
`S3_VERIFY_SSL=0` and the `AWS_*` credentials. A tiny synthetic ActionVLAD
dataset (2 classes, 4 videos of 8 frames) is generated locally and uploaded
with boto3, then the same pipeline runs twice through the commands' command
lines, once on local paths and once with every path `s3://`:

convert -> k-means centres -> train 2 steps + evaluate -> video accuracy
-> late fusion -> SavedModel export -> one request through the export.

The commands run in one child process (`cli_driver.py`: TensorFlow imported
once, each command forked as `python -m` would run it). The outputs are read
back from the bucket with boto3 and must equal the local run's: bit for bit
(converted records, centres, configs, request body), except the paths
recorded inside them and the names of the TensorBoard event files; trained
weights and the numbers computed from them within `WEIGHTS_TOL` /
`SCORES_TOL` (see there why). No temporary file may be left. One real
`python -m experiments.evaluate` on `s3://` paths checks the exit status:
tensorflow-io 0.37.1 aborts a process that used S3 at teardown (134) unless
the command ends through `tfaction.data.filesystems.exit_process`.
"""

import io
import json
import logging
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DRIVER = pathlib.Path(__file__).with_name("cli_driver.py")
BUCKET = "tfaction-remote-storage"
CONFIG = "experiments/configs/actionvlad_synthetic_rgb.py"
# Training on CPU is not bit-reproducible even with op determinism (conv
# bias gradients differ in the last bits between runs, ~1e-10): weights and
# computed numbers are compared with these tolerances (scores: printed
# rounded to 4 decimals); everything else must be bit-equal.
WEIGHTS_TOL = {"rtol": 1e-5, "atol": 1e-8}
SCORES_TOL = {"rtol": 1e-4, "atol": 1e-3}
# A command line that is broken by someone's half-finished edit of a
# launcher is retried after this many seconds (at most once).
RETRY_AFTER_S = 20

# `slow`: two minutes of subprocess commands; `make test-slow` runs it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def _pipeline(root, raw):
    """(name, module, args) of the pipeline writing below `root`."""
    lists = f"{raw}/train_test_lists"
    records, train = f"{root}/records", f"{root}/train"
    return [
        ("convert", "tfaction.data.convert", [
            "--format=hmdb51_frames",
            f"--input={lists}/train_split1.txt,{lists}/test_split1.txt",
            f"--frames_root={raw}/frames", "--modalities=rgb",
            f"--class_list={raw}/actions.txt", f"--output_dir={records}",
            "--noprogress"]),
        ("centers", "experiments.actionvlad_init_centers", [
            f"--config={CONFIG}", f"--workdir={root}/init",
            f"--config.task.data_dir={records}",
            "--config.task.centers.num_frames=8",
            "--config.runtime.strategy=one_device",
            "--config.runtime.deterministic=true", "--noprogress"]),
        ("train", "experiments.train", [
            f"--config={CONFIG}", f"--workdir={train}",
            "--mode=train_and_eval", f"--config.task.data_dir={records}",
            f"--config.task.centers_file={root}/init/centers.npz",
            "--config.trainer.train_steps=2",
            "--config.trainer.global_batch_size=2",
            "--config.trainer.eval_batch_size=2",
            "--config.runtime.strategy=one_device",
            "--config.runtime.deterministic=true"]),
        ("evaluate", "experiments.evaluate", [
            "--metric=video_accuracy", "--top_k=1",
            f"--ground_truth={lists}/test_split1.txt",
            f"--predictions={train}/predictions.npz",
            f"--output_json={root}/eval.json"]),
        ("fuse", "experiments.actionvlad_fuse", [
            f"--rgb={train}/predictions.npz",
            f"--external={train}/predictions.npz",
            f"--output={root}/fused.npz",
            f"--split_list={lists}/test_split1.txt"]),
        ("export", "export.export_saved_model", [
            f"--workdir={train}", f"--export_dir={root}/models/actionvlad"]),
        ("request", "export.actionvlad_request", [
            f"--saved_model={root}/models/actionvlad/1",
            f"--frames_root={raw}/frames",
            f"--split_list={lists}/test_split1.txt",
            f"--rest_body={root}/request.json"]),
    ]


def _local_tree(root):
    root = pathlib.Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _s3_tree(client, prefix):
    tree = {}
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix + "/")
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"]
            tree[key[len(prefix) + 1:]] = client.get_object(
                Bucket=BUCKET, Key=key)["Body"].read()
    return tree


def _without_event_names(tree):
    """TensorBoard event file names hold a time and a pid: keep the folder."""
    return {re.sub(r"events\.out\.tfevents\..*", "events", k): v
            for k, v in tree.items()}


def _run_driver(steps, env, tmp_path):
    plan = [{"name": name, "module": module, "args": args}
            for name, module, args in steps]
    plan_path, results_path = tmp_path / "plan.json", tmp_path / "res.json"
    plan_path.write_text(json.dumps(plan))
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(plan_path), str(results_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(results_path.read_text())


def _run_pipelines(steps, env, tmp_path):
    """Runs `steps`; a failed plan is retried once from the failed step."""
    results = _run_driver(steps, env, tmp_path)
    if results[-1]["code"] != 0:
        time.sleep(RETRY_AFTER_S)
        done = len(results) - 1
        results = results[:done] + _run_driver(steps[done:], env, tmp_path)
    return {r["name"]: r for r in results}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server with one bucket: `(boto3 client, child env)`."""
    moto_server = pytest.importorskip(
        "moto.server", reason="needs moto[server]: pip install -e .[test]")
    boto3 = pytest.importorskip("boto3")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0,
                                            verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        credentials = {"AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_REGION": "us-east-1"}
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)
        env = dict(os.environ, **credentials, PYTHONPATH=str(REPO),
                   TF_CPP_MIN_LOG_LEVEL="3", S3_ENDPOINT=endpoint,
                   S3_USE_HTTPS="0", S3_VERIFY_SSL="0",
                   AWS_EC2_METADATA_DISABLED="true")
        yield client, env
    finally:
        server.stop()


@pytest.fixture(scope="module")
def runs(s3, tmp_path_factory):
    from tfaction.data.synthetic import video_classification as vc

    client, env = s3
    tmp = tmp_path_factory.mktemp("remote_storage")
    local = tmp / "local"
    vc.generate_video_classification(
        str(local / "raw"), num_videos=4, seed=0, classes=vc.CLASSES[:2],
        min_frames=8, max_frames=8)
    raw = _local_tree(local / "raw")
    for rel, data in raw.items():
        client.put_object(Bucket=BUCKET, Key=f"run/raw/{rel}", Body=data)
    remote = f"s3://{BUCKET}/run"
    local_steps = _pipeline(str(local), str(local / "raw"))
    remote_steps = _pipeline(remote, f"{remote}/raw")
    results = _run_pipelines(
        [(f"local_{n}", m, a) for n, m, a in local_steps]
        + [(f"s3_{n}", m, a) for n, m, a in remote_steps], env, tmp)
    return {"client": client, "env": env, "local": local, "remote": remote,
            "results": results, "steps": dict(
                (n, a) for n, _, a in remote_steps)}


@pytest.fixture(scope="module")
def trees(runs):
    """(local tree, S3 tree) below the two roots, raw data left out."""
    local = {k: v for k, v in _local_tree(runs["local"]).items()
             if not k.startswith("raw/")}
    remote = {k: v for k, v in _s3_tree(runs["client"], "run").items()
              if not k.startswith("raw/")}
    return local, remote


def _with_remote_paths(runs, data):
    """Local-run bytes with the local root written as the S3 root."""
    return data.replace(str(runs["local"]).encode(),
                        runs["remote"].encode())


def test_every_command_succeeds(runs):
    for name in runs["steps"]:
        for prefix in ("local_", "s3_"):
            result = runs["results"].get(prefix + name)
            assert result is not None, f"{prefix}{name} did not run"
            assert result["code"] == 0, (prefix + name,
                                         result["stderr"][-3000:])


def test_same_files_and_no_temporaries(runs, trees):
    local, remote = trees
    assert sorted(_without_event_names(remote)) == sorted(
        _without_event_names(local))
    assert not [k for k in remote if ".tmp" in k]
    assert {"train/eval/events", "train/train/events"} <= set(
        _without_event_names(remote))


def test_converted_records_are_bit_equal(runs, trees):
    local, remote = trees
    for name in local:
        if name.startswith("records/"):
            expected = _with_remote_paths(runs, local[name])
            assert remote[name] == expected, name


def test_centers_are_bit_equal(runs, trees):
    local, remote = trees
    with np.load(io.BytesIO(local["init/centers.npz"])) as a, \
            np.load(io.BytesIO(remote["init/centers.npz"])) as b:
        np.testing.assert_array_equal(a["centers"], b["centers"])
        assert json.loads(str(b["info"])) == json.loads(
            _with_remote_paths(runs, str(a["info"]).encode()))


def test_scores_are_equal(runs, trees):
    local, remote = trees
    for name in ("train/predictions.npz", "fused.npz"):
        with np.load(io.BytesIO(local[name])) as a, \
                np.load(io.BytesIO(remote[name])) as b:
            assert sorted(a.files) == sorted(b.files), name
            for key in a.files:
                if key == "scores":
                    np.testing.assert_allclose(b[key], a[key], **SCORES_TOL,
                                               err_msg=name)
                else:
                    np.testing.assert_array_equal(b[key], a[key],
                                                  err_msg=f"{name}:{key}")


def _checkpoint_values(files, prefix, folder):
    """{name: array} of the checkpoint `prefix` among `files` (rel: bytes)."""
    import tensorflow as tf

    for rel, data in files.items():
        if rel.startswith(prefix):
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    reader = tf.train.load_checkpoint(str(folder / prefix))
    return {name: reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize("prefix", ["train/checkpoints/ckpt-2",
                                    "models/actionvlad/1/variables/variables"])
def test_checkpoint_and_export_weights_are_equal(trees, prefix, tmp_path):
    local, remote = trees
    a = _checkpoint_values(local, prefix, tmp_path / "local")
    b = _checkpoint_values(remote, prefix, tmp_path / "s3")
    assert sorted(a) == sorted(b)
    for name, value in a.items():
        if getattr(value, "dtype", np.dtype(object)).kind == "f":
            np.testing.assert_allclose(b[name], value, **WEIGHTS_TOL,
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(b[name], value, err_msg=name)


def _assert_json_close(actual, expected, where):
    if isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=SCORES_TOL["rtol"],
                                       abs=SCORES_TOL["atol"]), where
    elif isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), where
        for key in expected:
            _assert_json_close(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for i, (x, y) in enumerate(zip(actual, expected)):
            _assert_json_close(x, y, f"{where}[{i}]")
    else:
        assert actual == expected, where


def test_json_outputs_are_equal(runs, trees):
    local, remote = trees
    for name in ("train/config.json", "request.json"):  # no computed number
        assert json.loads(remote[name]) == json.loads(
            _with_remote_paths(runs, local[name])), name
    for name in ("train/eval_metrics.json", "eval.json"):
        _assert_json_close(json.loads(remote[name]),
                           json.loads(local[name]), name)


def test_printed_results_are_equal(runs):
    results = runs["results"]
    for name in ("evaluate", "fuse", "request"):
        local, remote = (results[f"{p}_{name}"]["stdout"]
                         for p in ("local", "s3"))
        if name == "evaluate":  # accuracies: ratios of counts
            assert remote == local
        else:  # JSON lines (request: scores rounded to 4 decimals)
            _assert_json_close(json.loads(remote), json.loads(local), name)
    assert results["s3_export"]["stdout"].strip() == (
        f"{runs['remote']}/models/actionvlad/1")


def test_serving_config_names_the_remote_model(runs, trees):
    assert f"{runs['remote']}/models/actionvlad".encode() in trees[1][
        "models/actionvlad/models.config"]


def test_python_m_on_s3_exits_with_the_command_status(runs, trees):
    # A real process: it must not die in tensorflow-io's S3 teardown.
    args = [a.replace("/eval.json", "/eval_cli.json")
            for a in runs["steps"]["evaluate"]]
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", *args], cwd=REPO,
        env=runs["env"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == runs["results"]["s3_evaluate"]["stdout"]
    written = runs["client"].get_object(
        Bucket=BUCKET, Key="run/eval_cli.json")["Body"].read()
    assert json.loads(written) == json.loads(trees[1]["eval.json"])
    bad = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", *[
            a.replace("/predictions.npz", "/missing.npz") for a in args]],
        cwd=REPO, env=runs["env"], capture_output=True, text=True,
        timeout=120)
    assert bad.returncode == 1 and "missing.npz" in bad.stderr, bad.stderr
