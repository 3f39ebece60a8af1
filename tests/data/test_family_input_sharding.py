"""Every family's training input, split over two workers: each example once.

Under `--strategy=multi_worker` the trainer builds each worker's training
input with `task.build_inputs(True, input_context=...)`, the context saying
"pipeline i of 2" (one CPU replica per worker). For every family, on small
synthetic records converted into one shard (every worker reads the file
and keeps every 2nd record) or two shards (each worker reads whole files;
`SHARDS` says which), one epoch read by both workers must hold every
training example exactly once (no duplicates, none missing), in the same
number of steps on both workers (the trainer takes the same number of
steps everywhere). (Uneven shards split by whole files give the workers
unequal epochs; the trainer then takes the smaller one and leaves the rest
of that epoch unread, as Model Garden does; the data here splits evenly.)
Examples are told apart by their `video_id` (plus the keyframe's
`timestamp_text` for the Action Transformer, whose examples are keyframes).
"""

import collections

import pytest
import tensorflow as tf

from experiments.configs import action_transformer_synthetic
from experiments.configs import actionformer_synthetic
from experiments.configs import actionvlad_synthetic_rgb
from experiments.configs import adafocus_v1_synthetic
from experiments.configs import adafocus_v2_synthetic
from experiments.configs import carl_synthetic
from tfaction import tasks
from tfaction.data.formats.activitynet_features import (
    convert_activitynet_features)
from tfaction.data.formats.adafocus_lists import convert_adafocus_lists
from tfaction.data.formats.ava import convert_ava
from tfaction.data.formats.hmdb51 import convert_hmdb51_frames
from tfaction.data.formats.tcc import convert_tcc
from tfaction.data.synthetic.adafocus import generate_adafocus
from tfaction.data.synthetic.ava import generate_ava
from tfaction.data.synthetic.tcc import generate_tcc
from tfaction.data.synthetic.temporal_localization import (
    generate_temporal_localization)
from tfaction.data.synthetic.video_classification import (
    generate_video_classification)

WORKERS = 2
GLOBAL_BATCH = 2  # one example per worker and step: no batch remainder
EPOCH = 1         # not the first: file order and shuffles depend on it
ID_KEYS = ("video_id", "timestamp_text")


# --- Synthetic records (small, with an even number of training examples) -----
def _actionformer(root, shards):
    raw = root / "raw"
    generate_temporal_localization(raw, num_videos=10, seed=3,
                                   feature_dim=16, min_steps=48,
                                   max_steps=64)
    convert_activitynet_features(raw / "annotations.json", raw / "features",
                                 root / "records", feature_stride=4,
                                 feature_window=16, num_shards=shards)
    config = actionformer_synthetic.get_config()
    return config


def _actionvlad(root, shards):
    raw = root / "raw"
    generate_video_classification(
        raw, num_videos=12, seed=2, classes=("red_pan", "yellow_spin"),
        height=48, width=48, min_frames=8, max_frames=8, test_fraction=0.34)
    lists = raw / "train_test_lists"
    convert_hmdb51_frames(
        [lists / "train_split1.txt", lists / "test_split1.txt"],
        raw / "frames", root / "records", modalities=("rgb",),
        class_list=raw / "actions.txt", num_shards=shards)
    config = actionvlad_synthetic_rgb.get_config("full")
    config.task.frames.num_steps = 2
    config.task.frames.crop_size = (32, 32)
    return config


def _action_transformer(root, shards):
    raw = root / "raw"
    generate_ava(raw, num_videos=3, seed=1, height=64, width=64, duration=4,
                 val_every=3)
    convert_ava([raw / "ava_train_v2.1.csv", raw / "ava_val_v2.1.csv"],
                raw / "videos", root / "records",
                label_map=raw / "ava_action_list_synthetic.pbtxt",
                clip_frames=4, num_shards=shards)
    config = action_transformer_synthetic.get_config("tx")
    config.task.clips.num_frames = 4
    config.task.clips.image_size = (32, 32)
    return config


