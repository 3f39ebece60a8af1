"""`FusedSGD`, `FusedAdam`, `FusedAdamW`: Keras' optimisers, one kernel per
update.

Several steps from the same weights and gradients (a schedule, weight
decay, 1-D to 4-D variables) must give Keras' weights, momenta and moments
to float32 rounding, on one device and under MirroredStrategy; AMSGrad
takes Keras' own path; the optimizers serialise as themselves.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction import training
from tfaction.testing.docstring_checks import check_docstring_examples
from tfaction.training import fused_adam
from tfaction.training import fused_sgd
from tfaction.training import fused_update
from tfaction.training.fused_adam import FusedAdam
from tfaction.training.fused_adam import FusedAdamW
from tfaction.training.fused_sgd import FusedSGD

RNG = np.random.default_rng(0)
SHAPES = [(7, 5), (13,), (3, 3, 4, 6)]
INIT = [RNG.normal(size=s).astype("float32") for s in SHAPES]
GRADS = [[RNG.normal(size=s).astype("float32") for s in SHAPES]
         for _ in range(6)]
PAIRS = [(FusedAdam, keras.optimizers.Adam, {"epsilon": 1e-7}),
         (FusedAdamW, keras.optimizers.AdamW, {"weight_decay": 0.05,
                                               "epsilon": 1e-7}),
         (FusedAdam, keras.optimizers.Adam, {"amsgrad": True,
                                             "epsilon": 1e-7}),
         (FusedSGD, keras.optimizers.SGD, {"momentum": 0.9}),
         (FusedSGD, keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True,
                                           "weight_decay": 0.05}),
         (FusedSGD, keras.optimizers.SGD, {})]
PAIR_IDS = ["adam", "adamw", "amsgrad", "sgd_momentum", "sgd_nesterov_decay",
            "sgd_plain"]


def _run(cls, kwargs, strategy=None):
    """Six steps as the trainer takes them (`GlobalBatchOptimizer`); the
    summed gradient of a step is that step's `GRADS`."""
    strategy = strategy or training.get_strategy("one_device")
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        variables = [tf.Variable(x) for x in INIT]
        optimizer = cls(learning_rate=keras.optimizers.schedules.CosineDecay(
            1e-2, 100), **kwargs)
        optimizer.build(variables)
    updater = training.GlobalBatchOptimizer(optimizer, replicas,
                                            clip_norm=0.0)

    @tf.function
    def step(grads):
        def replica_fn():
            with tf.GradientTape() as tape:
                loss = updater.compute_loss(tf.reshape(tf.add_n(
                    [tf.reduce_sum(v * g) for v, g in zip(variables,
                                                          grads)]), [1]))
            updater.minimize(loss, variables, tape)
        strategy.run(replica_fn)

    for grads in GRADS:
        step([tf.constant(g) for g in grads])
    # The optimiser's own variables: iterations, momenta / moments.
    return [np.array(v.numpy()) for v in variables + optimizer.variables]


@pytest.mark.parametrize("ours, theirs, kwargs", PAIRS, ids=PAIR_IDS)
def test_same_weights_and_moments_as_keras(ours, theirs, kwargs):
    got, want = _run(ours, kwargs), _run(theirs, kwargs)
    assert not np.allclose(got[0], INIT[0])  # the steps moved the weights
    assert len(got) == len(want) >= len(SHAPES) + 1
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("ours, theirs, kwargs", [PAIRS[1], PAIRS[4]],
                         ids=[PAIR_IDS[1], PAIR_IDS[4]])
def test_same_under_mirrored_strategy(two_cpu_strategy, ours, theirs,
                                      kwargs):
    got = _run(ours, kwargs, two_cpu_strategy)
    want = _run(theirs, kwargs)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("optimizer, kernel", [
    (lambda: FusedAdam(1e-3), "ResourceApplyAdam"),
    (lambda: FusedSGD(1e-3, momentum=0.9), "ResourceApplyKerasMomentum"),
    (lambda: FusedSGD(1e-3), "ResourceApplyGradientDescent")],
    ids=["adam", "sgd_momentum", "sgd_plain"])
def test_fused_kernel_in_the_traced_step(optimizer, kernel):
    variables = [keras.Variable(x) for x in INIT]
    optimizer = optimizer()
    optimizer.build(variables)
    step = tf.function(lambda g: optimizer.apply(g, variables))
    graph = step.get_concrete_function(
        [tf.TensorSpec(s) for s in SHAPES]).graph
    types = [op.type for op in graph.get_operations()]
    assert types.count(kernel) == len(SHAPES)
    assert "Mul" not in types  # no per-variable element-wise update


class _CountingSchedule(keras.optimizers.schedules.CosineDecay):
    calls = 0

    def __call__(self, step):
        type(self).calls += 1
        return super().__call__(step)


def test_schedule_read_once_for_the_weight_decay_and_exclusions_kept():
    """Keras reads the schedule once per decayed variable; the fused
    optimiser once for the decay and once for the update."""
    variables = [keras.Variable(x) for x in INIT]
    optimizer = FusedAdamW(_CountingSchedule(1e-1, 100), weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_list=[variables[1]])
    optimizer.build(variables)
    step = tf.function(lambda g: optimizer.apply(g, variables))
    _CountingSchedule.calls = 0
    step([tf.zeros(s) for s in SHAPES])
    assert _CountingSchedule.calls == 2
    # zero gradients: only the decay moves the weights, not the excluded one
    np.testing.assert_array_equal(variables[1].numpy(), INIT[1])
    for v, x in zip(variables[::2], INIT[::2]):
        np.testing.assert_allclose(v.numpy(), x * (1 - 0.5 * 0.1), rtol=1e-6)


@pytest.mark.parametrize("optimizer", [
    FusedAdamW(learning_rate=0.5, weight_decay=0.1),
    FusedSGD(learning_rate=0.5, weight_decay=0.1, momentum=0.9)],
    ids=["adamw", "sgd"])
def test_serialises_as_itself(optimizer):
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is type(optimizer) and again.weight_decay == 0.1


@pytest.mark.parametrize("module", [fused_adam, fused_sgd, fused_update])
def test_docstring_examples(module):
    check_docstring_examples(module)
