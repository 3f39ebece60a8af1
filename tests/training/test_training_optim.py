"""Schedules, optimizers, global-batch losses, clipping and EMA math."""

import math

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tfaction import config as config_lib
from tfaction import errors
from tfaction import training
from tfaction.training.fused_adam import FusedAdam
from tfaction.training.fused_adam import FusedAdamW
from tfaction.training.fused_sgd import FusedSGD


def optimizer_config(**values):
    config = config_lib.base_config().optimizer
    for key, value in values.items():
        config[key] = value
    return config


def lr_at(schedule, step):
    return float(schedule(step)) if callable(schedule) else schedule


# --- Schedules --------------------------------------------------------------
def test_warmup_then_cosine_schedule_values():
    schedule = training.build_learning_rate(
        optimizer_config(lr=1.0, schedule="cosine", warmup_steps=10,
                         min_lr_ratio=0.1), total_steps=110)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    expected = {0: 0.0, 5: 0.5, 10: 1.0, 110: 0.1, 500: 0.1,
                60: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)),
                35: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.25))}
    for step, value in expected.items():
        assert lr_at(schedule, step) == pytest.approx(value, abs=1e-6), step


def test_warmup_from_a_fraction_of_the_rate():
    """Video Action Transformer: linear 0.01 -> 0.1 over 1,000 steps, then
    cosine to 0."""
    schedule = training.build_learning_rate(
        optimizer_config(lr=0.1, schedule="cosine", warmup_steps=1000,
                         warmup_start_ratio=0.1), total_steps=11000)
    expected = {0: 0.01, 500: 0.055, 1000: 0.1, 6000: 0.05, 11000: 0.0}
    for step, value in expected.items():
        assert lr_at(schedule, step) == pytest.approx(value, abs=1e-6), step
    with pytest.raises(errors.ConfigError, match="warmup_start_ratio"):
        training.build_learning_rate(optimizer_config(
            warmup_steps=10, warmup_start_ratio=1.0), total_steps=100)


def test_constant_schedule_with_and_without_warmup():
    assert training.build_learning_rate(
        optimizer_config(lr=0.3, schedule="constant"), 100) == 0.3
    schedule = training.build_learning_rate(
        optimizer_config(lr=0.3, schedule="constant", warmup_steps=4), 100)
    assert [round(lr_at(schedule, s), 6) for s in (0, 2, 4, 50, 100)] == [
        0.0, 0.15, 0.3, 0.3, 0.3]


def test_step_schedule_is_staircase_decay():
    schedule = training.build_learning_rate(
        optimizer_config(lr=1e-2, schedule="step", decay_steps=5000,
                         decay_rate=0.1), total_steps=10000)
    assert isinstance(schedule, keras.optimizers.schedules.ExponentialDecay)
    expected = {0: 1e-2, 4999: 1e-2, 5000: 1e-3, 9999: 1e-3, 10000: 1e-4}
    for step, value in expected.items():
        assert lr_at(schedule, step) == pytest.approx(value, rel=1e-6), step


