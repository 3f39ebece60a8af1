"""`ActionFormer`: the assembled single-stage temporal action localiser.

`ConvTransformerBackbone` -> `IdentityNeck` -> `ClassificationHead` and
`RegressionHead` shared across the pyramid levels, plus the anchor-free
point grid of `generate_points`. Port of `PtTransformer`
(`libs/modeling/meta_archs.py`) of happyharrycn/actionformer_release, in
channels-last layout.

Output layout (decision): `call` returns a dict of tensors **concatenated
over the pyramid levels** along the point axis (level 0 first, time order
inside a level; `P = sum_l T / 2^l`):

* `"cls_logits"` `[B, P, num_classes]` — sigmoid logits, 0 at padded steps;
* `"offsets"` `[B, P, 2]` — (left, right) distances >= 0 in units of the
  point's level stride, 0 at padded steps;
* `"mask"` `[B, P]` bool — valid points;
* `"points"` `[B, P, 4]` float32 — `[t, lo, hi, stride]` rows of
  `generate_points` (identical for every batch row; batch-major so that
  `predict` and serving signatures can batch every output).

This is what training consumes directly (`assign_point_labels` takes the
concatenated points, the focal / DIoU losses take `[B, P, ...]` tensors and
the mask) and gives a serving signature a fixed set of tensors. Per-level
tensors (what `decoding.decode_candidates` takes) come from
`split_levels(tensor)` or from `forward_levels`, which also returns the
backbone and neck pyramids.

Padding: `T` must be a multiple of `max_div_factor` (the reference pads
training batches to `max_seq_len` and inference inputs to
`max(max_seq_len, ceil(T / max_div_factor) * max_div_factor)`;
`padded_length` computes it). Features at padded steps are ignored (the
backbone multiplies its input by the mask).

Example:

```python
model = ActionFormer(input_dim=2048, num_classes=20, window_size=19)
t = model.padded_length(1800)          # 2304 for the THUMOS config
out = model({"features": feats, "mask": mask})  # [1, t, 2048], [1, t]
levels = model.split_levels(out["cls_logits"])
```

Reference:
    Zhang, Wu, Li. "ActionFormer: Localizing Moments of Actions with
    Transformers", ECCV 2022 (arXiv 2202.07925).
"""

import math

import keras
from keras import ops

from tfaction.layers.classification_head import ClassificationHead
from tfaction.layers.conv_transformer_backbone import ConvTransformerBackbone
from tfaction.layers.identity_neck import IdentityNeck
from tfaction.layers.regression_head import RegressionHead
from tfaction.models.actionformer import reference
from tfaction.ops.point_generator import generate_points

DEFAULT_REGRESSION_RANGE = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64),
                            (64, 10000))


def level_windows(window_size, num_levels):
    """Attention window per pyramid level (-1 = global).

    Args:
        window_size: one window for every level, or a list of them.
        num_levels: pyramid levels (`1 + arch[2]`).

    Returns:
        List of `num_levels` ints.

    Example:

    >>> level_windows(9, 3)
    [9, 9, 9]
    """
    if isinstance(window_size, (list, tuple)):
        return [int(w) for w in window_size]
    return [int(window_size)] * num_levels


