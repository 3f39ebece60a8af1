"""The ActionVLAD authors' TF-slim checkpoints loaded into `ActionVLAD`.

The release's checkpoints are TF1 files saved by rohitgirdhar/ActionVLAD's
`train_image_classifier.py`; this test writes one with
`tf.compat.v1.train.Saver` under exactly their variable names (stream
scope `stream0/`, VGG16 `vgg_16/convX/convX_Y/{weights,biases}`,
`NetVLAD/{centers,vlad_W,vlad_B}`, `classifier/logits/{weights,biases}`,
plus an optimizer slot and `global_step`), with a VGG16 trunk on 32x32
crops (2x2 conv5 cells) and 2 clusters. The loaded model must give the
logits of a NumPy computation of the authors' pooling and classifier on
its trunk's features; `--family=actionvlad` imports it as a run that
evaluation restores; loading is all-or-nothing.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from experiments import train
from tests.checkpoints.test_actionformer_checkpoint import _assert_unchanged
from tests.checkpoints.test_actionformer_checkpoint import _snapshot
from tests.tasks.test_actionvlad_task import dataset  # noqa: F401 fixture
from tests.tasks.test_actionvlad_task import make_config
from tfaction import config as config_lib
from tfaction import errors
from tfaction.checkpoints import CheckpointError
from tfaction.checkpoints import import_cli
from tfaction.checkpoints.actionvlad import load_actionvlad_checkpoint
from tfaction.models.actionvlad.model import ActionVLAD
from tfaction.models.backbones import vgg16

CLASSES, CLUSTERS, DIM, CROP = 4, 2, 512, (32, 32)
HEAD = ("stream0/NetVLAD/centers", "stream0/NetVLAD/vlad_B",
        "stream0/NetVLAD/vlad_W", "stream0/classifier/logits/biases",
        "stream0/classifier/logits/weights")


def write_tf1_checkpoint(prefix, arrays):
    """A TF1 checkpoint of `arrays` (name -> array) under those names."""
    with tf.Graph().as_default():
        variables, feed = {}, {}
        for name, value in arrays.items():
            # Fed, not embedded as constants: much faster for VGG16.
            init = tf.compat.v1.placeholder(value.dtype, value.shape)
            feed[init] = value
            variables[name] = tf.compat.v1.Variable(init)
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer(), feed)
            return saver.save(session, os.fspath(prefix))


def release_arrays(trunk_weights, seed=0, classes=CLASSES):
    """The authors' variables of a one-stream RGB ActionVLAD."""
    rng = np.random.default_rng(seed)
    arrays = {
        "stream0/NetVLAD/centers": rng.normal(size=(CLUSTERS, DIM)),
        "stream0/NetVLAD/vlad_W": rng.normal(size=(1, 1, DIM, CLUSTERS)),
        "stream0/NetVLAD/vlad_B": rng.normal(size=(CLUSTERS,)),
        "stream0/classifier/logits/weights": rng.normal(
            size=(CLUSTERS * DIM, classes)),
        "stream0/classifier/logits/biases": rng.normal(size=(classes,)),
        "stream0/NetVLAD/centers/Adam": rng.normal(size=(CLUSTERS, DIM)),
    }
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    for layer, (kernel, bias) in trunk_weights.items():
        block, conv = layer[len("block")], layer[-1]
        scope = f"stream0/vgg_16/conv{block}/conv{block}_{conv}"
        arrays[f"{scope}/weights"], arrays[f"{scope}/biases"] = kernel, bias
    arrays["global_step"] = np.array(8000, np.int64)
    return arrays


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(checkpoint prefix, its arrays)."""
    keras.utils.set_random_seed(3)
    trunk = vgg16.build_vgg16_trunk()
    weights = {name: trunk.get_layer(name).get_weights()
               for name in vgg16.conv_layer_names(trunk)}
    arrays = release_arrays(weights)
    root = tmp_path_factory.mktemp("actionvlad_release")
    return write_tf1_checkpoint(root / "split1.ckpt", arrays), arrays


def _model(**changes):
    kwargs = dict(num_classes=CLASSES, trunk="vgg16", num_clusters=CLUSTERS,
                  crop_size=CROP)
    return ActionVLAD(**dict(kwargs, **changes))


def _l2(x, axis):
    return x / np.sqrt(np.maximum(np.sum(x * x, axis, keepdims=True), 1e-12))


def reference_logits(features, arrays):
    """The authors' `netvlad` + linear classifier (nets/frame_pooling.py,
    nets/nets_factory.py) on one video's conv features [T, h, w, D]."""
    x = _l2(features.reshape(-1, DIM).astype(np.float64), 1)
    w = arrays["stream0/NetVLAD/vlad_W"][0, 0]
    dists = x @ w + arrays["stream0/NetVLAD/vlad_B"]
    assign = np.exp(dists - dists.max(1, keepdims=True))
    assign /= assign.sum(1, keepdims=True)
    centers = arrays["stream0/NetVLAD/centers"]
    vlad = np.stack([(assign[:, k:k + 1] * (x - centers[k])).sum(0)
                     for k in range(CLUSTERS)])
    vlad = _l2(_l2(vlad, 1).reshape(-1), 0)
    return (vlad @ arrays["stream0/classifier/logits/weights"] +
            arrays["stream0/classifier/logits/biases"])


