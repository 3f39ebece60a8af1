"""Hand-made `torch.save`-layout files for the checkpoint-reader tests.

Built with the standard library only: pickles are written opcode by opcode
(protocol 2, as `torch.save` writes them), so a test can put any name,
view or storage in front of the reader, including malicious ones.
"""

import io
import struct
import zipfile


def unicode(text):
    """BINUNICODE: a str."""
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def integer(value):
    """BININT: a signed 32-bit int."""
    return b"J" + struct.pack("<i", value)


def global_name(module, name):
    """GLOBAL: pushes `module.name` (the unpickler's `find_class`)."""
    return b"c" + f"{module}\n{name}\n".encode()


def tuple_of(*items):
    """MARK items TUPLE."""
    return b"(" + b"".join(items) + b"t"


def call(function, *args):
    """`function(*args)`: the callable, an argument tuple, REDUCE."""
    return function + tuple_of(*args) + b"R"


def dict_of(items):
    """A dict from `{str: pickled value}` (EMPTY_DICT MARK ... SETITEMS)."""
    return b"}(" + b"".join(unicode(k) + v for k, v in items.items()) + b"u"


def storage_id(key, numel, storage="FloatStorage", module="torch"):
    """A persistent id `("storage", type, key, "cpu", numel)`, loaded."""
    return tuple_of(unicode("storage"), global_name(module, storage),
                    unicode(key), unicode("cpu"), integer(numel)) + b"Q"


def tensor(key, numel, size, stride, offset=0, storage="FloatStorage"):
    """`_rebuild_tensor_v2` of a view of storage `key`, as torch writes it."""
    return call(global_name("torch._utils", "_rebuild_tensor_v2"),
                storage_id(key, numel, storage), integer(offset),
                tuple_of(*map(integer, size)),
                tuple_of(*map(integer, stride)), b"\x89",
                call(global_name("collections", "OrderedDict")))


def pickle_of(body):
    """A complete protocol-2 pickle of the object `body` builds."""
    return b"\x80\x02" + body + b"."


def archive(data_pkl, storages=(), byteorder="little", folder="archive",
            extra=()):
    """The bytes of a zip in `torch.save`'s layout.

    Args:
        data_pkl: the `data.pkl` bytes.
        storages: `{key: raw bytes}` written as `<folder>/data/<key>`.
        byteorder: content of `<folder>/byteorder`, or None for none.
        folder: the archive's top-level folder.
        extra: `{record name: bytes}` of further records.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{folder}/data.pkl", data_pkl)
        if byteorder is not None:
            z.writestr(f"{folder}/byteorder", byteorder)
        for key, raw in dict(storages).items():
            z.writestr(f"{folder}/data/{key}", raw)
        for name, raw in dict(extra).items():
            z.writestr(f"{folder}/{name}", raw)
        z.writestr(f"{folder}/version", "3\n")
    return buffer.getvalue()


def write(path, data):
    """Writes `data` to `path` and returns `path`."""
    path.write_bytes(data)
    return path