def _carl(root, shards):
    raw = root / "raw"
    generate_tcc(raw, num_videos=8, seed=3, size=32, min_frames=12,
                 max_frames=14, val_every=2)
    convert_tcc(str(raw / "*.tfrecord"), str(root / "records"),
                num_shards=shards)
    config = carl_synthetic.get_config()
    config.task.views.num_frames = 4
    config.task.views.image_size = (32, 32)
    # Photometric augmentation maps each example to one example and only
    # costs graph-building time (~3 s here); the crop sampling stays on.
    views = config.task.views
    views.jitter_prob = views.grayscale_prob = views.flip_prob = 0.0
    return config


def _adafocus(get_config):
    def write(root, shards):
        raw = root / "raw"
        generate_adafocus(raw, num_videos=8, seed=3, num_classes=2,
                          height=37, width=37, num_distractors=1,
                          min_frames=4, max_frames=5)
        convert_adafocus_lists(
            [raw / "actnet_train_split.txt", raw / "actnet_val_split.txt"],
            raw / "frames", root / "records", dataset="actnet",
            class_list=raw / "classInd.txt", num_shards=shards)
        config = get_config()
        config.task.frames.num_steps = 2
        config.task.frames.crop_size = (37, 37)
        return config
    return write


FAMILIES = {
    "actionformer": _actionformer,
    "actionvlad": _actionvlad,
    "action_transformer": _action_transformer,
    "carl": _carl,
    # Stage 0 of V1 trains from scratch; later stages read the same input.
    "adafocus_v1": _adafocus(lambda: adafocus_v1_synthetic.get_config(
        "stage0")),
    "adafocus_v2": _adafocus(adafocus_v2_synthetic.get_config),
}


# --- Reading -----------------------------------------------------------------
def _example_ids(element):
    """The ids of one batch: tuples of the `ID_KEYS` values found in it."""
    found = {}

    def visit(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ID_KEYS:
                    found[key] = value.numpy().tolist()
                else:
                    visit(value)
        elif isinstance(node, (tuple, list)):
            for value in node:
                visit(value)

    visit(element)
    assert "video_id" in found, f"no video_id in a training batch: {element}"
    return list(zip(*(found[k] for k in ID_KEYS if k in found)))


def _read_epoch(task, input_context):
    """Ids per batch of one training epoch, built as the trainer does."""
    dataset = task.build_inputs(True, global_batch_size=GLOBAL_BATCH,
                                input_context=input_context, epoch=EPOCH,
                                seed=7)
    return [_example_ids(batch) for batch in dataset]


# Both ways of splitting, spread over the families to bound the run time
# (each pipeline build costs seconds of tf.data graph work on 2 cores).
SHARDS = {"actionformer": 1, "actionvlad": 2, "action_transformer": 1,
          "carl": 2, "adafocus_v1": 1, "adafocus_v2": 2}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_two_workers_read_every_training_example_once(family, tmp_path):
    shards = SHARDS[family]
    config = FAMILIES[family](tmp_path, shards)
    config.task.data_dir = str(tmp_path / "records")
    task = tasks.build_task(config)
    subset = config.task.train_subset
    assert len(task.data.files(subset)) == shards
    expected = task.data.num_records(subset)
    assert expected % GLOBAL_BATCH == 0 and expected >= 2 * GLOBAL_BATCH, (
        f"{family}: pick data with a multiple of {GLOBAL_BATCH} training "
        f"examples, got {expected}")

    per_worker = [
        _read_epoch(task, tf.distribute.InputContext(
            num_input_pipelines=WORKERS, input_pipeline_id=index,
            num_replicas_in_sync=WORKERS))
        for index in range(WORKERS)]
    # Same number of steps on both workers: none waits for a batch the
    # other does not have, and the trainer's agreed epoch drops nothing.
    assert len(per_worker[0]) == len(per_worker[1]), [
        len(batches) for batches in per_worker]
    read = [i for batches in per_worker for batch in batches for i in batch]
    counts = collections.Counter(read)
    duplicated = sorted(i for i, n in counts.items() if n > 1)
    assert not duplicated, f"{family}: read by both workers: {duplicated}"
    # Ids are unique per record, so `expected` distinct non-blank ids read
    # once each are every example of the split.
    assert all(i[0] for i in read), f"{family}: blank (padding) examples"
    assert len(counts) == expected, (
        f"{family}: read {len(counts)} of the {expected} training examples")