def test_cosine_per_epoch_is_torch_cosine_annealing_stepped_per_epoch():
    """CARL: CosineAnnealingLR(T_max=epochs + 1, eta_min=0), stepped after
    every epoch: constant within an epoch, > 0 in the last one."""
    epochs, per_epoch, lr = 5, 7, 1e-4
    schedule = training.build_learning_rate(
        optimizer_config(lr=lr, schedule="cosine_per_epoch"),
        total_steps=epochs * per_epoch, steps_per_epoch=per_epoch)
    assert isinstance(schedule, training.schedules.EpochCosineDecay)
    # The closed form PyTorch's recursive update follows, epoch by epoch.
    torch_lrs = [0.5 * lr * (1 + math.cos(math.pi * e / (epochs + 1)))
                 for e in range(epochs)]
    for step in range(epochs * per_epoch):
        assert lr_at(schedule, step) == pytest.approx(
            torch_lrs[step // per_epoch], rel=1e-5), step
    assert lr_at(schedule, epochs * per_epoch - 1) == pytest.approx(
        0.25 * lr, rel=1e-5)  # cos(2 pi / 3): not 0 at the end
    floor = training.build_learning_rate(
        optimizer_config(lr=1.0, schedule="cosine_per_epoch",
                         min_lr_ratio=0.2), total_steps=30, steps_per_epoch=10)
    assert lr_at(floor, 20) == pytest.approx(0.2 + 0.8 * 0.5, rel=1e-6)
    restored = training.schedules.EpochCosineDecay.from_config(
        schedule.get_config())
    assert lr_at(restored, 15) == lr_at(schedule, 15)
    with pytest.raises(errors.ConfigError, match="steps per epoch"):
        training.build_learning_rate(
            optimizer_config(schedule="cosine_per_epoch"), 100)


@pytest.mark.parametrize("values, message", [
    (dict(schedule="linear"), "unknown optimizer.schedule 'linear'"),
    (dict(schedule="cosine_per_epoch", warmup_steps=5),
     "'cosine_per_epoch' has no warm-up"),
    (dict(schedule="step"), "needs optimizer.decay_steps > 0"),
    (dict(schedule="step", decay_steps=10, warmup_steps=5),
     "'step' has no warm-up"),
    (dict(warmup_steps=100), "warmup_steps=100 must be"),
    (dict(lr=0.0), "optimizer.lr must be > 0"),
    (dict(min_lr_ratio=2.0), "min_lr_ratio must be in"),
])
def test_schedule_config_errors(values, message):
    with pytest.raises(errors.ConfigError, match=message):
        training.build_learning_rate(optimizer_config(**values), 100)


# --- Optimizers -------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [
    ("sgd", FusedSGD), ("adam", FusedAdam),
    ("adamw", FusedAdamW), ("lamb", keras.optimizers.Lamb)])
def test_build_optimizer_by_name(name, cls):
    optimizer = training.build_optimizer(optimizer_config(name=name), 10)
    assert type(optimizer) is cls


def test_unknown_optimizer_is_named():
    with pytest.raises(errors.ConfigError, match="optimizer.name 'adagrad'"):
        training.build_optimizer(optimizer_config(name="adagrad"), 10)


def test_weight_decay_skips_excluded_variables():
    optimizer = training.build_optimizer(optimizer_config(
        name="sgd", lr=1.0, schedule="constant", momentum=0.0,
        weight_decay=0.5, weight_decay_exclude=("bias",)), 10)
    kernel = keras.Variable(np.ones(2, "float32"), name="kernel")
    bias = keras.Variable(np.ones(2, "float32"), name="bias")
    optimizer.apply([tf.zeros(2), tf.zeros(2)], [kernel, bias])
    np.testing.assert_allclose(kernel.numpy(), [0.5, 0.5])
    np.testing.assert_allclose(bias.numpy(), [1.0, 1.0])


def test_mixed_float16_wraps_in_loss_scale_optimizer():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        optimizer = training.build_optimizer(optimizer_config(), 10)
    finally:
        keras.config.set_dtype_policy("float32")
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(optimizer.inner_optimizer, keras.optimizers.AdamW)


# --- Global-batch loss and clipping ------------------------------------------
def test_compute_loss_divides_by_the_global_batch():
    sgd = keras.optimizers.SGD(1.0)
    gbo = training.GlobalBatchOptimizer(sgd, 8, num_replicas=2)
    losses = tf.constant([1.0, 2.0, 3.0, 4.0])
    assert float(gbo.compute_loss(losses)) == pytest.approx(10 / 8)
    assert float(gbo.compute_loss(losses, [tf.constant(0.5)])) == (
        pytest.approx(10 / 8 + 0.5 / 2))
    assert float(gbo.compute_loss(losses, global_normalizer=5.0)) == 2.0


# Two examples, one per replica: per-example loss = w . x. Summed gradient
# (3, 4, 0) has norm 5; clipped to norm 1 the SGD step is -(0.6, 0.8, 0).
# Clipping each replica's gradient instead (Keras' own `global_clipnorm`)
# would step by -(1, 1, 0).
EXAMPLES = np.array([[6.0, 0.0, 0.0], [0.0, 8.0, 0.0]], "float32")
CLIPPED_STEP = np.array([-0.6, -0.8, 0.0], "float32")


