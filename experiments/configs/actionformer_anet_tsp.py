"""ActionFormer on ActivityNet 1.3 with TSP features (512-d).

Class-agnostic proposals (one class) with features resampled to 192 steps;
action labels come from the external video classifier (CUHK scores,
`inference.ext_score_file`) by score fusion. mAP at tIoU
np.linspace(0.5, 0.95, 10) with the authors' scoring
(`evaluation.variant="actionformer"`; published average 36.56 with
fusion). Convert with `--feature_stride=16 --feature_window=16 --fps=15
--force_fps` (the release's `default_fps`, used for every video). The
ActivityNet dataset's rules are on: duplicate annotations removed, features
resampled to 192 steps, training annotations past the features dropped or
clamped.
"""

import numpy as np

from tfaction.tasks import actionformer_config

# The floats of np.linspace, as the official evaluator builds them
# ([8] = 0.8999999999999999, not 0.9).
ANET_TIOUS = tuple(np.linspace(0.5, 0.95, 10).tolist())


def get_config():
    """Returns the config (`actionformer_config` describes every key)."""
    config = actionformer_config.experiment_config()
    task = config.task
    task.data_dir = "data/anet_tsp"
    task.max_seq_len = 192
    task.max_buffer_len_factor = 1.0
    task.resample_length = 192
    task.remove_duplicate_segments = True
    task.clip_segments_to_features = True
    task.class_agnostic = True
    task.model.embed_dim = task.model.head_dim = 256
    task.model.window_size = (7, 7, 7, 7, 7, -1)
    task.model.use_abs_pe = True
    task.loss.init_loss_norm = 200.0
    task.loss.loss_weight = 2.0
    task.loss.label_smoothing = 0.1
    task.inference.duration_thresh = 0.001
    task.inference.multiclass_nms = False
    task.inference.nms_sigma = 0.75
    task.inference.voting_thresh = 0.9
    task.inference.max_seg_num = 100
    task.inference.ext_score_file = "data/anet_tsp/cuhk_val_simp_share.json"
    task.evaluation.tiou_thresholds = ANET_TIOUS
    task.evaluation.variant = "actionformer"
    config.trainer.epochs = 15  # 10 + 5 warm-up
    config.trainer.global_batch_size = 16
    config.optimizer.lr = 1e-3
    config.optimizer.min_lr_ratio = 1e-8 / config.optimizer.lr
    return config
