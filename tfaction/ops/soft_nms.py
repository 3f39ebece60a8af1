"""1-D (Soft-)NMS of ActionFormer's `batched_nms`: numpy and in-graph TF.

Both functions reproduce `libs/utils/nms.py: batched_nms` with the C++ kernel
`libs/utils/csrc/nms_cpu.cpp` of the reference, in float32:

* `method="gaussian"` (C++ method 2, `nms_method: soft`) and `"linear"`
  (method 1): repeat — pick the maximum remaining score (the **first** in the
  current array order on ties), swap it to the front and emit it with its
  decayed score; decay every remaining score by `exp(-IoU^2 / sigma)`
  (gaussian) or by `1 - IoU` where `IoU >= iou_threshold` (linear), with
  `IoU = inter / (len_i + len_j - inter)`, `len = x2 - x1 + 1e-6`; a score
  that falls below `min_score` is removed by moving the **last** element into
  its slot (this bookkeeping decides tie order and is reproduced exactly).
* `method="hard"` (`NMSop`, `nms_method: nms`): keep scores `> min_score`
  (when `min_score > 0`), visit in descending score order (stable) and drop
  every later segment with `IoU >= iou_threshold`.
* `multiclass=True`: each class (ascending id) independently, each capped at
  `max_seg_num`; `multiclass=False`: one class-agnostic pass, then, if
  `voting_thresh > 0`, segment voting: each kept segment becomes
  `sum_j w_kj seg_j / sum_j w_kj`, `w_kj = [IoU_kj >= voting_thresh]
  score_j IoU_kj` over all input candidates with their original scores
  (IoU without the `1e-6`; a kept segment whose weights sum to 0 — only
  zero-length ones — is left unchanged instead of becoming NaN).
* Finally a sort by score (descending) and the first `max_seg_num`. The
  reference sorts with PyTorch's CPU sort, which is not stable; `soft_nms`
  reproduces its order of exactly tied scores (`torch_sort`), `soft_nms_tf`
  sorts stably (tied scores may then come out in another order).

`soft_nms` is host-side numpy (vectorised per pick; with many classes,
classes of similar size at once per pick). `soft_nms_tf` is the
same algorithm with TF ops (`tf.while_loop` over at most `max_seg_num` picks,
the swap-with-last bookkeeping done with cumulative sums and
`tf.searchsorted`), usable inside a SavedModel serving signature on a
fixed-size, validity-masked candidate buffer. It uses TF ops (not
`keras.ops`) because it needs `tf.while_loop`, batched `tf.gather` and
`tf.searchsorted`; keep it out of `jit_compile`.

Example:

>>> import numpy as np
>>> segs = np.array([[0, 10], [0, 10], [20, 30]], "float32")
>>> s, sc, lb = soft_nms(segs, np.array([0.9, 0.8, 0.7], "float32"),
...                      np.zeros(3, "int64"))
>>> [round(float(v), 4) for v in sc]
[0.9, 0.7, 0.1083]
"""

import numpy as np
import tensorflow as tf

from tfaction.ops.torch_sort import torch_sort_order


METHODS = ("gaussian", "linear", "hard")
# Soft-NMS of more groups (classes) than this runs them all at once
# (`_np_soft_rows`): 2-3x faster at THUMOS' 20 classes; with few groups
# the per-group loop on shrinking slices is as fast or faster.
_MIN_ROWS = 4


def _exp32(x):
    """float32 `exp`, correctly rounded (computed in float64).

    The reference calls the C library's `expf`; numpy's and TF's own
    float32 `exp` differ from it in the last bit for many arguments, which
    changes decayed scores. The correctly rounded value equals glibc's
    `expf` for all but about 6 in 10,000 arguments (1 ulp then).
    """
    return np.exp(np.asarray(x, np.float64)).astype(np.float32)


def _check(method, max_seg_num):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if int(max_seg_num) <= 0:
        raise ValueError(f"max_seg_num must be positive, got {max_seg_num}")


