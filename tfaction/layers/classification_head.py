"""`ClassificationHead`: ActionFormer's classification head."""

import math

import keras
import numpy as np
from keras import ops

from tfaction.layers.channel_layer_norm import ChannelLayerNorm
from tfaction.layers.masked_conv1d import MaskedConv1D
from tfaction.layers.packed_levels import PackedLevels
from tfaction.layers.tracking import TracksListItems

# Prior probability of the classes listed in `empty_classes` (reference:
# `PtTransformerClsHead`, classes absent from the training set).
EMPTY_CLASS_PRIOR = 1e-6


def prior_bias(prior_prob):
    """Bias giving `sigmoid(bias) = prior_prob`: `-log((1 - p) / p)`."""
    return -math.log((1.0 - prior_prob) / prior_prob)


def _check_kernel_size(kernel_size):
    if kernel_size < 1 or kernel_size % 2 != 1:
        raise ValueError(
            f"kernel_size must be a positive odd integer (the reference pads "
            f"kernel_size // 2 on both sides), got {kernel_size}")


def _make_conv(filters, kernel_size, use_bias, dtype, name):
    """A stride-1 `MaskedConv1D` with the reference's default init.

    Kernel U(+-1/sqrt(fan_in)) (PyTorch's Conv1d default), bias 0.
    """
    return MaskedConv1D(filters, kernel_size, strides=1, use_bias=use_bias,
                        dtype=dtype, name=name)


def _masked(conv, x, mask):
    """Calls a `MaskedConv1D`; `mask=None` means every step is valid."""
    if mask is None:
        mask = ops.ones(ops.shape(x)[:2], dtype="bool")
    y, _ = conv(x, mask=mask)
    return y


def _as_levels(inputs, mask):
    """(single, [x_l], [mask_l]) from a tensor or a list of levels."""
    if isinstance(inputs, (list, tuple)):
        feats = list(inputs)
        if mask is None:
            masks = [None] * len(feats)
        elif isinstance(mask, (list, tuple)):
            masks = list(mask)
        else:
            raise ValueError("a list of levels needs a list of masks")
        if len(masks) != len(feats):
            raise ValueError(f"{len(feats)} levels but {len(masks)} masks")
        return False, feats, masks
    if isinstance(mask, (list, tuple)):
        raise ValueError("a single tensor needs a single mask")
    return True, [inputs], [mask]


def _channels(input_shape):
    shapes = (input_shape if isinstance(input_shape, (list, tuple))
              and isinstance(input_shape[0], (list, tuple)) else
              [input_shape])
    channels = {s[-1] for s in shapes}
    if len(channels) != 1 or None in channels:
        raise ValueError(
            f"every level must have the same known channel count, got "
            f"{sorted(map(str, channels))}")
    return shapes, channels.pop()


