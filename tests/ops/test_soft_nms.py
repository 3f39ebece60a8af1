"""Soft-NMS: reference cases (numpy and TF), an independent scalar oracle."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfaction.ops.soft_nms import soft_nms
from tfaction.ops.soft_nms import soft_nms_tf
from tfaction.ops.torch_sort import torch_sort_order


def _kwargs(kw):
    return dict(iou_threshold=kw["iou_threshold"], min_score=kw["min_score"],
                max_seg_num=kw["max_seg_num"],
                method="gaussian" if kw["use_soft_nms"] else "hard",
                multiclass=kw["multiclass"], sigma=kw["sigma"],
                voting_thresh=kw["voting_thresh"])


def assert_same_detections(segs, scores, labels, want_segs, want_scores,
                           want_labels, atol=1e-6, truncated=False):
    """Exact segments/labels in order; tied expected scores as a set.

    With `truncated` (the lists were cut at `max_seg_num`), the last run of
    tied scores may hold other members of that tie: scores only there.
    """
    assert len(scores) == len(want_scores)
    np.testing.assert_allclose(scores, want_scores, rtol=0, atol=atol)
    i = 0
    while i < len(want_scores):
        j = i + 1
        while j < len(want_scores) and want_scores[j] == want_scores[i]:
            j += 1
        if truncated and j == len(want_scores):
            break
        got = sorted(zip(map(tuple, segs[i:j].tolist()), labels[i:j].tolist()))
        want = sorted(zip(map(tuple, want_segs[i:j].tolist()),
                          want_labels[i:j].tolist()))
        assert got == want, f"rows {i}:{j}"
        i = j


def _cases(anchors_dir):
    folder = anchors_dir / "soft_nms"
    meta = json.loads((folder / "cases.json").read_text())
    files = sorted(folder.glob("*.npz"))
    assert files and {f.stem for f in files} == set(meta)
    return [(f.stem, np.load(f), _kwargs(meta[f.stem]["batched_nms_kwargs"]))
            for f in files]


def test_numpy_matches_every_case(anchors_dir):
    for name, d, kw in _cases(anchors_dir):
        s, sc, lb = soft_nms(d["in_segs"], d["in_scores"], d["in_labels"],
                             **kw)
        assert s.dtype == np.float32 and lb.dtype == np.int64, name
        assert_same_detections(s, sc, lb, d["out_segs"], d["out_scores"],
                               d["out_labels"])


def test_tf_graph_matches_every_case_on_padded_buffer(anchors_dir):
    for name, d, kw in _cases(anchors_dir):
        n = len(d["in_scores"])
        pad = 37
        segs = np.concatenate([d["in_segs"], np.full((pad, 2), 5, np.float32)])
        scores = np.concatenate([d["in_scores"], np.ones(pad, np.float32)])
        labels = np.concatenate([d["in_labels"], np.zeros(pad, np.int64)])
        valid = np.arange(n + pad) < n
        num_classes = int(d["in_labels"].max()) + 1
        fn = tf.function(lambda a, b, c, v: soft_nms_tf(
            a, b, c, valid=v, num_classes=num_classes, **kw))
        s, sc, lb, k = [t.numpy() for t in fn(segs, scores, labels, valid)]
        assert s.shape == (kw["max_seg_num"], 2), name
        assert (lb[k:] == -1).all() and not sc[k:].any()
        assert_same_detections(s[:k], sc[:k], lb[:k], d["out_segs"],
                               d["out_scores"], d["out_labels"])


def _oracle(segs, scores, method, sigma, thr, min_score):
    """Literal scalar port of the reference per-class loop (float32)."""
    x1 = [np.float32(v) for v in segs[:, 0]]
    x2 = [np.float32(v) for v in segs[:, 1]]
    sc = [np.float32(v) for v in scores]
    ar = [np.float32(b - a) + np.float32(1e-6) for a, b in zip(x1, x2)]
    ind = list(range(len(sc)))
    n, i, out = len(sc), 0, []
    while i < n:
        m = i
        for p in range(i + 1, n):
            if sc[m] < sc[p]:
                m = p
        for arr in (x1, x2, sc, ar, ind):
            arr[i], arr[m] = arr[m], arr[i]
        out.append((ind[i], sc[i]))
        p = i + 1
        while p < n:
            inter = max(np.float32(0), min(x2[i], x2[p]) - max(x1[i], x1[p]))
            ovr = inter / (ar[i] + ar[p] - inter)
            if method == "gaussian":
                w = np.exp(-(ovr * ovr) / np.float32(sigma))
            else:
                w = np.float32(1) - ovr if ovr >= thr else np.float32(1)
            sc[p] = np.float32(sc[p] * w)
            if sc[p] < np.float32(min_score):
                for arr in (x1, x2, sc, ar, ind):
                    arr[p] = arr[n - 1]
                n -= 1
                continue
            p += 1
        i += 1
    return out


def _random(seed, n=120, n_cls=3):
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 60, n).astype(np.float32)
    segs = np.stack([start, start + rng.integers(0, 15, n)], 1)
    segs = segs.astype(np.float32)
    # Coarse scores: many exact ties exercise the swap-with-last order.
    scores = (rng.integers(1, 12, n) / 12.0).astype(np.float32)
    return segs, scores, rng.integers(0, n_cls, n)


@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_against_scalar_oracle_with_ties(method):
    segs, scores, labels = _random(7)
    kw = dict(iou_threshold=0.3, min_score=0.05, max_seg_num=1000,
              method=method, sigma=0.5)
    want = []
    for c in np.unique(labels):
        idx = np.nonzero(labels == c)[0]
        want += [(idx[e], s, c) for e, s in _oracle(
            segs[idx], scores[idx], method, 0.5, 0.3, 0.05)]
    # classes concatenated in order, then the reference's final sort
    order = torch_sort_order(np.array([w[1] for w in want], np.float32))
    want = [want[i] for i in order]
    s, sc, lb = soft_nms(segs, scores, labels, **kw)
    np.testing.assert_array_equal(s, segs[[w[0] for w in want]])
    np.testing.assert_array_equal(lb, [w[2] for w in want])
    np.testing.assert_allclose(sc, [w[1] for w in want], atol=1e-6)
    ts, tsc, tlb, k = soft_nms_tf(segs, scores, labels, num_classes=3, **kw)
    assert int(k) == len(want)
    # the graph sorts stably: exactly tied scores in another order
    assert_same_detections(ts.numpy()[:k], tsc.numpy()[:k], tlb.numpy()[:k],
                           s, sc, lb)


@pytest.mark.parametrize("method", ["gaussian", "linear", "hard"])
@pytest.mark.parametrize("multiclass", [True, False])
def test_numpy_and_tf_agree(method, multiclass):
    segs, scores, labels = _random(11, n=300)
    kw = dict(iou_threshold=0.4, min_score=0.1, max_seg_num=40,
              method=method, multiclass=multiclass, sigma=0.75,
              voting_thresh=0.0 if multiclass else 0.6)
    s, sc, lb = soft_nms(segs, scores, labels, **kw)
    ts, tsc, tlb, k = soft_nms_tf(segs, scores, labels, num_classes=3, **kw)
    k = int(k)
    assert k == len(sc) and len(sc) <= 40
    # same numbers; the graph's stable sort may order exact ties otherwise
    # (and so keep other members of a tie cut at max_seg_num)
    assert_same_detections(ts.numpy()[:k], tsc.numpy()[:k], tlb.numpy()[:k],
                           s, sc, lb, atol=0, truncated=len(sc) == 40)


def test_hard_nms_semantics():
    segs = np.array([[0, 10], [1, 10], [20, 30], [0, 10]], np.float32)
    scores = np.array([0.5, 0.9, 0.7, 0.0005], np.float32)
    s, sc, lb = soft_nms(segs, scores, np.zeros(4), iou_threshold=0.5,
                         method="hard")
    np.testing.assert_array_equal(s, [[1, 10], [20, 30]])
    np.testing.assert_array_equal(sc, np.float32([0.9, 0.7]))


def test_voting_moves_kept_segment():
    segs = np.array([[0, 10], [0, 12], [50, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.5], np.float32)
    s, _, _ = soft_nms(segs, scores, np.zeros(3), multiclass=False,
                       voting_thresh=0.8, sigma=0.5)
    w = 0.8 * (10 / 12)
    np.testing.assert_allclose(s[0], [0, (0.9 * 10 + w * 12) / (0.9 + w)],
                               rtol=1e-6)
    ts, _, _, _ = soft_nms_tf(segs, scores, np.zeros(3), multiclass=False,
                              voting_thresh=0.8, sigma=0.5)
    np.testing.assert_allclose(ts.numpy()[:len(s)], s, rtol=1e-6)


def test_empty_and_errors():
    s, sc, lb = soft_nms(np.zeros((0, 2)), np.zeros(0), np.zeros(0))
    assert s.shape == (0, 2) and sc.shape == (0,) and lb.shape == (0,)
    ts, tsc, tlb, k = soft_nms_tf(np.zeros((0, 2)), np.zeros(0), np.zeros(0),
                                  num_classes=2, max_seg_num=3)
    assert int(k) == 0 and ts.shape == (3, 2)
    with pytest.raises(ValueError):
        soft_nms(np.zeros((1, 2)), np.ones(1), np.zeros(1), method="soft")
    with pytest.raises(ValueError):
        soft_nms_tf(np.zeros((1, 2)), np.ones(1), np.zeros(1))


@pytest.mark.parametrize("method", ["gaussian", "linear"])
@pytest.mark.parametrize("max_seg_num", [7, 1000])
@pytest.mark.parametrize("skewed", [False, True])
def test_all_classes_at_once_equal_class_by_class(method, max_seg_num,
                                                  skewed):
    """Many classes run as rows of one table (`_np_soft_rows`): the same
    picks, scores and order as the per-class loop, ties included; with
    skewed class sizes the finished classes' rows are dropped mid-way."""
    from tfaction.ops import soft_nms as module

    segs, scores, labels = _random(5, n=400, n_cls=12)
    if skewed:  # a few large classes, many small ones
        rng = np.random.default_rng(7)
        labels = np.minimum((rng.random(400) ** 3 * 12).astype(np.int64), 11)
        sizes = np.bincount(labels)
        assert sizes.max() >= 8 * np.median(sizes)
    x1, x2 = segs[:, 0].copy(), segs[:, 1].copy()
    area = (x2 - x1) + np.float32(1e-6)
    groups = [np.nonzero(labels == c)[0] for c in np.unique(labels)]
    assert len(groups) > module._MIN_ROWS  # soft_nms takes the rows path
    rows = module._np_soft_rows(x1, x2, area, groups, scores, method, 0.5,
                                0.3, 0.05, max_seg_num)
    for g, (ids, sc) in zip(groups, rows):
        picks, want = module._np_soft_single(
            x1[g], x2[g], scores[g], method, 0.5, 0.3, 0.05, max_seg_num)
        np.testing.assert_array_equal(ids, g[picks])
        np.testing.assert_array_equal(sc, want)


