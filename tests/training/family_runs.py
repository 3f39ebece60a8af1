"""Tiny launcher runs of every family's synthetic recipe, for fault and
scale tests that start `python -m experiments.train` as processes.

`prepare(family, root)` writes the family's synthetic data with the same
commands as the demos (`tests/learning/recipes.py`: generator, then
converter), fewer and smaller videos, and returns the launcher arguments of
its synthetic config (`experiments/configs/<family>_synthetic.py`) shrunk
by `--config.` overrides to a few steps of a small model, with
`runtime.deterministic=True` and a checkpoint every `CHECKPOINT_INTERVAL`
steps. The recipes' random parts (dropout, stochastic depth, augmentation,
AdaFocus' patch and policy noise) stay on: an exact resume must restore
their state too.

The caller adds `--workdir` and, if it wants another strategy than the
recipe's MirroredStrategy over two logical CPUs, `--strategy`.

AdaFocus V1 runs stage 0 (`adafocus_v1_synthetic.py:stage0`: glance and
focus trunks trained from scratch as frame classifiers), the one stage
that starts without a previous stage's run.

Example:

```python
run = family_runs.prepare("carl", tmp_path / "carl")
helpers.run_launcher([*run["args"], f"--workdir={tmp_path / 'w'}"],
                     tmp_path / "carl.log")
```
"""

import json
import pathlib

from tests.learning import recipes

FAMILIES = ("actionformer", "actionvlad", "action_transformer", "carl",
            "adafocus_v1", "adafocus_v2")
CHECKPOINT_INTERVAL = 2
# At least this many steps, in whole epochs: room for several kills, and
# resumes that cross epoch boundaries.
MIN_STEPS = 12
CONFIGS = {
    "actionformer": recipes.ACTIONFORMER_CONFIG,
    "actionvlad": recipes.ACTIONVLAD_CONFIG.format("rgb"),
    "action_transformer": recipes.ACTION_TRANSFORMER_CONFIG + ":tx",
    "carl": recipes.CARL_CONFIG,
    "adafocus_v1": recipes.ADAFOCUS_V1_CONFIG + ":stage0",
    "adafocus_v2": recipes.ADAFOCUS_CONFIG,
}
# The converted training subset's name in `dataset_info.json`.
TRAIN_SUBSETS = {"actionformer": "training", "actionvlad": "train",
                 "action_transformer": "train", "carl": "train",
                 "adafocus_v1": "train", "adafocus_v2": "train"}
GLOBAL_BATCH = {"actionformer": 2, "actionvlad": 4,
                "action_transformer": 2, "carl": 2, "adafocus_v1": 4,
                "adafocus_v2": 4}
# Small models: the widths of the families' task tests.
MODEL_OVERRIDES = {
    "actionformer": {
        "task.model.embed_dim": 16, "task.model.head_dim": 16,
        "task.model.arch": (2, 1, 2), "task.model.window_size": (9, 9, 9),
        "task.model.regression_range": ((0, 8), (8, 32), (32, 10000)),
        "optimizer.warmup_epochs": 1},
    "actionvlad": {
        "task.frames.num_steps": 3, "task.frames.crop_size": (40, 56),
        "task.model.filters": (8, 16), "task.model.num_clusters": 4},
    "action_transformer": {
        "task.clips.num_frames": 8, "task.clips.image_size": (64, 64),
        "task.model.trunk_width_multiplier": 0.0625,
        "task.model.num_proposals": 8, "task.model.rpn_filters": 8,
        "task.model.key_dim": 8, "task.model.ffn_units": 8,
        "task.model.num_layers": 1,
        "task.model.query_reduction_channels": 4,
        "task.losses.rpn_minibatch_size": 16,
        "task.losses.second_stage_batch_size": 4,
        "optimizer.warmup_steps": 2},
    "carl": {
        "task.views.num_frames": 8, "task.views.image_size": (32, 32),
        "task.model.small_filters": (8, 16), "task.model.fc_units": (16,),
        "task.model.hidden_size": 16, "task.model.num_heads": 2,
        "task.model.ffn_units": 16, "task.model.num_layers": 1,
        "task.model.embedding_size": 8,
        "task.model.projection_hidden_units": 8},
}
# Both AdaFocus versions share these keys.
MODEL_OVERRIDES["adafocus_v1"] = MODEL_OVERRIDES["adafocus_v2"] = {
    "task.frames.num_steps": 3, "task.model.glance_size": (12, 12),
    "task.model.small_filters": (4, 8), "task.model.policy_hidden_units": 8,
    "task.model.policy_conv_filters": 4,
    "task.model.classifier_hidden_units": 8}


