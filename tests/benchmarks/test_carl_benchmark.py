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
