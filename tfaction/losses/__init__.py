"""Losses that Keras lacks, written with `keras.ops`.

* `sigmoid_focal_loss.sigmoid_focal_loss`: fvcore / ActionFormer sigmoid focal
  loss with optional label smoothing `y (1 - eps) + eps / (C + 1)`, masked and
  summed (divide by your own normaliser).
* `ctr_diou_loss_1d.ctr_diou_loss_1d`: 1-D centre DIoU loss on
  `(left, right)` offsets (ActionFormer regression loss).
"""
