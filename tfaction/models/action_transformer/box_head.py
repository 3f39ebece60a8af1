"""The second stage of the Video Action Transformer: per-box actions + box.

`ActionTransformerBoxHead` maps trunk features and boxes to per-box action
logits (with a background column) and class-agnostic box deltas, with one
of the paper's heads:

* `tx`: the Action Transformer head. Location embeddings are concatenated
  to the trunk features (the context); the query is the RoI feature of the
  box on the central frame (crop-and-resize 14x14, max-pool -> 7x7) through
  the query preprocessor (`high_res` or `low_res`); `num_layers` layers of
  `num_heads` Tx units attend over every cell of the context; linear
  layers give the logits and the box deltas.
* `i3d`: the I3D head. The box is replicated over all T' frames
  (spatio-temporal RoI pooling, a 7x7 tube), runs through I3D's last
  blocks (`MaxPool3d_5a_2x2`, `Mixed_5b`, `Mixed_5c`), is averaged over
  space and time, and linear layers give the logits and the box deltas.
* `tx_i3d`: both; classification from the Tx head, box regression from the
  I3D head (the paper's best system).

The heads are applied to whatever boxes they are given: RPN proposals (the
`ActionTransformer` model), a training minibatch of sampled proposals, or
ground-truth boxes (the paper's "GT boxes" evaluation).
"""

import keras

from tfaction import errors
from tfaction.layers.action_transformer_head import ActionTransformerHead
from tfaction.layers.box_axis import BoxAxis
from tfaction.layers.centre_frame import CentreFrame
from tfaction.layers.high_res_query import HighResQuery
from tfaction.layers.location_embedding import LocationEmbedding
from tfaction.layers.low_res_query import LowResQuery
from tfaction.layers.roi_pool import RoIPool
from tfaction.layers.spatio_temporal_roi_pool import SpatioTemporalRoIPool
from tfaction.models.backbones import i3d

HEADS = ("tx", "i3d", "tx_i3d")
QUERIES = ("high_res", "low_res")


def _check_choice(value, choices, name):
    if value not in choices:
        raise errors.ConfigError(f"{name}={value!r} must be one of "
                                 f"{choices}")
    return value


def _outputs(x, num_classes, prefix, dtype):
    """Logits `[B, S, C + 1]` and box deltas `[B, S, 4]`, in float32."""
    del dtype  # float32 outputs keep the sigmoid and box losses stable
    logits = keras.layers.Dense(
        num_classes + 1,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
        dtype="float32", name=f"{prefix}_class_logits")(x)
    deltas = keras.layers.Dense(
        4, kernel_initializer=keras.initializers.TruncatedNormal(
            stddev=0.001),
        dtype="float32", name=f"{prefix}_box_deltas")(x)
    return logits, deltas