def _linear_step(strategy, examples, clip_norm=1.0, loss_scale=False):
    with strategy.scope():
        w = tf.Variable(tf.zeros(3), name="w")
        sgd = keras.optimizers.SGD(1.0)
        optimizer = (keras.optimizers.LossScaleOptimizer(sgd) if loss_scale
                     else sgd)
        optimizer.build([w])
    gbo = training.GlobalBatchOptimizer(optimizer, global_batch_size=2,
                                        clip_norm=clip_norm)

    def replica_step(x):
        with tf.GradientTape() as tape:
            loss = gbo.compute_loss(tf.linalg.matvec(x, w))
        return gbo.minimize(loss, [w], tape)

    per_replica = len(examples) // strategy.num_replicas_in_sync
    inputs = strategy.experimental_distribute_values_from_function(
        lambda ctx: examples[ctx.replica_id_in_sync_group * per_replica:][
            :per_replica])
    norm = tf.function(lambda x: strategy.run(replica_step, args=(x,)))(
        inputs)
    return w, optimizer, strategy.experimental_local_results(norm)


def test_clipping_uses_the_norm_of_the_summed_gradient(two_cpu_strategy):
    for strategy in (training.get_strategy("one_device"), two_cpu_strategy):
        w, _, norms = _linear_step(strategy, EXAMPLES)
        for value in strategy.experimental_local_results(w):
            np.testing.assert_allclose(value.numpy(), CLIPPED_STEP,
                                       rtol=1e-6)
        assert [float(n) for n in norms] == [pytest.approx(5.0)] * len(norms)


def test_no_clipping_when_clip_norm_is_zero():
    w, _, norms = _linear_step(training.get_strategy("one_device"), EXAMPLES,
                               clip_norm=0.0)
    np.testing.assert_allclose(w.numpy(), [-3.0, -4.0, 0.0])
    assert norms == (None,)


def test_overflow_on_one_replica_skips_the_step_on_all(two_cpu_strategy):
    examples = EXAMPLES.copy()
    examples[1, 1] = np.inf  # only the second replica overflows
    for clip_norm in (0.0, 1.0):
        w, optimizer, _ = _linear_step(two_cpu_strategy, examples,
                                       clip_norm=clip_norm, loss_scale=True)
        for value in two_cpu_strategy.experimental_local_results(w):
            np.testing.assert_array_equal(value.numpy(), np.zeros(3))
        scale = two_cpu_strategy.experimental_local_results(
            optimizer.dynamic_scale)
        assert float(scale[0].numpy()) == 2.0 ** 15 / 2


def _two_variable_step(strategy, clip_norm, clip_norm_per_variable):
    """Per-example loss w . x + v * x0: summed gradients (3, 4, 0), 3."""
    with strategy.scope():
        w = tf.Variable(tf.zeros(3), name="w")
        v = tf.Variable(0.0, name="v")
        optimizer = keras.optimizers.SGD(1.0)
        optimizer.build([w, v])
    gbo = training.GlobalBatchOptimizer(
        optimizer, global_batch_size=2, clip_norm=clip_norm,
        clip_norm_per_variable=clip_norm_per_variable)

    def replica_step(x):
        with tf.GradientTape() as tape:
            loss = gbo.compute_loss(tf.linalg.matvec(x, w) + v * x[:, 0])
        return gbo.minimize(loss, [w, v], tape)

    per_replica = 2 // strategy.num_replicas_in_sync
    inputs = strategy.experimental_distribute_values_from_function(
        lambda ctx: EXAMPLES[ctx.replica_id_in_sync_group * per_replica:][
            :per_replica])
    norm = tf.function(lambda x: strategy.run(replica_step, args=(x,)))(
        inputs)
    return ([strategy.experimental_local_results(x)[0].numpy()
             for x in (w, v)],
            float(strategy.experimental_local_results(norm)[0]))


@pytest.mark.parametrize("clip_norm, expected_w, expected_v", [
    (0.0, CLIPPED_STEP, -1.0),  # each variable to norm 1 (TF-slim)
    (1.0, CLIPPED_STEP / np.sqrt(2), -1 / np.sqrt(2)),  # then globally
])
def test_per_variable_clipping_of_the_summed_gradient(
        two_cpu_strategy, clip_norm, expected_w, expected_v):
    for strategy in (training.get_strategy("one_device"), two_cpu_strategy):
        (w, v), norm = _two_variable_step(strategy, clip_norm, 1.0)
        np.testing.assert_allclose(w, expected_w, rtol=1e-6)
        assert float(v) == pytest.approx(expected_v, rel=1e-6)
        assert norm == pytest.approx(np.sqrt(25 + 9), rel=1e-6)


