"""The Video Action Transformer network: trunk -> RPN -> proposals -> head.

Tiny widths (I3D at 1/16, D = 8) keep every case to seconds; the topology,
strides and wiring are the full model's.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.models.action_transformer import ActionTransformer
from tfaction.models.action_transformer import ActionTransformerBoxHead
from tfaction.models.action_transformer import decoding
from tfaction.ops import box_coder
from tfaction.testing import run_model_test

TINY = dict(num_proposals=6, trunk_width_multiplier=0.0625, rpn_filters=8,
            anchor_base_size=32.0, key_dim=8, ffn_units=8, num_layers=1,
            query_reduction_channels=4, dropout=0.0)


def clips(batch=2, frames=8, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (batch, frames, size, size, 3)).astype(
        "float32")


@pytest.mark.parametrize("head", ["tx", "i3d", "tx_i3d"])
def test_contract_and_output_shapes(head):
    """Config, registration, `.keras` round trip; NMS has no XLA kernel,
    so the model declares `supports_jit=False` through its proposal
    layer."""
    out = run_model_test(
        ActionTransformer, dict(num_classes=3, head=head, **TINY), clips(),
        expected_output_shape={
            "rpn_logits": (2, 4 * 4 * 12), "rpn_deltas": (2, 4 * 4 * 12, 4),
            "proposals": (2, 6, 4), "proposal_scores": (2, 6),
            "proposal_mask": (2, 6), "class_logits": (2, 6, 4),
            "box_deltas": (2, 6, 4)},
        expected_output_dtype={
            "rpn_logits": "float32", "rpn_deltas": "float32",
            "proposals": "float32", "proposal_scores": "float32",
            "proposal_mask": "bool", "class_logits": "float32",
            "box_deltas": "float32"},
        supports_jit=False)
    assert out["proposal_mask"].any()


def test_whole_graph_equals_its_parts():
    """The training path (parts called one by one) computes what the
    functional graph computes."""
    model = ActionTransformer(4, head="tx_i3d", **TINY)
    x = clips()
    out = model(x)
    features = model.trunk(x)
    centre = model.rpn_frame_layer(features)
    np.testing.assert_allclose(centre, features[:, features.shape[1] // 2])
    logits, deltas = model.rpn_head(centre)
    np.testing.assert_allclose(out["rpn_logits"], logits, atol=1e-6)
    props = model.proposal_generator([logits, deltas, centre, x])
    np.testing.assert_allclose(out["proposals"], props["boxes"], atol=1e-6)
    second = model.box_head([features, props["boxes"]])
    np.testing.assert_allclose(out["class_logits"], second["class_logits"],
                               atol=1e-5)
    np.testing.assert_allclose(out["box_deltas"], second["box_deltas"],
                               atol=1e-5)


def test_tx_i3d_classifies_with_tx_and_regresses_with_i3d():
    head = ActionTransformerBoxHead(
        3, feature_channels=52, head="tx_i3d", key_dim=8, ffn_units=8,
        num_layers=1, query_reduction_channels=4,
        i3d_width_multiplier=0.0625)
    names = {layer.name for layer in head.layers}
    assert {"tx_class_logits", "i3d_box_deltas", "transformer",
            "i3d_blocks"} <= names
    assert "tx_box_deltas" not in names and "i3d_class_logits" not in names


def test_boxes_of_one_clip_do_not_change_another_box():
    """Proposals are independent: K/V are shared per clip, each box's
    query attends alone."""
    head = ActionTransformerBoxHead(
        3, feature_channels=16, head="tx", key_dim=8, ffn_units=8,
        num_layers=2, query_reduction_channels=4, dropout=0.0)
    rng = np.random.default_rng(1)
    features = rng.normal(size=(1, 4, 5, 5, 16)).astype("float32")
    boxes = np.array([[[0.1, 0.1, 0.5, 0.4], [0.3, 0.5, 0.9, 0.9]]],
                     "float32")
    both = head([features, boxes])["class_logits"]
    one = head([features, boxes[:, :1]])["class_logits"]
    np.testing.assert_allclose(both[:, :1], one, atol=1e-5)


def test_tx_head_sees_context_outside_the_box_and_i3d_head_does_not():
    """Changing features far from the box moves the Tx logits (attention
    over every cell) but not the I3D head's (its tube is the box)."""
    rng = np.random.default_rng(2)
    features = rng.normal(size=(1, 4, 8, 8, 52)).astype("float32")
    box = np.array([[[0.0, 0.0, 0.25, 0.25]]], "float32")
    far = features.copy()
    far[:, :, 6:, 6:, :] += 5.0
    kwargs = dict(feature_channels=52, key_dim=8, ffn_units=8, num_layers=1,
                  query_reduction_channels=4, dropout=0.0,
                  i3d_width_multiplier=0.0625)
    tx = ActionTransformerBoxHead(3, head="tx", **kwargs)
    assert not np.allclose(tx([features, box])["class_logits"],
                           tx([far, box])["class_logits"], atol=1e-4)
    i3d = ActionTransformerBoxHead(3, head="i3d", **kwargs)
    np.testing.assert_allclose(i3d([features, box])["class_logits"],
                               i3d([far, box])["class_logits"], atol=1e-5)


