"""ActivityNet temporal proposals: AR@AN curve and AUC, number for number with
the official `Evaluation/eval_proposal.py` (`ANETproposal`,
`average_recall_vs_avg_nr_proposals`).

1. n_v = GT videos of the subset (with at least one instance); P_tot = all
   proposals in the file (videos without GT included); ratio = AN_max n_v /
   P_tot.
2. Per GT video, proposals by `score.argsort()[::-1]` (ties as NumPy's
   generic introsort leaves them, via `numpy_sort`); keep the top
   min(int(n_v_prop ratio), n_v_prop); K = total kept. A video without
   proposals is one all-miss column (tIoU 0).
3. pcn_j = (j/100) AN_max n_v / K; a video uses its first
   min(int(n_kept pcn_j), n_kept) proposals.
4. A GT is recalled if **any** used proposal has tIoU >= threshold.
5. AR = mean over thresholds; AN_j = pcn_j K / n_v; AUC(%) = 100 trapz(AR,
   AN) / AN[-1].

Vectorised: per GT and threshold the rank of the first proposal reaching it
is computed once; recall at every AN is a comparison with per-video limits.

Example:

```python
result = evaluate_proposals("gt.json", "proposals.json")
print(result.auc, result.ar_at(100))
```
"""

import dataclasses

import numpy as np

from tfaction import errors
from tfaction.evaluation import common
from tfaction.evaluation import numpy_sort
from tfaction.evaluation import ground_truth as gt_lib
from tfaction.ops import segment_iou as siou

DEFAULT_THRESHOLDS = np.linspace(0.5, 0.95, 10)

_trapz = getattr(np, "trapezoid", None) or getattr(np, "trapz")


@dataclasses.dataclass
class ProposalResult:
    """AR@AN curve.

    Attributes:
        tiou_thresholds: float64 [T].
        recall: float64 [T, 100] recall per threshold and AN point.
        avg_recall: float64 [100] AR per AN point.
        proposals_per_video: float64 [100] the AN grid.
        auc: AUC in percent.
        counts: diagnostics (videos, proposals, proposals outside GT).
    """

    tiou_thresholds: np.ndarray
    recall: np.ndarray
    avg_recall: np.ndarray
    proposals_per_video: np.ndarray
    auc: float
    counts: dict = dataclasses.field(default_factory=dict)

    def ar_at(self, an):
        """AR at the AN grid point `an` (1-based, e.g. 1, 10, 100)."""
        return float(self.avg_recall[int(an) - 1])

    def to_dict(self):
        """The `--output_json` layout."""
        out = {"metric": "activitynet_proposals",
               "tiou_thresholds": self.tiou_thresholds.tolist(),
               "AR@AN": {str(j + 1): float(v)
                         for j, v in enumerate(self.avg_recall)},
               "AN": self.proposals_per_video.tolist(),
               "AUC": float(self.auc)}
        out.update(self.counts)
        return out


