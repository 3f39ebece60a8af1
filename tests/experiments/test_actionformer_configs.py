"""The `actionformer_*` recipes build the authors' networks.

Each config, with its dataset's feature dimension and class count, must
give the parameter count measured on the authors' code (their
`make_meta_arch` on each of their `configs/*.yaml`), which pins architecture, widths, heads, windows and levels.
"""

import importlib

import keras
import numpy as np
import pytest

from experiments.configs import actionformer_ego4d
from tfaction.models.actionformer.model import ActionFormer

# config (module[:arg]) -> (input_dim, num_classes, params [measured], tol)
CASES = {
    "actionformer_thumos_i3d": (2048, 20, 29_251_612, 0),
    "actionformer_anet_tsp": (512, 1, 6.94e6, 0.005e6),
    # not measured: the TSP count plus the wider first embedding
    # convolution, 3 x (2048 - 512) x 256 = 1,179,648 more weights
    "actionformer_anet_i3d": (2048, 1, 8.12e6, 0.005e6),
    "actionformer_epic_slowfast_verb": (2304, 97, 29.76e6, 0.005e6),
    "actionformer_epic_slowfast_noun": (2304, 300, 30.08e6, 0.005e6),
    "actionformer_ego4d:omnivore_egovlp": (1792, 110, 77.16e6, 0.005e6),
    "actionformer_ego4d:slowfast": (2304, 110, 32.9e6, 0.05e6),
    "actionformer_ego4d:omnivore": (1536, 110, 34.9e6, 0.05e6),
    "actionformer_ego4d:egovlp": (256, 110, 18.7e6, 0.05e6),
    "actionformer_ego4d:slowfast_egovlp": (2560, 110, 78.9e6, 0.05e6),
    # per-feature projections; count measured with the authors' code
    # (make_meta_arch on configs/ego4d_slowfast_omnivore_egovlp.yaml)
    "actionformer_ego4d:slowfast_omnivore_egovlp": (4096, 110, 134_048_888,
                                                    0),
}


def _config(name):
    module, _, arg = name.partition(":")
    mod = importlib.import_module(f"experiments.configs.{module}")
    return mod.get_config(arg) if arg else mod.get_config()


@pytest.mark.parametrize("name", sorted(CASES))
def test_parameter_count_matches_reference(name):
    input_dim, num_classes, params, tol = CASES[name]
    task = _config(name).task
    model = ActionFormer(input_dim=input_dim, num_classes=num_classes,
                         max_seq_len=task.max_seq_len, **task.model)
    if task.model.input_splits:
        assert sum(task.model.input_splits) == input_dim
    assert abs(model.count_params() - params) <= tol, model.count_params()
    assert model.num_levels == len(task.model.window_size)
    assert len(task.model.regression_range) == model.num_levels
    assert task.max_seq_len % model.max_div_factor == 0
    keras.backend.clear_session()


def test_unknown_ego4d_feature_set_names_the_choices():
    with pytest.raises(Exception, match="omnivore_egovlp"):
        actionformer_ego4d.get_config("slowfast_omnivore")


def test_recipe_hyperparameters():
    thumos = _config("actionformer_thumos_i3d")
    assert (thumos.optimizer.lr, thumos.optimizer.weight_decay,
            thumos.optimizer.warmup_epochs, thumos.trainer.epochs,
            thumos.optimizer.clip_norm, thumos.ema.decay,
            thumos.trainer.global_batch_size) == (1e-4, 0.05, 5, 35, 1.0,
                                                  0.999, 2)
    assert thumos.optimizer.lr * thumos.optimizer.min_lr_ratio == \
        pytest.approx(1e-8)
    anet = _config("actionformer_anet_tsp")
    assert (anet.trainer.epochs, anet.trainer.global_batch_size,
            anet.task.loss.loss_weight, anet.task.loss.label_smoothing,
            anet.task.inference.multiclass_nms) == (15, 16, 2.0, 0.1, False)
    # the ActivityNet dataset's rules
    assert (anet.task.resample_length, anet.task.class_agnostic,
            anet.task.remove_duplicate_segments,
            anet.task.clip_segments_to_features) == (192, True, True, True)
    assert not thumos.task.remove_duplicate_segments
    assert not thumos.task.clip_segments_to_features


def test_anet_i3d_is_the_tsp_recipe_on_i3d_data():
    tsp = _config("actionformer_anet_tsp").to_dict()
    i3d = _config("actionformer_anet_i3d").to_dict()
    assert i3d["task"].pop("data_dir") == "data/anet_i3d"
    assert i3d["task"]["inference"].pop("ext_score_file") == \
        "data/anet_i3d/cuhk_val_simp_share.json"
    del tsp["task"]["data_dir"], tsp["task"]["inference"]["ext_score_file"]
    assert i3d == tsp


# recipe -> the authors' tIoU grid (np.linspace arguments)
GRIDS = {
    "actionformer_thumos_i3d": (0.3, 0.7, 5),
    "actionformer_anet_tsp": (0.5, 0.95, 10),
    "actionformer_anet_i3d": (0.5, 0.95, 10),
    "actionformer_epic_slowfast_verb": (0.1, 0.5, 5),
    "actionformer_epic_slowfast_noun": (0.1, 0.5, 5),
    "actionformer_ego4d:omnivore_egovlp": (0.1, 0.5, 5),
    "actionformer_ego4d:slowfast": (0.1, 0.5, 5),
}


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_recipes_evaluate_as_the_authors(name):
    evaluation = _config(name).task.evaluation
    # The very floats of np.linspace (e.g. 0.8999999999999999, not 0.9).
    assert list(evaluation.tiou_thresholds) == \
        np.linspace(*GRIDS[name]).tolist()
    assert evaluation.variant == "actionformer"
    ego4d = name.startswith("actionformer_ego4d")
    assert tuple(evaluation.recall_top_k) == ((1, 5) if ego4d else ())


def test_epic_noun_empty_classes_come_from_the_data():
    """The authors' `head_empty_cls` are the noun ids without annotation
    (their dataset's `find_empty_cls`); the task adds the converter's
    placeholder ids, so the recipe names none."""
    noun = _config("actionformer_epic_slowfast_noun").task
    assert noun.model.empty_classes in ((), None)
    assert noun.loss.label_smoothing == 0.1