def test_proposals_follow_rpn_scores_and_carry_no_gradient():
    model = ActionTransformer(2, head="tx", **TINY)
    x = tf.constant(clips(batch=1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x)
        total = tf.reduce_sum(out["proposals"])
    assert tape.gradient(total, x) is None
    scores = out["proposal_scores"].numpy()[0][out["proposal_mask"][0]]
    assert np.all(np.diff(scores) <= 1e-7)  # descending objectness


def test_mixed_precision_outputs_are_float32():
    model = ActionTransformer(3, head="tx_i3d", dtype="mixed_float16", **TINY)
    out = model(clips(batch=1))
    assert model.trunk.compute_dtype == "float16"
    assert out["class_logits"].dtype == "float32"
    assert np.isfinite(out["class_logits"].numpy()).all()


def test_decode_detections_refines_suppresses_and_pads():
    proposals = np.array([[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.5],
                           [0.6, 0.6, 0.9, 0.8], [0.0, 0.0, 0.0, 0.0]]],
                         "float32")
    mask = np.array([[True, True, True, False]])
    logits = np.array([[[-4.0, 1.0, -1.0], [-3.0, 2.0, 0.0],
                        [-1.0, -2.0, 3.0], [-9.0, 9.0, 9.0]]], "float32")
    deltas = np.zeros((1, 4, 4), "float32")
    deltas[0, 2] = [1.0, 0.0, 0.0, 0.0]  # move the third box down
    out = decoding.decode_detections(proposals, mask, logits, deltas,
                                     max_detections=3)
    assert out["num_detections"].numpy().tolist() == [2]
    np.testing.assert_allclose(out["boxes"][0, 0], proposals[0, 0])
    want = box_coder.clip_boxes(box_coder.decode_boxes(
        deltas[:, 2:3], proposals[:, 2:3]))[0, 0]
    np.testing.assert_allclose(out["boxes"][0, 1], want, atol=1e-6)
    np.testing.assert_allclose(out["scores"][0, 1],
                               1 / (1 + np.exp(-logits[0, 2, 1:])), atol=1e-6)
    assert not out["mask"][0, 2] and not out["boxes"][0, 2].numpy().any()


def test_ava_rows_keep_the_top_pairs_in_csv_order():
    rows = decoding.ava_rows("vid", "0902", [[0.1, 0.2, 0.5, 0.6],
                                            [0.2, 0.3, 0.4, 0.5]],
                             [[0.1, 0.7, 0.3], [0.9, 0.2, 0.7]], [1, 3, 8],
                             top_k=3)
    assert [(r[6], round(r[7], 2)) for r in rows] == [(1, 0.9), (3, 0.7),
                                                      (8, 0.7)]
    assert rows[0][2:6] == (0.3, 0.2, 0.5, 0.4)  # x1, y1, x2, y2


def test_unknown_head_or_query():
    with pytest.raises(errors.ConfigError, match="head='slowfast'"):
        ActionTransformer(3, head="slowfast")
    with pytest.raises(errors.ConfigError, match="query='mid_res'"):
        ActionTransformerBoxHead(3, query="mid_res")
    with pytest.raises(errors.ConfigError, match="take the 52 channels"):
        ActionTransformerBoxHead(3, feature_channels=16, head="i3d",
                                 i3d_width_multiplier=0.0625)
