"""`load_torch_checkpoint`: files written by PyTorch, and malformed ones.

References: `fixtures/tensors.pth` and `fixtures/legacy.pth` (PyTorch
2.13, see fixtures/README.md) and the authors' `epoch_001.pth.tar` of the
`actionformer_*` anchors bundles; malformed archives are built by
`crafted`.
"""

import collections
import struct
import uuid

import numpy as np
import pytest

from tests.checkpoints import crafted
from tfaction.checkpoints import CheckpointError
from tfaction.checkpoints import load_torch_checkpoint
from tfaction.data import filesystems


def _expected_tensors():
    """What fixtures/README.md's script saved, recomputed in NumPy."""
    base = np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5 - 3
    flat = base.reshape(-1)
    return {
        "float32": base, "permuted": base.transpose(2, 0, 1),
        "slice": base[1, :, 1:3], "step": flat[2::5],
        "float64": base.astype(np.float64),
        "float16": base.astype(np.float16),
        "bfloat16": base,  # exactly representable, read as float32
        "complex64": (flat[:4] - 1j * flat[4:8]).astype(np.complex64),
        "int64": np.arange(-5, 5, dtype=np.int64),
        "int32": np.arange(-5, 5, dtype=np.int32),
        "int16": np.arange(-5, 5, dtype=np.int16),
        "int8": np.arange(-5, 5, dtype=np.int8),
        "uint8": np.arange(0, 250, 25, dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
        "parameter": np.ones(2, np.float32),
    }


def test_pytorch_written_tensors_and_values(torch_fixtures):
    ck = load_torch_checkpoint(torch_fixtures / "tensors.pth")
    tensors = ck["tensors"]
    expected = _expected_tensors()
    assert sorted(tensors) == sorted(expected)
    for name, want in expected.items():
        got = tensors[name]
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert got.flags.c_contiguous and got.flags.writeable, name
    # Views of one storage come back as independent copies.
    tensors["float32"][...] = 0
    np.testing.assert_array_equal(tensors["permuted"],
                                  expected["permuted"])
    assert ck["plain"] == {
        "int": 7, "float": 0.25, "str": "x", "none": None, "bool": True,
        "list": [1, 2.0, "a"], "tuple": (1, (2, 3)), "set": {1, 2},
        "bytes": b"\x00\xff", "size": (2, 3),
        "ordered": collections.OrderedDict(a=1)}


def test_authors_checkpoint_ema_copy_is_weights_npz(checkpoint_bundles):
    for root in checkpoint_bundles:
        ck = load_torch_checkpoint(root / "epoch_001.pth.tar")
        assert sorted(ck) == ["epoch", "optimizer", "scheduler",
                              "state_dict", "state_dict_ema"]
        with np.load(root / "weights.npz") as npz:
            weights = dict(npz)
        prefixed = {f"module.{k}": v for k, v in weights.items()}
        for copy in ("state_dict_ema", "state_dict"):
            assert sorted(ck[copy]) == sorted(prefixed), copy
        for key, want in prefixed.items():
            got = ck["state_dict_ema"][key]
            assert got.dtype == want.dtype and got.shape == want.shape, key
            np.testing.assert_array_equal(got, want, err_msg=key)
        changed = [k for k, v in prefixed.items()
                   if not np.array_equal(ck["state_dict"][k], v)]
        assert len(changed) > len(prefixed) // 2, root.name
        # Optimizer state: AdamW moments per parameter, steps as 0-d arrays.
        state = ck["optimizer"]["state"]
        assert len(state) == len(weights)
        assert all(s["step"].shape == () for s in state.values())
        assert ck["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
        assert isinstance(ck["scheduler"]["base_lrs"], list)


def test_remote_path(torch_fixtures):
    url = f"ram://tfaction-tests/{uuid.uuid4().hex}/tensors.pth"
    filesystems.atomic_write_bytes(
        url, (torch_fixtures / "tensors.pth").read_bytes())
    ck = load_torch_checkpoint(url)
    np.testing.assert_array_equal(ck["tensors"]["slice"],
                                  _expected_tensors()["slice"])


def test_legacy_format_says_how_to_resave(torch_fixtures):
    with pytest.raises(CheckpointError, match="legacy format") as info:
        load_torch_checkpoint(torch_fixtures / "legacy.pth")
    message = str(info.value)
    assert "legacy.pth" in message
    assert "torch.save(torch.load(" in message


@pytest.mark.parametrize("content", [b"", b"not a checkpoint",
                                     b"\x80\x02}q\x00."])
def test_other_files_are_not_checkpoints(tmp_path, content):
    path = crafted.write(tmp_path / "x.pth", content)
    with pytest.raises(CheckpointError, match="does not start with a zip"):
        load_torch_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_torch_checkpoint(tmp_path / "absent.pth")


def _one_tensor(tmp_path, size, stride, offset=0, numel=4, raw=None,
                **archive_args):
    """Loads a crafted archive holding one float32 tensor of storage 0."""
    pkl = crafted.pickle_of(crafted.dict_of(
        {"w": crafted.tensor("0", numel, size, stride, offset)}))
    if raw is None:
        raw = np.arange(numel, dtype="<f4").tobytes()
    path = crafted.write(tmp_path / "ck.pth", crafted.archive(
        pkl, {"0": raw}, **archive_args))
    return load_torch_checkpoint(path)["w"]


def test_byte_order(tmp_path):
    big = struct.pack(">4f", 1.5, -2.0, 3.25, 4.0)
    got = _one_tensor(tmp_path, (4,), (1,), raw=big, byteorder="big")
    np.testing.assert_array_equal(got, [1.5, -2.0, 3.25, 4.0])
    assert got.dtype == np.float32 and got.dtype.isnative
    # Files from before PyTorch 1.10 have no byteorder record: little.
    got = _one_tensor(tmp_path, (2, 2), (2, 1), byteorder=None)
    np.testing.assert_array_equal(got, [[0, 1], [2, 3]])
    with pytest.raises(CheckpointError, match="unknown byte order"):
        _one_tensor(tmp_path, (4,), (1,), byteorder="middle")


@pytest.mark.parametrize("size, stride, offset, match", [
    ((5,), (1,), 0, "reaches element 4 of a storage of 4"),
    ((2, 2), (2, 1), 1, "reaches element 4"),
    ((4,), (2,), 0, "reaches element 6"),
    ((8,), (0,), 0, "broadcast view"),
    ((2,), (-1,), 1, "non-negative"),
    ((2,), (1, 1), 0, "differ in length"),
])
def test_views_outside_their_storage_are_refused(tmp_path, size, stride,
                                                  offset, match):
    with pytest.raises(CheckpointError, match=match) as info:
        _one_tensor(tmp_path, size, stride, offset)
    assert "data/0" in str(info.value)


def test_storage_record_must_match_its_declared_size(tmp_path):
    with pytest.raises(CheckpointError, match="holds 12 bytes.*declares 16"):
        _one_tensor(tmp_path, (3,), (1,), raw=b"\x00" * 12)


def test_malformed_archives(tmp_path):
    tensor = crafted.pickle_of(crafted.dict_of(
        {"w": crafted.tensor("0", 1, (1,), (1,))}))
    cases = [
        (crafted.archive(tensor), "archive/data/0.*missing"),
        (crafted.archive(tensor, {"0": b"\x00" * 4},
                         extra={"code/m.py": b""}), "TorchScript"),
        (crafted.archive(crafted.pickle_of(crafted.call(
            crafted.global_name("torch._utils", "_rebuild_tensor_v2"),
            crafted.unicode("0"), *[crafted.integer(0)] * 5))),
         "storage is str"),
        (crafted.archive(crafted.pickle_of(crafted.tuple_of(
            crafted.unicode("x")) + b"Q")), "persistent id"),
        (crafted.archive(b"\x80\x02}("), "malformed data.pkl"),
    ]
    for data, match in cases:
        path = crafted.write(tmp_path / "bad.pth", data)
        with pytest.raises(CheckpointError, match=match):
            load_torch_checkpoint(path)
    path = crafted.write(tmp_path / "nodata.pth", crafted.archive(
        tensor, folder="a/b"))
    with pytest.raises(CheckpointError, match="one '<name>/data.pkl'"):
        load_torch_checkpoint(path)


def test_other_rebuilders_and_raw_storages(tmp_path):
    rebuild = crafted.global_name("torch._utils", "_rebuild_tensor")
    with_state = crafted.global_name("torch._utils",
                                     "_rebuild_parameter_with_state")
    body = crafted.dict_of({
        "v1": crafted.call(rebuild, crafted.storage_id("0", 4),
                           crafted.integer(2), crafted.tuple_of(
                               crafted.integer(2)),
                           crafted.tuple_of(crafted.integer(1))),
        "parameter": crafted.call(
            with_state, crafted.tensor("0", 4, (4,), (1,)), b"\x88",
            crafted.call(crafted.global_name("collections", "OrderedDict")),
            b"}"),
        "raw": crafted.storage_id("1", 3, "UntypedStorage", "torch.storage"),
    })
    path = crafted.write(tmp_path / "ck.pth", crafted.archive(
        crafted.pickle_of(body), {"0": np.arange(4, dtype="<f4").tobytes(),
                                  "1": b"\x01\x02\xff"}))
    ck = load_torch_checkpoint(path)
    np.testing.assert_array_equal(ck["v1"], [2.0, 3.0])
    np.testing.assert_array_equal(ck["parameter"], [0.0, 1.0, 2.0, 3.0])
    assert ck["raw"].dtype == np.uint8 and ck["raw"].tolist() == [1, 2, 255]


def test_storage_declared_twice_differently(tmp_path):
    body = crafted.tuple_of(crafted.tensor("0", 4, (4,), (1,)),
                            crafted.tensor("0", 2, (2,), (1,), storage=(
                                "DoubleStorage")))
    path = crafted.write(tmp_path / "ck.pth", crafted.archive(
        crafted.pickle_of(body), {"0": b"\x00" * 16}))
    with pytest.raises(CheckpointError, match="declared as 2 x DoubleStorage "
                                              "and as 4 x FloatStorage"):
        load_torch_checkpoint(path)


def test_bytes_only_as_latin1_literals(tmp_path):
    encode = crafted.global_name("_codecs", "encode")
    for encoding, ok in (("latin1", True), ("rot13", False)):
        body = crafted.call(encode, crafted.unicode("ab"),
                            crafted.unicode(encoding))
        path = crafted.write(tmp_path / "ck.pth", crafted.archive(
            crafted.pickle_of(body)))
        if ok:
            assert load_torch_checkpoint(path) == b"ab"
        else:
            with pytest.raises(CheckpointError, match="latin1"):
                load_torch_checkpoint(path)


def test_storage_reuse_is_bounded(tmp_path):
    def views(count):
        return crafted.pickle_of(crafted.tuple_of(
            *[crafted.tensor("0", 4, (4,), (1,))] * count))

    raw = {"0": np.arange(4, dtype="<f4").tobytes()}
    path = crafted.write(tmp_path / "ok.pth", crafted.archive(views(8), raw))
    assert len(load_torch_checkpoint(path)) == 8
    path = crafted.write(tmp_path / "bad.pth", crafted.archive(views(9), raw))
    with pytest.raises(CheckpointError, match="data/0.*more than 8 times"):
        load_torch_checkpoint(path)


def test_unsupported_storage_type(tmp_path):
    body = crafted.tensor("0", 4, (4,), (1,), storage="QInt8Storage")
    path = crafted.write(tmp_path / "ck.pth", crafted.archive(
        crafted.pickle_of(body), {"0": b"\x00" * 4}))
    with pytest.raises(CheckpointError, match="'torch.QInt8Storage' is not "
                                              "supported"):
        load_torch_checkpoint(path)
