"""The profiled contraction time is the union of the products' intervals."""

import pytest
import tensorflow as tf

from benchmarks import op_profile


@pytest.mark.parametrize("name, expected", [
    ("_MklMatMul", "MatMul"), ("_MklNativeFusedMatMul", "MatMul"),
    ("_FusedConv2D", "Conv2D"), ("_MklEinsum", "Einsum"),
    ("_MklNativeDepthwiseConv2dNativeBackpropFilter",
     "DepthwiseConv2dNativeBackpropFilter"),
    ("Conv2DBackpropInput", "Conv2DBackpropInput"), ("Mul", "Mul"),
    ("_MklTranspose", "Transpose")])
def test_kernel_type_drops_the_rewrite_prefixes(name, expected):
    assert op_profile.kernel_type(name) == expected


def test_union_counts_overlaps_once():
    assert op_profile.union_length([]) == 0
    assert op_profile.union_length([(5, 9), (0, 3), (2, 4), (8, 12)]) == 11
    assert op_profile.union_length([(0, 10), (2, 3)]) == 10
    assert op_profile.union_length([(1, 2), (2, 3)]) == 2


def test_profiles_a_step_into_products_and_the_rest():
    a = tf.random.normal((384, 384))

    @tf.function
    def step():
        x = a
        for _ in range(4):
            x = tf.matmul(x, a)
            x = tf.tanh(x) * 0.5 + tf.exp(-tf.abs(x))
        return tf.reduce_sum(x)

    def run():
        step().numpy()

    run()
    prof = op_profile.contraction_time(run, iterations=2)
    # four products and a dozen other kernels per call
    assert prof["kernels"] >= 4 + 12
    assert 0 < prof["contraction_s"] < prof["kernel_s"]
    without = op_profile.contraction_time(run, iterations=1, op_types=())
    assert without["contraction_s"] == 0 and without["kernel_s"] > 0