# A table of groups is as wide as its largest group, so small groups beside
# a large one are mostly padding: a group with fewer candidates than this
# fraction of its table's largest starts the next table. Measured on
# ActionFormer's candidates: the picks 1.2x faster at Ego4D's 110 classes
# of 46 to 565, unchanged at THUMOS' 20 classes of 80 to 1,137.
_TABLE_SPLIT = 0.3


def _tables(groups):
    """Group indices per `_np_soft_rows` table, largest groups first."""
    tables = []
    for k in sorted(range(len(groups)), key=lambda k: -groups[k].shape[0]):
        if (not tables or groups[k].shape[0]
                < _TABLE_SPLIT * groups[tables[-1][0]].shape[0]):
            tables.append([])
        tables[-1].append(k)
    return tables


# --------------------------------------------------------------------- numpy
def _decay(a_x1, a_x2, a_area, b_x1, b_x2, b_area, method, sigma, thr):
    """The C++ kernel's factor on `b`'s score once `a` is picked, float32.

    Broadcasts: one pick against the rest, picks against their rows, or
    every pair at once, with the same operations element by element.
    """
    inter = np.maximum(np.float32(0), np.minimum(a_x2, b_x2)
                       - np.maximum(a_x1, b_x1))
    ovr = inter / ((a_area + b_area) - inter)
    if method == "gaussian":
        return _exp32(-(ovr * ovr) / sigma)
    return np.where(ovr >= thr, np.float32(1) - ovr, np.float32(1))


# A group this small whose picks reach a quarter of it or more gets every
# pair's factor up front (at most 1,024^2 of them), so each pick gathers
# one row instead of recomputing it: 2.1x faster at ActivityNet's ~180
# class-agnostic candidates, most of whose cost is per-call overhead.
_PAIR_TABLE_MAX = 1024


def _np_soft_single(x1, x2, scores, method, sigma, iou_threshold, min_score,
                    max_num):
    """C++ `softnms_1d_cpu` on one group; returns (element ids, scores)."""
    area = (x2 - x1) + np.float32(1e-6)
    order = np.arange(scores.shape[0])
    sc = scores.copy()
    n = sc.shape[0]
    picks, pick_scores = [], []
    i = 0
    sigma = np.float32(sigma)
    thr = np.float32(iou_threshold)
    min_score = np.float32(min_score)
    pairs = None
    if n <= _PAIR_TABLE_MAX and n <= 4 * min(n, max_num):
        with np.errstate(invalid="ignore", divide="ignore"):
            pairs = _decay(x1[:, None], x2[:, None], area[:, None], x1, x2,
                           area, method, sigma, thr)
    while i < n and len(picks) < max_num:
        m = i + int(np.argmax(sc[i:n]))          # first maximum
        order[i], order[m] = order[m], order[i]
        sc[i], sc[m] = sc[m], sc[i]
        e = order[i]
        picks.append(e)
        pick_scores.append(sc[i])
        rest = order[i + 1:n]
        w = (pairs[e, rest] if pairs is not None else
             _decay(x1[e], x2[e], area[e], x1[rest], x2[rest], area[rest],
                    method, sigma, thr))
        new = (sc[i + 1:n] * w).astype(np.float32)
        removed = new < min_score
        if removed.any():
            kept_count = int((~removed).sum())
            # Swap-with-last compaction: holes (removed) left of the new
            # end are filled, left to right, by kept elements beyond it,
            # right to left.
            holes = np.nonzero(removed[:kept_count])[0]
            movers = (np.nonzero(~removed[kept_count:])[0]
                      + kept_count)[::-1]
            rest[holes] = rest[movers]
            new[holes] = new[movers]
            n = i + 1 + kept_count
        sc[i + 1:i + 1 + new.shape[0]] = new
        i += 1
    return np.asarray(picks, np.int64), np.asarray(pick_scores, np.float32)


