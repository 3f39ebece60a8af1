"""Every weight of every family's model goes into a model-only checkpoint.

Keras 3 (TF backend) gives `tf.train.Checkpoint` a layer's attributes but
not the items of its lists; the layers that keep sublayers in lists mix in
`tfaction.layers.tracking.TracksListItems`. Checked on a toy layer and on
each family's model through `restore_model_weights` (what
`task.init_checkpoint` and the exports use), with nothing else (no
optimizer) in the checkpoint to reach the variables by another path.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaction.layers.tracking import TracksListItems
from tfaction.training.checkpointing import restore_model_weights


class _Listed(keras.layers.Layer):
    def build(self, input_shape):
        self.blocks = [keras.layers.Dense(3) for _ in range(2)]

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class _Tracked(TracksListItems, _Listed):
    pass


def _round_trip(build, inputs, tmp_path):
    a, b = build(), build()
    a(inputs)
    b(inputs)
    prefix = tf.train.Checkpoint(model=a).save(str(tmp_path / "ckpt"))
    restore_model_weights(b, prefix)
    return [v.path for v, w in zip(a.weights, b.weights)
            if not np.array_equal(np.asarray(v), np.asarray(w))]


def test_list_items_are_checkpointed(tmp_path):
    x = np.ones((1, 3), "float32")
    # Without the mixin the list's weights are lost (both kernels differ;
    # the zero-initialised biases agree anyway): what the mixin fixes.
    assert len(_round_trip(_Listed, x, tmp_path / "plain")) == 2
    assert _round_trip(_Tracked, x, tmp_path / "tracked") == []


def _actionformer():
    from tfaction.models.actionformer.model import ActionFormer
    return ActionFormer(input_dim=8, num_classes=3, embed_dim=16,
                        fpn_dim=16, head_dim=16)


def _actionvlad():
    from tfaction.models.actionvlad.model import ActionVLAD
    return ActionVLAD(3, trunk="small", filters=(4, 8), num_clusters=2,
                      crop_size=(16, 16))


def _action_transformer():
    from tfaction.models.action_transformer import ActionTransformer
    return ActionTransformer(
        3, head="tx_i3d", num_proposals=4, trunk_width_multiplier=0.0625,
        rpn_filters=8, anchor_base_size=32.0, key_dim=8, ffn_units=8,
        num_layers=2, query_reduction_channels=4)


@pytest.mark.parametrize("build, inputs", [
    (_actionformer, {"features": np.zeros((1, 576, 8), "float32"),
                     "mask": np.ones((1, 576), bool)}),
    (_actionvlad, np.zeros((1, 2, 16, 16, 3), "float32")),
    (_action_transformer, np.zeros((1, 8, 64, 64, 3), "float32")),
], ids=["actionformer", "actionvlad", "action_transformer"])
def test_every_family_restores_every_weight(build, inputs, tmp_path):
    assert _round_trip(build, inputs, tmp_path) == []
