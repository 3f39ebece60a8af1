"""PyTorch storages and tensor views as NumPy arrays, without PyTorch.

`torch.save` writes each storage (the flat memory behind one or more
tensors) as raw bytes, and every tensor as a view of one: element offset,
size and stride. Here a storage becomes a 1-D NumPy array in the machine's
byte order (`storage_array`) and a tensor a C-contiguous copy of its view
(`tensor_from_storage`), after checking that the view lies inside the
storage, so a malformed file cannot make NumPy read outside its buffer.

Storage types (the names in the checkpoint's pickle) -> NumPy dtype:

* `FloatStorage`, `DoubleStorage`, `HalfStorage`: float32, float64, float16;
* `BFloat16Storage`: float32 (NumPy has no bfloat16; the conversion is
  exact);
* `LongStorage`, `IntStorage`, `ShortStorage`, `CharStorage`: int64, int32,
  int16, int8;
* `ByteStorage`, `UntypedStorage` (raw bytes): uint8;
* `BoolStorage`: bool;
* `ComplexFloatStorage`, `ComplexDoubleStorage`: complex64, complex128.

Other storages (quantized, float8, unsigned 16/32/64-bit) are refused.

Example:

>>> import numpy as np
>>> raw = np.arange(6, dtype="<f4").tobytes()
>>> storage = storage_array(raw, STORAGE_TYPES["FloatStorage"], 6, "little")
>>> tensor_from_storage(storage, 1, (2, 2), (1, 2)).tolist()
[[1.0, 3.0], [2.0, 4.0]]
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class StorageType:
    """One PyTorch storage class.

    Args:
        name: the class name in the pickle (`"FloatStorage"`).
        disk_dtype: NumPy type code of one element as stored, without byte
            order (`"f4"`; bfloat16 is read as `"u2"`, bool as `"u1"`).
        dtype: NumPy dtype of the arrays returned.
    """

    name: str
    disk_dtype: str
    dtype: str


STORAGE_TYPES = {t.name: t for t in (
    StorageType("FloatStorage", "f4", "float32"),
    StorageType("DoubleStorage", "f8", "float64"),
    StorageType("HalfStorage", "f2", "float16"),
    StorageType("BFloat16Storage", "u2", "float32"),
    StorageType("LongStorage", "i8", "int64"),
    StorageType("IntStorage", "i4", "int32"),
    StorageType("ShortStorage", "i2", "int16"),
    StorageType("CharStorage", "i1", "int8"),
    StorageType("ByteStorage", "u1", "uint8"),
    StorageType("UntypedStorage", "u1", "uint8"),
    StorageType("BoolStorage", "u1", "bool"),
    StorageType("ComplexFloatStorage", "c8", "complex64"),
    StorageType("ComplexDoubleStorage", "c16", "complex128"),
)}

BYTE_ORDERS = {"little": "<", "big": ">"}


def storage_nbytes(storage_type, numel):
    """Bytes on disk of a storage of `numel` elements."""
    return numel * np.dtype(storage_type.disk_dtype).itemsize


def storage_array(raw, storage_type, numel, byteorder):
    """A storage's raw bytes as a 1-D array in native byte order.

    Args:
        raw: the storage record (bytes), exactly
            `storage_nbytes(storage_type, numel)` long.
        storage_type: a `StorageType`.
        numel: number of elements.
        byteorder: `"little"` or `"big"`, the order the file was written in.

    Returns:
        A writable 1-D array of `storage_type.dtype`.

    Raises:
        ValueError: the record's length does not match `numel`.
    """
    disk = np.dtype(storage_type.disk_dtype).newbyteorder(
        BYTE_ORDERS[byteorder])
    if len(raw) != numel * disk.itemsize:
        raise ValueError(f"{len(raw)} bytes, but its pickle declares {numel} "
                         f"{storage_type.name} elements ({numel} x "
                         f"{disk.itemsize} bytes)")
    values = np.frombuffer(raw, disk, count=numel)
    if storage_type.name == "BFloat16Storage":
        # bfloat16 is the upper half of a float32.
        return (values.astype(np.uint32) << 16).view(np.float32)
    if storage_type.name == "BoolStorage":
        return values != 0
    return values.astype(storage_type.dtype)


def int_tuple(value, what):
    """`value` (a tuple or list) as a tuple of non-negative Python ints.

    Args:
        value: the pickled sequence.
        what: its name, for the error message.

    Returns:
        A tuple of ints.

    Raises:
        ValueError: `value` is not a sequence of non-negative ints (bools
            count as not).
    """
    if not isinstance(value, (tuple, list)) or not all(
            type(v) is int and v >= 0 for v in value):
        raise ValueError(f"tensor {what} must be a tuple of non-negative "
                         f"integers, got {value!r}")
    return tuple(value)


def tensor_from_storage(storage, offset, size, stride):
    """A copy of the tensor view `(offset, size, stride)` of `storage`.

    Args:
        storage: 1-D array from `storage_array`.
        offset: index of the tensor's first element in the storage.
        size: the tensor's shape (tuple of ints).
        stride: elements to step in the storage per step along each axis.

    Returns:
        A C-contiguous array of shape `size` and the storage's dtype,
        independent of the storage.

    Raises:
        ValueError: the view is malformed or reaches outside the storage,
            or it holds more elements than its storage (a broadcast view;
            refused so a small file cannot demand unbounded memory).
    """
    size = int_tuple(size, "size")
    stride = int_tuple(stride, "stride")
    (offset,) = int_tuple((offset,), "offset")
    if len(size) != len(stride):
        raise ValueError(f"tensor size {size} and stride {stride} differ in "
                         f"length")
    numel = int(np.prod(size, dtype=object))
    if numel == 0:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise ValueError(f"tensor view (offset {offset}, size {size}, stride "
                         f"{stride}) reaches element {last} of a storage of "
                         f"{storage.size}")
    if numel > storage.size:
        raise ValueError(f"tensor of size {size} holds {numel} elements, "
                         f"more than its storage's {storage.size} (a "
                         f"broadcast view, e.g. from expand()); save "
                         f"tensor.clone() instead")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size,
        strides=[s * storage.itemsize for s in stride], writeable=False)
    return np.array(view, order="C")
