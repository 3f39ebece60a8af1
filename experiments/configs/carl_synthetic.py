"""CARL on the synthetic phase videos (CPU-sized).

```
python -m tfaction.data.synthetic --kind=tcc --out_dir=runs/carl_demo/raw
python -m tfaction.data.convert --format=tcc \
    --input='runs/carl_demo/raw/*.tfrecord' \
    --output_dir=runs/carl_demo/records
python -m experiments.train --config=experiments/configs/carl_synthetic.py \
    --workdir=runs/carl_demo/run --mode=train_and_eval
```

writes and converts TCC-layout TFRecords of two actions (a tool going
through 4 or 3 phases whose timing differs strongly between videos, under
appearance nuisance), then trains and evaluates: 240 steps in about 3-4
minutes on 2 CPU cores, after which one run on the seed-0 data scored
Kendall's tau 0.99, phase classification 0.70 (the same network untrained
0.59, relative time alone 0.59; chance about 0.3) and progression R^2 0.43
on val (means over the two actions; `tests/learning/test_carl_learns.py`
has the whole comparison). 64x64 frames, views of 16 frames, a small conv
trunk and a 2-layer transformer of width 64 train from scratch on a CPU
with the paper's loss, augmentations and per-epoch cosine schedule (a
larger rate, 3e-3: nothing is pretrained; 1e-3 scored lower on tau, phase
classification and progression). Evaluation is per action (phases differ
between actions), with few-shot classification added.
"""

from tfaction.tasks import carl_config


def get_config():
    """Returns the experiment config."""
    config = carl_config.experiment_config("pouring")
    task = config.task
    task.data_dir = "runs/carl_demo/records"
    task.train_from_scratch = True     # no pretrained trunk for this data
    views = task.views
    views.num_frames = 16
    views.image_size = (64, 64)
    m = task.model
    m.trunk = "small"
    m.small_filters = (16, 32, 64)
    m.fc_units = (64, 64)
    m.hidden_size = 64
    m.num_heads = 4
    m.ffn_units = 128
    m.num_layers = 2
    m.embedding_size = 32
    m.projection_hidden_units = 32
    ev = task.evaluation
    ev.protocols = ("framewise", "few_shot")
    ev.per_action = True
    ev.fractions = (0.5, 1.0)
    ev.kendalls_tau_stride = 2
    ev.retrieval_ks = (5, 10)
    ev.few_shot_num_labeled = (1, 2, 4)
    ev.few_shot_num_episodes = 10
    trainer = config.trainer
    trainer.epochs = 40
    trainer.global_batch_size = 4
    trainer.eval_batch_size = 2
    trainer.eval_interval = 0
    trainer.checkpoint_interval = 100
    trainer.log_interval = 10
    config.optimizer.lr = 3e-3
    config.runtime.mixed_precision = "float32"
    # MirroredStrategy over two replicas even on a CPU-only machine.
    config.runtime.strategy = "mirrored"
    config.runtime.logical_cpus = 2
    return config
