"""Helpers shared by the SavedModel export tests (`tests/serving/`).

Every export test checks the same serving contract (DESIGN.md section 6):
the export command run as a user runs it on a run directory with a
checkpoint of perturbed weights (`run_and_export`, `perturb_weights`,
`exported_version`), the export loaded and served by a fresh Python
process that imports only TensorFlow (`run_tf_only`, `serve_calls` with
`SERVE_SCRIPT`), `saved_model_cli show --all` run beside it
(`assert_cli_lists`), the warm-up records
(`warmup_requests`), and the request clients' REST bodies read back
(`rest_arrays`, `serve_with_requests`) and commands (`command_flags`,
`assert_command_fails`).

Example:

```python
with run_and_export(root, config, "carl", perturb) as run:
    path = exported_version(run["process"], run["logs"])
served = serve_calls(path, {"uint8": ("serving_default", inputs)}, root)
served["results"]["uint8"]["probabilities"]
```
"""

import base64
import contextlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import tensorflow as tf
from absl import flags

from export import serving_request
from tests.serving import tensor_json
from tfaction import config as config_lib
from tfaction import tasks
from tfaction import training

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_S = 300

# The first lines of a TF-only script: Keras (which TensorFlow 2.17 imports
# when it is installed) and the repository's packages cannot be imported.
TF_ONLY_PRELUDE = r"""
import sys

for blocked in ("keras", "tf_keras", "tfaction", "export", "experiments"):
    sys.modules[blocked] = None
"""

# The source of `tensor_json` (`load_tensors`, `dump_tensors`), run by the
# TF-only scripts after the prelude: they exchange arrays with the test
# process through its JSON files.
TENSOR_JSON = (pathlib.Path(__file__).with_name("tensor_json.py")
               .read_text())

# Serves calls `{key: (signature, {input: numpy})}` (a `tensor_json` file)
# of one SavedModel; writes the outputs, the refused calls' messages, the
# signatures' listing and the Keras / tfaction modules that were imported
# (none may be).
SERVE_SCRIPT = TF_ONLY_PRELUDE + TENSOR_JSON + r"""
import tensorflow as tf

path, calls_path, outputs_path = sys.argv[1:4]
calls = load_tensors(calls_path)
loaded = tf.saved_model.load(path)
listing = {
    name: {"inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in
                      fn.structured_input_signature[1].items()},
           "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in
                       fn.structured_outputs.items()}}
    for name, fn in loaded.signatures.items()}
results, errors = {}, {}
for key, (signature, inputs) in calls.items():
    fn = loaded.signatures[signature]
    try:
        out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        results[key] = {k: v.numpy() for k, v in out.items()}
    except tf.errors.InvalidArgumentError as e:
        errors[key] = e.message
imported = sorted(m for m, module in sys.modules.items() if module and
                  m.split(".")[0] in ("keras", "tf_keras", "tfaction"))
dump_tensors({"results": results, "errors": errors, "listing": listing,
              "imported": imported}, outputs_path)
"""


# --- a run directory and the export command ---------------------------------
def perturb_weights(variables, seed, spread, floor):
    """Noise on weights, so that a model that was not restored cannot pass.

    Args:
        variables: the variables to change, in a fixed order.
        seed: the noise's seed.
        spread: noise scale as a fraction of each variable's standard
            deviation ...
        floor: ... taken at least this large (constant variables).

    Batch-norm `moving_variance` variables get random values in [0.5, 2]
    instead (so that the statistics matter).
    """
    rng = np.random.RandomState(seed)
    for v in variables:
        value = v.numpy()
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 2.0, value.shape).astype(value.dtype))
            continue
        scale = spread * max(float(value.std()), floor)
        v.assign(value + scale * rng.standard_normal(value.shape).astype(
            value.dtype))


@contextlib.contextmanager
def run_and_export(root, config, model_name, perturb, export_flags=(),
                   evaluate=False):
    """A run directory with a checkpoint; the export command started on it.

    The trainer's model (`perturb(model)` applied) is checkpointed at
    step 3 in `root/run` (optionally evaluated there: `trainer.evaluate()`
    writes its reports), the resolved `config.json` written, and
    `python -m export.export_saved_model --workdir=root/run
    --export_dir=root/models/<model_name>` started (`start_export`).

    Args:
        root: an empty folder.
        config: the experiment config.
        model_name: the export folder's name.
        perturb: callable(model) changing its weights.
        export_flags: further flags of the export command.
        evaluate: evaluate the checkpoint before exporting.

    Yields:
        Dict with the config, the task, the model holding the checkpoint's
        weights, the workdir, the checkpoint, the export_dir and the
        running export subprocess (`process`, with its `logs`); the
        process is stopped on exit.
    """
    root = pathlib.Path(root)
    workdir, export_dir = root / "run", root / "models" / model_name
    workdir.mkdir()
    task = tasks.build_task(config)
    trainer = training.Trainer(task, config, str(workdir),
                               evaluation_only=True)
    perturb(trainer.model)
    trainer.position.assign(3, 0, 3)
    checkpoint = trainer.checkpointer.save(3)
    if evaluate:
        trainer.evaluate()
    trainer.close()
    config_lib.write_config_json(config, str(workdir))
    process, logs = start_export(root, workdir, export_dir, *export_flags)
    try:
        yield dict(config=config, task=task, model=trainer.model,
                   workdir=workdir, checkpoint=checkpoint,
                   export_dir=export_dir, process=process, logs=logs)
    finally:
        stop_export(process, logs)