def _assert_holds(model, arrays):
    netvlad, classifier = model.get_layer("netvlad"), model.get_layer(
        "classifier")
    for got, key in ((netvlad.centers, "NetVLAD/centers"),
                     (netvlad.assignment_kernel, "NetVLAD/vlad_W"),
                     (netvlad.assignment_bias, "NetVLAD/vlad_B"),
                     (classifier.kernel, "classifier/logits/weights"),
                     (classifier.bias, "classifier/logits/biases")):
        want = arrays["stream0/" + key]
        np.testing.assert_array_equal(got, want.reshape(got.shape), key)
    for name in vgg16.conv_layer_names(model.trunk_model):
        block, conv = name[len("block")], name[-1]
        scope = f"stream0/vgg_16/conv{block}/conv{block}_{conv}"
        layer = model.trunk_model.get_layer(name)
        np.testing.assert_array_equal(layer.kernel, arrays[f"{scope}/weights"])
        np.testing.assert_array_equal(layer.bias, arrays[f"{scope}/biases"])


def test_logits_are_the_authors_computation(release):
    prefix, arrays = release
    model = _model()
    names = load_actionvlad_checkpoint(model, prefix)
    assert names == [*HEAD, *vgg16.conv_layer_names(model.trunk_model)]
    _assert_holds(model, arrays)
    frames = np.random.default_rng(1).uniform(
        -100, 100, size=(2, 3, *CROP, 3)).astype(np.float32)
    logits = np.asarray(model(frames))
    for video in range(2):
        features = np.asarray(model.trunk_model(frames[video]))
        assert features.shape == (3, 2, 2, DIM)
        np.testing.assert_allclose(
            logits[video], reference_logits(features, arrays), rtol=1e-4,
            atol=1e-4 * np.abs(logits).max())


def test_directory_and_explicit_scope(release, tmp_path):
    prefix, arrays = release
    model = _model()
    load_actionvlad_checkpoint(model, os.path.dirname(prefix),
                               scope="stream0/")
    _assert_holds(model, arrays)
    # Two streams in one file: the scope must be chosen.
    rng = np.random.default_rng(0)
    two = write_tf1_checkpoint(tmp_path / "two.ckpt", {
        f"stream{i}/NetVLAD/centers": rng.normal(
            size=(CLUSTERS, DIM)).astype(np.float32) for i in (0, 1)})
    with pytest.raises(CheckpointError, match=r"several NetVLAD layers "
                       r"under \['stream0/', 'stream1/'\]"):
        load_actionvlad_checkpoint(model, two)
    with pytest.raises(CheckpointError, match="stream2/NetVLAD/centers"):
        load_actionvlad_checkpoint(model, two, scope="stream2")
    with pytest.raises(CheckpointError, match="two.ckpt.*stream1/NetVLAD/"
                       "vlad_W.*variable missing"):
        load_actionvlad_checkpoint(model, two, scope="stream1")
    _assert_holds(model, arrays)


