"""Reads `torch.save` files (PyTorch >= 1.6 zip format) without PyTorch.

The archive holds, under one top-level folder `<name>/`:

* `data.pkl`: the saved object as a pickle, whose tensors point at
  storages through persistent ids;
* `data/<key>`: each storage's raw bytes;
* `byteorder` (PyTorch >= 1.10): `little` or `big` (absent: little);
* `version`, `.format_version`, ... (not needed to read tensors).

`load_torch_checkpoint(path)` unpickles `data.pkl` with
`torch_unpickler.RestrictedUnpickler`, which executes nothing the file
names (a pickle naming e.g. `os.system` is refused with
`UnsafeCheckpointError`), and returns the object with every tensor as a
NumPy array. Paths may be local or remote (`gs://`, `s3://`, ... through
`tfaction.data.filesystems`); a remote file is read into memory whole.

Files in PyTorch's legacy format (before 1.6, or saved with
`_use_new_zipfile_serialization=False`) and TorchScript archives are
refused with a message saying how to re-save them.

Example:

```python
from tfaction.checkpoints import load_torch_checkpoint

ck = load_torch_checkpoint("epoch_035.pth.tar")
ck["epoch"], ck["state_dict_ema"]["module.cls_head.cls_head.conv.bias"]
```
"""

import contextlib
import io
import os
import zipfile

from tfaction.checkpoints import torch_storages
from tfaction.checkpoints.errors import CheckpointError
from tfaction.checkpoints.torch_unpickler import RestrictedUnpickler
from tfaction.data import filesystems
from tfaction.errors import TfactionError

_ZIP_MAGIC = b"PK\x03\x04"
# A legacy file starts with torch's magic number pickled with protocol 2.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
# A compressed record may expand at most this much (zip-bomb guard;
# PyTorch itself stores records uncompressed).
_MAX_EXPANSION = 1000

RESAVE_HINT = (
    "re-save it once with PyTorch >= 1.6, which writes the zip format: "
    "python -c \"import torch; torch.save(torch.load('old.pth.tar', "
    "map_location='cpu'), 'new.pth.tar')\" (PyTorch >= 2.6 loads with "
    "weights_only=True by default, which runs no code from the file; with "
    "older versions load only files you trust)")


def _not_a_zip_error(head, path):
    if head.startswith(_LEGACY_MAGIC):
        kind = ("PyTorch's legacy format (written before PyTorch 1.6 or with "
                "_use_new_zipfile_serialization=False), which this reader "
                "does not read")
    elif head[257:262] == b"ustar":
        kind = "PyTorch's legacy tar format (before PyTorch 0.4)"
    else:
        return CheckpointError(
            "not a torch.save file: it does not start with a zip header",
            path=path)
    return CheckpointError(f"{kind}; {RESAVE_HINT}", path=path)


@contextlib.contextmanager
def _open_archive(path):
    """The checkpoint as an open `zipfile.ZipFile`, after checking its type."""
    if filesystems.is_local(path):
        with open(path, "rb") as f:
            head = f.read(512)
        source = path
    else:
        source = io.BytesIO(filesystems.read_bytes(path))
        head = source.getvalue()[:512]
    if not head.startswith(_ZIP_MAGIC):
        raise _not_a_zip_error(head, path)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"not a readable zip archive: {e}",
                              path=path) from e
    with archive:
        yield archive


def _archive_folder(archive, path):
    """The `<name>/` folder holding `data.pkl`."""
    folders = sorted({name[:-len("data.pkl")] for name in archive.namelist()
                      if name.endswith("/data.pkl") and name.count("/") == 1})
    if len(folders) != 1:
        raise CheckpointError(
            f"expected one '<name>/data.pkl' record (the torch.save layout), "
            f"found {len(folders)}: {folders[:5]}", path=path)
    folder = folders[0]
    if any(name.startswith(folder + "code/") for name in archive.namelist()):
        raise CheckpointError(
            "a TorchScript archive (torch.jit.save); this reader reads "
            "torch.save files (e.g. torch.save(model.state_dict(), f))",
            path=path)
    return folder


def _read_record(archive, name, path, expected_size=None):
    """The bytes of record `name`, checked before reading."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError("record is missing from the archive",
                              path=path, key=name) from None
    if expected_size is not None and info.file_size != expected_size:
        raise CheckpointError(
            f"record holds {info.file_size} bytes, its pickle declares "
            f"{expected_size}", path=path, key=name)
    if (info.compress_type != zipfile.ZIP_STORED
            and info.file_size > _MAX_EXPANSION * max(info.compress_size, 1)):
        raise CheckpointError(
            f"compressed record expands {info.compress_size} bytes to "
            f"{info.file_size}; refused (more than {_MAX_EXPANSION}x)",
            path=path, key=name)
    try:
        return archive.read(info)
    except Exception as e:  # zlib, CRC, encryption: report with the name
        raise CheckpointError(f"cannot read record: {e}", path=path,
                              key=name) from e


def _byteorder(archive, folder, path):
    name = folder + "byteorder"
    if name not in archive.NameToInfo:
        return "little"
    order = _read_record(archive, name, path)[:16].decode(
        "ascii", "replace").strip()
    if order not in torch_storages.BYTE_ORDERS:
        raise CheckpointError(f"unknown byte order {order!r}; expected "
                              f"'little' or 'big'", path=path, key=name)
    return order


def load_torch_checkpoint(path):
    """The object a `torch.save` file holds, tensors as NumPy arrays.

    Nothing in the file is executed: the pickle may only name PyTorch's
    tensor / storage rebuilders, `collections.OrderedDict` and plain
    containers (see `torch_unpickler`). Tensors become C-contiguous arrays
    on the CPU (dtypes in `torch_storages`; bfloat16 becomes float32), each
    its own copy even where tensors shared a storage.

    Args:
        path: local path or URL of the file (`.pth`, `.pth.tar`, `.pt`).

    Returns:
        The saved object: typically a dict (e.g. `epoch`, `state_dict`,
        `state_dict_ema`, `optimizer`, `scheduler`) or a bare state dict
        (an `OrderedDict` of key -> array).

    Raises:
        FileNotFoundError / OSError: the file cannot be read.
        UnsafeCheckpointError: the pickle names anything else; the message
            names it.
        CheckpointError: legacy or TorchScript format (the message says how
            to re-save), a malformed archive or pickle, or a tensor that
            does not fit its storage; the message names the file and record.

    Example:

    ```python
    ck = load_torch_checkpoint("gs://bucket/epoch_035.pth.tar")
    sorted(ck)  # ['epoch', 'optimizer', 'scheduler', 'state_dict', ...]
    ```
    """
    path = os.fspath(path)
    with _open_archive(path) as archive:
        folder = _archive_folder(archive, path)
        byteorder = _byteorder(archive, folder, path)

        def read_storage(key, storage_type, numel):
            name = f"{folder}data/{key}"
            raw = _read_record(archive, name, path, expected_size=(
                torch_storages.storage_nbytes(storage_type, numel)))
            return torch_storages.storage_array(raw, storage_type, numel,
                                                byteorder)

        pickled = _read_record(archive, folder + "data.pkl", path)
        unpickler = RestrictedUnpickler(io.BytesIO(pickled), read_storage,
                                        path)
        try:
            return unpickler.load()
        except TfactionError:
            raise
        except Exception as e:  # only this package's code ran: bad data
            raise CheckpointError(
                f"malformed data.pkl ({type(e).__name__}: {e})", path=path,
                key=folder + "data.pkl") from e
