"""Late fusion of ActionVLAD streams and of external scores (e.g. iDT).

The reference (`combine_streams.py`, `eval/charades_convert_scores_format.py`)
fuses raw logits, per video:

* two streams: `final = (1 - w) * rgb + w * flow`, `w = 0.667`
  (`--temporal_ratio`), i.e. RGB:flow = 1:2;
* with external scores (iDT of Varol et al.): `(1 - e) * l2n(final) +
  e * l2n(external)`, `e = 0.25` on HMDB51 (`--idt_wt`), 0.5 for Charades;
  a video without external scores gets zeros there.

Scores are aligned by video id, never by row order.

Example:

>>> import numpy as np
>>> fuse_streams(np.array([[3.0, 0.0]]), np.array([[0.0, 3.0]]))
array([[0.999, 2.001]], dtype=float32)
"""

import numpy as np

from tfaction import errors

FLOW_WEIGHT = 0.667
EXTERNAL_WEIGHT = 0.25


def fuse_streams(rgb, flow, flow_weight=FLOW_WEIGHT):
    """`(1 - w) * rgb + w * flow` on `[N, K]` logits."""
    rgb, flow = np.asarray(rgb, np.float32), np.asarray(flow, np.float32)
    if rgb.shape != flow.shape:
        raise errors.DataError(f"stream scores differ in shape: {rgb.shape} "
                               f"vs {flow.shape}")
    if not 0.0 <= flow_weight <= 1.0:
        raise errors.ConfigError(f"flow weight must be in [0, 1], got "
                                 f"{flow_weight}")
    return ((1.0 - flow_weight) * rgb + flow_weight * flow).astype(np.float32)


def _l2n(x):
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 0, x / np.where(norm > 0, norm, 1.0), 0.0)


def fuse_external(scores, external, weight=EXTERNAL_WEIGHT):
    """`(1 - e) * l2n(scores) + e * l2n(external)`, rows L2-normalised.

    Rows of zeros (a video the external method has no scores for) stay
    zero after normalisation.
    """
    scores = np.asarray(scores, np.float64)
    external = np.asarray(external, np.float64)
    if scores.shape != external.shape:
        raise errors.DataError(f"external scores have shape {external.shape}"
                               f", expected {scores.shape}")
    if not 0.0 <= weight <= 1.0:
        raise errors.ConfigError(f"external weight must be in [0, 1], got "
                                 f"{weight}")
    fused = (1.0 - weight) * _l2n(scores) + weight * _l2n(external)
    return fused.astype(np.float32)


def align(reference_ids, ids, scores, *, name, missing="error"):
    """Rows of `scores` (keyed by `ids`) in the order of `reference_ids`.

    Args:
        reference_ids: the video ids wanted, in order.
        ids: the ids of `scores`' rows.
        scores: `[M, K]`.
        name: what the scores are (for messages).
        missing: "error" (every reference id must be there) or "zeros".

    Returns:
        `[len(reference_ids), K]` float32.

    Raises:
        DataError: a missing video (with `missing="error"`) or a repeated
            id.
    """
    ids = [str(v) for v in ids]
    index = {}
    for row, video in enumerate(ids):
        if video in index:
            raise errors.DataError(f"video {video!r} appears twice in the "
                                   f"{name} scores")
        index[video] = row
    scores = np.asarray(scores, np.float32)
    out = np.zeros((len(reference_ids), scores.shape[1]), np.float32)
    absent = [v for v in reference_ids if str(v) not in index]
    if absent and missing == "error":
        raise errors.DataError(
            f"{len(absent)} video(s) have no {name} scores, e.g. "
            f"{absent[:3]}")
    for row, video in enumerate(reference_ids):
        if str(video) in index:
            out[row] = scores[index[str(video)]]
    return out
