"""AdaFocus' video-level mAP (`cal_map`) and top-k accuracy.

Hand-computed cases, the relabelling quirk, and agreement on random inputs
with a straightforward implementation written here from the description of
the authors' `ops/utils.py: cal_map` / `get_multi_hot` / `accuracy`
(softmax; labels relabelled in place, ascending over the distinct
non-negative ids; per class a descending sort and the mean of the precision
at every positive; classes without positives count as 0).
"""

import math

import numpy as np
import pytest

from tfaction import errors
from tfaction.evaluation.adafocus_map import adafocus_map
from tfaction.evaluation.adafocus_map import relabel_by_rank
from tfaction.evaluation.adafocus_map import topk_accuracy


def official_logic(logits, labels):
    """A plain-Python statement of `cal_map`; returns (mAP, AP list)."""
    labels = np.array(labels, dtype=np.int64).reshape(len(logits), -1)
    n, c = len(logits), len(logits[0])
    # get_multi_hot(..., assumes_starts_zero=False): in place, in ascending
    # order of the distinct non-negative ids, on the array being modified.
    test_y = labels.copy()
    count = 0
    for value in sorted(set(labels.ravel().tolist())):
        if value >= 0:
            test_y[test_y == value] = count
            count += 1
    gt = [[False] * (c + 1) for _ in range(n)]  # column c receives the -1s
    for i in range(n):
        for value in test_y[i]:
            gt[i][value] = True
    probs = []
    for row in logits:
        top = max(row)
        e = [math.exp(v - top) for v in row]
        probs.append([v / sum(e) for v in e])
    aps = []
    for k in range(c):
        ranked = sorted(range(n), key=lambda i: -probs[i][k])
        hits, total = 0, 0.0
        for rank, i in enumerate(ranked, start=1):
            if gt[i][k]:
                hits += 1
                total += hits / rank
        aps.append(total / max(hits, 1))
    return 100.0 * sum(aps) / c, [100.0 * a for a in aps]


def official_accuracy(logits, labels, k):
    """`accuracy`: the first label among the k largest logits."""
    correct = 0
    for row, label in zip(logits, np.asarray(labels).reshape(len(logits),
                                                             -1)[:, 0]):
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))
        correct += label in order[:k]
    return 100.0 * correct / len(logits)


def test_hand_computed_single_label():
    probs = np.array([[0.7, 0.3], [0.6, 0.4], [0.4, 0.6]])
    r = adafocus_map(np.log(probs), np.array([[1], [0], [1]]))
    # class 0: scores .7 .6 .4, the positive (video 1) at rank 2 -> 1/2.
    # class 1: scores .3 .4 .6 -> video 2 (+), video 1, video 0 (+):
    #          (1/1 + 2/3) / 2 = 5/6.
    np.testing.assert_allclose(r.ap, [50.0, 500.0 / 6.0])
    assert r.map == pytest.approx((50.0 + 500.0 / 6.0) / 2)
    np.testing.assert_array_equal(r.num_positives, [1, 2])
    assert not r.relabelled


def test_hand_computed_multi_label_with_padding_and_an_empty_class():
    # FCVID style: up to 2 labels per video, -1 padding; class 2 has no
    # positive (AP 0, still averaged); class 3 is absent from the labels
    # too, but ids 0, 1 occur, so nothing is relabelled (ranks 0, 1).
    probs = np.array([[0.4, 0.3, 0.2, 0.1],
                      [0.1, 0.5, 0.2, 0.2],
                      [0.3, 0.1, 0.5, 0.1]])
    labels = np.array([[0, 1], [1, -1], [-1, -1]])
    r = adafocus_map(np.log(probs), labels)
    # class 0: .4 (+), .3, .1 -> 1. class 1: .5 (+), .3 (+), .1 -> 1.
    np.testing.assert_allclose(r.ap, [100.0, 100.0, 0.0, 0.0])
    assert r.map == 50.0
    assert not r.relabelled


def test_relabelling_quirk_moves_positives_to_other_columns():
    # Only ids 1 and 3 occur: they become 0 and 1, so the positives are
    # scored against columns 0 and 1, whatever the logits of 1 and 3 say.
    probs = np.array([[0.1, 0.7, 0.1, 0.1],
                      [0.05, 0.1, 0.15, 0.7],
                      [0.75, 0.05, 0.1, 0.1]])
    labels = np.array([1, 3, 1])
    np.testing.assert_array_equal(relabel_by_rank(labels[:, None])[:, 0],
                                  [0, 1, 0])
    r = adafocus_map(np.log(probs), labels)
    assert r.relabelled
    np.testing.assert_array_equal(r.num_positives, [2, 1, 0, 0])
    # column 0: .75 (video 2, +), .1 (video 0, +), .05 -> (1 + 2/2) / 2 =
    # 1. column 1: .7 is video 0 (-), video 1 (+) at rank 2 -> 1/2.
    np.testing.assert_allclose(r.ap, [100.0, 50.0, 0.0, 0.0])
    assert official_logic(np.log(probs), labels)[1] == pytest.approx(
        r.ap.tolist())