def _np_soft_rows(x1, x2, area, groups, scores, method, sigma,
                  iou_threshold, min_score, max_num):
    """`_np_soft_single` on every group at once (groups = rows).

    The same per-pick steps, each a few array operations on a `[groups,
    width]` table instead of a Python loop per group, with the same
    float32 arithmetic, tie order and swap-with-last compaction: the
    results equal `_np_soft_single`'s group by group. Returns a list of
    `(candidate ids, scores)` per group (ids into `x1`, not into the
    group).
    """
    count = np.array([g.shape[0] for g in groups])
    rows, width = len(groups), int(count.max())
    perm = np.zeros((rows, width), np.int64)   # candidate ids, padded
    sc = np.zeros((rows, width), np.float32)
    for r, g in enumerate(groups):
        perm[r, :g.shape[0]] = g
        sc[r, :g.shape[0]] = scores[g]
    # Coordinates move with their candidate (no gather per pick), each
    # pick only touches the columns still alive in some group, and the rows
    # of finished groups are dropped: 1.8x faster than gathering by `perm`
    # over the whole table at THUMOS' 20 classes x ~400 candidates, 4.4x at
    # Ego4D's 110 classes of 20 to 565.
    px1, px2, parea = x1[perm], x2[perm], area[perm]
    n = count.copy()
    live = np.arange(rows)    # the table's rows: these groups
    picks = np.zeros((rows, min(max_num, width)), np.int64)
    num_picks = np.zeros(rows, np.int64)
    pick_sc = np.zeros(picks.shape, np.float32)
    sigma = np.float32(sigma)
    thr = np.float32(iou_threshold)
    min_score = np.float32(min_score)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(picks.shape[1]):
            active = i < n
            count_active = int(active.sum())
            if count_active == 0:
                break
            if 2 * count_active <= live.shape[0]:
                # Half the groups are done (small classes finish early):
                # drop their rows so later picks touch only live ones.
                perm, sc, px1, px2, parea, n, live = (
                    a[active] for a in (perm, sc, px1, px2, parea, n, live))
                active = active[active]
            tables = (perm, sc, px1, px2, parea)
            row = np.arange(live.shape[0])
            hi = int(n.max())
            num_picks[live] += active
            alive = np.arange(hi - i)[None] < (n - i)[:, None]
            m = i + np.argmax(np.where(alive, sc[:, i:hi], -np.inf), axis=1)
            m = np.where(active, m, i)                  # first maximum
            for t in tables:
                t_i, t_m = t[row, i], t[row, m]
                t[row, m] = t_i
                t[row, i] = t_m
            picks[live, i], pick_sc[live, i] = perm[:, i], sc[:, i]
            j = i + 1
            w = _decay(px1[:, i:j], px2[:, i:j], parea[:, i:j],
                       px1[:, j:hi], px2[:, j:hi], parea[:, j:hi], method,
                       sigma, thr)
            rpos = np.arange(hi - j)[None]
            region = rpos < (n - j)[:, None]
            # Columns past a group's end are dead (never alive again), so
            # decaying them too is harmless.
            new = (sc[:, j:hi] * w).astype(np.float32)
            removed = region & (new < min_score)
            kept_n = region.sum(axis=1) - removed.sum(axis=1)
            sc[:, j:hi] = new
            if removed.any():
                # Swap-with-last compaction, all groups at once: the k-th
                # hole (removed, left of the new end) of a group takes its
                # k-th kept element beyond the new end counted from the
                # right; np.nonzero lists both row by row, in equal numbers
                # per row.
                hole_r, hole_c = np.nonzero(removed
                                            & (rpos < kept_n[:, None]))
                mover = region & ~removed & (rpos >= kept_n[:, None])
                move_r, move_c = np.nonzero(mover[:, ::-1])
                move_c = hi - 1 - move_c
                for t in tables:
                    t[hole_r, j + hole_c] = t[move_r, move_c]
            n = np.where(active, j + kept_n, n)
    return [(picks[r, :num_picks[r]], pick_sc[r, :num_picks[r]])
            for r in range(rows)]


