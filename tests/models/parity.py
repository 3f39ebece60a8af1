"""Comparisons shared by the ActionFormer parity tests."""

import numpy as np

TOL = 1e-4  # the relative-error bound


def channels_last(x):
    """The reference's (B, C, T) arrays as Keras' (B, T, C)."""
    return np.transpose(x, (0, 2, 1))


def assert_parity(actual, expected, what, tol=TOL):
    """Asserts relative error (norm of the difference / norm) <= `tol`.

    Returns:
        The relative error, for reporting.
    """
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (what, actual.shape,
                                            expected.shape)
    rel = np.linalg.norm(actual - expected) / max(np.linalg.norm(expected),
                                                  1e-12)
    assert rel <= tol, f"{what}: relative error {rel:.3g}"
    np.testing.assert_allclose(actual, expected, atol=tol, rtol=tol,
                               err_msg=what)
    return rel


def load_bundle(root):
    """An ActionFormer parity bundle folder as a dict of its files.

    Keys: `name`, `root`, `config` (config.json), `weights`, `grads`, `io`,
    `inference` (dicts of arrays), `annotations` (annotations.json).
    """
    import json

    def arrays(name):
        with np.load(root / name) as data:
            return dict(data)

    return {"name": root.name, "root": root,
            "config": json.loads((root / "config.json").read_text()),
            "annotations": json.loads(
                (root / "annotations.json").read_text()),
            "weights": arrays("weights.npz"), "grads": arrays("grads.npz"),
            "io": arrays("io.npz"), "inference": arrays("inference.npz")}


def num_levels(config):
    """Pyramid levels of a bundle's `config.json`."""
    return len(config["derived"]["fpn_strides"])


def batch_size(io):
    """Videos in a bundle's training batch (`io.npz`)."""
    return int(io["input"].shape[0])


def tie_groups(scores, tol):
    """Index ranges of runs of a ranked score list closer than `tol`.

    Two neighbours whose scores differ by at most `tol` may be ranked
    either way by float noise of that size; a run of such neighbours is
    one group.
    """
    scores = np.asarray(scores, np.float64)
    breaks = np.nonzero(np.abs(np.diff(scores)) > tol)[0] + 1
    edges = np.concatenate([[0], breaks, [len(scores)]])
    return list(zip(edges[:-1], edges[1:]))


def assert_same_ranking(got, want, what, score_rtol=1e-5, score_atol=1e-6,
                        seg_rtol=TOL, seg_atol=1e-4):
    """Ranked detections equal up to the order of near-tied scores.

    `got` and `want` are `(segments [N, 2], scores [N], labels [N])`, sorted
    the way the reference ranks them. Scores must agree position by
    position; inside each run of scores closer than the score tolerance
    (`tie_groups`) the entries are compared as sets (ordered by label and
    segment), so float noise of the size the tolerance allows may swap
    near-tied neighbours but nothing else.

    Returns:
        Number of groups whose order differed (for reporting).
    """
    g_segs, g_scores, g_labels = (np.asarray(x) for x in got)
    w_segs, w_scores, w_labels = (np.asarray(x) for x in want)
    assert g_scores.shape == w_scores.shape, (
        f"{what}: {g_scores.shape[0]} detections, reference "
        f"{w_scores.shape[0]}")
    np.testing.assert_allclose(g_scores, w_scores, rtol=score_rtol,
                               atol=score_atol, err_msg=f"{what} scores")
    tol = 2 * (score_atol + score_rtol * float(np.abs(w_scores).max(
        initial=0.0)))
    swapped = 0
    for start, stop in tie_groups(w_scores, tol):
        order_g = np.lexsort((g_segs[start:stop, 1], g_segs[start:stop, 0],
                              g_labels[start:stop]))
        order_w = np.lexsort((w_segs[start:stop, 1], w_segs[start:stop, 0],
                              w_labels[start:stop]))
        swapped += int(not np.array_equal(order_g, order_w))
        np.testing.assert_array_equal(
            g_labels[start:stop][order_g], w_labels[start:stop][order_w],
            err_msg=f"{what} labels of ranks {start}..{stop - 1}")
        np.testing.assert_allclose(
            g_segs[start:stop][order_g], w_segs[start:stop][order_w],
            rtol=seg_rtol, atol=seg_atol,
            err_msg=f"{what} segments of ranks {start}..{stop - 1}")
    return swapped
