r"""ActionFormer on Ego4D Moment Queries, with a selectable feature set.

`--config=experiments/configs/actionformer_ego4d.py:omnivore_egovlp`
(default) or `:slowfast`, `:omnivore`, `:egovlp`, `:slowfast_egovlp`,
`:slowfast_omnivore_egovlp`, as the authors' `configs/ego4d_*.yaml`. The
features of a combination are concatenated along channels (SlowFast 2304,
Omnivore 1536, EgoVLP 256) by the converter, in that order: pass one folder
per feature set. From the official Ego4D MQ annotations and the per-clip
feature files::

    python -m tfaction.data.convert --format=ego4d_mq \
        --input=moments_train.json,moments_val.json \
        --features_dir=omnivore_features,egovlp_features \
        --class_list=data/ego4d_mq/classes.txt \
        --feature_stride=16 --feature_window=32 --fps=30 --force_fps \
        --output_dir=data/ego4d_omnivore_egovlp

(stride 16, 32-frame windows, 16 for EgoVLP alone; the release's
`default_fps` 30 for every clip; the class list gives the authors'
`label_id` order). The three-feature set projects each set with its own
1x1 convolution (2304 -> 256, 1536 -> 384, 256 -> 384) before the
embedding. Evaluated as the authors do (`libs/utils/metrics.py`,
`evaluation.variant="actionformer"`): mAP at tIoU np.linspace(0.1, 0.5, 5)
(published averages 21.98 for Omnivore + EgoVLP, 22.09 for all three) and
Recall@1x / 5x at each threshold (metrics `R@1x@0.50`, ...; published
R@1x at 0.5: 39.88 for Omnivore + EgoVLP).
"""

import numpy as np

from tfaction import errors
from tfaction.tasks import actionformer_config

EGO4D_REGRESSION_RANGE = ((0, 4), (2, 8), (4, 16), (8, 32), (16, 64),
                          (32, 128), (64, 256), (128, 10000))
EGO4D_TIOUS = tuple(np.linspace(0.1, 0.5, 5).tolist())
# The authors' ANETdetection default top_k.
EGO4D_RECALL_TOP_K = (1, 5)
# feature set -> (arch, embed = fpn = head dim, heads); input_dim comes from
# the converted data.
# feature set -> (backbone arch, embedding / head dim, heads, per-set
# (input channels, projection channels) or None)
FEATURE_SETS = {
    "slowfast": ((2, 2, 6), 512, 4, None),
    "omnivore": ((2, 2, 7), 512, 4, None),
    "egovlp": ((2, 2, 7), 384, 4, None),
    "slowfast_egovlp": ((2, 2, 7), 768, 12, None),
    "omnivore_egovlp": ((2, 2, 7), 768, 12, None),
    "slowfast_omnivore_egovlp": ((2, 2, 7), 1024, 16,
                                 ((2304, 256), (1536, 384), (256, 384))),
}


def get_config(feature_set="omnivore_egovlp"):
    """Returns the config for one Ego4D feature set.

    Args:
        feature_set: a key of `FEATURE_SETS` (the text after `:` in
            `--config=...py:<set>`).

    Raises:
        ConfigError: unknown feature set.
    """
    feature_set = feature_set or "omnivore_egovlp"
    if feature_set not in FEATURE_SETS:
        raise errors.ConfigError(
            f"unknown Ego4D feature set {feature_set!r}; expected one of "
            f"{sorted(FEATURE_SETS)}")
    arch, dim, heads, projections = FEATURE_SETS[feature_set]
    levels = 1 + arch[2]
    config = actionformer_config.experiment_config()
    task = config.task
    task.data_dir = f"data/ego4d_{feature_set}"
    task.max_seq_len = 1024
    task.max_buffer_len_factor = 4.0
    task.trunc_thresh = 0.3
    task.model.arch = arch
    task.model.embed_dim = task.model.head_dim = dim
    task.model.num_heads = heads
    if projections:
        task.model.input_splits = tuple(c for c, _ in projections)
        task.model.projection_dims = tuple(p for _, p in projections)
    task.model.window_size = (9,) * levels
    # Fewer levels: the last level takes every longer segment.
    task.model.regression_range = EGO4D_REGRESSION_RANGE[:levels - 1] + (
        (EGO4D_REGRESSION_RANGE[levels - 1][0], 10000),)
    task.model.use_abs_pe = True
    task.model.dropout = 0.1
    task.inference.pre_nms_topk = 5000
    task.inference.nms_sigma = 0.9
    task.inference.max_seg_num = 2000
    task.inference.voting_thresh = 0.95
    task.evaluation.tiou_thresholds = EGO4D_TIOUS
    task.evaluation.variant = "actionformer"
    task.evaluation.recall_top_k = EGO4D_RECALL_TOP_K
    config.trainer.epochs = 15  # 10 + 5 warm-up
    return config
