"""A checkpoint's pickle cannot run code: refused names, nothing executed.

Each payload, written opcode by opcode, calls a function that would create
a marker file (the standard library's disassembler checks first that it is
a well-formed opcode stream with a call in it; nothing here unpickles with
the standard library). Read as a checkpoint it must be refused with
`UnsafeCheckpointError` naming the callable, and the marker must not exist.
The payloads sit inside an otherwise valid `torch.save` layout, after a
valid tensor.
"""

import os
import pickletools
import struct

import numpy as np
import pytest

from tests.checkpoints import crafted
from tfaction.checkpoints import UnsafeCheckpointError
from tfaction.checkpoints import load_torch_checkpoint


def _os_system(marker):
    return crafted.call(crafted.global_name("os", "system"),
                        crafted.unicode(f"touch '{marker}'"))


def _builtins_eval(marker):
    return crafted.call(crafted.global_name("builtins", "eval"),
                        crafted.unicode(
                            f"open({str(marker)!r}, 'w').close()"))


def _subprocess_popen(marker):
    argv = b"](" + crafted.unicode("touch") + crafted.unicode(
        str(marker)) + b"e"
    return crafted.call(crafted.global_name("subprocess", "Popen"), argv)


def _inst_opcode(marker):
    # INST: MARK args `i module\nname\n` (looks the name up, calls it).
    return b"(" + crafted.unicode(f"touch '{marker}'") + b"ios\nsystem\n"


def _obj_opcode(marker):
    # OBJ: MARK callable args `o`.
    return (b"(" + crafted.global_name("os", "system")
            + crafted.unicode(f"touch '{marker}'") + b"o")


def _reduce_class(marker, protocol):
    # What the standard pickler writes for an object whose __reduce__ is
    # (os.system, (command,)), memo opcodes included, less PROTO / FRAME /
    # STOP: protocol 2 names the callable with GLOBAL, 4 with STACK_GLOBAL.
    module = os.system.__module__
    command = f"touch '{marker}'"
    if protocol == 2:
        return (crafted.global_name(module, "system") + b"q\x00"
                + crafted.unicode(command) + b"q\x01\x85q\x02Rq\x03")

    def memoized(text):  # SHORT_BINUNICODE or BINUNICODE, then MEMOIZE
        data = text.encode()
        head = (b"\x8c" + bytes([len(data)]) if len(data) < 256 else
                b"X" + struct.pack("<I", len(data)))
        return head + data + b"\x94"

    return (memoized(module) + memoized("system") + b"\x93\x94"
            + memoized(command) + b"\x85\x94R\x94")


PAYLOADS = {
    "os.system": _os_system,
    "builtins.eval": _builtins_eval,
    "subprocess.Popen": _subprocess_popen,
    "os.system (INST)": _inst_opcode,
    "os.system (OBJ)": _obj_opcode,
    f"{os.system.__module__}.system (__reduce__)":
        lambda marker: _reduce_class(marker, 2),
    f"{os.system.__module__}.system (protocol 4)":
        lambda marker: _reduce_class(marker, 4),
}


def _refused_name(case):
    return case.split(" ")[0]


@pytest.mark.parametrize("case", sorted(PAYLOADS))
def test_payload_is_refused_and_never_runs(tmp_path, case):
    build = PAYLOADS[case]
    opcodes = [op.name for op, _, _ in pickletools.genops(
        crafted.pickle_of(build(tmp_path / "live")))]
    assert {"REDUCE", "INST", "OBJ"} & set(opcodes), opcodes

    marker = tmp_path / "pwned"
    body = crafted.dict_of({
        "w": crafted.tensor("0", 2, (2,), (1,)),
        "evil": build(marker)})
    path = crafted.write(tmp_path / "evil.pth.tar", crafted.archive(
        crafted.pickle_of(body), {"0": np.ones(2, "<f4").tobytes()}))
    with pytest.raises(UnsafeCheckpointError) as info:
        load_torch_checkpoint(path)
    message = str(info.value)
    assert f"'{_refused_name(case)}'" in message
    assert "evil.pth.tar" in message
    assert not marker.exists()


def test_payload_in_a_storage_id_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    body = crafted.tuple_of(
        crafted.unicode("storage"), _os_system(marker), crafted.unicode("0"),
        crafted.unicode("cpu"), crafted.integer(1)) + b"Q"
    path = crafted.write(tmp_path / "evil.pth", crafted.archive(
        crafted.pickle_of(body), {"0": b"\x00" * 4}))
    with pytest.raises(UnsafeCheckpointError, match="'os.system'"):
        load_torch_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [
    ("numpy.core.multiarray", "scalar"), ("argparse", "Namespace"),
    ("copyreg", "_reconstructor"), ("builtins", "getattr"),
    ("torch.storage", "_load_from_bytes"), ("torch.nn.modules.conv",
                                            "Conv1d")])
def test_other_classes_are_refused_by_name(tmp_path, module, name):
    body = crafted.call(crafted.global_name(module, name))
    path = crafted.write(tmp_path / "ck.pth",
                         crafted.archive(crafted.pickle_of(body)))
    with pytest.raises(UnsafeCheckpointError, match=f"'{module}.{name}'"):
        load_torch_checkpoint(path)