def evaluate_proposals(ground_truth, proposals, *, subset="validation",
                       tiou_thresholds=DEFAULT_THRESHOLDS,
                       max_avg_nr_proposals=100, video_info=None):
    """Official AR@AN and AUC of a proposal file.

    Args:
        ground_truth: GT file (ActivityNet or BSN layout) or `GroundTruth`.
        proposals: prediction file (labels ignored) or `common.Predictions`.
        subset: evaluated subset.
        tiou_thresholds: [T].
        max_avg_nr_proposals: AN_max.
        video_info: BSN video info CSV.

    Returns:
        `ProposalResult`.

    Raises:
        MalformedFileError, SegmentError, UnknownSubsetError.

    Example:

    >>> r = evaluate_proposals("gt.json", "props.json")  # doctest: +SKIP
    >>> round(r.auc, 4)  # doctest: +SKIP
    61.3833
    """
    gt = (ground_truth if isinstance(ground_truth, gt_lib.GroundTruth) else
          gt_lib.load_ground_truth(ground_truth, subset,
                                   video_info=video_info))
    props = (proposals if isinstance(proposals, common.Predictions) else
             common.read_detection_predictions(proposals,
                                               require_label=False))
    thresholds = np.asarray(tiou_thresholds, np.float64).reshape(-1)
    if gt.num_instances == 0:
        raise errors.MalformedFileError(
            f"no ground-truth instance in subset {gt.subset!r}", path=gt.path)
    if props.num_predictions == 0:
        raise errors.MalformedFileError("no proposals in the file",
                                        path=props.path, key="results")
    # GT videos with instances, in order of first appearance.
    vids, first = np.unique(gt.video, return_index=True)
    vids = vids[np.argsort(first)]
    n_v = vids.shape[0]
    ratio = max_avg_nr_proposals * float(n_v) / props.num_predictions
    # Proposals of GT videos, grouped by video, each in official order.
    gt_index = {gt.video_ids[v]: i for i, v in enumerate(vids)}
    pmap = np.array([gt_index.get(v, -1) for v in props.video_ids], np.int64)
    p_v = pmap[props.video]
    n_prop = np.bincount(p_v[p_v >= 0], minlength=n_v)
    sel = np.flatnonzero(p_v >= 0)  # input order
    order = sel[numpy_sort.grouped_argsort_desc(p_v[sel], props.scores[sel])]
    rank = np.arange(order.shape[0]) - np.repeat(
        np.concatenate([[0], np.cumsum(n_prop)[:-1]]), n_prop)
    n_kept = np.minimum((n_prop * ratio).astype(np.int64), n_prop)
    total = int(n_kept.sum())
    keep = rank < n_kept[p_v[order]]
    k_idx = order[keep]
    k_vid, k_rank = p_v[k_idx], rank[keep]
    # First rank reaching each threshold, per GT instance.
    g_v = np.array([gt_index[gt.video_ids[v]] for v in gt.video], np.int64)
    first_hit = _first_rank(g_v, gt.segments, k_vid, k_rank,
                            props.segments[k_idx], thresholds)
    # Videos without proposals: one column of tIoU 0 (official).
    cols = np.where(n_prop > 0, n_kept, 1)
    no_prop = n_prop[g_v] == 0
    first_hit[no_prop] = np.where(0.0 >= thresholds, 0.0, np.inf)[None]
    pcn = np.arange(1, 101) / 100.0 * (max_avg_nr_proposals * float(n_v)
                                       / total)
    limits = np.minimum((cols[:, None] * pcn[None, :]).astype(np.int64),
                        cols[:, None])  # [n_v, 100]
    matched = first_hit[:, :, None] < limits[g_v][:, None, :]  # [M, T, 100]
    recall = matched.sum(axis=0).astype(np.float64) / float(gt.num_instances)
    avg_recall = recall.mean(axis=0)
    an = pcn * (float(total) / n_v)
    auc = float(100.0 * _trapz(avg_recall, an) / an[-1])
    counts = {"num_videos": int(n_v), "num_ground_truth": gt.num_instances,
              "num_proposals": props.num_predictions,
              "num_proposals_kept": total,
              "num_proposals_outside_ground_truth": int((p_v < 0).sum()),
              "num_reversed_segments": props.num_reversed}
    return ProposalResult(tiou_thresholds=thresholds, recall=recall,
                          avg_recall=avg_recall, proposals_per_video=an,
                          auc=auc, counts=counts)


def _first_rank(g_v, g_seg, p_v, p_rank, p_seg, thresholds):
    """[M, T] rank of the first kept proposal with tIoU >= threshold."""
    out = np.full((g_v.shape[0], thresholds.shape[0]), np.inf)
    if p_v.size == 0:
        return out
    # All (GT, proposal of the same video) pairs.
    p_order = np.argsort(p_v, kind="stable")
    p_start = np.searchsorted(p_v[p_order], np.arange(g_v.max() + 2))
    cnt = (p_start[1:] - p_start[:-1])[g_v]
    pair_g = np.repeat(np.arange(g_v.shape[0]), cnt)
    offs = np.arange(pair_g.shape[0]) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    pair_p = p_order[p_start[g_v][pair_g] + offs]
    iou = siou.aligned_segment_iou(p_seg[pair_p], g_seg[pair_g])
    ranks = p_rank[pair_p].astype(np.float64)
    for t, thr in enumerate(thresholds):
        with np.errstate(invalid="ignore"):
            r = np.where(iou >= thr, ranks, np.inf)
        np.minimum.at(out[:, t], pair_g, r)
    return out


def run_cli(ground_truth, predictions, options):
    """`experiments.evaluate` entry point.

    Args:
        ground_truth: GT path.
        predictions: proposal file path.
        options: CLI flag values (`subset`, `tiou_thresholds`,
            `max_avg_nr_proposals`, `video_info`).

    Returns:
        dict with "AR@AN" ({"1": x, ..., "100": x}) and "AUC".

    Example:

    >>> run_cli("gt.json", "props.json", {})  # doctest: +SKIP
    """
    thresholds = common.parse_thresholds(options.get("tiou_thresholds"),
                                         DEFAULT_THRESHOLDS)
    return evaluate_proposals(
        ground_truth, predictions, subset=options.get("subset") or "validation",
        tiou_thresholds=thresholds,
        max_avg_nr_proposals=options.get("max_avg_nr_proposals") or 100,
        video_info=options.get("video_info")).to_dict()


def format_table(result):
    """Readable AR@AN table of a `run_cli` result.

    Args:
        result: dict returned by `run_cli`.

    Returns:
        str.

    Example:

    >>> print(format_table({"AR@AN": {"1": 0.1, "100": 0.5}, "AUC": 40.0}))
    AN   AR
    1    0.1000
    100  0.5000
    AUC: 40.0000 %
    """
    ar = result["AR@AN"]
    picks = [k for k in ("1", "5", "10", "50", "100") if k in ar]
    rows = [[k, float(ar[k])] for k in picks]
    return (common.format_rows(["AN", "AR"], rows)
            + f"\nAUC: {result['AUC']:.4f} %")