class _HeadTrunk(TracksListItems, keras.layers.Layer):
    """Shared trunk: (num_layers - 1) x [MaskedConv1D -> LN -> ReLU]."""

    def __init__(self, head_dim, kernel_size=3, num_layers=3, with_ln=True,
                 epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        _check_kernel_size(int(kernel_size))
        if int(num_layers) < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.head_dim = int(head_dim)
        self.kernel_size = int(kernel_size)
        self.num_layers = int(num_layers)
        self.with_ln = bool(with_ln)
        self.epsilon = float(epsilon)

    def _build_trunk(self, input_shape):
        """Creates and builds the trunk; returns the output channel count."""
        shapes, channels = _channels(input_shape)
        batch, steps = shapes[0][0], shapes[0][1]
        self.convs, self.norms = [], []
        for i in range(self.num_layers - 1):
            # The reference drops the conv bias when a LayerNorm follows.
            conv = _make_conv(self.head_dim, self.kernel_size,
                              not self.with_ln, self.dtype_policy,
                              f"conv_{i}")
            conv.build((batch, steps, channels))
            self.convs.append(conv)
            if self.with_ln:
                norm = ChannelLayerNorm(
                    axis=-1, epsilon=self.epsilon, dtype=self.dtype_policy,
                    name=f"norm_{i}")
                norm.build((batch, steps, self.head_dim))
                self.norms.append(norm)
            channels = self.head_dim
        return (batch, steps, channels)

    def _trunk(self, x, mask):
        for i, conv in enumerate(self.convs):
            x = _masked(conv, x, mask)
            if self.with_ln:
                # Not masked (as the reference): padded steps become the LN
                # bias, which the next k=3 conv reads at the boundary.
                x = self.norms[i](x)
            x = ops.relu(x)
        return x

    def _through_levels(self, feats, masks, last_conv):
        """Trunk + `last_conv` on every level; returns per-level outputs.

        Several levels run packed into one sequence (`PackedLevels`): one
        call per layer instead of one per level, with the same result.
        """
        if len(feats) == 1:
            return [_masked(last_conv, self._trunk(feats[0], masks[0]),
                            masks[0])]
        packed = PackedLevels(feats, masks, self.kernel_size // 2)
        x = packed.x
        for i, conv in enumerate(self.convs):
            if i:  # the LN bias at the separators: back to padding zeros
                x = packed.separators_to_zero(x)
            x, _ = conv(x, mask=packed.mask)
            if self.with_ln:
                x = self.norms[i](x)
            x = ops.relu(x)
        if self.convs:
            x = packed.separators_to_zero(x)
        y, _ = last_conv(x, mask=packed.mask)
        return packed.unpack(y)

    def _output_shape(self, input_shape, channels):
        if (isinstance(input_shape, (list, tuple))
                and isinstance(input_shape[0], (list, tuple))):
            return [tuple(s[:-1]) + (channels,) for s in input_shape]
        return tuple(input_shape[:-1]) + (channels,)

    def get_config(self):
        config = super().get_config()
        config.update(head_dim=self.head_dim, kernel_size=self.kernel_size,
                      num_layers=self.num_layers, with_ln=self.with_ln,
                      epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="tfaction")
class ClassificationHead(_HeadTrunk):
    """ActionFormer classification head, shared across pyramid levels.

    `num_layers - 1` blocks of [`MaskedConv1D` (k=`kernel_size`, stride 1,
    no bias when followed by LayerNorm) -> channel LayerNorm (eps 1e-5) -> ReLU], then a
    masked conv to `num_classes` logits (sigmoid scores, no background
    class). Every masked conv multiplies its output, bias included, by the
    mask, so padded logits are exactly 0. The same weights serve every
    level.

    Initialisation follows the reference: conv kernels U(+-1/sqrt(fan_in))
    (PyTorch default), biases 0, and the classifier bias
    `-log((1 - prior_prob) / prior_prob)` (-4.595 for 0.01); classes in
    `empty_classes` get the prior 1e-6 instead (bias -13.8).

    Padding behaves as in the reference: LayerNorm outputs are not masked,
    so at padded steps the trunk holds ReLU(LN bias), and the k=3 convs read
    these (and the padded input steps) at the last valid steps. Inputs at
    padded steps therefore influence the last `num_layers * (kernel_size //
    2)` valid outputs; in the full model they are the neck's LayerNorm bias.

    Args:
        num_classes: number of classes (logit channels).
        head_dim: channels of the hidden convs.
        kernel_size: odd kernel size of every conv (`head_kernel_size`).
        num_layers: total number of convs including the classifier
            (`head_num_layers`).
        with_ln: LayerNorm after the hidden convs (`head_with_ln`).
        prior_prob: prior probability for the classifier bias
            (`cls_prior_prob`); 0 or less keeps the bias at 0.
        empty_classes: class ids absent from training (`head_empty_cls`).
        epsilon: LayerNorm epsilon.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: one level `[B, T, C]` or a list of levels `[B, T_l, C]`
            (channels-last).
        mask: boolean `[B, T]` (or a list of `[B, T_l]`), True = valid step;
            `None` means every step is valid.

    Returns:
        Logits `[B, T, num_classes]` (or a list of `[B, T_l, num_classes]`),
        zero at padded steps.

    Example:

    >>> head = tfaction.layers.classification_head.ClassificationHead(
    ...     num_classes=5, head_dim=16)
    >>> feats = [np.ones((1, 8, 16), "float32"), np.ones((1, 4, 16), "float32")]
    >>> masks = [np.ones((1, 8), bool), np.ones((1, 4), bool)]
    >>> [o.shape for o in head(feats, mask=masks)]
    [TensorShape([1, 8, 5]), TensorShape([1, 4, 5])]

    Reference:
        `PtTransformerClsHead` in `libs/modeling/meta_archs.py` of
        happyharrycn/actionformer_release (Zhang et al., ActionFormer, ECCV
        2022, arXiv 2202.07925).
    """

    def __init__(self, num_classes, head_dim, kernel_size=3, num_layers=3,
                 with_ln=True, prior_prob=0.01, empty_classes=(),
                 epsilon=1e-5, **kwargs):
        super().__init__(head_dim=head_dim, kernel_size=kernel_size,
                         num_layers=num_layers, with_ln=with_ln,
                         epsilon=epsilon, **kwargs)
        self.num_classes = int(num_classes)
        self.prior_prob = float(prior_prob)
        self.empty_classes = [int(c) for c in empty_classes]
        bad = [c for c in self.empty_classes
               if not 0 <= c < self.num_classes]
        if bad:
            raise ValueError(f"empty_classes {bad} outside [0, "
                             f"{self.num_classes})")
        if self.prior_prob >= 1.0:
            raise ValueError(f"prior_prob must be < 1, got {prior_prob}")

    def initial_bias(self):
        """The classifier bias at initialisation, numpy `[num_classes]`."""
        bias = np.zeros((self.num_classes,), "float32")
        if self.prior_prob > 0:
            bias[:] = prior_bias(self.prior_prob)
        bias[self.empty_classes] = prior_bias(EMPTY_CLASS_PRIOR)
        return bias

    def build(self, input_shape):
        trunk_shape = self._build_trunk(input_shape)
        self.classifier = _make_conv(self.num_classes, self.kernel_size,
                                     True, self.dtype_policy, "classifier")
        self.classifier.build(trunk_shape)
        self.classifier.bias.assign(self.initial_bias())

    def call(self, inputs, mask=None):
        single, feats, masks = _as_levels(inputs, mask)
        outs = self._through_levels(feats, masks, self.classifier)
        return outs[0] if single else outs

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape, self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes,
                      prior_prob=self.prior_prob,
                      empty_classes=list(self.empty_classes))
        return config
