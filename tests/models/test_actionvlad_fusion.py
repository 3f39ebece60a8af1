"""ActionVLAD late fusion against expectations built independently.

Every expectation is computed here per video id with plain Python
arithmetic (no `fusion` helper), from score files whose rows come in
different orders and cover different videos, so a fusion that aligned by
row order, dropped or duplicated a video, or normalised the wrong axis would
fail.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from experiments import actionvlad_fuse
from tests.conftest import REPO_ROOT
from tfaction import errors
from tfaction.models.actionvlad import fusion

K = 4


def _scores(seed, ids):
    rng = np.random.default_rng(seed)
    return {v: [float(x) for x in rng.normal(size=K)] for v in ids}


def _write(path, scores, labels=None):
    ids = list(scores)
    arrays = {"video_ids": np.array(ids),
              "scores": np.array([scores[v] for v in ids], np.float32)}
    if labels is not None:
        arrays["labels"] = np.array([labels[v] for v in ids], np.int64)
    np.savez(path, **arrays)
    return str(path)


def _l2n(row):
    norm = math.sqrt(sum(x * x for x in row))
    return [x / norm for x in row] if norm > 0 else [0.0] * len(row)


@pytest.fixture
def files(tmp_path):
    ids = ["a", "b", "c", "d"]
    rgb = _scores(0, ids)
    flow = _scores(1, ["d", "c", "e", "a", "b"])     # other order, extra "e"
    external = _scores(2, ["c", "a", "x"])            # lacks "b" and "d"
    labels = {v: i % K for i, v in enumerate(ids)}
    return {"ids": ids, "rgb": rgb, "flow": flow, "external": external,
            "labels": labels,
            "rgb_path": _write(tmp_path / "rgb.npz", rgb, labels),
            "flow_path": _write(tmp_path / "flow.npz", flow),
            "external_path": _write(tmp_path / "ext.npz", external),
            "tmp": tmp_path}


def _expected(f, flow_weight, external_weight=None):
    out = {}
    for v in f["ids"]:
        fused = [(1 - flow_weight) * r + flow_weight * w
                 for r, w in zip(f["rgb"][v], f["flow"][v])]
        if external_weight is not None:
            ext = f["external"].get(v, [0.0] * K)
            fused = [(1 - external_weight) * x + external_weight * y
                     for x, y in zip(_l2n(fused), _l2n(ext))]
        out[v] = fused
    return out


def test_align_follows_ids_not_rows():
    scores = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = fusion.align(["z", "x"], ["x", "y", "z"], scores, name="t")
    np.testing.assert_array_equal(got, scores[[2, 0]])
    with pytest.raises(errors.DataError, match="1 video\\(s\\) have no t"):
        fusion.align(["x", "w"], ["x", "y", "z"], scores, name="t")
    got = fusion.align(["w", "y"], ["x", "y", "z"], scores, name="t",
                       missing="zeros")
    np.testing.assert_array_equal(got, [[0] * 4, scores[1]])
    with pytest.raises(errors.DataError, match="'x' appears twice"):
        fusion.align(["x"], ["x", "x"], scores[:2], name="t")


def test_two_streams_fuse_per_video(files):
    ids, fused, inputs = actionvlad_fuse.fuse_files(
        files["rgb_path"], files["flow_path"], flow_weight=0.667)
    assert ids == files["ids"]
    want = _expected(files, 0.667)
    np.testing.assert_allclose(fused, [want[v] for v in ids], rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(inputs["flow"],
                               [files["flow"][v] for v in ids], rtol=1e-6)


def test_external_scores_fuse_after_l2_normalisation(files):
    ids, fused, _ = actionvlad_fuse.fuse_files(
        files["rgb_path"], files["flow_path"], flow_weight=0.5,
        external=files["external_path"], external_weight=0.4)
    want = _expected(files, 0.5, 0.4)
    np.testing.assert_allclose(fused, [want[v] for v in ids], rtol=1e-5,
                               atol=1e-6)
    # A video without external scores keeps 0.6 * its normalised streams.
    b = ids.index("b")
    np.testing.assert_allclose(np.linalg.norm(fused[b]), 0.6, rtol=1e-5)


def test_command_line_external_weight(files):
    out = files["tmp"] / "fused.npz"
    done = subprocess.run(
        [sys.executable, "-m", "experiments.actionvlad_fuse",
         f"--rgb={files['rgb_path']}", f"--flow={files['flow_path']}",
         f"--external={files['external_path']}", "--external_weight=0.3",
         "--flow_weight=0.6", f"--output={out}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["num_videos"] == 4
    want = _expected(files, 0.6, 0.3)
    with np.load(out) as z:
        ids = [str(v) for v in z["video_ids"]]
        assert ids == files["ids"]
        np.testing.assert_allclose(z["scores"], [want[v] for v in ids],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(
            z["labels"], [files["labels"][v] for v in ids])
