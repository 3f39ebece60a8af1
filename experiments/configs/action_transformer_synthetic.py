"""Video Action Transformer on the synthetic AVA-layout data (CPU-sized).

`python -m tfaction.data.synthetic --kind=ava` writes AVA files whose
people have one motion action (stand / walk / jump, visible in their own
box over time) and context actions (`talk to`: another person faces them;
`watch (the lamp)`: a lamp elsewhere blinks and they face it) that a head
seeing only the box cannot tell. 112x112 videos, 16-frame clips; an I3D of
1/8 width trains from scratch in minutes on a CPU, with the paper's
detector and heads at reduced widths.

Training from scratch departs from the paper's fine-tuning in three
switches: the I3D batch norms train their statistics
(`model.trunk_batch_norm="batch"`; frozen identity statistics leave the
untrained trunk unnormalised and its features ~1e-3 in scale), the
ground-truth boxes join the proposals of the second-stage minibatch
(`losses.add_groundtruth_proposals`: positives before the RPN has learnt
to find people), and Adam instead of SGD. Random crops are off: a crop
that cuts out the lamp or the addressing person would keep a context
label whose evidence is gone.

`:tx` (default), `:i3d` or `:tx_i3d` picks the head.
"""

from tfaction.tasks import action_transformer_config

HEADS = ("tx", "i3d", "tx_i3d")


def get_config(head="tx"):
    """Returns the config for `head` ("tx", "i3d" or "tx_i3d")."""
    config = action_transformer_config.experiment_config(head or "tx")
    task = config.task
    task.data_dir = "runs/action_transformer_demo/records"
    task.train_from_scratch = True     # no I3D weights for this data
    clips = task.clips
    clips.num_frames = 16
    clips.image_size = (112, 112)
    clips.max_boxes = 4
    clips.crop = False
    m = task.model
    m.trunk_width_multiplier = 0.125
    m.trunk_batch_norm = "batch"
    m.num_proposals = 32
    m.rpn_filters = 64
    m.anchor_base_size = 28.0          # people are ~16 x 36 pixels
    m.anchor_scales = (0.5, 1.0, 2.0)
    m.key_dim = 32
    m.ffn_units = 32
    m.query_reduction_channels = 16
    m.dropout = 0.1
    losses = task.losses
    losses.rpn_minibatch_size = 64
    losses.second_stage_batch_size = 16
    losses.second_stage_positive_fraction = 0.5
    losses.add_groundtruth_proposals = True
    task.evaluation.max_detections = 8
    config.trainer.train_steps = 1000
    config.trainer.global_batch_size = 4
    config.trainer.eval_batch_size = 4
    config.trainer.checkpoint_interval = 500
    config.trainer.log_interval = 20
    opt = config.optimizer
    opt.name = "adam"
    opt.lr = 1e-3
    opt.warmup_steps = 40
    opt.warmup_start_ratio = 0.0
    opt.clip_norm = 10.0
    # MirroredStrategy over two replicas even on a CPU-only machine.
    config.runtime.strategy = "mirrored"
    config.runtime.logical_cpus = 2
    return config
