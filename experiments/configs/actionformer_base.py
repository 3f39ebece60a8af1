"""ActionFormer defaults: the THUMOS14 I3D recipe of the authors.

Every `actionformer_*` config starts from `get_config()` and changes what its
dataset needs (values from the authors' `configs/*.yaml` merged with
`libs/core/config.py` defaults). The task
section is read by `tfaction.tasks.actionformer.ActionFormerTask`; feature
dimension, record encoding and classes come from the converted dataset's
`dataset_info.json` in `task.data_dir`.
"""

import ml_collections

from experiments.configs import base

DEFAULT_REGRESSION_RANGE = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64),
                            (64, 10000))
THUMOS_TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)


def get_config():
    """Returns the THUMOS14 I3D ActionFormer config (unlocked task section).

    Returns:
        An `ml_collections.ConfigDict`.

    Example:

    ```python
    from experiments.configs import actionformer_base

    def get_config():
        config = actionformer_base.get_config()
        config.task.max_seq_len = 192
        return config
    ```
    """
    config = base.get_config()
    config.task = ml_collections.ConfigDict({
        "name": "actionformer",
        "module": "tfaction.tasks.actionformer",
        "data_dir": "",            # tfaction.data.convert output folder
        "train_subset": "training",
        "eval_subset": "validation",
        "max_seq_len": 2304,       # training length (pad / crop)
        "max_buffer_len_factor": 6.0,  # serving accepts this x max_seq_len
        "trunc_thresh": 0.5,       # part of a segment a crop must keep
        "crop_ratio": (0.9, 1.0),  # random crop of shorter videos; () = off
        "resample_length": 0,      # ActivityNet: resample to this length
        # ActivityNet dataset rules: drop duplicate annotations (training);
        # drop / clamp training annotations past the features.
        "remove_duplicate_segments": False,
        "clip_segments_to_features": False,
        "class_agnostic": False,   # ActivityNet: one "action" class
        "max_segments": 0,         # pad GT per video (0 = batch maximum)
        "shuffle_buffer_size": 64,
        "model": {
            "embed_dim": 512, "num_heads": 4, "arch": (2, 2, 5),
            "window_size": (19,) * 6, "embed_kernel_size": 3,
            "embed_with_ln": True, "fpn_with_ln": True, "head_dim": 512,
            "head_kernel_size": 3, "head_num_layers": 3,
            "head_with_ln": True,
            "regression_range": DEFAULT_REGRESSION_RANGE,
            "prior_prob": 0.01, "empty_classes": (), "dropout": 0.0,
            "drop_path_rate": 0.1, "use_abs_pe": False,
            # Several concatenated feature sets, each with its own 1x1
            # projection (channels in, channels out): None = one set.
            "input_splits": None, "projection_dims": None,
        },
        "loss": {
            "center_sample_radius": 1.5, "loss_weight": 1.0,
            "label_smoothing": 0.0, "init_loss_norm": 100.0,
            "loss_norm_momentum": 0.9, "focal_alpha": 0.25,
            "focal_gamma": 2.0,
        },
        "inference": {
            "pre_nms_thresh": 0.001, "pre_nms_topk": 2000,
            "duration_thresh": 0.05, "nms_method": "gaussian",
            "iou_threshold": 0.1, "min_score": 0.001, "max_seg_num": 200,
            "multiclass_nms": True, "nms_sigma": 0.5, "voting_thresh": 0.7,
            # ActivityNet: external video classifier scores (JSON).
            "ext_score_file": "", "fusion_topk_classes": 2,
            "fusion_topk_segments": 200,
        },
        "evaluation": {
            "tiou_thresholds": THUMOS_TIOUS,
            # Predictions of classes absent from the evaluated GT do not
            # change the mAP (it averages over GT classes): drop them.
            "skip_unknown_labels": True,
        },
    })
    config.trainer.epochs = 35          # 30 + 5 warm-up epochs
    config.trainer.global_batch_size = 2
    config.trainer.eval_batch_size = 0  # = global batch (1 per GPU on 2)
    config.trainer.checkpoint_interval = 500
    config.trainer.log_interval = 20
    config.trainer.seed = 1234567891
    config.optimizer.name = "adamw"
    config.optimizer.lr = 1e-4
    config.optimizer.weight_decay = 0.05   # conv / dense kernels only
    config.optimizer.weight_decay_exclude = ()
    config.optimizer.epsilon = 1e-8
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup_epochs = 5
    config.optimizer.min_lr_ratio = 1e-8 / config.optimizer.lr
    config.optimizer.clip_norm = 1.0
    config.ema.enabled = True
    config.ema.decay = 0.999
    config.ema.evaluate_with_ema = True
    return config
