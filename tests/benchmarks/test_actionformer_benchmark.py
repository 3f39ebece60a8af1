"""Tests of the ActionFormer benchmark (`benchmarks/actionformer.py` and its
shared shapes, `benchmarks/actionformer_shapes.py`)."""

import numpy as np
import pytest

from benchmarks import actionformer as bench
from benchmarks import actionformer_shapes as shapes
from tfaction.models.actionformer.model import level_windows
from tfaction.models.actionformer.model import max_div_factor_of


@pytest.mark.parametrize("name", ["thumos", "anet", "ego4d", "quick"])
def test_shapes_are_valid_pyramids(name):
    model = shapes.SHAPES[name]["model"]
    levels = 1 + model["arch"][2]
    div = max_div_factor_of(level_windows(model["window_size"], levels))
    assert model["max_seq_len"] % div == 0
    if "input_splits" in model:
        assert sum(model["input_splits"]) == model["input_dim"]
        assert sum(model["projection_dims"]) == model["embed_dim"]


def test_training_inputs_are_padded_batches():
    feats, mask, segs, labels, gt_valid = shapes.training_inputs(4, 64, 3, 5)
    assert feats.shape == (4, 64, 3) and mask.shape == (4, 64)
    assert mask.sum(1).tolist() == [64, 49, 64, 49]
    assert not feats[~mask].any()
    assert segs.shape == (4, 8, 2) and labels.max() < 5
    assert (segs[..., 1] >= segs[..., 0]).all()
    assert gt_valid.sum(1).tolist() == [8, 6, 8, 8]
    again = shapes.training_inputs(4, 64, 3, 5)
    np.testing.assert_array_equal(again[0], feats)


def _figures(scale):
    keys = ("train_fwd_bwd_s", "train_full_step_s", "infer_network_s",
            "infer_with_postprocess_s", "train_peak_rss_gb",
            "infer_peak_rss_gb", "train_floor_s", "infer_floor_s",
            "import_rss_gb", "train_resident_rss_gb",
            "train_peak_over_import_gb", "train_tensor_peak_gb",
            "train_contraction_s", "infer_contraction_s", "train_rest_s",
            "infer_rest_s")
    out = {k: scale * (i + 1) for i, k in enumerate(keys)}
    out["details"] = {"first_step_trace_s": 12.0, "first_step_s": 20.0}
    return out


def test_rows_hold_ratios_and_targets():
    ref = _figures(1.0)
    ref.update(torch="2.13.0", torch_threads=2)
    rows = bench._rows("thumos", shapes.SHAPES["thumos"], _figures(0.5), ref,
                       "authors")
    keys = {"family", "measure", "ours", "reference", "unit", "ratio",
            "reference_name", "target", "met"}
    assert all(set(r) == keys and r["family"] == "ActionFormer"
               for r in rows)
    step = rows[0]
    assert "training step" in step["measure"] and "T=2304" in step["measure"]
    assert (step["ratio"], step["target"], step["met"]) == (0.5, "<= 0.7x",
                                                            True)
    trace = [r for r in rows if "tracing," in r["measure"]][0]
    assert (trace["ours"], trace["met"]) == (12.0, False)
    # the floors are compared with the authors' measured times
    floor = [r for r in rows if "forward+backward, contraction floor" in r["measure"]]
    assert (floor[0]["ours"], floor[0]["reference"]) == (3.5, 1.0)
    assert floor[0]["ratio"] == 3.5 and floor[0]["target"] is None
    # ... and with the authors' own contractions and the rest of their step
    theirs = [r for r in rows if "vs the authors' contractions" in
              r["measure"]]
    assert [r["measure"].split(",")[0] for r in theirs] == [
        "training forward+backward", "inference network"] * 2
    assert (theirs[0]["ours"], theirs[0]["reference"]) == (3.5, 13.0)
    assert (theirs[1]["ours"], theirs[1]["reference"]) == (4.0, 14.0)
    # ... our products as they run in the step, beside theirs
    assert "as they run" in theirs[2]["measure"]
    assert (theirs[2]["ours"], theirs[2]["reference"]) == (6.5, 13.0)
    assert (theirs[3]["ours"], theirs[3]["reference"]) == (7.0, 14.0)
    rest = [r for r in rows if "outside the contractions" in r["measure"]]
    assert [(r["ours"], r["reference"]) for r in rest] == [(7.5, 15.0),
                                                            (8.0, 16.0)]
    resident = [r for r in rows if "between two training" in r["measure"]]
    assert (resident[0]["ours"], resident[0]["reference"]) == (5.0, 10.0)
    imports = [r for r in rows if "importing" in r["measure"]][0]
    assert (imports["ours"], imports["reference"], imports["unit"]) == (
        4.5, 9.0, "GB")
    above = [r for r in rows if "above the framework's import" in
             r["measure"]][0]
    assert (above["ours"], above["reference"], above["ratio"]) == (
        5.5, 11.0, 0.5)
    tensors = [r for r in rows if "live tensors" in r["measure"]][0]
    assert (tensors["ours"], tensors["reference"]) == (6.0, None)
    alone = bench._rows("anet", shapes.SHAPES["anet"], _figures(0.5), None,
                        None)
    assert all(r["reference"] is None and r["ratio"] is None
               for r in alone)
    assert "B=16, T=192" in alone[0]["measure"]


def test_authors_profile_splits_contractions_from_the_rest():
    from benchmarks import actionformer_torch

    self_times = [("aten::mkldnn_convolution", 2e6),
                  ("aten::convolution_backward", 4e6), ("aten::bmm", 1e6),
                  ("aten::conv1d", 10.0), ("aten::mul", 1e6),
                  ("aten::copy_", 2e6)]
    contraction, total = actionformer_torch.contraction_split(self_times, 2)
    assert contraction == pytest.approx(3.5)
    assert total == pytest.approx(5.0 + 5e-6)


def test_inference_children_take_their_own_iteration_count():
    import argparse

    args = argparse.Namespace(iterations=3, infer_iterations=15)
    assert bench._iterations(args, "train") == 3
    assert bench._iterations(args, "infer") == 15
    args.infer_iterations = None
    assert bench._iterations(args, "infer") == 3


def test_rest_is_the_time_less_the_products():
    figures = {"train_fwd_bwd_s": 3.0, "infer_network_s": 0.5,
               "train_floor_s": 2.25, "infer_floor_s": 0.375}
    bench._add_rest(figures, "floor")
    assert (figures["train_rest_s"], figures["infer_rest_s"]) == (0.75,
                                                                  0.125)
    figures.update(train_contraction_s=2.5, infer_contraction_s=0.25)
    bench._add_rest(figures, "contraction")
    assert (figures["train_rest_s"], figures["infer_rest_s"]) == (0.5, 0.25)