def _np_hard_single(x1, x2, scores, iou_threshold, min_score, max_num):
    """`NMSop`: score filter, stable descending greedy NMS."""
    ids = np.arange(scores.shape[0])
    if min_score > 0:
        ids = ids[scores > np.float32(min_score)]
    ids = ids[np.argsort(-scores[ids], kind="stable")]
    area = (x2 - x1) + np.float32(1e-6)
    keep = np.ones(ids.shape[0], bool)
    for a in range(ids.shape[0]):
        if not keep[a]:
            continue
        i, rest = ids[a], ids[a + 1:]
        inter = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest])
                           - np.maximum(x1[i], x1[rest]))
        ovr = inter / ((area[i] + area[rest]) - inter)
        keep[a + 1:] &= ~(ovr >= np.float32(iou_threshold))
    ids = ids[keep][:max_num]
    return ids.astype(np.int64), scores[ids]


def soft_nms(segments, scores, labels, iou_threshold=0.1, min_score=0.001,
             max_seg_num=200, method="gaussian", multiclass=True, sigma=0.5,
             voting_thresh=0.0):
    """ActionFormer `batched_nms` on the host (numpy, float32).

    Args:
        segments: `[N, 2]` candidate `[start, end]` (feature-grid units).
        scores: `[N]` candidate scores.
        labels: `[N]` integer class ids.
        iou_threshold: IoU threshold of `"linear"`/`"hard"` (unused by
            `"gaussian"`, as in the reference).
        min_score: scores decayed below this are dropped.
        max_seg_num: cap per class and on the final output.
        method: `"gaussian"` (reference `soft`), `"linear"` or `"hard"`.
        multiclass: per-class NMS (True) or class-agnostic (False).
        sigma: Gaussian decay parameter.
        voting_thresh: segment-voting IoU threshold, class-agnostic only;
            `<= 0` disables voting.

    Returns:
        `(segments [M, 2] float32, scores [M] float32, labels [M] int64)`,
        sorted by score (descending), `M <= max_seg_num`.

    Example:

    >>> import numpy as np
    >>> s, sc, lb = soft_nms(np.array([[0, 10], [1, 11]], "float32"),
    ...                      np.array([0.9, 0.8], "float32"),
    ...                      np.array([0, 1]))
    >>> lb.tolist()
    [0, 1]

    Reference:
        Bodla et al., Soft-NMS, ICCV 2017; `batched_nms` in
        `libs/utils/nms.py` and `softnms_1d_cpu` / `nms_1d_cpu` in
        `libs/utils/csrc/nms_cpu.cpp` of happyharrycn/actionformer_release.
    """
    _check(method, max_seg_num)
    max_seg_num = int(max_seg_num)
    segs = np.asarray(segments, np.float32).reshape(-1, 2)
    sc = np.asarray(scores, np.float32).reshape(-1)
    lb = np.asarray(labels).astype(np.int64).reshape(-1)
    if sc.shape[0] == 0:
        return (np.zeros((0, 2), np.float32), np.zeros((0,), np.float32),
                np.zeros((0,), np.int64))
    x1 = np.ascontiguousarray(segs[:, 0])
    x2 = np.ascontiguousarray(segs[:, 1])
    groups = ([np.nonzero(lb == c)[0] for c in np.unique(lb)] if multiclass
              else [np.arange(sc.shape[0])])
    found = {}  # group index -> (candidate ids, scores)
    if method != "hard" and len(groups) > _MIN_ROWS:
        area = (x2 - x1) + np.float32(1e-6)
        for table in _tables(groups):
            if len(table) > _MIN_ROWS:
                found.update(zip(table, _np_soft_rows(
                    x1, x2, area, [groups[k] for k in table], sc, method,
                    sigma, iou_threshold, min_score, max_seg_num)))
    for k, g in enumerate(groups):
        if k in found:
            continue
        if method == "hard":
            p, s = _np_hard_single(x1[g], x2[g], sc[g], iou_threshold,
                                   min_score, max_seg_num)
        else:
            p, s = _np_soft_single(x1[g], x2[g], sc[g], method, sigma,
                                   iou_threshold, min_score, max_seg_num)
        found[k] = (g[p], s)
    # in class order, which the final sort's tie order depends on
    ids = [found[k][0] for k in range(len(groups))]
    out_sc = [found[k][1] for k in range(len(groups))]
    ids = np.concatenate(ids)
    out_sc = np.concatenate(out_sc).astype(np.float32)
    out_segs = segs[ids]
    if not multiclass and voting_thresh > 0 and ids.shape[0] > 0:
        out_segs = _np_voting(out_segs, segs, sc, voting_thresh)
    # the reference's final `sort(descending=True)`, tie order included
    order = torch_sort_order(out_sc)[:max_seg_num]
    return out_segs[order], out_sc[order], lb[ids][order]


