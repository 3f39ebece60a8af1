"""NumPy's generic `argsort` (kind="quicksort") order, reproduced exactly.

Official evaluation codes rank with `x.argsort()` / `x.argsort()[::-1]`,
NumPy's default *unstable* introsort. For distinct keys every sort agrees;
for tied keys the order is whatever the algorithm leaves:

* arrays of at most 16 elements are insertion-sorted, which is stable, so
  ties keep input order (reverse input order after `[::-1]`);
* longer arrays are partitioned (median-of-3 pivot, explicit stack pushing
  the larger partition, depth limit `2 * floor(log2(n))` with a heapsort
  fallback, insertion sort for partitions of at most 16 elements), which
  scrambles ties deterministically.

NumPy >= 1.25 on AVX-512 CPUs dispatches float argsort to a SIMD sort with a
*different* tie order, so the official codes' results depend on the machine.
This module reproduces the generic (non-SIMD) algorithm of
`numpy/core/src/npysort/quicksort.cpp` (`aquicksort_`, `aheapsort_` in
`heapsort.cpp`), i.e. what the official code gives on a machine without
AVX-512 (or with `NPY_DISABLE_CPU_FEATURES` set), which is what the
reference numbers were produced with. NaN sorts last (`a < b or (b != b and
a == a)`), as in NumPy.

Only arrays longer than 16 with tied keys need the generic algorithm; all
others use NumPy's stable sort, which gives the same permutation. The
generic algorithm is run by NumPy itself on `long double` keys where that
type is wider than a double (x86-64 Linux: 80-bit): NumPy dispatches only
4- and 8-byte argsorts to SIMD sorts, so its `long double` argsort is the
generic `aquicksort_` template, with the same comparisons (float64 ->
long double is exact and keeps the order, NaN last). Where `long double` is
a double (Windows, ARM macOS) the pure Python port `_aquicksort` runs
instead (about 30x slower); the tests check that both give NumPy's generic
order.

Example:

```python
order = argsort(scores)[::-1]   # == scores.argsort()[::-1] (generic NumPy)
```
"""

import numpy as np

SMALL_QUICKSORT = 15  # partitions with pr - pl <= 15 are insertion-sorted
# NumPy's argsort of this type is its generic introsort (no SIMD dispatch).
WIDE_LONGDOUBLE = np.dtype(np.longdouble).itemsize > 8


def _keys(x):
    """Python list whose `<` equals NumPy's float `less` (NaN last)."""
    if np.isnan(x).any():
        # Dense ranks: NaNs share the top rank, -0.0 == 0.0.
        finite = ~np.isnan(x)
        uniq = np.unique(x[finite])
        r = np.full(x.shape[0], uniq.shape[0], np.int64)
        r[finite] = np.searchsorted(uniq, x[finite])
        return r.tolist()
    return x.tolist()


def _sift_down(v, a, off, i, n, tmp):
    """Moves index `tmp` down from heap slot i of a 1-based heap of size n."""
    vt = v[tmp]
    j = i << 1
    while j <= n:
        if j < n and v[a[off + j]] < v[a[off + j + 1]]:
            j += 1
        if vt < v[a[off + j]]:
            a[off + i] = a[off + j]
            i = j
            j += j
        else:
            break
    a[off + i] = tmp


def _aheapsort(v, a, base, n):
    """`aheapsort_` on a[base:base + n] (1-based heap indexing)."""
    off = base - 1
    for l in range(n >> 1, 0, -1):  # heapify
        _sift_down(v, a, off, l, n, a[off + l])
    while n > 1:  # move the maximum to the end, restore the heap
        tmp = a[off + n]
        a[off + n] = a[off + 1]
        n -= 1
        _sift_down(v, a, off, 1, n, tmp)


