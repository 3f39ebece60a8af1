"""Frame-wise alignment metrics: Kendall's tau and CARL retrieval precision@K.

Both follow the official TCC (`tcc/evaluation/kendalls_tau.py`) and CARL
(`evaluation/{kendalls_tau,retrieval}.py`) code number for number: distances
come from `scipy.spatial.distance.cdist` (float64, the same call the official
code makes), nearest neighbours are the first index on ties, and tau is
`scipy.stats.kendalltau` (tau-b, tie-corrected). Retrieval ranks tied
distances in the order of NumPy's generic (non-SIMD) introsort argsort
(`numpy_sort`), so results do not depend on the CPU's AVX-512 support.

Example:

>>> import numpy as np
>>> video = np.arange(20, dtype=np.float32).reshape(10, 2)
>>> round(float(kendalls_tau([video, video.copy()], stride=1)), 12)
1.0
"""

import numpy as np
from scipy.spatial.distance import cdist
from scipy.stats import kendalltau

from tfaction.evaluation import numpy_sort

DEFAULT_DISTANCE = "sqeuclidean"


def _strided(embs_list, stride):
    if int(stride) < 1:
        raise ValueError(f"stride must be >= 1, got {stride!r}")
    return [np.asarray(e)[::int(stride)] for e in embs_list]


def nearest_neighbours(query, candidate, distance=DEFAULT_DISTANCE):
    """Index of the nearest candidate frame of every query frame.

    The official alignment rule: `argmin` over `cdist` rows, so ties go to
    the first candidate frame.

    Args:
        query: (Tq, D) embeddings.
        candidate: (Tc, D) embeddings.
        distance: any `scipy.spatial.distance.cdist` metric name.

    Returns:
        int64 array (Tq,) of candidate frame indices.

    Example:

    >>> nearest_neighbours(np.eye(3), np.eye(3)[::-1]).tolist()
    [2, 1, 0]
    """
    return np.argmin(cdist(query, candidate, distance), axis=1).astype(
        np.int64)


def alignment_tau(nns):
    """Kendall's tau-b between frame order and nearest-neighbour indices.

    Args:
        nns: (T,) nearest candidate index of each query frame.

    Returns:
        float; NaN when `nns` is constant (tau-b undefined).

    Example:

    >>> round(alignment_tau(np.array([0, 2, 1, 3])), 4)
    0.6667
    """
    return float(kendalltau(np.arange(len(nns)), nns).correlation)


def kendalls_tau_pairs(embs_list, stride, distance=DEFAULT_DISTANCE):
    """Tau of every ordered pair (i, j), i != j, in the official loop order.

    Args:
        embs_list: list of per-video embeddings, each (T_i, D).
        stride: frame sub-sampling step applied to both videos.
        distance: any `scipy.spatial.distance.cdist` metric name.

    Returns:
        float64 array of length N * (N - 1); NaN where the nearest-neighbour
        sequence is constant (tau-b undefined).

    Example:

    >>> v = np.eye(3)
    >>> kendalls_tau_pairs([v, v], stride=1).tolist()
    [1.0, 1.0]
    """
    feats = _strided(embs_list, stride)
    taus = []
    for i, query in enumerate(feats):
        for j, cand in enumerate(feats):
            if i == j:
                continue
            taus.append(alignment_tau(nearest_neighbours(query, cand,
                                                         distance)))
    return np.asarray(taus, dtype=np.float64)


def kendalls_tau(embs_list, stride, distance=DEFAULT_DISTANCE):
    """Mean Kendall's tau over ordered video pairs, NaN pairs dropped.

    Args:
        embs_list: list of per-video embeddings, each (T_i, D).
        stride: frame sub-sampling step (`KENDALLS_TAU_STRIDE`).
        distance: `cdist` metric (`KENDALLS_TAU_DISTANCE`, sqeuclidean).

    Returns:
        float, the mean tau (NaN if every pair is NaN or there are < 2 videos).

    Example:

    >>> v = np.random.RandomState(0).rand(12, 4)
    >>> round(float(kendalls_tau([v, v], stride=2)), 12)
    1.0
    """
    taus = kendalls_tau_pairs(embs_list, stride, distance)
    taus = taus[~np.isnan(taus)]
    return float(np.mean(taus)) if taus.size else float("nan")


def _official_argsort_rows(dists, kmax):
    """`np.argsort(dists, axis=1)` of NumPy's generic introsort (the order
    CARL's reference numbers have), exact in the first `kmax` columns.

    Rows whose ties cannot change the first `kmax` entries use a stable sort
    (same entries there); others run the exact port, cached per distinct row.
    """
    dists = np.asarray(dists, np.float64)
    order = np.argsort(dists, axis=1, kind="stable")
    n = dists.shape[1]
    if n <= numpy_sort.SMALL_QUICKSORT + 1 or kmax <= 0:
        return order  # insertion sort: stable
    s = np.take_along_axis(dists, order, axis=1)
    m = min(kmax, n - 1)
    eq = (s[:, 1:m + 1] == s[:, :m]) | (np.isnan(s[:, 1:m + 1])
                                        & np.isnan(s[:, :m]))
    cache = {}
    for r in np.flatnonzero(eq.any(axis=1)):
        key = dists[r].tobytes()
        if key not in cache:
            cache[key] = numpy_sort.argsort(dists[r])
        order[r] = cache[key]
    return order


def retrieval_precision(embs_list, labels_list, ks, stride,
                        distance=DEFAULT_DISTANCE):
    """CARL retrieval "AP@K" (precision@K) for several K at once.

    For each strided query frame of video i, the K nearest strided frames
    among all *other* videos (concatenated in dataset order) are ranked with
    `np.argsort(dists, axis=1)` exactly as CARL does (its default sort: ties
    among equal distances are ordered as NumPy's generic introsort leaves
    them, reproduced by `numpy_sort` whatever the CPU);
    precision = fraction sharing the query's label; averaged over frames, then
    over videos (NaN videos dropped).

    Args:
        embs_list: list of per-video embeddings (T_i, D).
        labels_list: list of per-video integer labels (T_i,).
        ks: iterable of K values.
        stride: frame sub-sampling step.
        distance: `cdist` metric.

    Returns:
        dict {K: float precision}.

    Example:

    >>> e = [np.array([[0.], [1.]]), np.array([[0.], [1.]])]
    >>> l = [np.array([0, 1]), np.array([0, 1])]
    >>> retrieval_precision(e, l, [1], stride=1)
    {1: 1.0}
    """
    ks = [int(k) for k in ks]
    feats = _strided(embs_list, stride)
    labs = [np.asarray(lab)[::int(stride)] for lab in labels_list]
    per_video = np.zeros((len(feats), len(ks)), dtype=np.float64)
    for i, (query, qlab) in enumerate(zip(feats, labs)):
        others = [j for j in range(len(feats)) if j != i]
        cand = np.concatenate([feats[j] for j in others], axis=0)
        clab = np.concatenate([labs[j] for j in others], axis=0)
        order = _official_argsort_rows(cdist(query, cand, distance),
                                       max(ks, default=0))
        hits = clab[order] == qlab.astype(np.int64)[:, None]
        for n, k in enumerate(ks):
            # Same accumulation order as the official per-frame loop.
            total = 0
            for row in hits[:, :k]:
                total += np.mean(row)
            per_video[i, n] = total / len(query)
    out = {}
    for n, k in enumerate(ks):
        vals = per_video[:, n]
        vals = vals[~np.isnan(vals)]
        out[k] = float(np.mean(vals)) if vals.size else float("nan")
    return out
