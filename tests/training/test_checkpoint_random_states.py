"""A checkpoint restores where the model's dropout draws are.

Keras keeps a Dropout layer's random state in a `SeedGenerator` that a TF
checkpoint of the model does not reach: restored from a model-only
checkpoint, the layer draws again the masks it drew after the seed was set,
not the ones an uninterrupted run draws next (AdaFocus V1 stage 0 resumed
to other weights after a kill). `checkpointing.RandomStates` saved beside
the model restores them.
"""

import re

import keras
import numpy as np
import tensorflow as tf

from tfaction.training import checkpointing


def _model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(64, name="dense")(inputs)
    inner = keras.Model(inputs, keras.layers.Dropout(0.5)(hidden))
    outer_inputs = keras.Input((64,))  # nested, as the families' models
    return keras.Model(outer_inputs, inner(outer_inputs))


def _masks(model, count):
    x = np.ones((2, 64), np.float32)
    return [np.asarray(model(x, training=True)) != 0 for _ in range(count)]


def test_random_states_are_the_seed_generators_only():
    model = _model()
    states = checkpointing.RandomStates(model).states
    # Keras numbers the generator after those the process made before.
    assert len(states) == 1 and re.fullmatch(
        r"seed_generator(_\d+)?/seed_generator_state", states[0].path), [
            v.path for v in states]
    assert not {id(v) for v in states} & {id(w) for w in model.weights}


def test_restored_random_states_continue_the_draws(tmp_path):
    model = _model()
    _masks(model, 2)
    with_states = tf.train.Checkpoint(
        model=model, random_states=checkpointing.RandomStates(model))
    model_only = tf.train.Checkpoint(model=model)
    saved = with_states.write(str(tmp_path / "with_states"))
    saved_model_only = model_only.write(str(tmp_path / "model_only"))
    following = _masks(model, 2)  # what the uninterrupted run draws
    assert not (following[0] == following[1]).all()

    resumed = _model()  # a new process: seed set again, draws from step 0
    tf.train.Checkpoint(
        model=resumed, random_states=checkpointing.RandomStates(resumed)
    ).read(saved).assert_consumed()
    for got, want in zip(_masks(resumed, 2), following):
        np.testing.assert_array_equal(got, want)

    # Without them the resumed model repeats the masks of the first steps.
    repeated = _model()
    tf.train.Checkpoint(model=repeated).read(
        saved_model_only).assert_consumed()
    repeated_mask = _masks(repeated, 1)[0]
    np.testing.assert_array_equal(repeated_mask, _masks(_model(), 1)[0])
    assert not (repeated_mask == following[0]).all()
