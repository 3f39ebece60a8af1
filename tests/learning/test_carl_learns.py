"""CARL's synthetic recipe learns frame-wise phase representations (bounded).

`make demo-carl`'s recipe (`experiments/configs/carl_synthetic.py`, as
committed: MirroredStrategy over two logical CPUs, 40 epochs = 240 steps of
4 videos x 2 views x 16 frames of 64x64 at learning rate 3e-3, small conv
trunk, 2-layer transformer, 32-d embeddings) on the default synthetic data
(`python -m tfaction.data.synthetic --kind=tcc`: 32 videos of two actions
with 4 and 3 phases, 24 train / 8 val, whose phase timing varies so much
between videos -- Dirichlet(0.5) phase shares, idle stretches at both
ends -- that a frame's relative time says little about its phase), trained
with `python -m experiments.train --mode=train_and_eval`, which embeds
every frame of both subsets and writes `embeddings.npz`; the embeddings are
rescored with `python -m experiments.evaluate --metric=framewise
--variant=carl` (means over the two actions).

The same network before training is measured twice, through the same
commands at learning rate 1e-30 (the trainer needs a positive rate; an
Adam step of 1e-30 changes no float32 weight above 1e-22), so its weights
stay as initialised:

* "untrained, BN estimated": the recipe's 240 steps at that rate, so the
  batch-norm moving statistics (momentum 0.9) become the training data's
  while nothing else moves: the random network as it computes on this data;
* "untrained, BN initial": one step, so the moving statistics stay close
  to their initial values (mean 0, variance 1, one 10 % update).

CARL's evaluation embeds a whole video with its positions interpolated
over the training length (`InterpolatedPositionEncoding`), so every
network's embeddings carry each frame's relative time t / (n - 1). With
the initial statistics the random trunk's features are tiny and the
embeddings are almost nothing else (a degree-8 polynomial in t explains
99 % of their variance): a code of relative time, whose nearest-neighbour
alignment of two videos is monotone whatever they show, so its Kendall's
tau is near 1 on any data. The last column scores that one number alone as
a 1-d embedding of the same frames.

Measured (2026-12-06, 2-core AMD EPYC shared with other jobs, TensorFlow
2.17.1; this test's commands and `make demo-carl` gave the same trained
figures to 4 decimals), val, mean over the actions:

| | trained | untrained, BN estimated | untrained, BN initial | relative time |
|---|---|---|---|---|
| Kendall's tau (stride 2) | 0.992 | 0.928 | 0.993 | 0.994 |
| phase classification, all 24 train videos | 0.695 | 0.603 | 0.585 | 0.593 |
| phase classification, 50 % of the train videos | 0.691 | 0.606 | 0.620 | 0.632 |
| phase classification, 10 % (1 video per action) | 0.500 | 0.311 | 0.359 | 0.433 |
| few-shot phase classification, 1 / 2 / 4 labelled videos | 0.563 / 0.621 / 0.654 | 0.371 / 0.415 / 0.539 | 0.386 / 0.457 / 0.564 | 0.444 / 0.534 / 0.579 |
| phase progression R^2, all train videos | 0.428 | 0.537 | 0.314 | 0.845 |
| retrieval AP@5 (stride 2) | 0.666 | 0.696 | 0.680 | 0.682 |

Training beats the random network as it computes on this data (BN
estimated) on Kendall's tau (+0.064) and on phase classification at every
fraction (+0.092 / +0.085 / +0.189) and one-shot (+0.192); all asserted.
Against the time code (BN initial) it wins phase classification at every
fraction (+0.110 / +0.071 / +0.141) and one-shot (+0.177), asserted; tau
cannot rise above a time code's, and the trained network keeps it (0.992
against 0.993, asserted not more than 0.01 below). Phase progression and
retrieval are not asserted (relative time is nearly linear in the
progression targets: the time code alone scores 0.845). The gains depend
on the data seed: on the seed-1 data the recipe scored 0.666 against 0.665
(BN initial) with all labels, while the one-video and few-shot gains held
(+0.128, +0.181). The test uses seed 0, as `make demo-carl` does. Marked
`slow` (three trainings: 16 min 21 s on 2 cores shared with other jobs,
load average 4-7): `make test-slow` runs it, `make test` does not.
"""