def _np_voting(kept, all_segs, all_scores, thresh):
    # Which candidates vote, and their weights, in float32 as the reference
    # (`seg_voting`: float32 IoU compared with the float32 threshold, weight
    # = score * IoU); the weighted mean in float64, rounded once (the
    # reference's float32 matrix product rounds along its BLAS kernel's
    # summation order instead: the two agree to the last bit or few).
    kept = kept.astype(np.float32)
    ks, ke = kept[:, 0:1], kept[:, 1:2]
    s, e = all_segs[None, :, 0], all_segs[None, :, 1]
    inter = np.maximum(np.minimum(ke, e) - np.maximum(ks, s), np.float32(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / ((ke - ks) + (e - s) - inter)
    vote = iou >= np.float32(thresh)
    w = np.where(vote, all_scores[None] * iou, np.float32(0)).astype(
        np.float64)
    total = w.sum(axis=1, keepdims=True)
    refined = (w @ all_segs.astype(np.float64)) / np.where(total > 0, total, 1)
    return np.where(total > 0, refined, kept).astype(np.float32)


# ------------------------------------------------------------------------ TF
def _tf_ovr(ex1, ex2, earea, px1, px2, parea):
    inter = tf.maximum(0.0, tf.minimum(ex2[:, None], px2)
                       - tf.maximum(ex1[:, None], px1))
    return inter / ((earea[:, None] + parea) - inter)


def _tf_length(x1, x2):
    """`(x2 - x1) + 1e-6` in float32, safe from graph rewrites.

    Grappler's constant folding reassociates `(x2 - x1) + c` (constant
    push-down), which rounds differently in float32; through float64 each
    step is rounded to float32 exactly once, as the reference computes it.
    """
    diff = tf.cast(tf.cast(x2, tf.float64) - tf.cast(x1, tf.float64),
                   tf.float32)
    eps = tf.constant(float(np.float32(1e-6)), tf.float64)
    return tf.cast(tf.cast(diff, tf.float64) + eps, tf.float32)


def _tf_gaussian_decay(ovr, sigma):
    """`exp(-(ovr * ovr) / sigma)` with the reference's float32 roundings.

    Written so that graph rewrites cannot change the result: Grappler's
    constant folding turns a division by the constant `sigma` into a
    multiplication by its reciprocal, which rounds differently in float32.
    The square is exact in float64 and rounded once to float32; the
    quotient is taken in float64 (where a reciprocal rewrite errs far below
    float32 resolution) and rounded once; `exp` is `_exp32`'s.
    """
    ovr64 = tf.cast(ovr, tf.float64)
    square = tf.cast(tf.cast(ovr64 * ovr64, tf.float32), tf.float64)
    sigma64 = tf.constant(float(np.float32(sigma)), tf.float64)
    exponent = tf.cast(tf.cast(-square / sigma64, tf.float32), tf.float64)
    return tf.cast(tf.exp(exponent), tf.float32)


def _tf_soft_loop(x1, x2, area, perm, sc, n, max_num, method, sigma,
                  iou_threshold, min_score):
    """Batched (rows = groups) C++ Soft-NMS; returns picks [R, K]."""
    rows = tf.shape(perm)[0]
    width = tf.shape(perm)[1]
    pos = tf.range(width)[None]
    neg_inf = tf.constant(-np.inf, tf.float32)
    out_id = tf.zeros([rows, max_num], tf.int32)
    out_sc = tf.zeros([rows, max_num], tf.float32)
    out_ok = tf.zeros([rows, max_num], tf.bool)
    cols = tf.range(max_num)[None]

    def cond(i, perm, sc, n, out_id, out_sc, out_ok):
        return tf.reduce_any(i < n)

    def body(i, perm, sc, n, out_id, out_sc, out_ok):
        active = i < n                                       # [R]
        alive = (pos >= i) & (pos < n[:, None])
        s_alive = tf.where(alive, sc, neg_inf)
        mx = tf.reduce_max(s_alive, axis=1)
        m = tf.reduce_min(tf.where(alive & (s_alive == mx[:, None]), pos,
                                   width), axis=1)
        m = tf.where(active, m, tf.minimum(i, width - 1))
        at_i, at_m = pos == i, pos == m[:, None]
        perm_i, sc_i = perm[:, i], sc[:, i]
        perm_m = tf.gather(perm, m[:, None], batch_dims=1)[:, 0]
        sc_m = tf.gather(sc, m[:, None], batch_dims=1)[:, 0]
        perm = tf.where(at_i, perm_m[:, None],
                        tf.where(at_m, perm_i[:, None], perm))
        sc = tf.where(at_i, sc_m[:, None], tf.where(at_m, sc_i[:, None], sc))
        at_out = (cols == i) & active[:, None]
        out_id = tf.where(at_out, perm_m[:, None], out_id)
        out_sc = tf.where(at_out, sc_m[:, None], out_sc)
        out_ok = out_ok | at_out

        region = (pos > i) & (pos < n[:, None])
        ovr = _tf_ovr(tf.gather(x1, perm_m), tf.gather(x2, perm_m),
                      tf.gather(area, perm_m), tf.gather(x1, perm),
                      tf.gather(x2, perm), tf.gather(area, perm))
        if method == "gaussian":
            w = _tf_gaussian_decay(ovr, sigma)
        else:
            w = tf.where(ovr >= iou_threshold, 1.0 - ovr, 1.0)
        new = tf.where(region, sc * w, sc)
        removed = region & (new < min_score)
        kept = region & ~removed
        final_n = i + 1 + tf.reduce_sum(tf.cast(kept, tf.int32), axis=1)
        # Swap-with-last compaction (see `_np_soft_single`).
        hole = removed & (pos < final_n[:, None])
        mover = kept & (pos >= final_n[:, None])
        hole_rank = tf.cumsum(tf.cast(hole, tf.int32), axis=1) - 1
        mover_cum = tf.cumsum(tf.cast(mover, tf.int32), axis=1)
        want = mover_cum[:, -1:] - hole_rank
        src = tf.searchsorted(mover_cum, want, side="left",
                              out_type=tf.int32)
        src = tf.where(hole, tf.minimum(src, width - 1), pos)
        perm = tf.gather(perm, src, batch_dims=1)
        sc = tf.gather(new, src, batch_dims=1)
        n = tf.where(active, final_n, n)
        return i + 1, perm, sc, n, out_id, out_sc, out_ok

    limit = tf.minimum(max_num, width)
    _, _, _, _, out_id, out_sc, out_ok = tf.while_loop(
        cond, body, (tf.constant(0), perm, sc, n, out_id, out_sc, out_ok),
        maximum_iterations=limit)
    return out_id, out_sc, out_ok


def _tf_hard_loop(x1, x2, area, perm, sc, n, max_num, iou_threshold):
    """Batched greedy NMS in descending score order (stable)."""
    rows = tf.shape(perm)[0]
    width = tf.shape(perm)[1]
    pos = tf.range(width)[None]
    neg_inf = tf.constant(-np.inf, tf.float32)
    cols = tf.range(max_num)[None]
    alive = pos < n[:, None]
    px1, px2, parea = tf.gather(x1, perm), tf.gather(x2, perm), tf.gather(
        area, perm)

    def cond(i, alive, out_id, out_sc, out_ok):
        return tf.reduce_any(alive)

    def body(i, alive, out_id, out_sc, out_ok):
        active = tf.reduce_any(alive, axis=1)
        s_alive = tf.where(alive, sc, neg_inf)
        mx = tf.reduce_max(s_alive, axis=1)
        m = tf.reduce_min(tf.where(alive & (s_alive == mx[:, None]), pos,
                                   width), axis=1)
        m = tf.minimum(m, width - 1)
        e = tf.gather(perm, m[:, None], batch_dims=1)[:, 0]
        at_out = (cols == i) & active[:, None]
        out_id = tf.where(at_out, e[:, None], out_id)
        out_sc = tf.where(at_out, mx[:, None], out_sc)
        out_ok = out_ok | at_out
        ovr = _tf_ovr(tf.gather(x1, e), tf.gather(x2, e), tf.gather(area, e),
                      px1, px2, parea)
        alive = alive & ~(ovr >= iou_threshold) & (pos != m[:, None])
        return i + 1, alive, out_id, out_sc, out_ok

    init = (tf.constant(0), alive, tf.zeros([rows, max_num], tf.int32),
            tf.zeros([rows, max_num], tf.float32),
            tf.zeros([rows, max_num], tf.bool))
    _, _, out_id, out_sc, out_ok = tf.while_loop(
        cond, body, init, maximum_iterations=tf.minimum(max_num, width))
    return out_id, out_sc, out_ok


def soft_nms_tf(segments, scores, labels, valid=None, num_classes=None,
                iou_threshold=0.1, min_score=0.001, max_seg_num=200,
                method="gaussian", multiclass=True, sigma=0.5,
                voting_thresh=0.0):
    """ActionFormer `batched_nms` in the TF graph, on a padded buffer.

    Same algorithm and numbers as `soft_nms` (float32), for a candidate
    buffer of any (static or dynamic) length with a validity mask; the
    output has the static length `max_seg_num`. Per-class NMS runs all
    classes at once as rows of one `tf.while_loop` (cost
    `O(max_seg_num * num_classes * max_per_class_count)`).

    Args:
        segments: `[N, 2]` float candidate `[start, end]`.
        scores: `[N]` float scores.
        labels: `[N]` integer class ids; with `multiclass`, ids outside
            `[0, num_classes)` are ignored.
        valid: optional `[N]` bool, False for buffer padding.
        num_classes: Python int, required when `multiclass`.
        iou_threshold, min_score, max_seg_num, method, multiclass, sigma,
        voting_thresh: as in `soft_nms` (Python values).

    Returns:
        `(segments [K, 2] float32, scores [K] float32, labels [K] int64,
        num_detections int32 scalar)` with `K = max_seg_num`, sorted by score
        (descending); rows `>= num_detections` hold segments 0, scores 0 and
        label -1.

    Example:

    >>> import numpy as np
    >>> s, sc, lb, k = soft_nms_tf(np.array([[0, 10], [0, 10]], "float32"),
    ...                            np.array([0.9, 0.8], "float32"),
    ...                            np.array([0, 0]), num_classes=1,
    ...                            max_seg_num=4)
    >>> int(k), [round(float(v), 4) for v in sc.numpy()]
    (2, [0.9, 0.1083, 0.0, 0.0])

    Reference:
        Bodla et al., Soft-NMS, ICCV 2017; `batched_nms` in
        `libs/utils/nms.py` and `softnms_1d_cpu` in
        `libs/utils/csrc/nms_cpu.cpp` of happyharrycn/actionformer_release.
    """
    _check(method, max_seg_num)
    if multiclass and not num_classes:
        raise ValueError("soft_nms_tf(multiclass=True) needs num_classes")
    max_num = int(max_seg_num)
    segs = tf.reshape(tf.cast(segments, tf.float32), [-1, 2])
    sc = tf.reshape(tf.cast(scores, tf.float32), [-1])
    lb = tf.reshape(tf.cast(labels, tf.int64), [-1])
    in_valid = (tf.ones_like(sc, tf.bool) if valid is None
                else tf.reshape(tf.cast(valid, tf.bool), [-1]))
    x1, x2 = segs[:, 0], segs[:, 1]
    area = _tf_length(x1, x2)
    member = in_valid
    if method == "hard" and min_score > 0:
        member = member & (sc > min_score)
    if multiclass:
        classes = tf.range(int(num_classes), dtype=tf.int64)
        member = member[None] & (lb[None] == classes[:, None])   # [C, N]
    else:
        member = member[None]                                    # [1, N]
    # Each row: its members first, in input order (stable partition).
    perm = tf.argsort(tf.cast(~member, tf.int32), axis=1, stable=True)
    perm = tf.cast(perm, tf.int32)
    count = tf.reduce_sum(tf.cast(member, tf.int32), axis=1)
    perm = perm[:, :tf.reduce_max(tf.concat([count, [0]], 0))]
    row_sc = tf.gather(sc, perm)
    if method == "hard":
        out_id, out_sc, out_ok = _tf_hard_loop(
            x1, x2, area, perm, row_sc, count, max_num, iou_threshold)
    else:
        out_id, out_sc, out_ok = _tf_soft_loop(
            x1, x2, area, perm, row_sc, count, max_num, method, sigma,
            iou_threshold, min_score)
    out_ok = tf.reshape(out_ok, [-1])
    # Index N = a dummy row, so an empty buffer gathers safely.
    out_id = tf.where(out_ok, tf.reshape(out_id, [-1]), tf.size(sc))
    out_sc = tf.reshape(out_sc, [-1])
    segs_pad = tf.concat([segs, tf.zeros([1, 2], tf.float32)], 0)
    lb_pad = tf.concat([lb, tf.constant([-1], tf.int64)], 0)
    out_segs = tf.gather(segs_pad, out_id)
    if not multiclass and voting_thresh > 0:
        out_segs = _tf_voting(out_segs, segs, sc, in_valid, voting_thresh)
    order = tf.argsort(tf.where(out_ok, out_sc, -np.inf),
                       direction="DESCENDING", stable=True)[:max_num]
    ok = tf.gather(out_ok, order)
    num = tf.reduce_sum(tf.cast(ok, tf.int32))
    out_segs = tf.where(ok[:, None], tf.gather(out_segs, order), 0.0)
    out_sc = tf.where(ok, tf.gather(out_sc, order), 0.0)
    out_lb = tf.where(ok, tf.gather(lb_pad, tf.gather(out_id, order)),
                      tf.constant(-1, tf.int64))
    return out_segs, out_sc, out_lb, num


def _tf_voting(kept, all_segs, all_scores, all_valid, thresh):
    ks, ke = kept[:, 0:1], kept[:, 1:2]
    s, e = all_segs[None, :, 0], all_segs[None, :, 1]
    inter = tf.maximum(tf.minimum(ke, e) - tf.maximum(ks, s), 0.0)
    iou = inter / ((ke - ks) + (e - s) - inter)
    # float32 votes and weights, float64 mean (see `_np_voting`)
    w = tf.where((iou >= thresh) & all_valid[None], all_scores[None] * iou,
                 0.0)
    w = tf.cast(w, tf.float64)
    total = tf.reduce_sum(w, axis=1, keepdims=True)
    refined = tf.matmul(w, tf.cast(all_segs, tf.float64)) / tf.where(
        total > 0, total, 1.0)
    return tf.where(total > 0, tf.cast(refined, tf.float32), kept)
