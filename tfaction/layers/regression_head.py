"""`RegressionHead`: ActionFormer's boundary-offset head."""

import keras
from keras import ops

from tfaction.layers.classification_head import _HeadTrunk
from tfaction.layers.classification_head import _as_levels
from tfaction.layers.classification_head import _make_conv
from tfaction.layers.scale import Scale


@keras.saving.register_keras_serializable(package="tfaction")
class RegressionHead(_HeadTrunk):
    """ActionFormer regression head: distances to the segment boundaries.

    Same trunk as `ClassificationHead` (`num_layers - 1` blocks of [masked
    conv -> LayerNorm -> ReLU], shared across levels), then a masked conv to
    2 channels (left, right), a per-level learnable `Scale` (init 1.0) and a
    ReLU: `offsets_l = ReLU(scale_l * conv(x_l))`, non-negative and in units
    of the level's stride. Padded steps are exactly 0. Padding leaks into
    the last valid steps as in the reference (see `ClassificationHead`).

    Args:
        num_levels: number of pyramid levels (one `Scale` each).
        head_dim: channels of the hidden convs.
        kernel_size: odd kernel size of every conv (`head_kernel_size`).
        num_layers: total number of convs including the offset conv
            (`head_num_layers`).
        with_ln: LayerNorm after the hidden convs (`head_with_ln`).
        epsilon: LayerNorm epsilon.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a list of `num_levels` tensors `[B, T_l, C]`
            (channels-last), or one tensor `[B, T, C]` when `num_levels`
            is 1.
        mask: boolean `[B, T_l]` per level (a list, or one tensor for a
            single tensor input), True = valid; `None` = all valid.

    Returns:
        Offsets `[B, T_l, 2]` per level (a list, or one tensor for a single
        tensor input), >= 0, zero at padded steps.

    Example:

    >>> head = tfaction.layers.regression_head.RegressionHead(
    ...     num_levels=2, head_dim=16)
    >>> feats = [np.ones((1, 8, 16), "float32"), np.ones((1, 4, 16), "float32")]
    >>> [o.shape for o in head(feats)]
    [TensorShape([1, 8, 2]), TensorShape([1, 4, 2])]

    Reference:
        `PtTransformerRegHead` in `libs/modeling/meta_archs.py` of
        happyharrycn/actionformer_release (Zhang et al., ActionFormer, ECCV
        2022, arXiv 2202.07925).
    """

    def __init__(self, num_levels, head_dim, kernel_size=3, num_layers=3,
                 with_ln=True, epsilon=1e-5, **kwargs):
        super().__init__(head_dim=head_dim, kernel_size=kernel_size,
                         num_layers=num_layers, with_ln=with_ln,
                         epsilon=epsilon, **kwargs)
        if int(num_levels) < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        self.num_levels = int(num_levels)

    def build(self, input_shape):
        trunk_shape = self._build_trunk(input_shape)
        self.offset_conv = _make_conv(2, self.kernel_size, True,
                                      self.dtype_policy, "offset_conv")
        self.offset_conv.build(trunk_shape)
        self.scales = []
        for level in range(self.num_levels):
            scale = Scale(dtype=self.dtype_policy, name=f"scale_{level}")
            scale.build(())
            self.scales.append(scale)

    def call(self, inputs, mask=None):
        single, feats, masks = _as_levels(inputs, mask)
        if len(feats) != self.num_levels:
            raise ValueError(
                f"RegressionHead has {self.num_levels} levels, got "
                f"{'a single tensor' if single else len(feats)}")
        outs = [ops.relu(scale(offsets)) for scale, offsets in
                zip(self.scales, self._through_levels(feats, masks,
                                                      self.offset_conv))]
        return outs[0] if single else outs

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape, 2)

    def get_config(self):
        config = super().get_config()
        config.update(num_levels=self.num_levels)
        return config
