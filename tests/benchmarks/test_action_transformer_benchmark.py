"""Tests of the analytic FLOP / parameter counter of the Action Transformer
benchmark (`benchmarks/action_transformer.py`), on tiny shapes."""

import keras
import numpy as np
import pytest

from benchmarks import action_transformer as bench
from benchmarks import report
from tfaction.layers.action_transformer_unit import ActionTransformerUnit
from tfaction.models.action_transformer.box_head import (
    ActionTransformerBoxHead)
from tfaction.models.backbones import i3d

# A tiny box head: features [B, T, H, W, C], R boxes.
B, T, H, W, R = 1, 4, 5, 5, 3
WIDTH = 0.0625                       # I3D width multiplier
C = i3d.endpoint_channels("Mixed_4f", WIDTH)
D, FFN, QR, CLASSES = 8, 6, 4, 3     # key_dim, ffn_units, reduction, classes
LOC = 16                             # location channels (4 -> 8, twice)


def _head(head, query="high_res"):
    return ActionTransformerBoxHead(
        CLASSES, feature_channels=C, head=head, query=query, key_dim=D,
        ffn_units=FFN, query_reduction_channels=QR,
        i3d_width_multiplier=WIDTH)


def _shapes():
    return [(B, T, H, W, C), (B, R, 4)]


def _keras_counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, model.count_params()


def test_dense_by_hand():
    x = keras.Input((5,))
    model = keras.Model(x, keras.layers.Dense(3, activation="relu")(x))
    cost = bench.count_cost(model, [(2, 5)]).total()
    assert cost.macs == 2 * 5 * 3
    assert cost.other_flops == 2 * 3 + 2 * 3      # bias + ReLU
    assert cost.flops == 2 * 30 + 12
    assert cost.params == 5 * 3 + 3 == model.count_params()


def test_conv3d_same_padding_by_hand():
    x = keras.Input((4, 5, 5, 3))
    y = keras.layers.Conv3D(2, 3, strides=2, padding="same")(x)
    model = keras.Model(x, y)
    cost = bench.count_cost(model, [(1, 4, 5, 5, 3)]).total()
    # SAME, stride 2: 4x5x5 -> 2x3x3 outputs, each a 3x3x3x3 window.
    assert cost.macs == (2 * 3 * 3 * 2) * (27 * 3)
    assert cost.params == 27 * 3 * 2 + 2 == model.count_params()


def test_tx_unit_by_hand():
    query, context = (2, R, 5), (2, T, H, W, 7)
    unit = ActionTransformerUnit(key_dim=D, ffn_units=FFN)
    unit.build(query, context)
    counter = bench.FlopCounter()
    counter.unit(unit, query, context, "unit")
    cost = counter.total()
    n = T * H * W
    projections = 2 * R * 5 * D + 2 * 2 * n * 7 * D     # Q; K and V
    attention = 2 * (2 * R * n * D)                     # QK^T and AV
    ffn = 2 * (R * D * FFN + R * FFN * D)
    assert cost.macs == projections + attention + ffn
    assert counter.by_kind()["attention"].macs == attention
    assert counter.by_kind()["kv_projection"].macs == 2 * 2 * n * 7 * D
    # softmax 5 / logit, scaling 1 / query element
    assert counter.by_kind()["attention"].other_flops == (
        5 * 2 * R * n + 2 * R * D)
    assert cost.params == unit.count_params() == (
        5 * D + D + 7 * D + 7 * D + D + 2 * 2 * D + D * FFN + FFN
        + FFN * D + D)


@pytest.mark.parametrize("head,query", [
    ("tx", "high_res"), ("tx", "low_res"), ("i3d", "high_res"),
    ("tx_i3d", "low_res")])
def test_head_params_agree_with_keras(head, query):
    model = _head(head, query)
    cost = bench.count_cost(model, _shapes()).total()
    trainable, total = _keras_counts(model)
    assert cost.params == trainable
    assert cost.params + cost.non_trainable == total


def test_tx_head_macs_by_hand():
    model = _head("tx", "high_res")
    cost = bench.count_cost(model, _shapes()).total()
    n, cx = T * H * W, C + LOC
    loc = H * W * (2 * 4 + 4 * 8) + T * (1 * 4 + 4 * 8)
    query = R * 7 * 7 * cx * QR + R * 7 * 7 * QR * D
    per_unit = 2 * n * cx * D + 2 * R * n * D + 2 * R * D * FFN
    units = 2 * (R * D * D + per_unit) + 4 * (R * 2 * D * D + per_unit)
    outputs = R * 2 * D * (CLASSES + 1 + 4)
    assert cost.macs == loc + query + units + outputs


def test_counter_agrees_with_tf_profiler():
    # The profiler counts MatMul / BatchMatMul / Conv3D but not Einsum (the
    # attention products).
    for head in ("tx", "i3d"):
        model = _head(head)
        counter = bench.count_cost(model, _shapes())
        total, by_op = bench.profile_flops(model, _shapes())
        products = sum(v for k, v in by_op.items()
                       if k in bench.PRODUCT_OPS)
        attention = counter.by_kind().get("attention", bench.Cost()).macs
        assert products == 2 * (counter.total().macs - attention)
        assert total >= products


def test_unknown_layer_raises():
    x = keras.Input((4, 3))
    model = keras.Model(x, keras.layers.GRU(2)(x))
    with pytest.raises(TypeError, match="no rule"):
        bench.count_cost(model, [(1, 4, 3)])


def test_throughput_figures_by_hand():
    # 2 GFLOPs forward in 0.1 s, 6 GFLOPs (3 x) training in 0.5 s, and a
    # GEMM of 4 GFLOPs in 0.1 s: 20, 12 and 40 GFLOP/s.
    out = bench.throughput_figures(2e9, 0.1, 0.5, 4e9, 0.1)
    assert out["train_gflops"] == 6.0
    assert out["forward_gflops_per_s"] == 20.0
    assert out["train_gflops_per_s"] == 12.0
    assert out["gemm_gflops_per_s"] == 40.0
    assert (out["forward_fraction"], out["train_fraction"]) == (0.5, 0.3)


def test_throughput_rows_compare_with_the_gemm_rate():
    figures = dict(bench.throughput_figures(2e9, 0.1, 0.5, 4e9, 0.1),
                   proposals=64, gemm_size=2048)
    rows = bench.throughput_rows(figures)
    assert [r["ours"] for r in rows] == [20.0, 12.0]
    assert [r["ratio"] for r in rows] == [0.5, 0.3]
    for row in rows:
        assert set(row) == {"family", "measure", "ours", "reference",
                            "unit", "ratio", "reference_name", "target",
                            "met"}
        assert row["family"] == "Video Action Transformer"
        assert row["reference"] == 40.0 and row["unit"] == "GFLOP/s"


def test_throughput_ratio_is_the_rows_own_quotient():
    """The ratio is the quotient of the row's rounded rates (158.1 / 215 =
    0.7353 -> 0.74), which the report checks, not the unrounded fraction
    (here 0.7349 -> 0.73, 0.0053 away)."""
    figures = dict(proposals=64, gemm_size=2048, gemm_gflops_per_s=215.0,
                   forward_gflops_per_s=166.0, train_gflops_per_s=158.1,
                   forward_fraction=0.7721, train_fraction=0.7349)
    rows = bench.throughput_rows(figures)
    assert [r["ratio"] for r in rows] == [0.77, 0.74]
    report.check_rows({"rows": rows}, "action_transformer")


def test_gemm_call_counts_two_n_cubed():
    call, flops = bench.gemm_call(8)
    assert flops == 2 * 8 ** 3
    call()