def test_ties_rank_in_input_order():
    r = adafocus_map(np.zeros((2, 3)), np.array([0, 1]))
    np.testing.assert_allclose(r.ap, [100.0, 50.0, 0.0])
    assert r.map == 50.0


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_official_logic_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(5, 60)), int(rng.integers(2, 12))
    logits = rng.normal(0, 2, (n, c))
    labels = rng.integers(0, c, (n, 3))
    labels[rng.random((n, 3)) < 0.4] = -1
    labels[:, 0] = rng.integers(0, c, n)   # every video has a first label
    if seed % 2:  # leave classes out: the relabelling quirk applies
        keep = rng.choice(c, size=max(1, c // 2), replace=False)
        labels = np.where(np.isin(labels, keep) | (labels < 0), labels,
                          keep[0])
    for cols in (slice(0, 1), slice(None)):  # ActivityNet, FCVID
        want_map, want_ap = official_logic(logits, labels[:, cols])
        got = adafocus_map(logits.astype(np.float32), labels[:, cols])
        np.testing.assert_allclose(got.ap, want_ap, rtol=1e-9, atol=1e-9)
        assert got.map == pytest.approx(want_map, rel=1e-12, abs=1e-9)
    for k in (1, min(5, c)):
        assert topk_accuracy(logits, labels, (k,))[0] == pytest.approx(
            official_accuracy(logits, labels, k))


def test_topk_hand_computed_and_ties_by_class_index():
    logits = np.array([[0.1, 0.9, 0.0], [0.5, 0.2, 0.3], [1.0, 1.0, 0.0]])
    # Video 0 top-1; video 1 (0.3 after 0.5) top-2; video 2's label 1 ties
    # with class 0, which ranks first: top-2 only.
    assert topk_accuracy(logits, np.array([1, 2, 1]), topk=(1, 2)) == (
        pytest.approx(100 / 3), 100.0)
    # The same tie with label 0: top-1.
    assert topk_accuracy(logits[2:], np.array([[0, -1]])) == (100.0,)


def test_bad_inputs():
    with pytest.raises(errors.FeatureShapeError, match="num_classes"):
        adafocus_map(np.zeros(3), np.zeros(3, int))
    with pytest.raises(errors.FeatureShapeError, match="num_videos = 2"):
        adafocus_map(np.zeros((2, 3)), np.zeros(3, int))
    with pytest.raises(errors.NonFiniteFeatureError):
        adafocus_map(np.array([[0.0, np.nan]]), np.array([0]))
    with pytest.raises(errors.UnknownLabelError, match="label 3 of video 1"):
        adafocus_map(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(errors.UnknownLabelError, match="integer"):
        adafocus_map(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(errors.UnknownLabelError, match="no label"):
        topk_accuracy(np.zeros((2, 3)), np.array([[0], [-1]]))
    with pytest.raises(errors.FeatureShapeError, match="k <= 3"):
        topk_accuracy(np.zeros((2, 3)), np.array([0, 1]), topk=(5,))


def test_split_list_variants_and_errors(tmp_path):
    from tfaction.evaluation import adafocus_map as metric

    (tmp_path / "val.txt").write_text("a,5,0,1\nb,4,1\nc,2,0\nd,3,0\n")
    logits = np.log(np.array([[0.2, 0.8], [0.3, 0.7], [0.9, 0.1],
                              [0.6, 0.4]], np.float32))
    np.savez(tmp_path / "p.npz", video_ids=np.array(["a", "b", "c", "d"]),
             scores=logits)
    first = metric.evaluate(tmp_path / "val.txt", str(tmp_path / "p.npz"),
                            "actnet", top_k=1)
    every = metric.evaluate(tmp_path / "val.txt", str(tmp_path / "p.npz"),
                            "fcvid", top_k=1)
    # "c" (2 frames) is left out, as the loader and the converter do.
    assert first["num_videos"] == 3 and first["num_short_videos"] == 1
    assert first["num_extra_predictions"] == 1
    gt = np.array([[0, 1], [1, -1], [0, -1]])
    kept = logits[[0, 1, 3]]
    assert first["mAP"] == pytest.approx(adafocus_map(kept, gt[:, :1]).map)
    assert every["mAP"] == pytest.approx(adafocus_map(kept, gt).map)
    assert every["mAP"] != pytest.approx(first["mAP"])
    assert first["top1"] == pytest.approx(100 * 2 / 3)
    table = metric.format_table(metric.run_cli(
        str(tmp_path / "val.txt"), str(tmp_path / "p.npz"), {}))
    assert table.splitlines()[0].split() == ["metric", "value"]
    np.savez(tmp_path / "q.npz", video_ids=np.array(["a"]),
             scores=logits[:1])
    with pytest.raises(errors.DataError, match="no scores for 2 listed"):
        metric.evaluate(tmp_path / "val.txt", str(tmp_path / "q.npz"))
    with pytest.raises(errors.ConfigError, match="unknown adafocus_map"):
        metric.evaluate(tmp_path / "val.txt", str(tmp_path / "p.npz"),
                        "kinetics")
