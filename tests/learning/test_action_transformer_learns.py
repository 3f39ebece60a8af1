"""The Video Action Transformer's synthetic recipe: Tx beats I3D on context.

`experiments/configs/action_transformer_synthetic.py` (`:tx` and `:i3d`,
MirroredStrategy over two logical CPUs) on 240 synthetic AVA-layout videos
(`python -m tfaction.data.synthetic --kind=ava --num_videos=240`: 160
train, 80 val; 576 train and 288 val keyframes after the excluded ones, 2-3
people each), trained for STEPS steps instead of the recipe's 1,000 (which
`make demo-action-transformer` keeps to stay under ten minutes). Actions
1-3 (`stand`, `walk`, `jump`) are motion seen in the person's own box; 4
(`talk to`) and 5 (`watch (the lamp)`) are defined by context elsewhere in
the frame (another person's facing, a blinking lamp), which a head
attending to the whole frame (Tx) can look at and a head pooling the
person's tube (I3D) can only reach through the trunk's receptive field.

Each head is trained, then scored with the official frame-AP@0.5 on the
ground-truth boxes of the validation keyframes (`task.evaluation.boxes=
groundtruth`, the paper's "GT boxes" setting, which isolates the head from
the detector) and, for the record, on its own detections. With
uninformative scores on ground-truth boxes each class's AP is its frequency
among the validation people: 0.334 / 0.322 / 0.344 / 0.545 / 0.255, mAP
0.360 (`CHANCE_MAP`).

Measured (2026-12-05, 2-core AMD EPYC, TensorFlow 2.17.1; the runs are
deterministic: the Tx head's 1,000-step detections scored the same to 4
decimals in three runs), GT-box frame-AP stand / walk / jump / talk to /
watch (the lamp), mAP:

- Tx:  0.971 / 0.965 / 0.983 / 0.558 / 0.593, mAP 0.814;
- I3D: 0.984 / 0.981 / 0.986 / 0.555 / 0.280, mAP 0.757.

Both heads learn the motions (the I3D head slightly better: its tube keeps
every frame of the box). Only the Tx head learns `watch (the lamp)`
(0.593 against the I3D head's 0.280, chance 0.255): the lamp is elsewhere
in the frame. Neither learns `talk to` in this budget (its rule relates
another person's facing to the relative positions; both stay at chance). Marked `slow` (two
trainings of 3,000 steps, ~20 min on 2 cores): `make test-slow` runs it,
`make test` does not.
"""

import pytest

from tests.learning import recipes

NUM_VIDEOS = 240
SEED = 0
STEPS = 3000
HEADS = ("tx", "i3d")
OVERRIDES = (f"--config.trainer.train_steps={STEPS}",
             "--config.trainer.checkpoint_interval=1000")
CHANCE_MAP = 0.360
CONTEXT = "watch (the lamp)"
# GT-box frame-AP per head and class (README's figures), each asserted to
# be at least the measured value less MARGIN; the Tx head's `watch (the
# lamp)` AP must beat the I3D head's by at least CONTEXT_GAIN.
MEASURED = {
    "tx": {"stand": 0.971, "walk": 0.965, "jump": 0.983, "talk to": 0.558,
           "watch (the lamp)": 0.593, "mAP": 0.814},
    "i3d": {"stand": 0.984, "walk": 0.981, "jump": 0.986, "talk to": 0.555,
            "watch (the lamp)": 0.280, "mAP": 0.757},
}
MARGIN = 0.05
CONTEXT_GAIN = 0.10


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_tx_head_beats_i3d_head_on_context_actions(tmp_path):
    maps = recipes.action_transformer_maps(
        tmp_path, NUM_VIDEOS, HEADS, OVERRIDES, seed=SEED, detected=False,
        timeout=1800)
    gt = {head: maps[head]["groundtruth"] for head in HEADS}
    for head in HEADS:
        assert gt[head]["mAP"] >= CHANCE_MAP + 0.3, (head, maps)
        for name, ap in MEASURED[head].items():
            got = gt[head]["mAP"] if name == "mAP" else \
                gt[head]["ap_per_class"][name]
            assert got >= ap - MARGIN, (head, name, maps)
    assert gt["tx"]["ap_per_class"][CONTEXT] >= \
        gt["i3d"]["ap_per_class"][CONTEXT] + CONTEXT_GAIN, maps
