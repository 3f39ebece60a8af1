"""`torch_sort_order` against PyTorch's own CPU sort (tests/anchors/torch_sort)."""

import numpy as np
import pytest

from tests.conftest import REPO_ANCHORS
from tfaction.ops import torch_sort
from tfaction.ops.torch_sort import torch_sort_order


def _cases():
    with np.load(REPO_ANCHORS / "torch_sort" / "cases.npz") as data:
        count = len(data.files) // 2
        return [(data[f"values_{i}"], data[f"order_{i}"])
                for i in range(count)]


def test_matches_pytorch_tie_order():
    cases = _cases()
    assert cases
    for values, want in cases:
        got = torch_sort_order(values)
        np.testing.assert_array_equal(got, want, err_msg=f"n={len(values)}")


@pytest.mark.parametrize("n", [17, 40, 1000])
def test_heap_sort_fallback_sorts(n, monkeypatch):
    """With the depth limit reached at once, the heap sort orders the part
    (the recursion depth PyTorch allows is rarely reached on real data, so
    this path is checked for correctness, not for PyTorch's tie order)."""
    calls = []
    heap_sort = torch_sort._heap_sort

    def spy(a, before, first, last):
        calls.append((first, last))
        heap_sort(a, before, first, last)

    monkeypatch.setattr(torch_sort, "_heap_sort", spy)
    values = np.random.default_rng(n).integers(0, 9, n).astype(np.float32)
    keys = values.tolist()
    order = list(range(n))
    torch_sort._introsort(order, lambda i, j: keys[i] > keys[j], 0, n, 0)
    assert calls == [(0, n)]
    assert sorted(order) == list(range(n))
    assert (np.diff(values[order]) <= 0).all()


def test_empty_and_rejects_non_vectors():
    assert torch_sort_order(np.zeros([0], "float32")).shape == (0,)
    with pytest.raises(ValueError, match="1-D"):
        torch_sort_order(np.zeros((2, 2)))


@pytest.mark.parametrize("n", [2, 17, 1000, 5000])
def test_distinct_values_skip_the_emulation_with_the_same_order(
        n, monkeypatch):
    values = np.random.default_rng(n).permutation(n).astype(np.float32)
    values = values * np.float32(0.37) - np.float32(n / 7)
    want = torch_sort._introsort_order(values)
    emulated, partitions = [], []
    monkeypatch.setattr(torch_sort, "_introsort_order",
                        lambda v: emulated.append(v) or want)
    partition = torch_sort._partition_array
    monkeypatch.setattr(torch_sort, "_partition_array",
                        lambda *a: partitions.append(a) or partition(*a))
    got = torch_sort_order(values)
    assert not emulated and not partitions
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    # a NaN and the order is the step-by-step one
    values[-1] = np.nan
    torch_sort_order(values)
    assert len(emulated) == 1


def _tied(rng, n, kind):
    if kind == "few values":
        return rng.integers(0, 4, n).astype(np.float32)
    if kind == "many ties":
        return rng.integers(0, max(2, n // 3), n).astype(np.float32)
    if kind == "sparse ties":
        values = rng.random(n).astype(np.float32)
        pick = rng.integers(0, n, max(1, n // 50))
        values[pick] = values[rng.integers(0, n, pick.size)]
        return values
    values = np.sort(rng.integers(0, n, n)).astype(np.float32)
    return values[::-1].copy() if kind == "descending" else values


@pytest.mark.parametrize("kind", ["few values", "many ties", "sparse ties",
                                  "ascending", "descending"])
@pytest.mark.parametrize("n", [1, 16, 17, 50, 333, 4000])
def test_tie_path_equals_the_step_by_step_emulation(n, kind):
    rng = np.random.default_rng([n, len(kind)])
    for trial in range(4):
        values = _tied(rng, n, kind)
        if trial == 1:
            values[values == values[0]] = np.float32(-0.0)
            values[0] = np.float32(0.0)   # -0 and +0 compare equal
        np.testing.assert_array_equal(
            torch_sort._tie_order(values), torch_sort._introsort_order(values),
            err_msg=f"n={n} {kind} trial {trial}")
    # ... also where the depth limit hands parts to the heap sort
    for depth in (0, 1, 3):
        np.testing.assert_array_equal(
            torch_sort._tie_order(values, depth),
            torch_sort._introsort_order(values, depth),
            err_msg=f"n={n} {kind} depth {depth}")


def test_tie_path_follows_only_the_parts_that_hold_a_tie(monkeypatch):
    n = 20000
    values = np.random.default_rng(3).permutation(n).astype(np.float32)
    values[123] = values[9876]
    partitions = []
    partition = torch_sort._partition_array
    monkeypatch.setattr(torch_sort, "_partition_array",
                        lambda *a: partitions.append(a) or partition(*a))
    got = torch_sort_order(values)
    np.testing.assert_array_equal(got, torch_sort._introsort_order(values))
    # one part per level down to 16 elements, not the ~2n/16 of the sort
    assert 0 < len(partitions) <= 2 * (n.bit_length() - 1)
