"""The Video Action Transformer network: I3D trunk, RPN, box head.

A Faster R-CNN-style detector of people and their (multi-label) actions on
the keyframe of a clip (Girdhar et al., CVPR 2019):

1. trunk: I3D up to `Mixed_4f` (`tfaction.models.backbones.i3d`), a clip
   `[B, T, H, W, 3]` (pixels in [-1, 1]) -> `[B, T/4, H/16, W/16, 832]`;
2. RPN on the temporally central frame of the trunk features
   (`RegionProposalHead`), grid anchors, decoding and NMS to R proposals
   (`ProposalGenerator`);
3. the second stage (`ActionTransformerBoxHead`: Tx, I3D or Tx+I3D) on the
   proposals: per-proposal action logits with a background column and a
   class-agnostic box refinement.

Layer names: `trunk`, `rpn_frame`, `rpn_head`, `proposals`, `box_head`.
Training uses the parts (`trunk`, `rpn_frame`, `rpn_head`,
`proposal_generator`, `box_head`) so that the second stage runs on a
minibatch of proposals sampled against the ground truth; inference runs
the whole graph.
"""

import keras

from tfaction.layers.centre_frame import CentreFrame
from tfaction.layers.proposal_generator import ProposalGenerator
from tfaction.layers.region_proposal_head import RegionProposalHead
from tfaction.models.action_transformer import box_head as box_head_lib
from tfaction.models.backbones import i3d
from tfaction.ops import anchors as anchors_lib
from tfaction.ops import proposals as proposals_lib

HEADS = box_head_lib.HEADS
QUERIES = box_head_lib.QUERIES


