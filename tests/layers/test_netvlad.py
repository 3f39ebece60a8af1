"""Tests of `tfaction.layers.NetVLAD`.

Parity: every `*.npz` case of `anchors/netvlad` (outputs of ActionVLAD's
`netvlad` pooling; see the bundle README) with the stored centres, kernel,
bias and alpha, to 1e-7 (measured: 6e-8 at most; the README states 6e-8).
"""

import numpy as np
import pytest

from tfaction.layers import NetVLAD
from tfaction.testing import run_layer_test


def _cases(anchors_dir):
    files = sorted((anchors_dir / "netvlad").glob("*.npz"))
    assert files, f"no netvlad anchor case under {anchors_dir}"
    return [(f.stem, dict(np.load(f))) for f in files]


def _loaded_layer(case):
    k, d = case["centers"].shape
    layer = NetVLAD(num_clusters=k, alpha=float(case["alpha"]))
    layer.build(case["x_btHWD"].shape)
    layer.centers.assign(case["centers"])
    layer.assignment_kernel.assign(case["vlad_W"][0, 0])
    layer.assignment_bias.assign(case["vlad_B"])
    return layer


def test_matches_actionvlad_anchors(anchors_dir):
    for name, case in _cases(anchors_dir):
        layer = _loaded_layer(case)
        out = np.asarray(layer(case["x_btHWD"]))
        np.testing.assert_allclose(out, case["vlad_ref_tfeps_f64"], atol=1e-7,
                                   rtol=0, err_msg=name)
        # The same descriptors as one [B, N, D] set pool identically.
        b, t, h, w, d = case["x_btHWD"].shape
        flat = case["x_btHWD"].reshape(b, t * h * w, d)
        np.testing.assert_allclose(np.asarray(layer(flat)), out, atol=1e-6)
        print(f"{name}: max |diff| "
              f"{np.abs(out - case['vlad_ref_tfeps_f64']).max():.2e}")


def test_set_centers_gives_the_actionvlad_initialisation(anchors_dir):
    for name, case in _cases(anchors_dir):
        k, d = case["centers"].shape
        layer = NetVLAD(num_clusters=k, alpha=float(case["alpha"]))
        layer.build((None, 3, d))
        layer.set_centers(case["centers"])
        np.testing.assert_allclose(layer.assignment_kernel,
                                   case["vlad_W"][0, 0], rtol=1e-6,
                                   err_msg=name)
        np.testing.assert_allclose(layer.assignment_bias, case["vlad_B"],
                                   rtol=1e-6, err_msg=name)
        with pytest.raises(ValueError, match="set_centers"):
            layer.set_centers(np.zeros((k + 1, d), "float32"))


def test_initialisation_is_tied_to_the_centres():
    layer = NetVLAD(num_clusters=4, alpha=10.0)
    layer.build((None, 6, 3))
    c = np.asarray(layer.centers)
    np.testing.assert_allclose(layer.assignment_kernel, 20.0 * c.T,
                               rtol=1e-6)
    np.testing.assert_allclose(layer.assignment_bias,
                               -10.0 * (c ** 2).sum(1), rtol=1e-6)
    free = NetVLAD(num_clusters=4, assignment="independent")
    free.build((None, 6, 3))
    np.testing.assert_array_equal(free.assignment_bias, np.zeros(4))
    assert {w.name for w in layer.weights} == {
        "centers", "assignment_kernel", "assignment_bias"}


def test_mask_drops_frames():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 2, 3, 5)).astype("float32")
    layer = NetVLAD(num_clusters=3, alpha=1.0)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    masked = np.asarray(layer(x, mask=mask))
    np.testing.assert_allclose(masked[0], np.asarray(layer(x[:1, :2]))[0],
                               atol=1e-6)
    np.testing.assert_allclose(masked[1], np.asarray(layer(x[1:]))[0],
                               atol=1e-6)


@pytest.mark.parametrize("assignment", ["actionvlad", "independent"])
def test_contract(assignment):
    x = np.random.default_rng(1).normal(size=(2, 3, 2, 2, 6)).astype(
        "float32")
    run_layer_test(NetVLAD, {"num_clusters": 4, "alpha": 1.0,
                             "assignment": assignment},
                   x, expected_output_shape=(2, 24),
                   expected_num_trainable_weights=3,
                   mixed_precision_tolerance=2e-2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_clusters"):
        NetVLAD(num_clusters=0)
    with pytest.raises(ValueError, match="assignment"):
        NetVLAD(num_clusters=2, assignment="v3")
    with pytest.raises(ValueError, match=r"\[B, N, D\]"):
        NetVLAD(num_clusters=2).build((None, 4, 4, 3))
