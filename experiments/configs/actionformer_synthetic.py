"""ActionFormer on the synthetic localisation data (`make demo`).

A small network (128 channels) trained on the 48 training videos of
`python -m tfaction.data.synthetic --kind=temporal_localization`, converted
with `--feature_stride=4 --feature_window=16`; evaluated on the 12 held-out
videos at tIoU 0.3:0.1:0.7. Minutes on two CPU cores.
"""

from tfaction.tasks import actionformer_config


def get_config():
    """Returns the config (`actionformer_config` describes every key)."""
    config = actionformer_config.experiment_config()
    task = config.task
    task.data_dir = "runs/demo/records"
    task.max_seq_len = 256
    task.model.embed_dim = task.model.head_dim = 128
    task.model.window_size = (9,) * 6
    config.trainer.epochs = 45
    config.trainer.global_batch_size = 4
    config.trainer.checkpoint_interval = 100
    config.trainer.log_interval = 10
    config.optimizer.lr = 1e-3
    config.optimizer.min_lr_ratio = 1e-8 / config.optimizer.lr
    config.optimizer.warmup_epochs = 2
    config.ema.decay = 0.99
    # MirroredStrategy over two replicas even on a CPU-only machine.
    config.runtime.strategy = "mirrored"
    config.runtime.logical_cpus = 2
    return config