@keras.saving.register_keras_serializable(package="tfaction")
class ActionTransformer(keras.Model):
    """Video Action Transformer: clip -> proposals, action logits, boxes.

    A functional model `clips [B, T, H, W, 3]` (float, I3D's [-1, 1]
    pixels; T, H, W dynamic) -> dict:

    * `rpn_logits` `[B, N]`, `rpn_deltas` `[B, N, 4]`: the RPN outputs for
      the `N = h * w * A` anchors of the central trunk frame;
    * `proposals` `[B, R, 4]` (normalised `[y1, x1, y2, x2]`),
      `proposal_scores` `[B, R]`, `proposal_mask` `[B, R]` (bool);
    * `class_logits` `[B, R, num_classes + 1]` (column 0: background),
      `box_deltas` `[B, R, 4]` (Faster R-CNN codes relative to each
      proposal) from the box head.

    Decode detections with `tfaction.models.action_transformer.decoding`.
    Every argument is a plain value (`get_config` / `.keras` need no
    custom objects).

    Args:
        num_classes: action classes (80 for AVA; the evaluation keeps 60).
        head: "tx" (Action Transformer), "i3d" (I3D head) or "tx_i3d" (Tx
            classifies, I3D regresses the box).
        query: "high_res" or "low_res" (Tx query preprocessor).
        num_proposals: R, proposals per clip (300; 64 in the ablations).
        trunk_width_multiplier: I3D width factor (1.0 = I3D, whose
            checkpoints load; smaller for CPU-sized experiments).
        trunk_weight_decay: Keras `L2` on the trunk's and I3D head's conv
            kernels.
        trunk_batch_norm: the batch norms of the trunk and I3D head blocks:
            "frozen" (statistics fixed, the paper's fine-tuning of a
            Kinetics I3D) or "batch" (trained statistics, for training
            from scratch).
        rpn_frame: trunk frame the RPN and the Tx query use (None: the
            central `T' // 2`, 8 of 16).
        rpn_filters: channels of the RPN's 3x3 conv (512).
        anchor_scales, anchor_aspect_ratios: grid anchors (TF Object
            Detection API Faster R-CNN defaults).
        anchor_base_size: pixels of a scale-1 anchor (256).
        rpn_nms_iou: first-stage NMS IoU (0.7).
        key_dim, num_heads, num_layers, ffn_units, dropout, ffn_input,
            layer_norm_epsilon, query_reduction_channels,
            location_spatial_units, location_temporal_units, crop_size,
            pool_size: the box head's (`ActionTransformerBoxHead`).
        **kwargs: base `keras.Model` arguments (`name`, default
            "action_transformer"; `dtype`, passed to every sublayer).

    Raises:
        ConfigError: unknown head or query, bad I3D settings.

    Example:

    >>> import numpy as np
    >>> model = ActionTransformer(
    ...     3, head="tx", num_proposals=5, trunk_width_multiplier=0.0625,
    ...     rpn_filters=8, anchor_base_size=32, key_dim=8, ffn_units=8,
    ...     num_layers=1, query_reduction_channels=4)
    >>> out = model(np.zeros((1, 8, 64, 64, 3), "float32"))
    >>> tuple(out["class_logits"].shape), tuple(out["proposals"].shape)
    ((1, 5, 4), (1, 5, 4))

    Reference:
        Girdhar, Carreira, Doersch, Zisserman, "Video Action Transformer
        Network", CVPR 2019.
    """

    def __init__(self, num_classes, head="tx", query="high_res",
                 num_proposals=proposals_lib.FIRST_STAGE_MAX_PROPOSALS,
                 trunk_width_multiplier=1.0, trunk_weight_decay=0.0,
                 trunk_batch_norm="frozen", rpn_frame=None, rpn_filters=512,
                 anchor_scales=anchors_lib.DEFAULT_SCALES,
                 anchor_aspect_ratios=anchors_lib.DEFAULT_ASPECT_RATIOS,
                 anchor_base_size=256.0,
                 rpn_nms_iou=proposals_lib.FIRST_STAGE_NMS_IOU_THRESHOLD,
                 key_dim=128, num_heads=2, num_layers=3, ffn_units=128,
                 dropout=0.3, ffn_input="attended", layer_norm_epsilon=1e-12,
                 query_reduction_channels=128, location_spatial_units=(4, 8),
                 location_temporal_units=(4, 8), crop_size=14, pool_size=2,
                 **kwargs):
        kwargs.setdefault("name", "action_transformer")
        dtype = kwargs.pop("dtype", None)
        box_head_lib._check_choice(head, HEADS, "head")
        box_head_lib._check_choice(query, QUERIES, "query")
        num_classes = int(num_classes)
        anchor_scales = [float(s) for s in anchor_scales]
        anchor_aspect_ratios = [float(a) for a in anchor_aspect_ratios]

        # === Layers ===
        trunk = i3d.build_i3d_trunk(
            weight_decay=trunk_weight_decay,
            width_multiplier=trunk_width_multiplier,
            batch_norm=trunk_batch_norm, dtype=dtype, name="trunk")
        channels = i3d.endpoint_channels(i3d.TRUNK_ENDPOINT,
                                         trunk_width_multiplier)
        frame = CentreFrame(rpn_frame, dtype=dtype, name="rpn_frame")
        rpn = RegionProposalHead(
            anchors_lib.num_anchors_per_location(anchor_scales,
                                                 anchor_aspect_ratios),
            filters=int(rpn_filters), dtype=dtype, name="rpn_head")
        generator = ProposalGenerator(
            max_proposals=int(num_proposals), iou_threshold=rpn_nms_iou,
            scales=anchor_scales, aspect_ratios=anchor_aspect_ratios,
            base_anchor_size=anchor_base_size, anchor_stride=16.0,
            dtype=dtype, name="proposals")
        head_model = box_head_lib.ActionTransformerBoxHead(
            num_classes, feature_channels=channels, head=head, query=query,
            query_reduction_channels=query_reduction_channels,
            key_dim=key_dim, num_heads=num_heads, num_layers=num_layers,
            ffn_units=ffn_units, dropout=dropout, ffn_input=ffn_input,
            layer_norm_epsilon=layer_norm_epsilon,
            location_spatial_units=location_spatial_units,
            location_temporal_units=location_temporal_units,
            centre_frame=rpn_frame, crop_size=crop_size,
            pool_size=pool_size, i3d_width_multiplier=trunk_width_multiplier,
            i3d_batch_norm=trunk_batch_norm, weight_decay=trunk_weight_decay,
            dtype=dtype, name="box_head")

        # === Functional Model ===
        clips = keras.Input((None, None, None, 3), name="clips")
        features = trunk(clips)
        centre = frame(features)
        rpn_logits, rpn_deltas = rpn(centre)
        proposals = generator([rpn_logits, rpn_deltas, centre, clips])
        second = head_model([features, proposals["boxes"]])
        outputs = {
            "rpn_logits": keras.layers.Activation(
                "linear", dtype="float32", name="rpn_logits")(rpn_logits),
            "rpn_deltas": keras.layers.Activation(
                "linear", dtype="float32", name="rpn_deltas")(rpn_deltas),
            "proposals": proposals["boxes"],
            "proposal_scores": proposals["scores"],
            "proposal_mask": proposals["mask"],
            "class_logits": second["class_logits"],
            "box_deltas": second["box_deltas"],
        }
        super().__init__(inputs=clips, outputs=outputs, **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype
        # The proposals' NMS has no XLA kernel.
        self.supports_jit = False

        # === Config ===
        self.num_classes = num_classes
        self.head = head
        self.query = query
        self.num_proposals = int(num_proposals)
        self.trunk_width_multiplier = float(trunk_width_multiplier)
        self.trunk_weight_decay = float(trunk_weight_decay)
        self.trunk_batch_norm = trunk_batch_norm
        self.rpn_frame = None if rpn_frame is None else int(rpn_frame)
        self.rpn_filters = int(rpn_filters)
        self.anchor_scales = anchor_scales
        self.anchor_aspect_ratios = anchor_aspect_ratios
        self.anchor_base_size = float(anchor_base_size)
        self.rpn_nms_iou = float(rpn_nms_iou)
        self.key_dim = int(key_dim)
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.ffn_units = int(ffn_units)
        self.dropout = float(dropout)
        self.ffn_input = ffn_input
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.query_reduction_channels = int(query_reduction_channels)
        self.location_spatial_units = [int(u) for u in
                                       location_spatial_units]
        self.location_temporal_units = [int(u) for u in
                                        location_temporal_units]
        self.crop_size = int(crop_size)
        self.pool_size = int(pool_size)

    # ------------------------------------------------------------- parts
    @property
    def trunk(self):
        """The I3D trunk `[B, T, H, W, 3] -> [B, T', H', W', C]`."""
        return self.get_layer("trunk")

    @property
    def rpn_frame_layer(self):
        """The `CentreFrame` layer choosing the RPN's trunk frame."""
        return self.get_layer("rpn_frame")

    @property
    def rpn_head(self):
        """The `RegionProposalHead`."""
        return self.get_layer("rpn_head")

    @property
    def proposal_generator(self):
        """The `ProposalGenerator` (anchors, decoding, NMS)."""
        return self.get_layer("proposals")

    @property
    def box_head(self):
        """The `ActionTransformerBoxHead` `[features, boxes] -> dict`."""
        return self.get_layer("box_head")

    # ------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, head=self.head, query=self.query,
            num_proposals=self.num_proposals,
            trunk_width_multiplier=self.trunk_width_multiplier,
            trunk_weight_decay=self.trunk_weight_decay,
            trunk_batch_norm=self.trunk_batch_norm, rpn_frame=self.rpn_frame, rpn_filters=self.rpn_filters,
            anchor_scales=list(self.anchor_scales),
            anchor_aspect_ratios=list(self.anchor_aspect_ratios),
            anchor_base_size=self.anchor_base_size,
            rpn_nms_iou=self.rpn_nms_iou, key_dim=self.key_dim,
            num_heads=self.num_heads, num_layers=self.num_layers,
            ffn_units=self.ffn_units, dropout=self.dropout,
            ffn_input=self.ffn_input,
            layer_norm_epsilon=self.layer_norm_epsilon,
            query_reduction_channels=self.query_reduction_channels,
            location_spatial_units=list(self.location_spatial_units),
            location_temporal_units=list(self.location_temporal_units),
            crop_size=self.crop_size, pool_size=self.pool_size)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
