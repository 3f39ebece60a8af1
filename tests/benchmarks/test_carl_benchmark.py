"""Tests of the CARL benchmark (`benchmarks/carl.py`): its cases are the
recipes' shapes, and its step (the task's forward, loss and gradients) runs
on a shrunk synthetic recipe."""

import math

import pytest

from benchmarks import carl as bench


@pytest.mark.parametrize("case,frames,size,layers,trunk", [
    ("pouring", 240, (224, 224), 2, "resnet50"),
    ("penn_action", 80, (224, 224), 3, "resnet50"),
    ("synthetic", 16, (64, 64), 2, "small")])
def test_cases_are_the_recipes_shapes(case, frames, size, layers, trunk):
    task = bench.case_config(case).task
    assert task.views.num_frames == frames
    assert tuple(task.views.image_size) == size
    assert (task.model.num_layers, task.model.trunk) == (layers, trunk)


def test_unknown_case_raises():
    with pytest.raises(ValueError, match="unknown case"):
        bench.case_config("kinetics")


def test_step_computes_the_loss_and_its_gradients():
    config = bench.case_config("synthetic")
    task = config.task
    task.views.num_frames = 6
    task.views.image_size = (16, 16)
    m = task.model
    m.small_filters = (4, 8)
    m.fc_units = (8,)
    m.hidden_size = 8
    m.num_heads = 2
    m.ffn_units = 16
    m.num_layers = 1
    m.embedding_size = 4
    m.projection_hidden_units = 4
    config.trainer.global_batch_size = 2
    setup = bench.step_setup(config)
    assert setup["batch"] == 2
    assert setup["frames_per_step"] == 2 * 2 * 6
    assert 0.5 <= setup["valid_fraction"] <= 1.0
    loss, grad_norm = setup["step"]()
    assert math.isfinite(loss) and loss > 0
    assert math.isfinite(grad_norm) and grad_norm > 0


def test_step_views_are_the_steps_labels():
    config = bench.case_config("penn_action")
    steps, masks = bench.step_views(config, seed=3)
    assert steps.shape == masks.shape == (1, 2, 80)
    assert str(masks.dtype) == "bool"
    # Valid slots hold sorted frame indices of the T stored frames.
    assert steps.min() >= 0 and steps.max() <= 79
    for view, mask in zip(steps[0], masks[0]):
        valid = view[mask]
        assert (valid[1:] >= valid[:-1]).all()
    again, _ = bench.step_views(config, seed=3)
    assert (again == steps).all()


def _ours(seconds, mb):
    return {"batch": 1, "num_frames": 80, "image_size": [224, 224],
            "dtype_policy": "float32", "train_step_s": seconds,
            "peak_train_mb": mb}


def test_rows_compare_with_the_reference():
    theirs = {"train_step_s": 20.0, "peak_train_mb": 2048.0,
              "torch": "2.x", "threads": 2}
    rows = bench.table_rows({"penn_action": _ours(15.0, 3072.0)},
                            {"penn_action": theirs}, "/nonexistent/CARL")
    step, memory = rows
    assert set(step) == {"family", "measure", "ours", "reference", "unit",
                         "ratio", "reference_name", "target", "met"}
    assert step["family"] == "CARL" and "PennAction" in step["measure"]
    assert (step["ours"], step["reference"], step["unit"]) == (15.0, 20.0,
                                                               "s")
    assert step["ratio"] == 0.75 and step["met"] is True
    assert step["target"] == "<= 0.8x"
    assert "2 threads" in step["reference_name"]
    assert (memory["ours"], memory["reference"], memory["unit"]) == (
        3.0, 2.0, "GB")
    assert memory["ratio"] == 1.5 and memory["met"] is None
    slower = bench.table_rows({"penn_action": _ours(18.0, 1.0)},
                              {"penn_action": theirs}, None)[0]
    assert slower["ratio"] == 0.9 and slower["met"] is False


def test_rows_without_reference_are_ours_only():
    rows = bench.table_rows({"synthetic": _ours(1.0, 512.0)}, {}, None)
    assert len(rows) == 2
    for row in rows:
        assert row["reference"] is None and row["ratio"] is None
        assert row["reference_name"] is None and row["met"] is None
    assert rows[0]["target"] is None


def test_bench_preset_is_penn_action():
    assert bench.BENCH["cases"] == "penn_action"
    assert set(bench.BENCH["cases"].split(",")) <= set(
        bench.REFERENCE_CASES)
