"""AdaFocus (V1) on the synthetic "find the small patch" data, CPU-sized.

The data of `adafocus_v2_synthetic` (`python -m tfaction.data.synthetic
--kind=adafocus`, converted with `--format=actnet_frames`): the class is
the 3 x 3 cell pattern of one small glyph on a red (even labels) or orange
(odd labels) plate among distractor glyphs, in 97 x 97 frames. The glance
sees the frames resized to 24 x 24 with V1's "nearest" resize, which picks
the pixels `(4 i, 4 j)`: the glyphs' plates and grid lines, never a cell,
so it finds the target and its plate colour but cannot read the pattern.
The focus reads it on a 37 x 37 patch; the 7 x 7 grid of patch origins
(steps of 10 pixels) always has a cell whose patch holds the whole glyph.

`--config=...adafocus_v1_synthetic.py:stage<k>`, k = 0 ... 3, each run
from the previous one's workdir (`--config.task.init_checkpoint`): the
AdaFocus V1 stages and losses with small trunks, MirroredStrategy over two
replicas even on a CPU-only machine, and these CPU-sized deviations from
the paper's hyperparameters (`adafocus_v1_actnet`):

* Adam at a constant rate (stage 3: cosine), no L2 decay, every group at
  the base rate, not SGD with per-group multipliers: the small trunks have
  no batch norm and start from scratch (stage 0 trains both, as there are
  no pre-trained ones for this data), and under SGD (lr 0.02 or 0.05,
  momentum 0.9, up to 1,120 steps) the focus never left the plateau where
  the classifier knows only the plate colour (training loss ln 2);
* stage 0 matters: with its focus pre-trained as a frame classifier on
  full frames (82 % val top-1 with the focus alone), stage 1's loss falls
  below ln 2 within its first 60 steps; from a glance-only stage 0
  (random focus) it took ~1,000 steps at lr 2e-3 and did not happen in
  1,120 steps at 4e-3 (8 frames, batch 16);
* P = 37 (not 25): a uniformly random 25 x 25 patch holds the whole
  glyph in 2.8 % of the frames, too rarely for stage 1 to learn from; a
  37 x 37 one in 10.3 %; a 49 x 49 one in 22.8 %, and then random
  patches alone were right on 96 % of the val videos (8 frames), which
  leaves PPO nothing to show;
* 4 frames per video and batch 32 (the frames per step of 8 x 16): fewer
  frames give random patches fewer chances at the glyph (at least one
  whole view in 35 % of the videos with 4 frames, 58 % with 8), so the
  policy's lead over them is wider (P = 37: 13.7 points with 4 frames;
  9.0 with 8 frames in an earlier run);
* dropout 0.2 (not 0.8), shorter schedules, PPO at Adam 1e-3 (not 3e-4).

Measured: `tests/learning/test_adafocus_v1_learns.py` (its docstring has
the table).
"""

from tfaction.tasks import adafocus_config

# Per stage: epochs, learning rate, schedule.
_SCHEDULE = {0: (16, 2e-3, "constant"), 1: (30, 2e-3, "constant"),
             2: (16, 1e-3, "constant"), 3: (8, 5e-4, "cosine")}


def get_config(stage="stage0"):
    """Returns the config of `stage` ("stage0" ... "stage3")."""
    stage = adafocus_config.parse_v1_stage(stage)
    config = adafocus_config.v1_experiment_config("actnet", stage, 37)
    task = config.task
    task.data_dir = "runs/adafocus_v1_demo/records"
    frames = task.frames
    frames.num_steps = 4
    frames.resize = None
    frames.crop_size = (97, 97)
    frames.train_crop = "none"
    frames.test_crop = "none"
    frames.flip = False
    frames.shuffle_buffer_size = 512
    model = task.model
    model.glance_arch = "small"
    model.glance_size = (24, 24)
    model.focus_arch = "small"
    model.small_filters = (16, 32, 64)
    model.policy_hidden_units = 64
    model.policy_conv_filters = 16
    model.classifier_hidden_units = 128
    model.dropout = 0.2
    task.train_from_scratch = stage == 0
    task.lr_multipliers.focus = 1.0  # Adam: every multiplier 1
    task.weight_decay = 0.0
    opt = config.optimizer
    config.trainer.epochs, opt.lr, opt.schedule = _SCHEDULE[stage]
    opt.name = "adam"
    opt.epsilon = 1e-8  # PyTorch's Adam default, as the PPO stage
    config.trainer.global_batch_size = 32
    config.trainer.eval_batch_size = 32
    config.trainer.checkpoint_interval = 500
    config.trainer.log_interval = 20
    config.trainer.seed = 0
    config.runtime.strategy = "mirrored"
    config.runtime.logical_cpus = 2
    return config