@pytest.mark.parametrize("method", ["gaussian", "linear"])
@pytest.mark.parametrize("n, max_seg_num", [(1, 5), (183, 100), (600, 1000),
                                            (600, 100)])
def test_pair_table_equals_the_per_pick_decay(method, n, max_seg_num,
                                              monkeypatch):
    """A small group's pair factors up front (`_PAIR_TABLE_MAX`) give the
    same picks and scores as computing each pick's row, removals and
    zero-length segments included."""
    from tfaction.ops import soft_nms as module

    segs, scores, _ = _random(11, n=n, n_cls=1)
    segs[: n // 4, 1] = segs[: n // 4, 0]
    x1, x2 = segs[:, 0].copy(), segs[:, 1].copy()
    for min_score in (0.001, 0.3):
        args = (x1, x2, scores, method, 0.5, 0.3, min_score, max_seg_num)
        with_table = module._np_soft_single(*args)
        monkeypatch.setattr(module, "_PAIR_TABLE_MAX", 0)
        without = module._np_soft_single(*args)
        monkeypatch.undo()
        np.testing.assert_array_equal(with_table[0], without[0])
        np.testing.assert_array_equal(with_table[1], without[1])


def test_classes_split_into_tables_of_similar_size(monkeypatch):
    from tfaction.ops import soft_nms as module

    groups = [np.arange(k) for k in (10, 400, 90, 130, 2, 300, 35)]
    assert module._tables(groups) == [[1, 5, 3], [2, 6], [0], [4]]
    # the output equals one table of every class, tie order included
    rng = np.random.default_rng(2)
    sizes = [500, 420, 300, 120, 110, 100, 95, 90, 30, 25, 20, 12, 3]
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    segs, scores, _ = _random(4, n=labels.shape[0], n_cls=1)
    scores = np.round(scores, 2).astype(np.float32)   # ties across classes
    split = soft_nms(segs, scores, labels, max_seg_num=2000)
    monkeypatch.setattr(module, "_TABLE_SPLIT", 0.0)
    assert module._tables([np.arange(s) for s in sizes]) == [
        list(range(len(sizes)))]
    whole = soft_nms(segs, scores, labels, max_seg_num=2000)
    for got, want in zip(split, whole):
        np.testing.assert_array_equal(got, want)