def _aquicksort(v):
    """`aquicksort_` of the key list `v`; returns the index list."""
    num = len(v)
    a = list(range(num))
    if num < 2:
        return a
    stack = []
    pl, pr = 0, num - 1
    cdepth = (num.bit_length() - 1) * 2  # npy_get_msb(num) * 2
    while True:
        if cdepth < 0:
            _aheapsort(v, a, pl, pr - pl + 1)
        else:
            while pr - pl > SMALL_QUICKSORT:
                pm = pl + ((pr - pl) >> 1)
                if v[a[pm]] < v[a[pl]]:
                    a[pm], a[pl] = a[pl], a[pm]
                if v[a[pr]] < v[a[pm]]:
                    a[pr], a[pm] = a[pm], a[pr]
                if v[a[pm]] < v[a[pl]]:
                    a[pm], a[pl] = a[pl], a[pm]
                vp = v[a[pm]]
                pi, pj = pl, pr - 1
                a[pm], a[pj] = a[pj], a[pm]
                while True:
                    pi += 1
                    while v[a[pi]] < vp:
                        pi += 1
                    pj -= 1
                    while vp < v[a[pj]]:
                        pj -= 1
                    if pi >= pj:
                        break
                    a[pi], a[pj] = a[pj], a[pi]
                pk = pr - 1
                a[pi], a[pk] = a[pk], a[pi]
                cdepth -= 1
                # Push the larger partition.
                if pi - pl < pr - pi:
                    stack.append((pi + 1, pr, cdepth))
                    pr = pi - 1
                else:
                    stack.append((pl, pi - 1, cdepth))
                    pl = pi + 1
            # Insertion sort.
            for i in range(pl + 1, pr + 1):
                vi = a[i]
                vv = v[vi]
                j = i
                while j > pl and vv < v[a[j - 1]]:
                    a[j] = a[j - 1]
                    j -= 1
                a[j] = vi
        if not stack:
            break
        pl, pr, cdepth = stack.pop()
    return a


def has_ties(x):
    """Whether a 1-D float array has two equal keys (two NaNs count).

    Example:

    >>> has_ties(np.array([1., 2., 1.])), has_ties(np.array([1., 2.]))
    (True, False)
    """
    x = np.asarray(x, np.float64).reshape(-1)
    s = np.sort(x)
    return bool((s[1:] == s[:-1]).any() or np.isnan(s).sum() > 1)


def argsort(x):
    """`np.argsort(x)` (kind="quicksort") of NumPy's generic introsort.

    Args:
        x: 1-D float array (compared as float64; float32 values compare
            identically).

    Returns:
        int64 [N] permutation.

    Example:

    >>> argsort(np.zeros(20))[:6]
    array([ 0, 17, 16, 15, 14, 13])
    """
    x = np.asarray(x, np.float64).reshape(-1)
    if x.shape[0] <= SMALL_QUICKSORT + 1 or not has_ties(x):
        # Insertion sort (small) is stable; distinct keys have one order.
        return np.argsort(x, kind="stable").astype(np.int64)
    if WIDE_LONGDOUBLE:
        return np.argsort(x.astype(np.longdouble),
                          kind="quicksort").astype(np.int64)
    return np.array(_aquicksort(_keys(x)), np.int64)


def argsort_desc(x):
    """The official `x.argsort()[::-1]` (highest first).

    Example:

    >>> argsort_desc(np.array([0.5, 0.8, 0.8, 0.1]))
    array([2, 1, 0, 3])
    """
    return argsort(x)[::-1].copy()


def grouped_argsort_desc(groups, scores):
    """Per-group `scores[idx].argsort()[::-1]`, idx = the group's members in
    input order; groups ascending.

    Equivalent to running the official per-group sort on every group, but
    vectorised: only groups of more than 16 members with tied scores run the
    exact port; elsewhere ties are in reverse input order (what the official
    insertion sort gives, and every order is the same without ties).

    Args:
        groups: int [N] group keys.
        scores: float [N].

    Returns:
        int64 [N] indices, sorted by group, then official descending order.

    Example:

    >>> grouped_argsort_desc(np.array([1, 0, 1, 0]),
    ...                      np.array([.5, .2, .5, .9]))
    array([3, 1, 2, 0])
    """
    groups = np.asarray(groups).reshape(-1)
    scores = np.asarray(scores, np.float64).reshape(-1)
    n = scores.shape[0]
    order = np.lexsort((-np.arange(n), -scores, groups))
    if n <= SMALL_QUICKSORT + 1:
        return order.astype(np.int64)
    g, s = groups[order], scores[order]
    same = g[1:] == g[:-1]
    tie = same & ((s[1:] == s[:-1]) | (np.isnan(s[1:]) & np.isnan(s[:-1])))
    if not tie.any():
        return order.astype(np.int64)
    start = np.flatnonzero(np.r_[True, ~same])
    stop = np.r_[start[1:], n]
    big = (stop - start) > SMALL_QUICKSORT + 1
    tied = np.add.reduceat(np.r_[tie, False].astype(np.int64), start) > 0
    # reduceat sums tie flags of pairs (k, k + 1) starting in the group; the
    # last flag of a group compares across groups and is False via `same`.
    for a, b in zip(start[big & tied], stop[big & tied]):
        idx = np.sort(order[a:b])  # input order
        order[a:b] = idx[argsort(scores[idx])[::-1]]
    return order.astype(np.int64)
