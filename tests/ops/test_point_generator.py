import json

import numpy as np
import pytest
import tensorflow as tf

from tfaction.ops.point_generator import generate_points

RANGES = [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]]
STRIDES = [1, 2, 4, 8, 16, 32]


def test_points_match_reference(actionformer_bundles):
    for bundle in actionformer_bundles:
        derived = json.loads((bundle / "config.json").read_text())["derived"]
        for stored in ("io.npz", "inference.npz"):
            with np.load(bundle / stored) as data:
                if "points_0" not in data.files:
                    continue
                length = data["input"].shape[-1]
                pts = generate_points(length, derived["fpn_strides"],
                                      derived["regression_range"])
                assert len(pts) == len(derived["fpn_strides"])
                for level, p in enumerate(pts):
                    np.testing.assert_array_equal(
                        np.asarray(p), data[f"points_{level}"],
                        err_msg=f"{bundle.name} {stored} level {level}")
                    assert np.asarray(p).dtype == np.float32


def test_thumos_point_count_and_rows():
    pts = generate_points(2304, STRIDES, RANGES)
    assert sum(int(p.shape[0]) for p in pts) == 4536
    last = np.asarray(pts[5])
    np.testing.assert_array_equal(last[1], [32, 64, 10000, 32])


def test_non_divisible_length_and_offset():
    pts = generate_points(5, [1, 2, 4], [[0, 1], [1, 2], [2, 3]],
                          use_offset=True)
    assert [int(p.shape[0]) for p in pts] == [5, 3, 2]
    np.testing.assert_array_equal(np.asarray(pts[1])[:, 0], [1.0, 3.0, 5.0])


def test_dynamic_length_in_graph():
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def fn(n):
        return tf.concat(generate_points(n, STRIDES, RANGES), axis=0)

    got = fn(tf.constant(181)).numpy()
    want = np.concatenate([np.asarray(p)
                           for p in generate_points(181, STRIDES, RANGES)])
    np.testing.assert_array_equal(got, want)


def test_level_count_mismatch():
    with pytest.raises(ValueError):
        generate_points(8, [1, 2], [[0, 4]])
