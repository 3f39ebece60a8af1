"""The element order of PyTorch's CPU `sort(descending=True)`, in numpy.

PyTorch sorts a float tensor on the CPU with the C++ standard library's
`std::sort` (libstdc++'s introsort) on (value, index) pairs, comparing
`a > b` with NaN first. That sort is not stable: among equal values the
order it leaves depends on the whole input. ActionFormer's reference code
ranks its final detections with it (`batched_nms`), so reproducing its
output order where scores tie exactly needs the same algorithm, step by
step:

* introsort loop while more than 16 elements remain: median of the second,
  middle and last elements moved to the front as the pivot, unguarded
  Hoare partition of the rest, recursion on the right part, loop on the
  left; after `2 * floor(log2(n))` levels a heap sort of the part;
* then one insertion sort: guarded over the first 16 elements, unguarded
  over the rest.

Only the order of equal values needs all that. The final insertion sort is
stable, so it is a stable sort of what the introsort loop leaves, and the
loop only permutes elements inside each part it splits off: a part with no
two equal values can be left as it is, since the stable sort orders it by
value alone (and equal values in two parts keep the parts' order).
`torch_sort_order` therefore follows only the parts that hold a tie, each
partition done with array operations, and then sorts stably; without any
tie, that is a stable sort at once. With a NaN in the input, every step is
emulated.

Example:

>>> torch_sort_order(np.array([1.0, 3.0, 3.0, 2.0], "float32")).tolist()
[1, 2, 3, 0]
"""

import numpy as np

_THRESHOLD = 16  # libstdc++'s _S_threshold


def torch_sort_order(values):
    """Indices that sort `values` descending, in PyTorch's CPU order.

    Args:
        values: 1-D float array.

    Returns:
        int64 array: `values[order]` is non-increasing (NaN first), with
        ties in the order `torch.sort(descending=True)` gives on the CPU.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"torch_sort_order needs a 1-D array, got shape "
                         f"{values.shape}")
    n = values.shape[0]
    if n == 0:
        return np.zeros([0], np.int64)
    if np.isnan(values).any():
        return _introsort_order(values)
    return _tie_order(values)


def _tie_order(values, depth=None):
    """`torch_sort_order` of NaN-free `values`: the introsort loop on the
    parts that hold equal values only, then a stable sort.

    `depth` overrides the depth limit (tests).
    """
    n = values.shape[0]
    order = np.arange(n)
    ranked = np.sort(values)
    tied_values = np.unique(ranked[1:][ranked[1:] == ranked[:-1]])
    if tied_values.size:
        tied = np.isin(values, tied_values)
        keys = values.tolist()

        def greater(i, j):
            return keys[i] > keys[j]

        limit = 2 * (n.bit_length() - 1) if depth is None else depth
        parts = [(0, n, limit)]
        while parts:
            first, last, depth_left = parts.pop()
            while last - first > _THRESHOLD:
                ids = order[first:last]
                ties = values[ids[tied[ids]]]
                if np.unique(ties).size == ties.size:
                    break   # no two equal values left in this part
                if depth_left == 0:
                    part = ids.tolist()
                    _heap_sort(part, greater, 0, len(part))
                    order[first:last] = part
                    break
                depth_left -= 1
                _move_median_to_first(order, greater, first, first + 1,
                                      first + (last - first) // 2, last - 1)
                cut = _partition_array(order, values, first, last)
                parts.append((cut, last, depth_left))
                last = cut
    return order[np.argsort(-values[order], kind="stable")].astype(np.int64)


def _partition_array(order, values, first, last):
    """`_unguarded_partition(first + 1, last, pivot=first)` with arrays.

    The left scan stops at the values `<=` the pivot and the right scan at
    those `>=` it, in the order they lie: until the scans cross, the k-th
    swap exchanges the k-th left stop with the k-th right stop (counted
    from the right), and none of them is visited twice. The scans cross at
    the first k whose left stop is not left of its right stop; the cut is
    that left stop, or the (k-1)-th right stop when the scan reaches it
    first (it then holds a swapped value `<=` the pivot).
    """
    pivot = values[order[first]]
    x = values[order[first + 1:last]]
    left = np.flatnonzero(x <= pivot)
    right = np.flatnonzero(x >= pivot)[::-1]
    count = min(left.size, right.size)
    crossed = left[:count] >= right[:count]
    k = int(np.argmax(crossed)) if crossed.any() else count
    cut = int(left[k]) if k < left.size else x.size
    if k > 0:
        cut = min(cut, int(right[k - 1]))
    if cut >= x.size:
        raise RuntimeError("unguarded partition ran past its part: the "
                           "pivot is not a median of three of it")
    a, b = first + 1 + left[:k], first + 1 + right[:k]
    order[a], order[b] = order[b], order[a]
    return first + 1 + cut


def _introsort_order(values, depth=None):
    """`torch_sort_order` step by step: libstdc++'s introsort in Python.

    `depth` overrides the depth limit (tests).
    """
    n = values.shape[0]
    # Python floats and lists: element-wise work is much faster on them.
    keys = values.tolist()
    nan = [v != v for v in keys]
    order = list(range(n))

    def before(i, j):
        """PyTorch's comparator: `(isnan(a) && !isnan(b)) || a > b`."""
        return (nan[i] and not nan[j]) or keys[i] > keys[j]

    _introsort(order, before, 0, n,
               2 * (n.bit_length() - 1) if depth is None else depth)
    if n > _THRESHOLD:
        _insertion_sort(order, before, 0, _THRESHOLD)
        for i in range(_THRESHOLD, n):
            _unguarded_linear_insert(order, before, i)
    else:
        _insertion_sort(order, before, 0, n)
    return np.asarray(order, np.int64)


