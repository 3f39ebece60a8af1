"""`models.config`: the TF Serving `ModelServerConfig` of an export directory.

TF Serving reads it with `--model_config_file=models.config`: one
`model_config_list` entry naming the model, its base path (the folder of
integer version directories), the platform and the version policy, written
out rather than left to the server's default:

* `latest { num_versions: 1 }` (default): serve the newest version; when an
  export adds a higher one the server loads it, replays its warm-up
  records, switches traffic to it and unloads the old one (a hot swap: an
  export appears only once complete, `saved_model_export`);
* `specific { versions: ... }` (`versions=[...]`): serve exactly these,
  e.g. to pin a version while a newer one is checked, or to roll back
  (the server re-reads the file every
  `--model_config_file_poll_wait_seconds`).

Example:

```python
text = model_config_text("actionformer", "/models/actionformer")
# model_config_list {
#   config {
#     name: "actionformer"
#     base_path: "/models/actionformer"
#     model_platform: "tensorflow"
#     model_version_policy {
#       latest {
#         num_versions: 1
#       }
#     }
#   }
# }
```
"""

import json

from tfaction import errors

MODELS_CONFIG = "models.config"


def _quote(text):
    # JSON string escapes are valid text-proto string escapes.
    return json.dumps(str(text))


def model_config_text(model_name, base_path, versions=None):
    """Text-format `ModelServerConfig` with one TensorFlow model.

    Args:
        model_name: the name clients use (`/v1/models/<name>:predict`).
        base_path: the folder holding the integer version directories, as
            the server sees it (e.g. `/models/<name>` inside the
            `tensorflow/serving` container).
        versions: None to serve the newest version (`latest {
            num_versions: 1 }`), or the version numbers to serve
            (`specific { versions: ... }`).

    Returns:
        The text proto, parseable with
        `tensorflow_serving.config.model_server_config_pb2.ModelServerConfig`.

    Raises:
        ConfigError: `versions` is empty or holds a number < 1.

    Example:

    ```python
    model_config_text("carl", "/models/carl", versions=[3])
    # ... model_version_policy { specific { versions: 3 } } ...
    ```
    """
    if versions is None:
        policy = ("      latest {\n"
                  "        num_versions: 1\n"
                  "      }\n")
    else:
        versions = [int(v) for v in versions]
        if not versions or min(versions) < 1:
            raise errors.ConfigError(
                f"served versions must be a non-empty list of numbers >= 1,"
                f" got {versions}")
        policy = ("      specific {\n"
                  + "".join(f"        versions: {v}\n"
                            for v in sorted(set(versions)))
                  + "      }\n")
    return ("model_config_list {\n"
            "  config {\n"
            f"    name: {_quote(model_name)}\n"
            f"    base_path: {_quote(base_path)}\n"
            '    model_platform: "tensorflow"\n'
            "    model_version_policy {\n"
            + policy +
            "    }\n"
            "  }\n"
            "}\n")
