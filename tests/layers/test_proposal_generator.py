"""Tests of `tfaction.layers.ProposalGenerator`.

Reference: `tfaction.ops.proposals.generate_proposals` on the grid anchors
of the same map (the layer adds the anchors for the current shapes).
"""

import numpy as np
import pytest

from tfaction.layers.proposal_generator import ProposalGenerator
from tfaction.ops import anchors as anchors_lib
from tfaction.ops import box_coder
from tfaction.ops import proposals as proposals_lib
from tfaction.testing import run_layer_test


def _inputs(seed=0, h=4, w=5, image=(64, 80), frames=3, a=12):
    rng = np.random.default_rng(seed)
    n = h * w * a
    return [rng.normal(size=(2, n)).astype("float32"),
            rng.normal(scale=0.5, size=(2, n, 4)).astype("float32"),
            np.zeros((2, h, w, 8), "float32"),
            np.zeros((2, frames, *image, 3), "float32")]


@pytest.mark.parametrize("inside_only", [False, True])
def test_equals_generate_proposals_on_the_grid_anchors(inside_only):
    layer = ProposalGenerator(max_proposals=20, base_anchor_size=32,
                              inside_only=inside_only)
    logits, deltas, fmap, clips = _inputs()
    out = layer([logits, deltas, fmap, clips])
    anchors = anchors_lib.grid_anchors(4, 5, 64, 80,
                                       base_anchor_size=(32, 32),
                                       anchor_stride=(16, 16))
    mask = box_coder.boxes_inside_window(anchors) if inside_only else None
    want = proposals_lib.generate_proposals(logits, deltas, anchors,
                                            anchor_mask=mask,
                                            max_proposals=20)
    for key in ("boxes", "scores", "mask"):
        np.testing.assert_array_equal(out[key], want[key])
    assert out["mask"].numpy().sum() > 0


def test_anchor_count_matches_the_rpn_head():
    layer = ProposalGenerator(scales=(0.5, 1.0), aspect_ratios=(1.0,))
    assert layer.num_anchors_per_location == 2
    anchors = layer.anchors(np.zeros((1, 3, 4, 2)), np.zeros((1, 48, 64, 3)))
    assert tuple(anchors.shape) == (3 * 4 * 2, 4)


def test_contract():
    """Weightless, TF-only (no XLA: the layer says so), serialisable."""
    run_layer_test(ProposalGenerator,
                   {"max_proposals": 7, "base_anchor_size": 32.0},
                   _inputs(), supports_jit=False,
                   expected_output_shape={"boxes": (2, 7, 4),
                                          "scores": (2, 7), "mask": (2, 7)},
                   expected_output_dtype={"boxes": "float32",
                                          "scores": "float32",
                                          "mask": "bool"},
                   expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0,
                   run_training_check=False, run_mixed_precision_check=False)
