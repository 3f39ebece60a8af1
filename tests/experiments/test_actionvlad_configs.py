"""The ActionVLAD recipe configs: the reference's hyperparameters and models.

Every config file loads for each of its stages, carries the values of the
released scripts (Adam eps 1e-4, staircase decay, per-variable clipping at
5, L2 4e-5 in slim terms, T = 25, 256x340 -> 224 crops, BGR means), and
builds the model it describes with the expected parameter count and
trainable groups. The HMDB51 RGB recipe also runs through the task on
converted synthetic data, with its VGG16 trunk loaded from a local Keras
weights file.
"""

import keras
import numpy as np
import pytest

from experiments.configs import actionvlad_charades_rgb
from experiments.configs import actionvlad_hmdb51_flow
from experiments.configs import actionvlad_hmdb51_rgb
from experiments.configs import actionvlad_synthetic_flow
from experiments.configs import actionvlad_synthetic_rgb
from tfaction import errors
from tfaction import tasks
from tfaction.data.formats.hmdb51 import convert_hmdb51_frames
from tfaction.data.synthetic.video_classification import (
    generate_video_classification)
from tfaction.models.actionvlad import kmeans
from tfaction.models.actionvlad.model import ActionVLAD
from tfaction.tasks import actionvlad_config

VGG16_CONV_PARAMS = 14_714_688


def build(config, num_classes, channels):
    m = config.task.model
    model = ActionVLAD(
        num_classes, trunk=m.trunk, input_channels=channels,
        endpoint=m.endpoint, filters=tuple(m.filters),
        num_clusters=m.num_clusters, alpha=m.alpha,
        crop_size=tuple(config.task.frames.crop_size),
        trunk_weight_decay=m.trunk_weight_decay,
        classifier_weight_decay=m.classifier_weight_decay)
    model.set_trainable_groups(tuple(config.task.trainable))
    return model


@pytest.mark.parametrize("module, stage, lr, steps", [
    (actionvlad_hmdb51_rgb, "stage1", 1e-2, 10000),
    (actionvlad_hmdb51_rgb, "stage2", 1e-4, 8000),
    (actionvlad_hmdb51_flow, "stage1", 1e-2, 10000),
    (actionvlad_charades_rgb, "stage2", 1e-4, 8000),
])
def test_reference_hyperparameters(module, stage, lr, steps):
    config = module.get_config(stage)
    opt = config.optimizer
    assert (opt.name, opt.epsilon, opt.schedule) == ("adam", 1e-4, "step")
    assert (opt.lr, opt.decay_steps, opt.decay_rate) == (lr, 5000, 0.1)
    assert opt.clip_norm_per_variable == 5.0 and opt.weight_decay == 0.0
    assert config.trainer.train_steps == steps
    assert config.trainer.global_batch_size == 16
    frames = config.task.frames
    assert (frames.sampler, frames.num_steps) == ("actionvlad", 25)
    assert tuple(frames.resize) == (256, 340)
    assert tuple(frames.crop_size) == (224, 224)
    assert frames.train_crop == "multiscale"
    m = config.task.model
    assert (m.trunk, m.endpoint, m.num_clusters, m.alpha) == (
        "vgg16", "conv5_3", 64, 1000.0)
    assert m.trunk_weight_decay == m.classifier_weight_decay == 2e-5


def test_stream_specific_settings():
    rgb = actionvlad_hmdb51_rgb.get_config()
    assert rgb.task.frames.bgr and tuple(rgb.task.frames.mean) == (
        104.0, 117.0, 123.0)
    assert tuple(map(tuple, rgb.task.frames.test_crop_offsets)) == (
        (16, 60),)
    flow = actionvlad_hmdb51_flow.get_config()
    assert (flow.task.frames.modality, flow.task.frames.flow_stack) == (
        "flow", 10)
    assert flow.task.frames.test_crop == "five"
    assert flow.task.frames.test_crop_offsets is None
    charades = actionvlad_charades_rgb.get_config()
    assert charades.task.multi_label
    with pytest.raises(errors.ConfigError, match="unknown ActionVLAD stage"):
        actionvlad_config.experiment_config("stage3")