import pytest

from tests.learning import recipes

# The same network before training (module docstring): weights as
# initialised, batch-norm statistics estimated by the recipe's steps or
# left at their initial values.
UNTRAINED_BN_ESTIMATED = ("--config.optimizer.lr=1e-30",)
UNTRAINED_BN_INITIAL = ("--config.trainer.train_steps=1",
                        "--config.optimizer.lr=1e-30")
TAU = "kendalls_tau_val_stride2"
PHASE = "phase_classification_logreg_val_acc"
FEW_SHOT_1 = "few_shot_logreg_val_acc_mean_over_episodes/1"
FRACTIONS = ("1.0", "0.5", "0.1")
# Floors: the measured trained figures (table above, 2026-12-06) less the
# margins.
MEASURED_TAU, TAU_MARGIN = 0.992, 0.02
MEASURED_PHASE, PHASE_MARGIN = 0.695, 0.05
# Least gains over each untrained network (2026-12-06), about half the
# measured ones: tau, phase classification at fractions 1.0 / 0.5 / 0.1,
# and few-shot classification with one labelled video. Against the BN-
# estimated network measured +0.064; +0.092 / +0.085 / +0.189; +0.192.
# Against the BN-initial time code measured -0.001 (tau may not fall more
# than 0.01); +0.110 / +0.071 / +0.141; +0.177.
MIN_GAINS = {
    "untrained_bn_estimated": {TAU: 0.03, "1.0": 0.03, "0.5": 0.03,
                               "0.1": 0.08, FEW_SHOT_1: 0.08},
    "untrained_bn_initial": {TAU: -0.01, "1.0": 0.05, "0.5": 0.03,
                             "0.1": 0.08, FEW_SHOT_1: 0.10},
}


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_carl_recipe_reaches_floors_and_beats_untrained(tmp_path):
    records = recipes.carl_records(tmp_path)
    runs = {"trained": recipes.carl_framewise(tmp_path, records, "trained"),
            "untrained_bn_estimated": recipes.carl_framewise(
                tmp_path, records, "untrained_bn_estimated",
                UNTRAINED_BN_ESTIMATED),
            "untrained_bn_initial": recipes.carl_framewise(
                tmp_path, records, "untrained_bn_initial",
                UNTRAINED_BN_INITIAL)}
    scores = {name: run["evaluate"]["mean"] for name, run in runs.items()}
    figures = {name: (s[TAU], s[PHASE], runs[name]["eval_metrics"][
        FEW_SHOT_1]) for name, s in scores.items()}
    # The written embeddings rescore to the run's own evaluation.
    for name, run in runs.items():
        own, mean = run["eval_metrics"], scores[name]
        assert own["num_val_videos"] == 8 and own["num_train_videos"] == 24
        assert abs(own[TAU] - mean[TAU]) < 1e-9, (own[TAU], mean[TAU])
        for fraction in ("0.5", "1.0"):
            assert abs(own[f"{PHASE}/{fraction}"] - mean[PHASE][fraction]
                       ) < 1e-9, fraction
    got = scores["trained"]
    assert got[TAU] >= MEASURED_TAU - TAU_MARGIN, figures
    assert got[PHASE]["1.0"] >= MEASURED_PHASE - PHASE_MARGIN, figures
    # Training beats the same network before training.
    for name, least in MIN_GAINS.items():
        before = scores[name]
        assert got[TAU] - before[TAU] >= least[TAU], (name, figures)
        for fraction in FRACTIONS:
            gain = got[PHASE][fraction] - before[PHASE][fraction]
            assert gain >= least[fraction], (name, fraction, gain, figures)
        one_shot = (runs["trained"]["eval_metrics"][FEW_SHOT_1]
                    - runs[name]["eval_metrics"][FEW_SHOT_1])
        assert one_shot >= least[FEW_SHOT_1], (name, one_shot, figures)
