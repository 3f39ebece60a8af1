"""Every `actionformer_*` recipe builds its serving module.

For each recipe of `experiments/configs`, `build_export_module` gets a
stand-in task (the recipe's task section, made-up classes and feature
settings, a CUHK-style score file in place of `inference.ext_score_file`)
and the recipe's model (as the task builds it). Nothing is refused: the
resampling recipes resample in the graph, the class-agnostic ones add
`serving_with_class_scores`, and every module carries its class list.
Tracing and serving are tested on tiny models elsewhere
(`test_actionformer_resampled_export.py`, `test_actionformer_export.py`).
"""

import importlib
import json
import pathlib
import types

import pytest

from tfaction.models.actionformer.model import ActionFormer
from tfaction.serving import build_export_module
from tfaction.serving.actionformer import CLASS_SCORES_SIGNATURE
from tfaction.tasks import actionformer as af_task

RECIPES = sorted(p.stem for p in (pathlib.Path(__file__).parents[2] /
                                  "experiments" / "configs").glob(
                                      "actionformer_*.py"))
NUM_CLASSES = 7


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_builds_its_export_module(recipe, tmp_path):
    config = importlib.import_module(
        f"experiments.configs.{recipe}").get_config().task
    names = [f"class_{k}" for k in range(NUM_CLASSES)]
    if config.inference.ext_score_file:
        ext = tmp_path / "scores.json"
        ext.write_text(json.dumps({"results": {"v": [0.5] * NUM_CLASSES},
                                   "class": names[::-1]}))
        config.inference.ext_score_file = str(ext)
    splits = config.model.input_splits
    task = types.SimpleNamespace(
        config=config, class_names=names,
        num_classes=1 if config.class_agnostic else NUM_CLASSES,
        info={"feature_dim": sum(splits) if splits else 32,
              "feature_stride": 16, "feature_window": 16})
    model = ActionFormer(**af_task.ActionFormerTask.model_kwargs(task))
    module = build_export_module(task, model)
    fusion = bool(config.class_agnostic or config.inference.ext_score_file)
    assert set(module.signature_definitions()) == (
        {"serving_default", CLASS_SCORES_SIGNATURE} if fusion
        else {"serving_default"})
    assert module.resample_length == config.resample_length
    assert module.class_names == (names[::-1] if config.inference.
                                  ext_score_file else names)
    assert [name for name, _ in module.warmup_requests()] == list(
        module.signature_definitions())


def test_multiclass_model_with_another_score_class_order_is_refused(
        tmp_path):
    from experiments.configs import actionformer_thumos_i3d
    from tfaction import errors

    config = actionformer_thumos_i3d.get_config().task
    names = [f"class_{k}" for k in range(NUM_CLASSES)]
    ext = tmp_path / "scores.json"
    ext.write_text(json.dumps({"results": {"v": [0.5] * NUM_CLASSES},
                               "class": names[::-1]}))
    config.inference.ext_score_file = str(ext)
    task = types.SimpleNamespace(
        config=config, class_names=names, num_classes=NUM_CLASSES,
        info={"feature_dim": 32, "feature_stride": 4, "feature_window": 16})
    model = ActionFormer(**af_task.ActionFormerTask.model_kwargs(task))
    with pytest.raises(errors.ConfigError, match="one class list"):
        build_export_module(task, model)