@keras.saving.register_keras_serializable(package="tfaction")
class ActionTransformerBoxHead(keras.Model):
    """Per-box action logits and box deltas from trunk features.

    A functional model `[features [B, T', H', W', C], boxes [B, S, 4]]` ->
    `{"class_logits": [B, S, num_classes + 1], "box_deltas": [B, S, 4]}`
    (float32; column 0 of the logits is the background, as the TF Object
    Detection API's sigmoid box classifier; the deltas are in the Faster
    R-CNN box-coder frame relative to each input box). `T'`, `H'`, `W'`
    and `S` are dynamic. Every argument is a plain value.

    Args:
        num_classes: action classes `C` (without the background).
        feature_channels: `C` of the trunk features (832 for I3D Mixed_4f).
        head: "tx", "i3d" or "tx_i3d" (module docstring).
        query: the Tx query preprocessor, "high_res" or "low_res".
        query_reduction_channels: channels of HighRes' 1x1 conv.
        key_dim: `D` of every Tx unit (128).
        num_heads: Tx heads per layer (2).
        num_layers: Tx layers (3).
        ffn_units: hidden width of the Tx units' FFN.
        dropout: Tx dropout (0.3).
        ffn_input: "attended" (FFN of the updated query, default) or
            "query" (the paper's printed equation).
        layer_norm_epsilon: Tx layer-norm epsilon.
        location_spatial_units: widths of the location embedding's MLP on
            `[h, w]`.
        location_temporal_units: widths of its MLP on `[t]`.
        centre_frame: the query frame of the Tx head (None: `T' // 2`).
        crop_size: crop-and-resize side before the 2x2 max pool (14).
        pool_size: max pool after the crop (2: 14 -> 7).
        i3d_width_multiplier: width factor of the I3D head blocks (1.0 =
            I3D; must match the trunk's).
        i3d_batch_norm: batch norms of the I3D head blocks, "frozen" or
            "batch" (see `tfaction.layers.unit3d.Unit3D`).
        weight_decay: Keras `L2` on the I3D head's conv kernels.
        **kwargs: base `keras.Model` arguments (`name`, `dtype`).

    Raises:
        ConfigError: unknown head or query; `feature_channels` that the
            I3D head blocks of `i3d_width_multiplier` do not take.

    Example:

    >>> import numpy as np
    >>> head = ActionTransformerBoxHead(
    ...     5, feature_channels=16, head="tx", key_dim=8, ffn_units=8,
    ...     query_reduction_channels=4)
    >>> out = head([np.zeros((2, 4, 5, 5, 16), "float32"),
    ...             np.tile([[[0.1, 0.1, 0.6, 0.5]]], (2, 3, 1))])
    >>> tuple(out["class_logits"].shape), tuple(out["box_deltas"].shape)
    ((2, 3, 6), (2, 3, 4))

    Reference:
        Girdhar et al., "Video Action Transformer Network", CVPR 2019.
    """

    def __init__(self, num_classes, feature_channels=832, head="tx",
                 query="high_res", query_reduction_channels=128, key_dim=128,
                 num_heads=2, num_layers=3, ffn_units=128, dropout=0.3,
                 ffn_input="attended", layer_norm_epsilon=1e-12,
                 location_spatial_units=(4, 8),
                 location_temporal_units=(4, 8), centre_frame=None,
                 crop_size=14, pool_size=2, i3d_width_multiplier=1.0,
                 i3d_batch_norm="frozen", weight_decay=0.0, **kwargs):
        kwargs.setdefault("name", "box_head")
        dtype = kwargs.pop("dtype", None)
        _check_choice(head, HEADS, "head")
        _check_choice(query, QUERIES, "query")
        num_classes = int(num_classes)
        feature_channels = int(feature_channels)
        if head in ("i3d", "tx_i3d"):
            expected = i3d.endpoint_channels(i3d.TRUNK_ENDPOINT,
                                             i3d_width_multiplier)
            if feature_channels != expected:
                raise errors.ConfigError(
                    f"the I3D head blocks of width {i3d_width_multiplier} "
                    f"take the {expected} channels of "
                    f"{i3d.TRUNK_ENDPOINT}, not feature_channels="
                    f"{feature_channels}")

        # === Functional Model ===
        features = keras.Input((None, None, None, feature_channels),
                               name="features")
        boxes = keras.Input((None, 4), name="boxes")
        outputs = {}
        if head in ("tx", "tx_i3d"):
            context = LocationEmbedding(
                spatial_units=tuple(location_spatial_units),
                temporal_units=tuple(location_temporal_units), dtype=dtype,
                name="location_embedding")(features)
            centre = CentreFrame(centre_frame, dtype=dtype,
                                 name="query_frame")(context)
            rois = RoIPool(crop_size, pool_size, dtype=dtype,
                           name="roi_pool")([centre, boxes])
            if query == "high_res":
                q = HighResQuery(units=key_dim,
                                 reduction_channels=query_reduction_channels,
                                 dtype=dtype, name="query")(rois)
            else:
                q = LowResQuery(units=key_dim, dtype=dtype,
                                name="query")(rois)
            attended = ActionTransformerHead(
                num_heads=num_heads, num_layers=num_layers, key_dim=key_dim,
                ffn_units=ffn_units, dropout=dropout, ffn_input=ffn_input,
                layer_norm_epsilon=layer_norm_epsilon, dtype=dtype,
                name="transformer")(q, context)
            logits, deltas = _outputs(attended, num_classes, "tx", dtype)
            outputs = {"class_logits": logits, "box_deltas": deltas}
        if head in ("i3d", "tx_i3d"):
            tubes = SpatioTemporalRoIPool(crop_size, pool_size, dtype=dtype,
                                          name="tube_pool")([features, boxes])
            blocks = i3d.build_i3d_head(
                weight_decay=weight_decay,
                width_multiplier=i3d_width_multiplier,
                batch_norm=i3d_batch_norm, dtype=dtype, name="i3d_blocks")
            # One tube per box: the blocks run once on [B * S, T', 7, 7, C].
            folded = BoxAxis("merge", dtype=dtype, name="fold_boxes")(tubes)
            per_box = blocks(folded)
            pooled = keras.layers.GlobalAveragePooling3D(
                dtype=dtype, name="i3d_pool")(per_box)
            pooled = BoxAxis("split", dtype=dtype, name="unfold_boxes")(
                [pooled, boxes])
            logits, deltas = _outputs(pooled, num_classes, "i3d", dtype)
            if head == "i3d":
                outputs = {"class_logits": logits, "box_deltas": deltas}
            else:  # Tx classifies, I3D regresses the box.
                outputs["box_deltas"] = deltas
        super().__init__(inputs=[features, boxes], outputs=outputs, **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype

        # === Config ===
        self.num_classes = num_classes
        self.feature_channels = feature_channels
        self.head = head
        self.query = query
        self.query_reduction_channels = int(query_reduction_channels)
        self.key_dim = int(key_dim)
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.ffn_units = int(ffn_units)
        self.dropout = float(dropout)
        self.ffn_input = ffn_input
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.location_spatial_units = [int(u) for u in
                                       location_spatial_units]
        self.location_temporal_units = [int(u) for u in
                                        location_temporal_units]
        self.centre_frame = None if centre_frame is None else int(
            centre_frame)
        self.crop_size = int(crop_size)
        self.pool_size = int(pool_size)
        self.i3d_width_multiplier = float(i3d_width_multiplier)
        self.i3d_batch_norm = i3d_batch_norm
        self.weight_decay = float(weight_decay)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            feature_channels=self.feature_channels, head=self.head,
            query=self.query,
            query_reduction_channels=self.query_reduction_channels,
            key_dim=self.key_dim, num_heads=self.num_heads,
            num_layers=self.num_layers, ffn_units=self.ffn_units,
            dropout=self.dropout, ffn_input=self.ffn_input,
            layer_norm_epsilon=self.layer_norm_epsilon,
            location_spatial_units=list(self.location_spatial_units),
            location_temporal_units=list(self.location_temporal_units),
            centre_frame=self.centre_frame, crop_size=self.crop_size,
            pool_size=self.pool_size,
            i3d_width_multiplier=self.i3d_width_multiplier,
            i3d_batch_norm=self.i3d_batch_norm, weight_decay=self.weight_decay)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
