"""Picks one state dict (key -> array) out of a loaded checkpoint.

Training scripts save more than the weights: the authors' ActionFormer
`epoch_NNN.pth.tar` holds `epoch`, `state_dict`, `state_dict_ema`,
`optimizer` and `scheduler`; other projects use `model` or save a bare
state dict. `select_state_dict` returns the one asked for, as a plain dict
of NumPy arrays, with the `module.` prefix that `nn.DataParallel` /
`DistributedDataParallel` add removed (from every key, and only when every
key has it, so a model with a real submodule named `module` keeps its
names). `state_dict(path, key)` reads the file first.

Example:

```python
from tfaction.checkpoints import state_dict

weights = state_dict("epoch_035.pth.tar", "state_dict_ema")
weights["cls_head.cls_head.conv.bias"].shape  # (20,)
```
"""

import os
from collections.abc import Mapping

import numpy as np

from tfaction.checkpoints.errors import CheckpointError
from tfaction.checkpoints.torch_zip import load_torch_checkpoint

# Looked up in this order when no key is given (the EMA copy first: it is
# what the ActionFormer authors evaluate).
DEFAULT_KEYS = ("state_dict_ema", "state_dict", "model")
PARALLEL_PREFIX = "module."


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array {value.dtype}{list(value.shape)}"
    if isinstance(value, Mapping):
        arrays = sum(isinstance(v, np.ndarray) for v in value.values())
        return (f"{type(value).__name__} of {len(value)} entries, {arrays} "
                f"arrays")
    return type(value).__name__


def summary(checkpoint):
    """One line per top-level entry of a loaded checkpoint.

    Args:
        checkpoint: the object `load_torch_checkpoint` returned.

    Returns:
        List of strings such as `"state_dict_ema: OrderedDict of 229
        entries, 229 arrays"` (a single line for a non-mapping).

    Example:

    >>> summary({"epoch": 3, "w": np.zeros((2, 1), "float32")})
    ['epoch: int', 'w: array float32[2, 1]']
    """
    if not isinstance(checkpoint, Mapping):
        return [_describe(checkpoint)]
    return [f"{k}: {_describe(v)}" for k, v in checkpoint.items()]


def _is_state_dict(value):
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(k, str) and isinstance(v, np.ndarray)
                    for k, v in value.items()))


def strip_parallel_prefix(weights):
    """`weights` with `module.` removed from the keys if all of them have it.

    Args:
        weights: mapping key -> array.

    Returns:
        A new dict.

    Example:

    >>> sorted(strip_parallel_prefix({"module.a": 1, "module.b": 2}))
    ['a', 'b']
    >>> sorted(strip_parallel_prefix({"module.a": 1, "b": 2}))
    ['b', 'module.a']
    """
    n = len(PARALLEL_PREFIX)
    if weights and all(k.startswith(PARALLEL_PREFIX) for k in weights):
        return {k[n:]: v for k, v in weights.items()}
    return dict(weights)


def select_state_dict(checkpoint, key=None, path=None):
    """The state dict under `key` of a loaded checkpoint.

    Args:
        checkpoint: the object `load_torch_checkpoint` returned.
        key: top-level entry holding the weights (`"state_dict_ema"`,
            `"state_dict"`, `"model"`, ...). `None`: the checkpoint itself
            if it is a bare state dict, else the first of `DEFAULT_KEYS`
            it has.
        path: the checkpoint's name, for error messages.

    Returns:
        dict key -> NumPy array, `module.` prefix removed
        (`strip_parallel_prefix`).

    Raises:
        CheckpointError: `key` is absent (the message lists the entries
            there are) or does not hold a mapping of names to tensors.

    Example:

    >>> ck = {"epoch": 1, "state_dict": {"module.w": np.ones(2)}}
    >>> select_state_dict(ck)
    {'w': array([1., 1.])}
    """
    if key is None and _is_state_dict(checkpoint):
        return strip_parallel_prefix(checkpoint)
    entries = "; ".join(summary(checkpoint))
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"expected a dict of state dicts, the file "
                              f"holds {entries}", path=path)
    if key is None:
        found = [k for k in DEFAULT_KEYS if k in checkpoint]
        if not found:
            raise CheckpointError(
                f"no state dict under any of {list(DEFAULT_KEYS)}; name one "
                f"of the checkpoint's entries: {entries}", path=path)
        key = found[0]
    if key not in checkpoint:
        raise CheckpointError(f"no such entry; the checkpoint holds: "
                              f"{entries}", path=path, key=key)
    weights = checkpoint[key]
    if not isinstance(weights, Mapping):
        raise CheckpointError(f"expected a state dict (name -> tensor), got "
                              f"{_describe(weights)}", path=path, key=key)
    for name, value in weights.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise CheckpointError(
                f"entry {name!r} is {_describe(value)}, not a named tensor",
                path=path, key=key)
    return strip_parallel_prefix(weights)


def state_dict(path, key=None):
    """Reads a `torch.save` file and returns one of its state dicts.

    Args:
        path: local path or URL of the file.
        key: as for `select_state_dict`.

    Returns:
        dict key -> NumPy array, without a `module.` prefix.

    Raises:
        CheckpointError / UnsafeCheckpointError / OSError: as
            `load_torch_checkpoint` and `select_state_dict`.

    Example:

    ```python
    ema = state_dict("epoch_035.pth.tar", "state_dict_ema")
    ```
    """
    path = os.fspath(path)
    return select_state_dict(load_torch_checkpoint(path), key, path)
