"""`numpy_sort` against NumPy's own generic (non-SIMD) argsort.

NumPy's float argsort is run in a subprocess with the AVX-512 dispatch
disabled (`NPY_DISABLE_CPU_FEATURES`), which selects the generic introsort
that official evaluation codes ran with; on a CPU without AVX-512 the
variable is empty and NumPy uses the generic sort anyway.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from tfaction.evaluation import numpy_sort as ns

_CHILD = """
import sys
import numpy as np
data = np.load(sys.argv[1])
out = {k: np.argsort(data[k]) for k in data.files}
np.savez(sys.argv[2], **out)
"""


def _avx512_features():
    try:
        from numpy.core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 2
        from numpy._core._multiarray_umath import __cpu_features__
    return [f for f, on in __cpu_features__.items()
            if on and f.startswith("AVX512")]


def _cases():
    rng = np.random.RandomState(0)
    sizes = list(range(0, 200)) + [255, 256, 257, 511, 512,
                                   1000, 1023, 1024, 1025, 2047, 2048, 3000]
    sizes += rng.randint(200, 3001, 80).tolist()
    cases = []
    for n in sizes:
        cases.append(np.zeros(n))                          # all equal
        for k in (1, 2, 3, 5):
            cases.append(rng.choice(rng.rand(k), n))       # k distinct values
        x = rng.choice(rng.rand(3), n)
        cases.append(np.sort(x))                           # sorted, ties
        cases.append(np.sort(x)[::-1].copy())              # reversed, ties
        cases.append(rng.rand(n))                          # random floats
        cases.append(np.round(rng.rand(n), 2))             # float ties
        x = rng.choice(np.array([0.0, -0.0, 1.0, np.nan, -np.inf, np.inf]),
                       n)
        cases.append(x)                                    # NaN, inf, +-0
        x = rng.choice(rng.rand(4), n)
        x[rng.rand(n) < 0.1] = np.nan
        cases.append(x)
        x = (np.arange(n) % 7).astype(np.float64)          # organ-pipe-ish
        cases.append(np.r_[x, x[::-1]][:n])
    # Killer-ish input driving deep recursion / heapsort fallback.
    for n in (1000, 3000):
        x = np.zeros(n)
        x[::2] = np.arange(n // 2)
        cases.append(x)
        cases.append(np.repeat(np.arange(n // 20), 20).astype(float)[::-1]
                     .copy())
    return cases


def test_matches_generic_numpy_argsort(tmp_path):
    cases = _cases()
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, **{f"a{i}": x for i, x in enumerate(cases)})
    env = dict(os.environ,
               NPY_DISABLE_CPU_FEATURES=" ".join(_avx512_features()))
    subprocess.run([sys.executable, "-c", _CHILD, str(src), str(dst)],
                   env=env, check=True, capture_output=True, text=True)
    want = np.load(dst)
    bad = [i for i, x in enumerate(cases)
           if not np.array_equal(ns.argsort(x), want[f"a{i}"])]
    assert len(cases) > 3000
    assert not bad, f"{len(bad)} of {len(cases)} differ, e.g. size " \
                    f"{cases[bad[0]].size}"


def test_float32_values_compare_the_same():
    x = np.random.RandomState(1).choice(
        np.float32([0.1, 0.2, 0.3]), 500)
    # float32 -> float64 is exact, so comparisons (and the order) agree.
    assert np.array_equal(ns.argsort(x), ns.argsort(x.astype(np.float64)))


def test_small_or_untied_is_stable_order():
    rng = np.random.RandomState(2)
    for n in range(17):
        x = rng.choice([0.0, 1.0], n)
        np.testing.assert_array_equal(ns.argsort(x),
                                      np.argsort(x, kind="stable"))
    x = rng.rand(1000)
    np.testing.assert_array_equal(ns.argsort(x), np.argsort(x))
    np.testing.assert_array_equal(ns.argsort_desc(x), np.argsort(x)[::-1])


def test_grouped_matches_per_group_loop():
    rng = np.random.RandomState(3)
    for n in (0, 5, 40, 300):
        groups = rng.randint(0, 4, n)
        scores = rng.choice([0.1, 0.5, 0.9], n)
        want = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        want = np.concatenate(
            [idx[ns.argsort_desc(scores[idx])] for idx in want]
            or [np.zeros(0, np.int64)])
        np.testing.assert_array_equal(ns.grouped_argsort_desc(groups, scores),
                                      want)


def test_has_ties():
    assert ns.has_ties([np.nan, 1.0, np.nan])
    assert not ns.has_ties([np.nan, 1.0])
    assert ns.has_ties([0.0, -0.0])


def test_heapsort_fallback_matches_numpy_heapsort():
    """The depth-limit fallback `aheapsort_` is NumPy's (never SIMD)
    `kind="heapsort"` argsort; compare its tie order directly."""
    rng = np.random.RandomState(5)
    for n in list(range(0, 80)) + [500, 3000]:
        for k in (1, 2, 5):
            x = rng.choice(rng.rand(k), n)
            if n % 3 == 0 and n:
                x[rng.rand(n) < 0.2] = np.nan
            a = list(range(n))
            ns._aheapsort(ns._keys(x), a, 0, n)
            np.testing.assert_array_equal(a, np.argsort(x, kind="heapsort"))


def test_python_port_matches_the_long_double_path():
    """`argsort` runs NumPy's own generic sort on long double keys where
    that type is wider than a double; the pure Python port (used where it
    is not) must give the same order."""
    if not ns.WIDE_LONGDOUBLE:
        pytest.skip("long double is a double here: only the port runs")
    rng = np.random.RandomState(6)
    for n in (17, 40, 300, 2500):
        for k in (1, 3, 50):
            x = np.round(rng.choice(rng.rand(k), n), 3)
            if n % 2:
                x[rng.rand(n) < 0.1] = np.nan
            np.testing.assert_array_equal(
                ns._aquicksort(ns._keys(x)),
                np.argsort(x.astype(np.longdouble), kind="quicksort"))
