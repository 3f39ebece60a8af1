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
    emulated = []
    monkeypatch.setattr(torch_sort, "_introsort_order",
                        lambda v: emulated.append(v) or want)
    got = torch_sort_order(values)
    assert not emulated
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    # one tie (or a NaN) and the order is PyTorch's step-by-step one
    values[-1] = values[0]
    torch_sort_order(values)
    values[-1] = np.nan
    torch_sort_order(values)
    assert len(emulated) == 2
