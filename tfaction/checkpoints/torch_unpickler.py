"""A restricted unpickler for the `data.pkl` of a `torch.save` archive.

A pickle can name any importable callable and have it called, so loading
an untrusted one with `pickle.load` runs arbitrary code. This unpickler
resolves names from a fixed table instead of importing them, so a name
outside the table is refused (`UnsafeCheckpointError`, naming it) before
anything it names is looked up, let alone called. Every entry maps to a
function of this package or to a harmless builtin:

* `torch._utils._rebuild_tensor_v2`, `_rebuild_tensor`: the tensor as a
  NumPy array (`torch_storages.tensor_from_storage`);
* `torch._utils._rebuild_parameter`, `_rebuild_parameter_with_state`: the
  parameter's data (an array);
* `torch.<X>Storage` (`torch_storages.STORAGE_TYPES`),
  `torch.storage.UntypedStorage`: a `StorageType`, meaningful only inside
  a persistent id;
* `collections.OrderedDict`: itself;
* `torch.Size`: a tuple of ints;
* `builtins.set`, `builtins.frozenset` (protocol-2 pickles of sets): a set
  / frozenset;
* `_codecs.encode` with `"latin1"` (protocol-2 pickles of bytes): bytes.

That covers what PyTorch writes for a checkpoint of state dicts: the
authors' ActionFormer `epoch_NNN.pth.tar` (epoch, model and EMA state
dicts, AdamW optimizer state, scheduler state) names only
`_rebuild_tensor_v2`, `FloatStorage` and `OrderedDict`. Other classes
(NumPy scalars, `argparse.Namespace`, modules pickled whole, TorchScript
archives) are refused.

Storages come from persistent ids `("storage", storage type, key,
location, numel)`; `read_storage(key, storage_type, numel)` supplies the
array, the location (`"cpu"`, `"cuda:0"`) is ignored. Every tensor is a
copy of its view, so the views of one storage may together hold at most
`MAX_STORAGE_REUSE` times its elements (tied weights share a storage a few
times; a crafted file could otherwise demand unbounded memory).

Example:

```python
with zipfile.ZipFile("ck.pth") as z:  # written by torch.save(obj, "ck.pth")
    def read_storage(key, storage_type, numel):
        return torch_storages.storage_array(
            z.read(f"ck/data/{key}"), storage_type, numel, "little")

    obj = RestrictedUnpickler(io.BytesIO(z.read("ck/data.pkl")),
                              read_storage, path="ck.pth").load()
```
"""

import collections
import pickle

from tfaction.checkpoints import torch_storages
from tfaction.checkpoints.errors import CheckpointError
from tfaction.checkpoints.errors import UnsafeCheckpointError

ALLOWED_SUMMARY = (
    "PyTorch's tensor and storage rebuilders (torch._utils._rebuild_*, "
    "torch.*Storage), collections.OrderedDict, torch.Size, set, frozenset "
    "and _codecs.encode (bytes)")
MAX_STORAGE_REUSE = 8


def _rebuild_parameter(data, requires_grad, backward_hooks):
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks,
                                  state):
    return data


def _size(dims):
    return tuple(torch_storages.int_tuple(dims, "torch.Size"))


def _latin1_bytes(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError(f"_codecs.encode is allowed only as a protocol-2 "
                         f"bytes literal (str, 'latin1'), got encoding "
                         f"{encoding!r}")
    return text.encode("latin1")


def _set(items=()):
    return set(items)


def _frozenset(items=()):
    return frozenset(items)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a `torch.save` `data.pkl`, refusing unknown callables.

    Args:
        file: binary file object holding the pickle.
        read_storage: `fn(key, storage_type, numel)` -> the storage as a
            1-D NumPy array (see `torch_storages.storage_array`).
        path: the checkpoint's name, for error messages.
    """

    def __init__(self, file, read_storage, path):
        super().__init__(file, encoding="utf-8")
        self._read_storage = read_storage
        self._path = str(path)
        self._storages = {}  # key -> (storage_type, numel, array)
        self._storage_keys = {}  # id(array) -> key
        self._copied = {}  # key -> elements copied out of it so far
        self._allowed = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"):
                _rebuild_parameter_with_state,
            ("torch", "Size"): _size,
            ("_codecs", "encode"): _latin1_bytes,
            ("torch.storage", "UntypedStorage"):
                torch_storages.STORAGE_TYPES["UntypedStorage"],
        }
        for name, storage_type in torch_storages.STORAGE_TYPES.items():
            self._allowed["torch", name] = storage_type
        # Protocol 2 names the builtins module by its Python 2 name.
        for module in ("builtins", "__builtin__"):
            self._allowed[module, "set"] = _set
            self._allowed[module, "frozenset"] = _frozenset

    def _error(self, message, key=None):
        return CheckpointError(message, path=self._path, key=key)

    def find_class(self, module, name):
        """The table's entry for `module.name`; refuses any other name."""
        target = self._allowed.get((module, name))
        if target is None and module == "torch" and name.endswith("Storage"):
            raise self._error(
                f"data.pkl: storage type 'torch.{name}' is not supported; "
                f"supported: {sorted(torch_storages.STORAGE_TYPES)}")
        if target is None:
            raise UnsafeCheckpointError(
                f"data.pkl names '{module}.{name}', which this reader "
                f"refuses: it runs nothing from a checkpoint and allows only "
                f"{ALLOWED_SUMMARY}. If you trust the file, re-save just its "
                f"tensors with PyTorch, e.g. torch.save({{'state_dict': "
                f"ck['state_dict']}}, 'weights.pth')", path=self._path)
        return target

    def persistent_load(self, pid):
        """The storage array named by a `torch.save` persistent id."""
        if not (isinstance(pid, tuple) and len(pid) == 5
                and pid[0] == "storage"):
            raise self._error(f"data.pkl: unsupported persistent id {pid!r}; "
                              f"expected ('storage', type, key, location, "
                              f"numel)")
        _, storage_type, key, _, numel = pid
        if (not isinstance(storage_type, torch_storages.StorageType)
                or not isinstance(key, str) or type(numel) is not int
                or numel < 0):
            raise self._error(f"data.pkl: malformed storage id {pid!r}")
        cached = self._storages.get(key)
        if cached is not None:
            if cached[:2] != (storage_type, numel):
                raise self._error(
                    f"storage declared as {numel} x {storage_type.name} and "
                    f"as {cached[1]} x {cached[0].name}", key=f"data/{key}")
            return cached[2]
        array = self._read_storage(key, storage_type, numel)
        self._storages[key] = (storage_type, numel, array)
        self._storage_keys[id(array)] = key
        return array

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        key = self._storage_keys.get(id(storage))
        if key is None:
            raise self._error(f"data.pkl: a tensor's storage is "
                              f"{type(storage).__name__}, not a storage "
                              f"record")
        try:
            tensor = torch_storages.tensor_from_storage(
                storage, storage_offset, size, stride)
        except ValueError as e:
            raise self._error(str(e), key=f"data/{key}") from None
        self._copied[key] = self._copied.get(key, 0) + tensor.size
        if self._copied[key] > MAX_STORAGE_REUSE * storage.size:
            raise self._error(
                f"its tensors together hold {self._copied[key]} elements, "
                f"more than {MAX_STORAGE_REUSE} times the storage's "
                f"{storage.size}", key=f"data/{key}")
        return tensor

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride,
                           requires_grad, backward_hooks, metadata=None):
        return self._rebuild_tensor(storage, storage_offset, size, stride)