def test_mismatches_change_nothing(release, tmp_path):
    prefix, arrays = release
    cases = {
        "classes": (_model(num_classes=CLASSES + 1),
                    r"split1.ckpt: key 'stream0/classifier/logits/weights': "
                    r"expected shape \(1024, 5\) for this model, got "
                    r"\(1024, 4\)"),
        "clusters": (_model(num_clusters=3), "stream0/NetVLAD/centers.*"
                     r"\(3, 512\).*\(2, 512\)"),
        # No RGB -> flow adaptation of a released model's first conv.
        "flow": (_model(input_channels=20), "conv1/conv1_1/weights.*"
                 r"\(3, 3, 20, 64\).*\(3, 3, 3, 64\)"),
    }
    for what, (model, message) in cases.items():
        before = _snapshot(model)
        with pytest.raises(CheckpointError, match=message):
            load_actionvlad_checkpoint(model, prefix)
        _assert_unchanged(model, before)
    # The NetVLAD and classifier variables fit, the trunk is missing.
    head = write_tf1_checkpoint(tmp_path / "head.ckpt", {
        k: v for k, v in arrays.items() if "vgg_16" not in k})
    model = _model()
    before = _snapshot(model)
    with pytest.raises(CheckpointError, match="head.ckpt.*stream0/vgg_16/"
                       "conv1/conv1_1/weights.*variable missing"):
        load_actionvlad_checkpoint(model, head)
    _assert_unchanged(model, before)
    with pytest.raises(CheckpointError, match="no NetVLAD layer"):
        load_actionvlad_checkpoint(model, write_tf1_checkpoint(
            tmp_path / "other.ckpt", {"w": np.zeros(2, np.float32)}))
    with pytest.raises(CheckpointError, match="cannot read TF checkpoint"):
        load_actionvlad_checkpoint(model, tmp_path / "nothing.ckpt")
    with pytest.raises(errors.ConfigError, match="VGG16 trunk"):
        load_actionvlad_checkpoint(
            ActionVLAD(CLASSES, trunk="small", filters=(8, 16),
                       num_clusters=CLUSTERS, crop_size=CROP), prefix)
    _assert_unchanged(model, before)


def test_import_command(release, dataset, tmp_path):  # noqa: F811
    """`--family=actionvlad` on the synthetic HMDB51-layout data (4
    classes, RGB), then the restore of `experiments.train --mode=eval`.

    The recipe's stage freezes the trunk without trunk weights (as the real
    recipes, whose trunk_weights file the user need not have): the import
    needs no override, and the run it writes names itself as the source of
    the weights."""
    prefix, arrays = release
    config = make_config(dataset, stage="stage1")
    config.task.train_from_scratch = False
    config.task.trunk_weights = "vgg16_notop.h5"  # not needed, not read
    config.task.model.trunk = "vgg16"
    config.task.frames.crop_size = CROP
    config.task.model.num_clusters = CLUSTERS
    config.runtime.strategy = "one_device"
    config_lib.write_config_json(config_lib.lock(config), tmp_path)
    workdir = tmp_path / "run"
    config, options = import_cli.parse_command_line(
        ["import", "--family=actionvlad", f"--checkpoint={prefix}",
         f"--config={tmp_path / 'config.json'}", f"--workdir={workdir}"])
    assert options["weights"] == "model"
    assert import_cli.import_checkpoint(config, **options) == (
        f"{workdir}/checkpoints/ckpt-0")
    saved = json.loads((workdir / "config.json").read_text())["task"]
    assert (saved["init_checkpoint"], saved["trunk_weights"],
            saved["centers_file"], saved["train_from_scratch"]) == (
                str(workdir), "", "", False)
    config, workdir, mode = train.parse_command_line(
        ["train", "--mode=eval", f"--workdir={workdir}",
         f"--config={workdir}/config.json"])
    trainer = train.build_trainer(config, workdir, mode)
    assert trainer.restore() is not None
    _assert_holds(trainer.model, arrays)
    result = train.run(trainer, mode)
    assert result["eval"]["num_videos"] == 4
    assert 0.0 <= result["eval"]["top1_accuracy"] <= 1.0
