"""`export_saved_model`: versioned, all-or-nothing SavedModel export.

Layout written under `export_dir` (TF Serving's base path of one model):

```
export_dir/
  models.config              ModelServerConfig (model_config_list)
  batching_parameters.txt    BatchingParameters template
  1/  2/  ...                integer versions; the server serves the newest
    saved_model.pb  variables/  assets.extra/tf_serving_warmup_requests
    assets/classes.txt       the class list (modules built with class names)
```

A version is written into a hidden staging directory beside the versions
(TF Serving only loads integer-named directories), loaded back with
`tf.saved_model.load`, run on its warm-up requests, and only then renamed to
its integer name. A failure at any point removes the staging directory and
leaves every existing version untouched, so a server polling `export_dir`
never sees a half-written version. (The final rename is atomic on local and
POSIX file systems. On object stores such as `gs://` a directory rename
copies object by object, so a polling server could see a version appear
file by file: export locally and upload, or pin `model_version_policy`
until the copy is complete.)

Example:

```python
path = export_saved_model(module, "models/actionformer")
# models/actionformer/1 (then 2, 3, ... on later exports)
```
"""

import os
import uuid

import tensorflow as tf
from absl import logging

from tfaction import errors
from tfaction.data import filesystems
from tfaction.serving import batching_parameters
from tfaction.serving import export_module
from tfaction.serving import model_server_config
from tfaction.serving import warmup_requests

STAGING_PREFIX = ".staging-"


def list_versions(export_dir):
    """Integer version numbers present in `export_dir` (sorted).

    Args:
        export_dir: a model's base path (local path or URL).

    Returns:
        Sorted list of ints; empty when the folder does not exist.
    """
    export_dir = filesystems.ensure_filesystem(export_dir)
    if not tf.io.gfile.isdir(export_dir):
        return []
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(export_dir))
    return sorted(int(name) for name in names
                  if name.isdigit() and
                  tf.io.gfile.isdir(os.path.join(export_dir, name)))


def next_version(export_dir):
    """The version a new export gets: one more than the highest, or 1."""
    versions = list_versions(export_dir)
    return versions[-1] + 1 if versions else 1


def _base_path(export_dir):
    if filesystems.scheme_of(export_dir):
        return export_dir.rstrip("/")
    return os.path.abspath(export_dir)


def _check_readback(path, module):
    """Loads the staged SavedModel and replays its warm-up requests.

    What TF Serving does when it loads a version: a version that passes
    loads and runs. (Outputs are checked for the signature's names, shapes
    and dtypes; their values are the tests' business.) A module with a
    class list must have it as `assets/classes.txt`.

    Raises:
        ValueError: a signature, an output or the class list is missing or
            malformed.
    """
    if module.class_list is not None:
        classes = os.path.join(path, "assets",
                               export_module.CLASS_LIST_ASSET)
        if not tf.io.gfile.exists(classes) or tf.io.gfile.GFile(
                classes).read().splitlines() != module.class_names:
            raise ValueError(f"the saved model lacks its class list "
                             f"{classes}")
    loaded = tf.saved_model.load(path)
    functions = module.signatures()
    missing = set(functions) - set(loaded.signatures)
    if missing:
        raise ValueError(f"the saved model lacks signatures {sorted(missing)}")
    for name, inputs in module.warmup_requests():
        got = loaded.signatures[name](
            **{k: tf.constant(v) for k, v in inputs.items()})
        for key, tensor in functions[name].structured_outputs.items():
            spec = tf.TensorSpec(tensor.shape, tensor.dtype)
            if key not in got or not spec.is_compatible_with(got[key]):
                raise ValueError(
                    f"signature {name!r}: the reloaded model's output "
                    f"{key!r} is {got.get(key)!r}, expected {spec}")


def export_saved_model(module, export_dir, version=None, model_name=None,
                       serving_base_path=None, served_versions=None):
    """Writes `module` as version `version` of the model in `export_dir`.

    Args:
        module: a `tfaction.serving.ExportModule`.
        export_dir: the model's base path (local path or URL); created if
            missing.
        version: positive int; default the next integer after the highest
            existing version. An existing version is never overwritten.
        model_name: the name in `models.config` and in the warm-up requests
            (default: the last component of `export_dir`).
        serving_base_path: the base path written to `models.config`, as the
            server will see it (default: `export_dir`, made absolute), e.g.
            `/models/<name>` for the `tensorflow/serving` container.
        served_versions: the version policy written to `models.config`:
            None serves the newest version (hot swap to each new export),
            a list of numbers pins those (`model_server_config`).

    Returns:
        The path of the new version directory.

    Raises:
        ConfigError: `version` is not positive or already exists.
        MissingDependencyError: tensorflow-serving-api is not installed.
        Any error of tracing, saving or the read-back check (after cleaning
        up the staging directory).

    Example:

    ```python
    path = export_saved_model(module, "models/actionformer", version=3)
    loaded = tf.saved_model.load(path)
    outputs = loaded.signatures["serving_default"](**inputs)
    ```
    """
    export_dir = filesystems.ensure_filesystem(os.fspath(export_dir))
    model_name = model_name or os.path.basename(export_dir.rstrip("/"))
    if version is None:
        version = next_version(export_dir)
    version = int(version)
    if version < 1:
        raise errors.ConfigError(f"export version must be >= 1, got {version}")
    final = os.path.join(export_dir, str(version))
    if tf.io.gfile.exists(final):
        raise errors.ConfigError(
            f"version {version} already exists at {final}; export versions "
            "are never overwritten: choose another version or leave it out")
    # Render the server files first: a bad value fails before any writing.
    config_text = model_server_config.model_config_text(
        model_name, serving_base_path or _base_path(export_dir),
        versions=served_versions)
    batching_text = batching_parameters.batching_parameters_text(
        **module.batching_parameters())
    tf.io.gfile.makedirs(export_dir)
    staging = os.path.join(
        export_dir, f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:12]}")
    try:
        signatures = module.signatures()  # trace before writing anything
        tf.saved_model.save(module, staging, signatures=signatures)
        extra = os.path.join(staging, warmup_requests.WARMUP_DIR)
        tf.io.gfile.makedirs(extra)
        warmup_requests.write_warmup_requests(
            os.path.join(extra, warmup_requests.WARMUP_FILE),
            module.warmup_requests(), model_name)
        _check_readback(staging, module)
        tf.io.gfile.rename(staging, final, overwrite=False)
    except BaseException:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)
        raise
    filesystems.atomic_write_text(
        os.path.join(export_dir, model_server_config.MODELS_CONFIG),
        config_text)
    filesystems.atomic_write_text(
        os.path.join(export_dir,
                     batching_parameters.BATCHING_PARAMETERS_FILE),
        batching_text)
    logging.info("exported %s version %d to %s", model_name, version, final)
    return final