def max_div_factor_of(windows):
    """The padding unit of a pyramid: sequence lengths are multiples of it.

    `max_l(stride_l * 2 * (w_l // 2))` over local windows `w_l > 1`,
    `stride_l` for global levels (as `PtTransformer`); `stride_l = 2^l`.

    Args:
        windows: attention window per level (`level_windows`).

    Returns:
        int.

    Example:

    >>> max_div_factor_of([19] * 6)
    576
    """
    factor = 1
    for level, window in enumerate(windows):
        stride = 2 ** level
        factor = max(factor, stride * (window // 2) * 2 if window > 1
                     else stride)
    return factor


@keras.saving.register_keras_serializable(package="tfaction")
class PointGrid(keras.layers.Layer):
    """The level-concatenated point grid of a sequence, for every batch row.

    A weightless layer, so that the functional `ActionFormer` graph can
    derive the points from the (dynamic) sequence length of its input.

    Args:
        fpn_strides: stride of each pyramid level, e.g. `[1, 2, 4]`.
        regression_range: `[lo, hi]` per level, in level-0 grid units.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: any `[B, T, ...]` tensor (e.g. the input mask); only its
            shape is read.

    Returns:
        `[B, P, 4]` float32 rows `[t, lo, hi, stride]` of `generate_points`
        concatenated over the levels, `P = sum_l ceil(T / stride_l)`.

    Example:

    >>> grid = PointGrid([1, 2], [[0, 4], [4, 10000]])
    >>> tuple(grid(np.ones((3, 8), bool)).shape)
    (3, 12, 4)
    """

    def __init__(self, fpn_strides, regression_range, **kwargs):
        super().__init__(**kwargs)
        self.fpn_strides = [int(s) for s in fpn_strides]
        self.regression_range = [[float(lo), float(hi)]
                                 for lo, hi in regression_range]

    def call(self, inputs):
        shape = ops.shape(inputs)
        points = ops.concatenate(generate_points(
            shape[1], self.fpn_strides, self.regression_range), axis=0)
        return ops.broadcast_to(points[None],
                                (shape[0], ops.shape(points)[0], 4))

    def compute_output_spec(self, inputs):
        length = inputs.shape[1]
        count = (None if length is None else
                 sum(math.ceil(length / s) for s in self.fpn_strides))
        # float32 under any dtype policy: positions, not activations.
        return keras.KerasTensor((inputs.shape[0], count, 4), "float32")

    def get_config(self):
        config = super().get_config()
        config.update(fpn_strides=list(self.fpn_strides),
                      regression_range=[list(r)
                                        for r in self.regression_range])
        return config


def pyramid_sizes(points, strides):
    """Points per level of a level-concatenated output of `points` points.

    The levels hold `ceil(T / s_l)` points for a padded length `T` that is a
    multiple of the largest stride, so `points = T (2 s_top - 1) / s_top`.
    Plain integer arithmetic: `points` may be a Python int or a scalar
    integer tensor (a count known only when the graph runs). The caller
    checks that the sizes sum to `points` (no pyramid otherwise).

    Args:
        points: total point count.
        strides: the levels' strides, ascending.

    Returns:
        A list of per-level sizes (ints, or scalar tensors).

    Example:

    >>> pyramid_sizes(7, [1, 2, 4])
    [4, 2, 1]
    """
    top = int(strides[-1])
    length = points * top // (2 * top - 1)
    return [(length + int(s) - 1) // int(s) for s in strides]


@keras.saving.register_keras_serializable(package="tfaction")
class ActionFormer(keras.Model):
    """ActionFormer network: features + mask -> per-point logits and offsets.

    A functional model: `{"features": [B, T, C], "mask": [B, T] bool}` ->
    the level-concatenated outputs (module docstring), with `T` dynamic.
    The sublayers stay reachable as `backbone`, `neck`, `cls_head` and
    `reg_head` (weight loaders, `forward_levels`).

    Args:
        input_dim: feature channels `C` of the input.
        num_classes: number of action classes (sigmoid outputs, no
            background).
        embed_dim: channels of the backbone and neck (`embd_dim` =
            `fpn_dim`).
        num_heads: attention heads (`n_head`).
        arch: `[#embedding convs, #stem blocks, #branch blocks]`
            (`backbone_arch`); `1 + arch[2]` pyramid levels, strides
            `2^l`.
        window_size: local attention window (int, or a list of
            `1 + arch[2]` windows; -1 = global) (`n_mha_win_size`).
        embed_kernel_size, embed_with_ln: embedding convs
            (`embd_kernel_size`, `embd_with_ln`).
        fpn_with_ln: per-level LayerNorm in the neck (`fpn_with_ln`).
        head_dim, head_kernel_size, head_num_layers, head_with_ln: both
            heads (`head_*`).
        regression_range: `[lo, hi]` per level in level-0 grid units.
        prior_prob: classifier bias prior (`cls_prior_prob`).
        empty_classes: classes absent from training (`head_empty_cls`).
        dropout: dropout of the transformer blocks.
        drop_path_rate: stochastic depth of the transformer blocks; > 0
            also adds the layer scales (as the reference).
        max_seq_len: training length (optional; used by `padded_length`,
            and the rows of the position table with `use_abs_pe`).
        use_abs_pe: add the fixed sinusoid position encoding after the
            embedding (`use_abs_pe`; ActivityNet and Ego4D configs); needs
            `max_seq_len`. Inputs longer than `max_seq_len` are an error in
            training and resample the table at inference.
        input_splits: channels of each concatenated feature set, for a
            per-set input projection (the authors' list `input_dim`, e.g.
            SlowFast 2304 + Omnivore 1536 + EgoVLP 256); they add up to
            `input_dim`. Default: no projection.
        projection_dims: output channels of each set's 1x1 projection (the
            authors' list `embd_dim`); they add up to `embed_dim`.
        **kwargs: base `keras.Model` arguments (`name`, `dtype`; the dtype
            policy is passed on to every sublayer).

    Call arguments:
        inputs: dict `{"features": [B, T, C], "mask": [B, T] bool}` or a
            tuple `(features, mask)`; `T` a multiple of `max_div_factor`.
        training: enables dropout / drop path.

    Returns:
        dict (see module docstring): `cls_logits [B, P, K]`,
        `offsets [B, P, 2]`, `mask [B, P]`, `points [B, P, 4]`.

    Raises:
        ValueError: inconsistent arguments (the message names them); at
            call time, a static `T` that is not a multiple of
            `max_div_factor`.

    Example:

    >>> model = ActionFormer(input_dim=8, num_classes=3, embed_dim=16,
    ...                      head_dim=16, arch=(2, 1, 2), window_size=5,
    ...                      regression_range=((0, 4), (4, 8), (8, 1e4)))
    >>> out = model({"features": np.zeros((1, 16, 8), "float32"),
    ...              "mask": np.ones((1, 16), bool)})
    >>> tuple(out["cls_logits"].shape)  # 16 + 8 + 4 points
    (1, 28, 3)
    """

    def __init__(self, input_dim, num_classes, embed_dim=512, num_heads=4,
                 arch=(2, 2, 5), window_size=19, embed_kernel_size=3,
                 embed_with_ln=True, fpn_with_ln=True, head_dim=512,
                 head_kernel_size=3, head_num_layers=3, head_with_ln=True,
                 regression_range=DEFAULT_REGRESSION_RANGE, prior_prob=0.01,
                 empty_classes=(), dropout=0.0, drop_path_rate=0.1,
                 max_seq_len=None, use_abs_pe=False, input_splits=None,
                 projection_dims=None, **kwargs):
        # Normalised arguments, checked before any layer is made.
        input_dim = int(input_dim)
        arch = [int(a) for a in arch]
        if len(arch) != 3:
            raise ValueError(f"ActionFormer: arch needs 3 counts, got {arch}")
        num_levels = 1 + arch[2]
        window_size = ([int(w) for w in window_size]
                       if isinstance(window_size, (list, tuple))
                       else int(window_size))
        input_splits = (None if input_splits is None
                        else [int(c) for c in input_splits])
        projection_dims = (None if projection_dims is None
                           else [int(c) for c in projection_dims])
        if input_splits is not None and sum(input_splits) != input_dim:
            raise ValueError(
                f"ActionFormer: input_splits {input_splits} add up to "
                f"{sum(input_splits)}, not input_dim {input_dim}")
        regression_range = [[float(lo), float(hi)]
                            for lo, hi in regression_range]
        if len(regression_range) != num_levels:
            raise ValueError(
                f"ActionFormer: regression_range needs {num_levels} "
                f"[lo, hi] pairs (one per level), got "
                f"{len(regression_range)}")
        max_seq_len = None if max_seq_len is None else int(max_seq_len)
        if use_abs_pe and max_seq_len is None:
            raise ValueError("ActionFormer: use_abs_pe needs max_seq_len "
                             "(the rows of the position table)")
        div = max_div_factor_of(level_windows(window_size, num_levels))
        if max_seq_len is not None and max_seq_len % div:
            raise ValueError(
                f"ActionFormer: max_seq_len {max_seq_len} is not a "
                f"multiple of max_div_factor {div}")
        # A functional model ignores `dtype`: the policy is set below and
        # passed to every sublayer.
        dtype = kwargs.pop("dtype", None)

        # === Layers ===
        self.backbone = ConvTransformerBackbone(
            embed_dim=int(embed_dim), num_heads=int(num_heads),
            embed_kernel_size=int(embed_kernel_size), arch=arch,
            window_size=window_size, embed_with_ln=bool(embed_with_ln),
            dropout=float(dropout), drop_path_rate=float(drop_path_rate),
            use_abs_pe=bool(use_abs_pe), max_seq_len=max_seq_len,
            input_splits=input_splits, projection_dims=projection_dims,
            dtype=dtype, name="backbone")
        self.neck = IdentityNeck(num_levels, with_ln=bool(fpn_with_ln),
                                 dtype=dtype, name="neck")
        head_kwargs = dict(head_dim=int(head_dim),
                           kernel_size=int(head_kernel_size),
                           num_layers=int(head_num_layers),
                           with_ln=bool(head_with_ln), dtype=dtype)
        self.cls_head = ClassificationHead(
            int(num_classes), prior_prob=float(prior_prob),
            empty_classes=[int(c) for c in empty_classes], name="cls_head",
            **head_kwargs)
        self.reg_head = RegressionHead(num_levels, name="reg_head",
                                       **head_kwargs)
        self.point_grid = PointGrid([2 ** level for level in
                                     range(num_levels)], regression_range,
                                    dtype=dtype, name="point_grid")

        # === Functional Model ===
        inputs = {"features": keras.Input((None, input_dim),
                                          name="features"),
                  "mask": keras.Input((None,), dtype="bool", name="mask")}
        levels = self._pyramid(inputs["features"], inputs["mask"])
        outputs = {
            "cls_logits": ops.concatenate(levels["cls_logits"], axis=1),
            "offsets": ops.concatenate(levels["offsets"], axis=1),
            "mask": ops.concatenate(levels["masks"], axis=1),
            "points": self.point_grid(inputs["mask"]),
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype

        # === Config ===
        self.input_dim = input_dim
        self.num_classes = int(num_classes)
        self.embed_dim = int(embed_dim)
        self.num_heads = int(num_heads)
        self.arch = arch
        self.window_size = window_size
        self.embed_kernel_size = int(embed_kernel_size)
        self.embed_with_ln = bool(embed_with_ln)
        self.fpn_with_ln = bool(fpn_with_ln)
        self.head_dim = int(head_dim)
        self.head_kernel_size = int(head_kernel_size)
        self.head_num_layers = int(head_num_layers)
        self.head_with_ln = bool(head_with_ln)
        self.regression_range = regression_range
        self.prior_prob = float(prior_prob)
        self.empty_classes = [int(c) for c in empty_classes]
        self.dropout = float(dropout)
        self.drop_path_rate = float(drop_path_rate)
        self.max_seq_len = max_seq_len
        self.use_abs_pe = bool(use_abs_pe)
        self.input_splits = input_splits
        self.projection_dims = projection_dims

    # ------------------------------------------------------------ geometry
    @property
    def num_levels(self):
        """Number of pyramid levels, `1 + arch[2]`."""
        return 1 + self.arch[2]

    @property
    def fpn_strides(self):
        """Stride of each level in level-0 steps: `[1, 2, ..., 2^arch[2]]`."""
        return [2 ** level for level in range(self.num_levels)]

    @property
    def windows(self):
        """Attention window per level (-1 = global)."""
        return level_windows(self.window_size, self.num_levels)

    @property
    def max_div_factor(self):
        """`T` must be a multiple of this (the reference's padding unit).

        `max_l(stride_l * 2 * (w_l // 2))` over levels with a local window
        `w_l > 1`, `stride_l` for global levels (as `PtTransformer`).
        """
        return max_div_factor_of(self.windows)

    def padded_length(self, length, training=False):
        """Length to zero-pad a video of `length` steps to (reference rule).

        Training: `max_seq_len` (videos must not be longer). Inference:
        `max_seq_len` if not longer, else the next multiple of
        `max_div_factor`. Without `max_seq_len`, the next multiple of
        `max_div_factor`.
        """
        length = int(length)
        div = self.max_div_factor
        rounded = int(math.ceil(max(length, 1) / div)) * div
        if self.max_seq_len is None:
            return rounded
        if training:
            if length > self.max_seq_len:
                raise ValueError(f"a training video of {length} steps is "
                                 f"longer than max_seq_len "
                                 f"{self.max_seq_len}; crop it first")
            return self.max_seq_len
        return max(self.max_seq_len, rounded)

    def level_lengths(self, length):
        """Points per level for a (padded) length `T`: `ceil(T / s_l)`."""
        return [int(math.ceil(int(length) / s)) for s in self.fpn_strides]

    def split_levels(self, tensor, axis=1):
        """Splits a level-concatenated output into a per-level list.

        Args:
            tensor: e.g. `outputs["cls_logits"]` `[B, P, K]` (axis 1), or a
                per-video `[P, K]` with `axis=0`.
            axis: the point axis.
        """
        total = tensor.shape[axis]
        strides = self.fpn_strides
        if total is None:
            raise ValueError("split_levels needs a static point count")
        sizes = pyramid_sizes(total, strides)
        if sum(sizes) != total:
            raise ValueError(f"{total} points do not form a pyramid with "
                             f"strides {strides}")
        return ops.split(tensor, [sum(sizes[:i + 1])
                                  for i in range(len(sizes) - 1)], axis=axis)

    # ---------------------------------------------------------------- model
    def _pyramid(self, features, mask, training=None):
        """Backbone -> neck -> heads on level lists (symbolic or eager)."""
        feats, masks = self.backbone(features, mask=mask, training=training)
        fpn = self.neck(feats)
        return {"backbone_features": feats, "fpn_features": fpn,
                "masks": masks,
                "cls_logits": self.cls_head(fpn, mask=masks),
                "offsets": self.reg_head(fpn, mask=masks)}

    def _checked_inputs(self, inputs):
        """`(features, bool mask)` of a dict or pair; checks a static `T`."""
        if isinstance(inputs, dict):
            missing = {"features", "mask"} - set(inputs)
            if missing:
                raise ValueError(f"ActionFormer inputs lack {sorted(missing)}"
                                 f"; expected keys 'features' and 'mask'")
            features, mask = inputs["features"], inputs["mask"]
        elif isinstance(inputs, (list, tuple)) and len(inputs) == 2:
            features, mask = inputs
        else:
            raise ValueError("ActionFormer expects {'features': [B, T, C], "
                             "'mask': [B, T]} or (features, mask)")
        length = features.shape[1]
        if length is not None and length % self.max_div_factor:
            raise ValueError(
                f"ActionFormer: sequence length {length} must be a multiple "
                f"of max_div_factor {self.max_div_factor}; zero-pad to "
                f"model.padded_length(T)")
        return features, ops.cast(mask, "bool")

    def forward_levels(self, inputs, training=None):
        """Per-level outputs and intermediate pyramids.

        Args:
            inputs: as for calling the model.
            training: enables dropout / drop path.

        Returns:
            dict of per-level lists: `backbone_features` and
            `fpn_features` `[B, T_l, embed_dim]`, `masks` `[B, T_l]` bool,
            `cls_logits` `[B, T_l, K]`, `offsets` `[B, T_l, 2]`,
            `points` `[T_l, 4]`.
        """
        features, mask = self._checked_inputs(inputs)
        out = self._pyramid(features, mask, training=training)
        length = features.shape[1]
        out["points"] = generate_points(
            ops.shape(features)[1] if length is None else length,
            self.fpn_strides, self.regression_range)
        return out

    def call(self, inputs, training=None, mask=None):
        # The functional graph has T = None: check the real length here.
        features, bool_mask = self._checked_inputs(inputs)
        return super().call({"features": features, "mask": bool_mask},
                            training=training, mask=mask)

    # --------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim, num_classes=self.num_classes,
            embed_dim=self.embed_dim, num_heads=self.num_heads,
            arch=list(self.arch), window_size=self.window_size,
            embed_kernel_size=self.embed_kernel_size,
            embed_with_ln=self.embed_with_ln, fpn_with_ln=self.fpn_with_ln,
            head_dim=self.head_dim, head_kernel_size=self.head_kernel_size,
            head_num_layers=self.head_num_layers,
            head_with_ln=self.head_with_ln,
            regression_range=[list(r) for r in self.regression_range],
            prior_prob=self.prior_prob,
            empty_classes=list(self.empty_classes), dropout=self.dropout,
            drop_path_rate=self.drop_path_rate, max_seq_len=self.max_seq_len,
            use_abs_pe=self.use_abs_pe, input_splits=self.input_splits,
            projection_dims=self.projection_dims)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_reference_config(cls, model_cfg, train_cfg=None, **kwargs):
        """Builds the model from the authors' YAML `model` section.

        Args:
            model_cfg: the authors' `model` config (their key names; see
                `tfaction.models.actionformer.reference`).
            train_cfg: their `train_cfg` section, if `model_cfg` does not
                hold it under `"train_cfg"`.
            **kwargs: base `keras.Model` arguments (`name`, `dtype`).

        Returns:
            An `ActionFormer`.

        Raises:
            tfaction.errors.ConfigError: a key the port cannot honour; the
                message names it.
        """
        return cls(**reference.model_kwargs_from_reference_config(
            model_cfg, train_cfg), **kwargs)