def start_export(root, workdir, export_dir, *extra_flags):
    """Starts `python -m export.export_saved_model` on a run directory.

    It runs while the test computes its reference; its output goes to
    files (a full pipe would stall it).

    Args:
        root: folder for the command's `stdout` and `stderr` files.
        workdir: the run directory (its `config.json` and checkpoints).
        export_dir: the `--export_dir`.
        *extra_flags: further command-line flags.

    Returns:
        `(process, logs)`: the `Popen` and the two open log files; pass
        them to `exported_version`, and to `stop_export` when done.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    logs = [open(pathlib.Path(root) / name, "w+")
            for name in ("stdout", "stderr")]
    process = subprocess.Popen(
        [sys.executable, "-m", "export.export_saved_model",
         f"--workdir={workdir}", f"--export_dir={export_dir}",
         *extra_flags],
        cwd=REPO_ROOT, env=env, stdout=logs[0], stderr=logs[1], text=True)
    return process, logs


def stop_export(process, logs):
    """Kills the export command if it still runs; closes its logs."""
    if process.poll() is None:
        process.kill()
        process.wait()
    for f in logs:
        f.close()


def exported_version(process, logs):
    """Waits for the export command; the version folder it printed last.

    Raises:
        AssertionError: the command failed (with its stderr's tail).
    """
    process.wait(timeout=TIMEOUT_S)
    for f in logs:
        f.seek(0)
    stdout, stderr = (f.read() for f in logs)
    assert process.returncode == 0, stderr[-4000:]
    return pathlib.Path(stdout.strip().splitlines()[-1])


def assert_export_layout(export_dir, path, model_name):
    """The command wrote version 1 and the TF Serving files beside it."""
    export_dir = pathlib.Path(export_dir)
    assert path == export_dir / "1"
    assert sorted(p.name for p in export_dir.iterdir()) == [
        "1", "batching_parameters.txt", "models.config"]
    assert f'name: "{model_name}"' in (export_dir / "models.config"
                                        ).read_text()


# --- a fresh TensorFlow-only process ----------------------------------------
def run_tf_only(script, args, root, saved_model=None):
    """Runs `script` in a fresh interpreter that can import only what is
    installed (cwd `root`, outside the repository, no `PYTHONPATH`), with
    `saved_model_cli show --all --dir saved_model` beside it when given.

    Args:
        script: Python source (`python -c`).
        args: its arguments (strings or paths).
        root: its working directory.
        saved_model: optional SavedModel folder for `saved_model_cli`.

    Returns:
        `(done, cli)`: the script's `CompletedProcess` and, with
        `saved_model`, `saved_model_cli`'s `(returncode, stdout, stderr)`
        (else None).

    Raises:
        AssertionError: the script failed (with its stderr's tail).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    cli = None
    if saved_model is not None:
        cli = subprocess.Popen(
            [str(pathlib.Path(sys.executable).parent / "saved_model_cli"),
             "show", "--all", "--dir", str(saved_model)], cwd=root, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, *map(str, args)], cwd=root,
            env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        if cli is not None:
            cli_out, cli_err = cli.communicate(timeout=TIMEOUT_S)
    finally:
        if cli is not None and cli.poll() is None:
            cli.kill()
            cli.wait()
    assert done.returncode == 0, done.stderr[-4000:]
    return done, (None if cli is None else
                  (cli.returncode, cli_out, cli_err))


def serve_calls(path, calls, root):
    """Serves `calls` on the SavedModel at `path` in a TF-only process.

    Args:
        path: the exported version folder.
        calls: dict key -> `(signature name, {input name: numpy})`.
        root: a scratch folder (the process's cwd and its files).

    Returns:
        Dict `results` (key -> outputs as numpy), `errors` (key -> the
        `InvalidArgumentError` message of a refused call), `listing`
        (signature -> `{"inputs", "outputs"}`: name -> `[dtype, shape]`),
        `imported` (Keras / tfaction modules the process imported),
        `saved_model_cli` (`(returncode, stdout, stderr)`) and the `calls`.
    """
    root = pathlib.Path(root)
    tensor_json.dump_tensors(calls, root / "calls.json")
    _, cli = run_tf_only(SERVE_SCRIPT, [path, root / "calls.json",
                                        root / "outputs.json"], root,
                         saved_model=path)
    out = tensor_json.load_tensors(root / "outputs.json")
    out["saved_model_cli"] = cli
    out["calls"] = calls
    return out


# --- saved_model_cli --------------------------------------------------------
def assert_cli_lists(cli, expected):
    """`saved_model_cli show --all` succeeded and lists each signature as
    a Predict signature with the tensors' dtypes and shapes.

    Args:
        cli: its `(returncode, stdout, stderr)` (`run_tf_only`).
        expected: signature name -> {tensor: (dtype, shape)}, tensors as
            saved_model_cli names them (`inputs['frames']`,
            `outputs['boxes']`), e.g. `("DT_UINT8", "(-1, -1, 3)")`; a
            dtype None is not checked.
    """
    code, text, err = cli
    assert code == 0, err[-4000:]
    for name, tensors in expected.items():
        block = text[text.index(f"signature_def['{name}']"):]
        block, method = block.split("Method name is:", 1)
        assert method.split()[0] == "tensorflow/serving/predict", name
        for tensor, (dtype, shape) in tensors.items():
            entry = block[block.index(f"{tensor} tensor_info:"):]
            entry = entry.split("name:")[0]
            if dtype is not None:
                assert f"dtype: {dtype}" in entry, (name, tensor, entry)
            assert f"shape: {shape}" in entry, (name, tensor, entry)


def frames_signatures(tensors, steps="-1"):
    """`assert_cli_lists`' expectation of a frames module's signatures.

    Args:
        tensors: the other tensors both signatures list (`assert_cli_lists`
            form).
        steps: T in the `frames` shapes ("-1": any).

    Returns:
        `serving_default` with uint8 `frames` `[B, T, H, W, 3]` and
        `serve_jpeg` with string `frames` `[B, T]`, each with `tensors`.
    """
    return {"serving_default": {
        "inputs['frames']": ("DT_UINT8", f"(-1, {steps}, -1, -1, 3)"),
        **tensors},
        "serve_jpeg": {"inputs['frames']": ("DT_STRING", f"(-1, {steps})"),
                       **tensors}}


# --- warm-up records --------------------------------------------------------
def warmup_requests(path):
    """The `PredictRequest`s of an export's warm-up records, in order."""
    from tensorflow_serving.apis import prediction_log_pb2

    warmup = pathlib.Path(path) / "assets.extra" / (
        "tf_serving_warmup_requests")
    return [prediction_log_pb2.PredictionLog.FromString(r).predict_log
            .request for r in tf.data.TFRecordDataset(str(warmup))
            .as_numpy_iterator()]


# --- bad inputs -------------------------------------------------------------
BAD_INPUT_PREFIX = "bad_input:"
# Another dtype for each input dtype (numbers <-> strings, wider numbers).
_OTHER_DTYPE = {"uint8": np.int32, "int32": np.int64, "int64": np.int32,
                "float32": np.float64, "float64": np.float32}


def _other_dtype(value):
    """`value` as another dtype than its own (strings become int32)."""
    if value.dtype == object or value.dtype.kind in "SU":
        return np.zeros(value.shape, np.int32)
    return value.astype(_OTHER_DTYPE[value.dtype.name])


def _other_rank(value):
    """`value` with one axis less (its last), or one more for a vector."""
    return value[:, None] if value.ndim == 1 else value[..., 0]


def bad_input_calls(signature, inputs, over_length=None):
    """Requests a signature must refuse, made from a valid one.

    For each input: one rank too few (or, for a vector, too many) and
    another dtype; for the whole request: an empty batch (dimension 0 is
    0 in every input); optionally a request over the signature's length
    limit. Keys start with `BAD_INPUT_PREFIX`; `assert_bad_inputs_refused`
    checks what the server said.

    Args:
        signature: the signature to call.
        inputs: a valid request, dict input name -> numpy array.
        over_length: optional request (dict of inputs) longer than the
            signature accepts.

    Returns:
        Dict call key -> `(signature, inputs)`, for `serve_calls`.
    """
    calls = {}
    for name in sorted(inputs):
        for kind, change in (("rank", _other_rank), ("dtype", _other_dtype)):
            changed = dict(inputs, **{name: change(np.asarray(inputs[name]))})
            calls[f"{BAD_INPUT_PREFIX}{signature}:{kind}:{name}"] = (
                signature, changed)
    calls[f"{BAD_INPUT_PREFIX}{signature}:empty_batch"] = (
        signature, {k: np.asarray(v)[:0] for k, v in inputs.items()})
    if over_length is not None:
        calls[f"{BAD_INPUT_PREFIX}{signature}:over_length"] = (signature,
                                                                over_length)
    return calls


def assert_bad_inputs_refused(served, over_length_message=None):
    """Every `bad_input_calls` call was refused with a clear message.

    A wrong rank must fail with an `InvalidArgumentError` naming the input
    and its expected shape, an empty batch with one naming the signature
    and the input (`tfaction.serving.export_module.checked_inputs`); a
    wrong dtype with
    TensorFlow's own `InvalidArgumentError`, raised before the graph runs,
    naming the input's position (inputs in sorted name order) and both
    dtypes; a request over the length limit with `over_length_message`.

    Args:
        served: `serve_calls`' dict (its `calls` must hold the requests:
            `serve_with_requests` keeps them; else pass them as
            `served["calls"]`).
        over_length_message: text the over-length refusal must contain.

    Returns:
        The number of bad requests checked.
    """
    keys = [k for k in served["calls"] if k.startswith(BAD_INPUT_PREFIX)]
    assert keys, "no bad_input_calls were served"
    for key in keys:
        assert key not in served["results"], f"{key} was answered"
        assert key in served["errors"], f"{key} was not refused"
        message = served["errors"][key]
        signature, kind, *name = key[len(BAD_INPUT_PREFIX):].split(":")
        inputs = served["calls"][key][1]
        if kind == "rank":
            assert (f"Shape of tensor {name[0]} " in message and
                    "is not compatible with expected shape" in message), (
                        key, message)
        elif kind == "dtype":
            position = sorted(inputs).index(name[0])
            assert (f"input #{position}(zero-based) was expected to be"
                    in message), (key, message)
        elif kind == "empty_batch":
            assert (f"signature {signature}: input " in message and
                    "has an empty batch" in message), (key, message)
        else:
            assert kind == "over_length", key
            assert over_length_message in message, (key, message)
    return len(keys)


# --- request clients --------------------------------------------------------
def rest_arrays(body, dtypes):
    """A REST body's columnar inputs as numpy of the signature's dtypes.

    Args:
        body: the `:predict` body, as JSON gives it back.
        dtypes: input name -> dtype name ("string" for bytes sent as
            `{"b64": ...}`, else a numpy dtype name such as "uint8").

    Returns:
        Dict input name -> numpy array (bytes: object arrays).
    """
    def decode(x):
        if isinstance(x, list):
            return [decode(v) for v in x]
        assert set(x) == {"b64"}
        return base64.b64decode(x["b64"])

    out = {}
    for name, value in body["inputs"].items():
        if dtypes[name] == "string":
            out[name] = np.array(decode(value), dtype=object)
        else:
            out[name] = np.array(value, dtype=dtypes[name])
    return out


def serve_with_requests(path, calls, root, client, requests, dtypes):
    """`serve_calls` of `calls` and of a frames client's gRPC requests.

    Args:
        path, calls, root: as `serve_calls`.
        client: the request module (`export.carl_request`, ...).
        requests: encoding -> the client's `request_inputs` output.
        dtypes: encoding -> `rest_arrays` dtypes of its inputs.

    Returns:
        `serve_calls`' dict, its `calls` holding also
        `grpc_<encoding>`: `(signature, inputs)` of the client's gRPC
        request (served: its results are under that key), with `path` and
        `rest`: encoding -> `(signature, inputs)` of the client's REST body
        read back (to compare with the gRPC request's).
    """
    calls, rest = dict(calls), {}
    for encoding, dtype in dtypes.items():
        inputs = requests[encoding]
        request = client.grpc_request(inputs)
        calls[f"grpc_{encoding}"] = (
            request.model_spec.signature_name,
            serving_request.request_arrays(request))
        body = json.loads(json.dumps(client.rest_body(inputs)))
        rest[encoding] = (body["signature_name"], rest_arrays(body, dtype))
    out = serve_calls(path, calls, root)
    out.update(path=path, calls=calls, rest=rest)
    return out


def command_flags(client, argv):
    """A request command's flags, parsed from `argv` (no program name)."""
    flag_values = flags.FlagValues()
    client.define_flags(flag_values)
    flag_values(["request", *argv])
    return flag_values


def assert_command_fails(client, capsys, argv, message):
    """The request command, run with `argv`, returns 1 and says `message`
    on stderr."""
    assert client.run(command_flags(client, argv)) == 1
    assert message in capsys.readouterr().err