def _introsort(a, before, first, last, depth):
    while last - first > _THRESHOLD:
        if depth == 0:
            _heap_sort(a, before, first, last)
            return
        depth -= 1
        mid = first + (last - first) // 2
        _move_median_to_first(a, before, first, first + 1, mid, last - 1)
        cut = _unguarded_partition(a, before, first + 1, last, first)
        _introsort(a, before, cut, last, depth)
        last = cut


def _move_median_to_first(a, before, result, x, y, z):
    if before(a[x], a[y]):
        if before(a[y], a[z]):
            pick = y
        elif before(a[x], a[z]):
            pick = z
        else:
            pick = x
    elif before(a[x], a[z]):
        pick = x
    elif before(a[y], a[z]):
        pick = z
    else:
        pick = y
    a[result], a[pick] = a[pick], a[result]


def _unguarded_partition(a, before, first, last, pivot):
    while True:
        while before(a[first], a[pivot]):
            first += 1
        last -= 1
        while before(a[pivot], a[last]):
            last -= 1
        if not first < last:
            return first
        a[first], a[last] = a[last], a[first]
        first += 1


def _insertion_sort(a, before, first, last):
    for i in range(first + 1, last):
        value = a[i]
        if before(value, a[first]):
            a[first + 1:i + 1] = a[first:i]
            a[first] = value
        else:
            _unguarded_linear_insert(a, before, i)


def _unguarded_linear_insert(a, before, last):
    value = a[last]
    prev = last - 1
    while before(value, a[prev]):
        a[last] = a[prev]
        last = prev
        prev -= 1
    a[last] = value


# libstdc++'s heap sort (`__partial_sort(first, last, last)`): make_heap,
# then pop_heap down to one element, with its adjust/push steps.
def _heap_sort(a, before, first, last):
    length = last - first
    if length >= 2:
        for parent in range((length - 2) // 2, -1, -1):
            _adjust_heap(a, before, first, parent, length, a[first + parent])
    while last - first > 1:
        last -= 1
        value = a[last]
        a[last] = a[first]
        _adjust_heap(a, before, first, 0, last - first, value)


def _adjust_heap(a, before, first, hole, length, value):
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if before(a[first + child], a[first + child - 1]):
            child -= 1
        a[first + hole] = a[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole] = a[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and before(a[first + parent], value):
        a[first + hole] = a[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    a[first + hole] = value
