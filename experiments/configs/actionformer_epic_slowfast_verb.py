"""ActionFormer on EPIC-Kitchens 100 verbs with SlowFast features (2304-d).

Features: stride 16, 32-frame windows at 30 fps (`epic_kitchens.tar.gz` of
the release, `.npz` key `feats`): convert with `--feature_stride=16
--feature_window=32 --fps=30 --force_fps` (the release's `default_fps`). The
annotations' `label_id` is the class index, also where some ids have no
annotation (they become placeholder classes with the empty-class prior, as
the authors' training does). mAP at tIoU np.linspace(0.1, 0.5, 5)
(published average 23.51), scored as the authors' `libs/utils/metrics.py`
(`evaluation.variant="actionformer"`). The written `predictions.json` can
also be scored with the EPIC-Kitchens evaluator's rules:
`python -m experiments.evaluate --metric=activitynet_detection
--variant=epic --epic_task=verb` (ground truth: the converted
`ground_truth.json`, or `EPIC_100_validation.csv` for submission-layout
predictions).
"""

import numpy as np

from tfaction.tasks import actionformer_config

EPIC_REGRESSION_RANGE = ((0, 4), (2, 8), (4, 16), (8, 32), (16, 64),
                         (32, 10000))
EPIC_TIOUS = tuple(np.linspace(0.1, 0.5, 5).tolist())


def get_config():
    """Returns the config (`actionformer_config` describes every key)."""
    config = actionformer_config.experiment_config()
    task = config.task
    task.data_dir = "data/epic_slowfast_verb"
    task.max_buffer_len_factor = 4.0
    task.trunc_thresh = 0.3
    task.model.window_size = (9,) * 6
    task.model.regression_range = EPIC_REGRESSION_RANGE
    task.loss.init_loss_norm = 250.0
    task.inference.pre_nms_topk = 5000
    task.inference.nms_sigma = 0.4
    task.inference.max_seg_num = 2000
    task.evaluation.tiou_thresholds = EPIC_TIOUS
    task.evaluation.variant = "actionformer"
    config.trainer.epochs = 21  # 16 + 5 warm-up (released: epoch_020)
    return config
