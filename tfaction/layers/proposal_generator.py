"""`ProposalGenerator`: grid anchors + RPN outputs -> R region proposals."""

import keras
import tensorflow as tf

from tfaction.ops import anchors as anchors_lib
from tfaction.ops import box_coder
from tfaction.ops import proposals as proposals_lib


@keras.saving.register_keras_serializable(package="tfaction")
class ProposalGenerator(keras.layers.Layer):
    """Faster R-CNN first-stage post-processing as a weightless layer.

    Builds the grid anchors of the RPN's feature map for the current image
    size (both dynamic), decodes the `RegionProposalHead` outputs against
    them, clips to the image, and keeps the `max_proposals` best boxes
    after greedy NMS (`tfaction.ops.proposals.generate_proposals`, TF
    Object Detection API semantics). Its outputs carry no gradient.

    TensorFlow-only (`tf.image.non_max_suppression_padded` has no XLA
    kernel): `supports_jit = False`; a compiled training step computes the
    RPN outputs, then calls this layer outside the compiled function.

    Args:
        max_proposals: `R`, proposals per image (300; 64 in the Video
            Action Transformer's ablations).
        iou_threshold: NMS IoU threshold (0.7).
        score_threshold: keep only objectness probabilities above this.
        pre_nms_top_k: boxes kept before NMS (None: all, as the API).
        scales: anchor scales relative to `base_anchor_size`.
        aspect_ratios: anchor aspect ratios (width / height).
        base_anchor_size: side in pixels of a scale-1 anchor.
        anchor_stride: pixels between neighbouring cells (the trunk's
            stride).
        inside_only: propose only from anchors inside the image (the API's
            training-time pruning); False uses every anchor, clipped.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: list `[objectness_logits [B, N], box_deltas [B, N, 4],
            feature_map [B, h, w, C], images [B, ..., H, W, C']]`: the RPN
            outputs, the map they were computed on and the input (only the
            shapes of the last two are read; `images` may have leading
            frame axes, e.g. a clip `[B, T, H, W, 3]`).

    Returns:
        dict: `boxes` float32 `[B, R, 4]` normalised `[y1, x1, y2, x2]`
        (zeros where padded), `scores` float32 `[B, R]`, `mask` bool
        `[B, R]`.

    Example:

    >>> import numpy as np
    >>> layer = ProposalGenerator(max_proposals=5, base_anchor_size=32,
    ...                           anchor_stride=16)
    >>> n = 4 * 4 * layer.num_anchors_per_location
    >>> out = layer([np.zeros((2, n), "float32"),
    ...              np.zeros((2, n, 4), "float32"),
    ...              np.zeros((2, 4, 4, 8), "float32"),
    ...              np.zeros((2, 3, 64, 64, 3), "float32")])
    >>> tuple(out["boxes"].shape), tuple(out["mask"].shape)
    ((2, 5, 4), (2, 5))

    Reference:
        Ren et al., "Faster R-CNN", NeurIPS 2015; the TF Object Detection
        API's Faster R-CNN first stage.
    """

    def __init__(self, max_proposals=proposals_lib.FIRST_STAGE_MAX_PROPOSALS,
                 iou_threshold=proposals_lib.FIRST_STAGE_NMS_IOU_THRESHOLD,
                 score_threshold=(
                     proposals_lib.FIRST_STAGE_NMS_SCORE_THRESHOLD),
                 pre_nms_top_k=None,
                 scales=anchors_lib.DEFAULT_SCALES,
                 aspect_ratios=anchors_lib.DEFAULT_ASPECT_RATIOS,
                 base_anchor_size=256.0, anchor_stride=16.0,
                 inside_only=False, **kwargs):
        super().__init__(**kwargs)
        # NMS has no XLA kernel (Keras then never auto-enables XLA).
        self.supports_jit = False
        self.max_proposals = int(max_proposals)
        self.iou_threshold = float(iou_threshold)
        self.score_threshold = float(score_threshold)
        self.pre_nms_top_k = (None if pre_nms_top_k is None
                              else int(pre_nms_top_k))
        self.scales = [float(s) for s in scales]
        self.aspect_ratios = [float(a) for a in aspect_ratios]
        self.base_anchor_size = float(base_anchor_size)
        self.anchor_stride = float(anchor_stride)
        self.inside_only = bool(inside_only)
        # Boxes and scores stay float32 whatever the policy.
        self.autocast = False

    @property
    def num_anchors_per_location(self):
        """Anchors per feature-map cell (`len(scales) * len(ratios)`)."""
        return anchors_lib.num_anchors_per_location(self.scales,
                                                    self.aspect_ratios)

    def anchors(self, feature_map, images):
        """The normalised grid anchors `[h * w * A, 4]` of a feature map.

        Args:
            feature_map: `[B, h, w, C]` tensor (its shape is read).
            images: `[B, ..., H, W, C']` tensor (its shape is read).

        Returns:
            float32 `[h * w * A, 4]`, in the RPN head's output order.
        """
        fshape, ishape = tf.shape(feature_map), tf.shape(images)
        rank = len(images.shape)
        return anchors_lib.grid_anchors(
            fshape[1], fshape[2], ishape[rank - 3], ishape[rank - 2],
            scales=self.scales, aspect_ratios=self.aspect_ratios,
            base_anchor_size=(self.base_anchor_size,) * 2,
            anchor_stride=(self.anchor_stride,) * 2)

    def anchor_mask(self, anchors):
        """Anchors allowed to propose: inside the image, or all.

        Args:
            anchors: `[N, 4]` normalised anchors.

        Returns:
            bool `[N]`, or None when every anchor may propose.
        """
        if not self.inside_only:
            return None
        return box_coder.boxes_inside_window(anchors)

    def call(self, inputs):
        logits, deltas, feature_map, images = inputs
        anchors = self.anchors(feature_map, images)
        out = proposals_lib.generate_proposals(
            logits, deltas, anchors, anchor_mask=self.anchor_mask(anchors),
            max_proposals=self.max_proposals,
            iou_threshold=self.iou_threshold,
            score_threshold=self.score_threshold,
            pre_nms_top_k=self.pre_nms_top_k)
        return {"boxes": out["boxes"], "scores": out["scores"],
                "mask": out["mask"]}

    def compute_output_spec(self, inputs):
        batch = inputs[0].shape[0]
        r = self.max_proposals
        return {"boxes": keras.KerasTensor((batch, r, 4), "float32"),
                "scores": keras.KerasTensor((batch, r), "float32"),
                "mask": keras.KerasTensor((batch, r), "bool")}

    def get_config(self):
        config = super().get_config()
        config.update(
            max_proposals=self.max_proposals,
            iou_threshold=self.iou_threshold,
            score_threshold=self.score_threshold,
            pre_nms_top_k=self.pre_nms_top_k, scales=list(self.scales),
            aspect_ratios=list(self.aspect_ratios),
            base_anchor_size=self.base_anchor_size,
            anchor_stride=self.anchor_stride, inside_only=self.inside_only)
        return config
