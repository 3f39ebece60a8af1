"""`IdentityNeck`: ActionFormer's `FPNIdentity` (one LayerNorm per level)."""

import keras

from tfaction.layers.channel_layer_norm import ChannelLayerNorm
from tfaction.layers.tracking import TracksListItems


@keras.saving.register_keras_serializable(package="tfaction")
class IdentityNeck(TracksListItems, keras.layers.Layer):
    """Per-level channel LayerNorm over a feature pyramid (`FPNIdentity`).

    Each pyramid level gets its own `LayerNormalization` over channels
    (biased variance, epsilon 1e-5, as PyTorch). Nothing else happens: the
    levels are not mixed and the masks are passed through unchanged.

    As in the reference, the output is **not** masked: at padded steps the
    (zero) backbone features normalise to the LayerNorm bias, and the k=3
    head convolutions read these values at the last valid steps. Keep them
    for numerical parity with the authors' code.

    Args:
        num_levels: number of pyramid levels.
        with_ln: whether to apply the LayerNorm (`fpn_with_ln`); when false
            the neck is the identity.
        epsilon: LayerNorm epsilon.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: list of `num_levels` tensors `[B, T_l, C]` (channels-last).
        mask: optional list of `num_levels` boolean tensors `[B, T_l]`. Not
            used in the computation; returned by `compute_mask`.

    Returns:
        List of `num_levels` tensors `[B, T_l, C]`.

    Example:

    >>> neck = tfaction.layers.identity_neck.IdentityNeck(num_levels=2)
    >>> outs = neck([np.ones((1, 8, 4), "float32"),
    ...              np.ones((1, 4, 4), "float32")])
    >>> [o.shape for o in outs]
    [TensorShape([1, 8, 4]), TensorShape([1, 4, 4])]

    Reference:
        `FPNIdentity` in `libs/modeling/necks.py` of
        happyharrycn/actionformer_release (ActionFormer, ECCV 2022).
    """

    def __init__(self, num_levels, with_ln=True, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if int(num_levels) < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        self.num_levels = int(num_levels)
        self.with_ln = bool(with_ln)
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def _check_levels(self, inputs, what="inputs"):
        is_list = isinstance(inputs, (list, tuple))
        if not is_list or len(inputs) != self.num_levels:
            got = f"{len(inputs)} levels" if is_list else type(inputs).__name__
            raise ValueError(f"IdentityNeck expects {what} as a list of "
                             f"{self.num_levels} levels, got {got}")

    def build(self, input_shape):
        self._check_levels(input_shape, "input_shape")
        self.norms = []
        for level, shape in enumerate(input_shape):
            if not self.with_ln:
                break
            norm = ChannelLayerNorm(
                axis=-1, epsilon=self.epsilon, dtype=self.dtype_policy,
                name=f"norm_{level}")
            norm.build(tuple(shape))
            self.norms.append(norm)

    def call(self, inputs, mask=None):
        self._check_levels(inputs)
        if not self.with_ln:
            return list(inputs)
        return [norm(x) for norm, x in zip(self.norms, inputs)]

    def compute_mask(self, inputs, previous_mask=None):
        return previous_mask

    def compute_output_shape(self, input_shape):
        return [tuple(s) for s in input_shape]

    def get_config(self):
        config = super().get_config()
        config.update(num_levels=self.num_levels, with_ln=self.with_ln,
                      epsilon=self.epsilon)
        return config