def _records(family, root):
    """Writes and converts the family's synthetic data; returns records."""
    if family == "actionformer":
        return recipes.actionformer_records(root, num_videos=10)
    if family == "actionvlad":
        return recipes.actionvlad_records(root, num_videos=16)
    if family == "action_transformer":
        return recipes.ava_records(root, num_videos=3, clip_frames=8)
    if family == "carl":
        return recipes.carl_records(root, num_videos=8)
    return recipes.adafocus_records(root, num_videos=12)[1]


def _flag(key, value):
    # Tuples as the launcher parses them: `(8,16)`, nested `((0,8),(8,32))`.
    text = repr(value).replace(" ", "")
    return f"--config.{key}={text}"


def prepare(family, root):
    """Builds tiny converted records for `family` and its launcher args.

    The records are written once: a second call with the same `root`
    reuses them.

    Args:
        family: one of `FAMILIES`.
        root: working folder (`pathlib.Path`); gets `raw/` and `records/`.

    Returns:
        Dict: "args": arguments of `python -m experiments.train` (the
        synthetic config, data folder, small model, the fewest whole
        epochs of at least `MIN_STEPS` steps,
        `runtime.deterministic=True`, checkpoint interval) without
        `--workdir` and `--strategy`; "total_steps"; "checkpoint_interval";
        "global_batch"; "train_examples" (records in the training subset,
        one epoch); "steps_per_epoch"; "records" (the converted folder).

    Raises:
        ValueError: unknown `family`.

    Example:

    >>> run = prepare("actionformer", tmp_path / "af")
    >>> run["total_steps"], run["train_examples"]
    (12, 8)
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of "
                         f"{', '.join(FAMILIES)}")
    root = pathlib.Path(root)
    records = root / "records"
    if not (records / "dataset_info.json").exists():
        records = _records(family, root)
    info = json.loads((records / "dataset_info.json").read_text())
    train_examples = info["subsets"][TRAIN_SUBSETS[family]]["num_records"]
    global_batch = GLOBAL_BATCH[family]
    steps_per_epoch = train_examples // global_batch
    if steps_per_epoch < 2:
        raise ValueError(f"{family}: {train_examples} training records in "
                         f"{records} make {steps_per_epoch} step(s) of "
                         f"{global_batch}; expected at least 2")
    epochs = -(-MIN_STEPS // steps_per_epoch)
    overrides = {
        "task.data_dir": str(records),
        "trainer.train_steps": 0, "trainer.epochs": epochs,
        # Given, not counted: saves a pass over the data per start.
        "trainer.steps_per_epoch": steps_per_epoch,
        "trainer.global_batch_size": global_batch,
        "trainer.eval_batch_size": global_batch,
        "trainer.checkpoint_interval": CHECKPOINT_INTERVAL,
        "trainer.log_interval": 1,
        "runtime.deterministic": True,
        **MODEL_OVERRIDES[family]}
    args = [f"--config={CONFIGS[family]}", "--mode=train"]
    args += [_flag(k, v) if isinstance(v, tuple) else f"--config.{k}={v}"
             for k, v in overrides.items()]
    return {"args": args, "total_steps": epochs * steps_per_epoch,
            "checkpoint_interval": CHECKPOINT_INTERVAL,
            "global_batch": global_batch, "train_examples": train_examples,
            "steps_per_epoch": steps_per_epoch, "records": records}