def test_loss_scale_does_not_change_the_update():
    w, _, _ = _linear_step(training.get_strategy("one_device"), EXAMPLES,
                           loss_scale=True)
    np.testing.assert_allclose(w.numpy(), CLIPPED_STEP, rtol=1e-6)


# --- EMA ----------------------------------------------------------------------
def _dense_model():
    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(
        2, kernel_initializer="ones", bias_initializer="zeros")(inputs))


def test_ema_update_math_and_swap():
    model = _dense_model()
    ema = training.ModelEMA(model, decay=0.9)
    old = [w.numpy() for w in model.weights]
    new = [np.full_like(w, 3.0) for w in old]
    model.set_weights(new)
    ema.update()
    expected = [0.9 * o + 0.1 * n for o, n in zip(old, new)]
    for shadow, want in zip(ema.shadows, expected):
        np.testing.assert_allclose(shadow.numpy(), want, rtol=1e-6)
    with ema.swapped_weights():
        for weight, want in zip(model.get_weights(), expected):
            np.testing.assert_allclose(weight, want, rtol=1e-6)
    for weight, want in zip(model.get_weights(), new):
        np.testing.assert_array_equal(weight, want)


def test_ema_update_in_replica_context(two_cpu_strategy):
    with two_cpu_strategy.scope():
        model = _dense_model()
        ema = training.ModelEMA(model, decay=0.5)
    model.set_weights([np.full_like(w, 2.0) for w in model.get_weights()])
    tf.function(lambda: two_cpu_strategy.run(ema.update))()
    kernel_shadow = two_cpu_strategy.experimental_local_results(
        ema.shadows[0])
    for value in kernel_shadow:  # 0.5 * 1 + 0.5 * 2 on every replica
        np.testing.assert_allclose(value.numpy(), np.full((2, 2), 1.5))


def test_ema_decay_must_be_below_one():
    with pytest.raises(errors.ConfigError, match="ema.decay"):
        training.ModelEMA(_dense_model(), decay=1.0)


def test_base_optimizer_section_is_locked():
    config = config_lib.base_config()
    assert isinstance(config.optimizer, ml_collections.ConfigDict)
    with pytest.raises(AttributeError, match="lrr"):
        config.optimizer.lrr = 1.0


def test_gradient_scales_apply_after_clipping_in_one_multiply():
    """Clip by the unscaled norm, then scale: one multiply per gradient."""
    variables = [tf.Variable([1.0, 2.0]), tf.Variable([3.0])]
    sgd = keras.optimizers.SGD(learning_rate=0.1)
    sgd.build(variables)
    gbo = training.GlobalBatchOptimizer(sgd, global_batch_size=1,
                                        clip_norm=1.0, num_replicas=1)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(variables[0]) + 2.0 * tf.reduce_sum(
                variables[1])
        return gbo.minimize(loss, variables, tape,
                            gradient_scales=[5.0, 0.5])

    graph = step.get_concrete_function().graph
    # The gradients [1, 1] and [2]: norm sqrt(6), clipped to 1.
    np.testing.assert_allclose(float(step()), np.sqrt(6.0), rtol=1e-6)
    factor = 1.0 / np.sqrt(6.0)
    np.testing.assert_allclose(variables[0].numpy(),
                               [1.0, 2.0] - 0.1 * 5.0 * factor, rtol=1e-6)
    np.testing.assert_allclose(variables[1].numpy(),
                               [3.0 - 0.1 * 0.5 * 2.0 * factor], rtol=1e-6)
    # One multiply of each gradient by its (clip x scale) factor (besides
    # the norms' squares and the optimiser's update).
    gradient_products = [
        op for op in graph.get_operations() if op.type == "Mul"
        and op.outputs[0].shape.rank and "SGD" not in op.name
        and not op.name.startswith("norm")]
    assert len(gradient_products) == 2, [op.name for op in gradient_products]
