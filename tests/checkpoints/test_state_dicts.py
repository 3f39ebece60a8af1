"""`state_dict` / `select_state_dict`: picking and naming the weights."""

import collections
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tfaction.checkpoints import CheckpointError
from tfaction.checkpoints import load_torch_checkpoint
from tfaction.checkpoints import select_state_dict
from tfaction.checkpoints import state_dict
from tfaction.checkpoints import summary


def test_authors_checkpoint_copies_without_module_prefix(checkpoint_bundles):
    for root in checkpoint_bundles:
        path = root / "epoch_001.pth.tar"
        with np.load(root / "weights.npz") as npz:
            weights = dict(npz)
        ema = state_dict(path, "state_dict_ema")
        assert sorted(ema) == sorted(weights)  # `module.` removed
        for key, want in weights.items():
            np.testing.assert_array_equal(ema[key], want, err_msg=key)
        default = state_dict(path)  # the EMA copy comes first
        assert all(np.array_equal(default[k], ema[k]) for k in ema)
        raw = state_dict(path, "state_dict")
        assert sorted(raw) == sorted(weights)
        assert not all(np.array_equal(raw[k], ema[k]) for k in ema)


def test_parallel_prefix_is_removed_only_from_every_key():
    w = np.zeros(1)
    wrapped = {"state_dict": collections.OrderedDict(
        [("module.a.weight", w), ("module.module.b", w)])}
    assert sorted(select_state_dict(wrapped)) == ["a.weight", "module.b"]
    mixed = {"model": {"module.a": w, "b": w}}
    assert sorted(select_state_dict(mixed)) == ["b", "module.a"]
    bare = collections.OrderedDict([("module.a", w)])
    assert list(select_state_dict(bare)) == ["a"]


def test_missing_key_lists_what_the_file_holds(torch_fixtures):
    path = torch_fixtures / "tensors.pth"
    with pytest.raises(CheckpointError) as info:
        state_dict(path, "state_dict_ema")
    message = str(info.value)
    assert "tensors.pth" in message and "'state_dict_ema'" in message
    assert "tensors: dict of 17 entries, 17 arrays" in message
    assert "plain: dict of 11 entries, 0 arrays" in message
    with pytest.raises(CheckpointError, match="no state dict under any of"):
        state_dict(path)
    assert sorted(state_dict(path, "tensors")) == sorted(
        load_torch_checkpoint(path)["tensors"])


def test_entries_that_are_not_state_dicts(torch_fixtures):
    with pytest.raises(CheckpointError,
                       match="key 'plain': entry 'int' is int, not a "
                             "named tensor"):
        state_dict(torch_fixtures / "tensors.pth", "plain")
    with pytest.raises(CheckpointError, match="expected a state dict"):
        select_state_dict({"epoch": 3}, "epoch", path="ck.pth")
    with pytest.raises(CheckpointError, match="expected a dict of state"):
        select_state_dict([np.zeros(1)], path="ck.pth")


def test_summary():
    assert summary({"epoch": 1, "w": np.zeros((2, 3), np.float16),
                    "sd": {"a": np.zeros(1), "n": 2}}) == [
        "epoch: int", "w: array float16[2, 3]",
        "sd: dict of 2 entries, 1 arrays"]


def test_local_reads_never_import_tensorflow(torch_fixtures):
    code = ("import sys; from tfaction.checkpoints import state_dict; "
            f"state_dict({str(torch_fixtures / 'tensors.pth')!r}, 'tensors'); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
