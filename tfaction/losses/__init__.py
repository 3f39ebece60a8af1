"""Losses that Keras lacks, written with `keras.ops`.

* `sigmoid_focal_loss.sigmoid_focal_loss`: fvcore / ActionFormer sigmoid focal
  loss with optional label smoothing `y (1 - eps) + eps / (C + 1)`, masked and
  summed (divide by your own normaliser).
* `ctr_diou_loss_1d.ctr_diou_loss_1d`: 1-D centre DIoU loss on
  `(left, right)` offsets (ActionFormer regression loss).
* `smooth_l1_loss.smooth_l1_loss`: the TF Object Detection API's smooth L1
  (Huber, delta 1) summed over the box code, not averaged as Keras' Huber.
* `rpn_loss.rpn_loss`: Faster R-CNN first-stage objectness + box loss, each
  normalised by the sampled anchors of an image.
* `box_classifier_loss.box_classifier_loss`: second-stage per-class sigmoid
  cross-entropy with a background column + class-agnostic box loss.
* `sequence_contrastive_loss.sequence_contrastive_loss` /
  `SequenceContrastiveLoss`: CARL's sequence contrastive loss, KL between a
  float32 Gaussian prior over frame-index gaps and a temperature softmax
  over the other view; padded frames masked, per-video losses (`"none"`,
  `scope="video"`) for data parallelism.
"""
