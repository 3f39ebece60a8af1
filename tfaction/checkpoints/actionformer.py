"""Loads the ActionFormer authors' PyTorch checkpoints into `ActionFormer`.

The released checkpoints of happyharrycn/actionformer_release
(`epoch_NNN.pth.tar`, written by their `train.py`) hold two copies of the
weights, keyed with the `module.` prefix of `nn.DataParallel`:

* `weights="ema"` (default) -> `state_dict_ema`: the exponential moving
  average, which the authors' `eval.py` loads and their results report;
* `weights="model"` -> `state_dict`: the weights of the last optimiser
  step.

The file is read by `tfaction.checkpoints.torch_zip` (no PyTorch, nothing in
the file executed); names and layouts are converted by
`tfaction.models.actionformer.reference.load_reference_weights` (the
mapping of `backbone_weights` and `head_weights`). Loading is
all-or-nothing: every tensor is checked against the model first, and on a
missing, unexpected or wrongly shaped tensor nothing is assigned.

Example:

```python
from tfaction.checkpoints.actionformer import load_actionformer_checkpoint
from tfaction.data import filesystems
from tfaction.models.actionformer.model import ActionFormer

cfg = filesystems.read_json("config.json")["config"]  # the authors' config
model = ActionFormer.from_reference_config(cfg["model"],
                                           train_cfg=cfg["train_cfg"])
load_actionformer_checkpoint(model, "epoch_035.pth.tar", weights="ema")
```
"""

import os
from collections.abc import Mapping

from tfaction.checkpoints.errors import CheckpointError
from tfaction.checkpoints.state_dicts import select_state_dict
from tfaction.checkpoints.torch_zip import load_torch_checkpoint
from tfaction.models.actionformer.reference import load_reference_weights

WEIGHT_KEYS = {"ema": "state_dict_ema", "model": "state_dict"}


def load_actionformer_checkpoint(model, checkpoint, weights="ema"):
    """Assigns an authors' checkpoint's weights to a built `ActionFormer`.

    Args:
        model: a built `tfaction.models.actionformer.model.ActionFormer`
            whose configuration matches the checkpoint (e.g. from
            `ActionFormer.from_reference_config` with the authors' config).
        checkpoint: local path or URL of the `.pth.tar` file, or the object
            `load_torch_checkpoint` returned for it.
        weights: `"ema"` (`state_dict_ema`) or `"model"` (`state_dict`).

    Returns:
        Sorted list of the state-dict keys loaded (without `module.`).

    Raises:
        ValueError: `weights` is not `"ema"` or `"model"`, or the model is
            not built.
        CheckpointError: the file lacks that copy (the message lists what
            it holds), or a tensor is missing, unexpected or of the wrong
            shape for the model (the message names the keys); the model's
            weights are then unchanged.
        UnsafeCheckpointError / OSError: as `load_torch_checkpoint`.

    Example:

    ```python
    keys = load_actionformer_checkpoint(model, "epoch_035.pth.tar")
    ```
    """
    if weights not in WEIGHT_KEYS:
        raise ValueError(f"weights={weights!r}: expected one of "
                         f"{sorted(WEIGHT_KEYS)}")
    if not model.built:
        raise ValueError("load_actionformer_checkpoint: build the model "
                         "first")
    path = None
    if not isinstance(checkpoint, Mapping):
        path = os.fspath(checkpoint)
        checkpoint = load_torch_checkpoint(path)
    key = WEIGHT_KEYS[weights]
    state = select_state_dict(checkpoint, key, path)
    try:
        return load_reference_weights(model, state)
    except ValueError as e:
        raise CheckpointError(str(e), path=path, key=key) from e