@pytest.mark.parametrize("module, num_classes, channels", [
    (actionvlad_hmdb51_rgb, 51, 3),
    (actionvlad_hmdb51_flow, 51, 20),
    (actionvlad_charades_rgb, 157, 3),
])
def test_models_of_the_recipes(module, num_classes, channels):
    stage1 = build(module.get_config("stage1"), num_classes, channels)
    vlad = 64 * 512 * 2 + 64
    classifier = 64 * 512 * num_classes + num_classes
    conv1_extra = 3 * 3 * (channels - 3) * 64
    assert stage1.count_params() == (VGG16_CONV_PARAMS + conv1_extra + vlad
                                     + classifier)
    assert sum(int(np.prod(v.shape))
               for v in stage1.trainable_variables) == classifier
    stage2 = build(module.get_config("stage2"), num_classes, channels)
    conv5 = 3 * (3 * 3 * 512 * 512 + 512)
    assert sum(int(np.prod(v.shape)) for v in stage2.trainable_variables) == (
        classifier + vlad + conv5)


@pytest.mark.parametrize("module", [actionvlad_synthetic_rgb,
                                    actionvlad_synthetic_flow])
def test_synthetic_configs(module):
    config = module.get_config()
    assert config.task.trainable == ("all",)
    assert config.runtime.strategy == "mirrored"
    channels = 3 if config.task.frames.modality == "rgb" else 10
    model = build(config, 8, channels)
    assert model.output_shape == (None, 8)
    for stage in ("stage1", "stage2"):
        assert module.get_config(stage).task.trainable != ("all",)


def test_hmdb51_recipe_runs_with_local_vgg16_weights(tmp_path):
    generate_video_classification(tmp_path / "raw", num_videos=4,
                                  classes=("red_pan", "green_zoom"),
                                  min_frames=8, max_frames=9)
    lists = tmp_path / "raw" / "train_test_lists"
    convert_hmdb51_frames(
        [lists / "train_split1.txt", lists / "test_split1.txt"],
        tmp_path / "raw" / "frames", tmp_path / "records",
        class_list=tmp_path / "raw" / "actions.txt")
    weights = tmp_path / "vgg16_notop.weights.h5"
    source = keras.applications.VGG16(weights=None, include_top=False,
                                      input_shape=(32, 32, 3))
    source.save_weights(weights)
    config = actionvlad_hmdb51_rgb.get_config()
    config.task.data_dir = str(tmp_path / "records")
    config.task.frames.num_steps = 2
    # Stage 1 freezes trunk and NetVLAD: it refuses to start without their
    # weights, naming the missing key.
    with pytest.raises(errors.ConfigError, match="task.trunk_weights and "
                                                 "task.centers_file"):
        tasks.build_task(config).build_model()
    config.task.trunk_weights = str(weights)
    with pytest.raises(errors.ConfigError, match="^task.centers_file is"):
        tasks.build_task(config).build_model()
    centers = np.random.default_rng(0).normal(
        size=(config.task.model.num_clusters, 512)).astype(np.float32)
    config.task.centers_file = str(tmp_path / "centers.npz")
    kmeans.save_centers(config.task.centers_file, centers)
    task = tasks.build_task(config)
    model = task.build_model()
    np.testing.assert_allclose(model.get_layer("netvlad").centers.numpy(),
                               centers, rtol=1e-6)
    trunk = model.trunk_model
    np.testing.assert_array_equal(
        trunk.get_layer("block3_conv2").kernel.numpy(),
        source.get_layer("block3_conv2").kernel.numpy())
    frames, labels = next(iter(task.build_inputs(False,
                                                 global_batch_size=1)))
    assert frames.shape == (1, 2, 224, 224, 3)
    assert model(frames).shape == (1, 2)
