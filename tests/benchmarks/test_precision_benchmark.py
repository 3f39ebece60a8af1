"""Tests of the mixed precision / XLA benchmark (`benchmarks/precision.py`):
its families keep the recipes' architectures at the documented sizes, its
rows divide by the float32 baseline, and its step (the task's own
`train_step`) runs under `mixed_float16` with loss scaling on a shrunk
ActionVLAD recipe."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import precision as bench


def test_families_keep_the_recipes_architectures():
    actionformer = bench.family_config("actionformer").task
    assert actionformer.max_seq_len == 576
    assert actionformer.model.embed_dim == 512
    assert tuple(actionformer.model.arch) == (2, 2, 5)
    actionvlad = bench.family_config("actionvlad")
    assert actionvlad.task.model.trunk == "vgg16"
    assert "last_block" in actionvlad.task.trainable     # stage 2
    assert actionvlad.task.frames.num_steps == 3
    assert tuple(actionvlad.task.frames.crop_size) == (112, 112)
    transformer = bench.family_config("action_transformer").task
    assert (transformer.model.head, transformer.model.query) == (
        "tx", "high_res")
    assert transformer.clips.num_frames == 8
    carl = bench.family_config("carl")
    assert carl.task.model.trunk == "resnet50"
    assert carl.runtime.mixed_precision == "mixed_float16"  # the recipe's
    adafocus = bench.family_config("adafocus_v2").task
    assert adafocus.model.glance_arch == "mobilenet_v2"
    assert adafocus.model.patch_size == 96
    for family in bench.FAMILIES:
        assert family in bench.SHAPES and family in bench.FAMILY_NAMES


def test_unknown_family_raises():
    with pytest.raises(ValueError, match="unknown family"):
        bench.family_config("kinetics")


def test_rows_divide_by_the_float32_baseline():
    cases = {
        "carl": {"float32": {"step_s": 2.0},
                 "mixed_bfloat16": {"step_s": 1.5},
                 "float32_xla": {"error": "failed"}},
        "actionvlad": {"float32": {"error": "failed"},
                       "mixed_bfloat16": {"step_s": 1.0}}}
    rows = bench.make_rows(cases)
    assert len(rows) == 1   # no row for a failure or without a baseline
    row = rows[0]
    assert set(row) == {"family", "measure", "ours", "reference", "unit",
                        "ratio", "reference_name", "target", "met"}
    assert (row["family"], row["ours"], row["reference"], row["ratio"]) == (
        "CARL", 1.5, 2.0, 0.75)
    assert "mixed_bfloat16" in row["measure"]


def _tiny_actionvlad(root):
    config = bench.family_config("actionvlad")
    task = config.task
    task.frames.num_steps = 2
    task.frames.crop_size = (48, 48)
    task.model.trunk = "small"
    task.model.filters = (4, 8)
    task.model.num_clusters = 4
    bench.write_dataset("actionvlad", config, root)
    return config


def test_step_under_mixed_float16_scales_the_loss(tmp_path):
    config = _tiny_actionvlad(tmp_path)
    batch = bench.draw_batch(config)
    assert batch[0].shape == (2, 2, 48, 48, 3)
    batch = tf.nest.map_structure(tf.constant, batch)
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        setup = bench.train_step_setup(config, jit_compile=False)
        model = setup["model"]
        assert isinstance(setup["optimizer"],
                          keras.optimizers.LossScaleOptimizer)
        assert model.trainable_variables[0].dtype == "float32"
        before = [np.array(v) for v in model.trainable_variables]
        logs = setup["step"](batch)
    finally:
        keras.config.set_dtype_policy("float32")
    assert math.isfinite(float(logs["loss"]))
    moved = [not np.array_equal(b, np.array(v))
             for b, v in zip(before, model.trainable_variables)]
    # Applied, or skipped on overflow with the loss scale halved.
    optimizer = setup["optimizer"]
    if int(optimizer.inner_optimizer.iterations) == 1:
        assert any(moved)
    else:
        assert not any(moved) and float(optimizer.dynamic_scale) < 2 ** 15


def test_a_failed_or_slow_setting_is_reported_not_hidden():
    failed = bench._setting_row(["--child_setting", "float64"], 60,
                                "carl float64")
    assert "failed (exit 2)" in failed["error"] and "invalid choice" in (
        failed["error"])
    slow = bench._setting_row(["--families", "carl"], 0.01, "carl run")
    assert slow["timed_out"] and "stopped after 0.01 s" in slow["error"]
    assert bench.make_rows({"carl": {"float32": {"step_s": 1.0},
                                     "mixed_float16": slow}}) == []
