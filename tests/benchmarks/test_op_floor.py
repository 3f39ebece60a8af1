"""The contraction floor counts every product of a traced step."""

import tensorflow as tf

from benchmarks import op_floor


def test_counts_products_einsums_and_convolutions_with_their_gradients():
    kernel = tf.Variable(tf.ones((3, 3, 3, 8)))

    @tf.function
    def step(images, a, b, q):
        with tf.GradientTape() as tape:
            tape.watch(b)
            maps = tf.nn.conv2d(images, kernel, 1, "SAME")
            y = (tf.reduce_sum(tf.matmul(a, b))
                 + tf.reduce_sum(tf.matmul(q, q, transpose_b=True))
                 + tf.reduce_sum(tf.einsum("bhwc,cd->bhwd", maps,
                                           tf.ones((8, 4)))))
        return y, tape.gradient(y, [b, kernel])

    concrete = step.get_concrete_function(
        tf.TensorSpec((2, 6, 6, 3)), tf.TensorSpec((4, 8)),
        tf.TensorSpec((8, 3)), tf.TensorSpec((2, 5, 6)))
    floor = op_floor.contraction_floor(concrete, iterations=1)
    # forward: a @ b, q @ q^T, conv, einsum; backward: a^T @ dy, the
    # einsum's gradient to the feature maps, the kernel's conv gradient
    # (the images' is not needed, and not built).
    kinds = sorted(op.type for op in concrete.graph.get_operations()
                   if op.type in op_floor.CONTRACTIONS)
    assert floor["ops"] == len(kinds) >= 7
    conv = 2 * 2 * 6 * 6 * 8 * 27  # N H W Cout x (3 x 3 x Cin), 2 per MAC
    gemms = 2 * (4 * 8 * 3 + 2 * 5 * 6 * 5 + 8 * 4 * 3)
    assert floor["contraction_flops"] >= conv * 2 + gemms
    assert floor["flops"] >= floor["contraction_flops"] > 0
    assert floor["floor_s"] >= 0 and floor["call_overhead_s"] > 0
    # Grappler is back as it was.
    assert not tf.config.optimizer.get_experimental_options().get(
        "disable_meta_optimizer", False)


def test_repeated_products_are_one_group_counted_twice():
    @tf.function
    def step(a):
        return tf.matmul(a, a) + tf.matmul(a, a)

    floor = op_floor.contraction_floor(
        step.get_concrete_function(tf.TensorSpec((4, 4))), iterations=1)
    assert (floor["ops"], floor["groups"]) == (2, 1)
    assert floor["contraction_flops"] == 2 * 2 * 4 * 4 * 4


def test_repeated_products_all_run():
    # The runtime merges identical ops with identical inputs even without
    # Grappler; merged, eight products would cost about one. Unmerged they
    # cost 4-8 times one (on 2 cores one product already runs two-way
    # parallel, and load moves it), so the bound sits between.
    def floor_of(count):
        @tf.function
        def step(a):
            return tf.add_n([tf.matmul(a, a) for _ in range(count)])

        return op_floor.contraction_floor(
            step.get_concrete_function(tf.TensorSpec((768, 768))),
            iterations=5)["floor_s"]

    one, eight = floor_of(1), floor_of(8)
    assert eight > 2.5 * one, (one, eight)


def test_loops_are_left_out_and_named():
    @tf.function
    def step(a):
        looped = tf.while_loop(lambda i, x: i < 3,
                               lambda i, x: (i + 1, tf.matmul(x, x)),
                               (0, a))[1]
        return tf.matmul(a, a) + looped

    floor = op_floor.contraction_floor(
        step.get_concrete_function(tf.TensorSpec((4, 4))), iterations=1)
    assert floor["ops"] == 1
    assert [name.rsplit("/", 1)[-1] for name in
            floor["nested_ops_left_out"]] == ["while"]
