"""The time a traced step's contractions take on their own, in one graph.

A training or inference step spends most of its time in contractions: the
matrix products, einsums and convolutions (forward and backward). Their
count, shapes and arithmetic are fixed by the model, so the time they take
on their own bounds from below what any implementation of the same network
can reach on this machine and TensorFlow build, whatever it does with the
rest of the step (norms, softmax, activations, losses, the optimiser).

`contraction_floor` reads every contraction of a traced `tf.function`,
rebuilds each one (same op, same attributes, same operand shapes; random
operands) in a single graph without dependencies between them, and times
that graph. Running them in one graph, rather than one call per product, keeps
the per-call dispatch and the host copy of each result out of the floor, so
that it stays a bound at small shapes too. Operands of repeated products
are shared, so they stay in cache: that can only lower the floor, as does
leaving out the contractions inside loops and conditionals (their trip
count or branch is not known from the graph).
"""


import numpy as np

from benchmarks import timing

CONTRACTIONS = (
    "MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum",
    "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter",
    "DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropInput",
    "DepthwiseConv2dNativeBackpropFilter",
    "Conv3D", "Conv3DBackpropInputV2", "Conv3DBackpropFilterV2")
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall", "While",
             "StatelessWhile", "If", "StatelessIf")


def _group_contractions(graph, op_types):
    """`{key: (op, count)}` for the contractions of `graph`, by signature,
    and the names of the control-flow / call ops whose bodies are left out."""
    from tensorflow.python.framework import tensor_util

    groups, nested = {}, []
    for op in graph.get_operations():
        if op.type in _CALL_OPS:
            # Left out, which only lowers the floor: a loop's trip count or
            # a branch taken is not known from the graph.
            nested.append(op.name)
            continue
        if op.type not in op_types:
            continue
        operands = []
        for tensor in op.inputs:
            if tensor.dtype.is_floating:
                shape = tensor.shape.as_list()
                if any(d is None for d in shape):
                    raise RuntimeError(f"{op.name}: operand shape {shape} is "
                                       "not static; the floor needs it")
                operands.append(("float", tensor.dtype.name, tuple(shape)))
            else:  # e.g. the output size of a convolution's backprop
                value = tensor_util.constant_value(tensor)
                if value is None and tensor.op.type == "ShapeN":
                    shape = tensor.op.inputs[tensor.value_index].shape
                    value = shape.as_list() if shape.is_fully_defined() else None
                if value is None:
                    raise RuntimeError(f"{op.name}: operand {tensor.name} is "
                                       "not a constant; the floor needs it")
                operands.append(("const", tensor.dtype.name,
                                 tuple(np.asarray(value).tolist())))
        attrs = tuple(sorted(
            (name, value.SerializeToString(deterministic=True))
            for name, value in op.node_def.attr.items()
            if not name.startswith("_")))
        key = (op.type, tuple(operands), attrs)
        first, count = groups.get(key, (op, 0))
        groups[key] = (first, count + 1)
    return groups, nested


def contraction_floor(concrete, iterations, op_types=CONTRACTIONS):
    """Times the contractions of a traced step, back to back in one graph.

    Args:
        concrete: a concrete function (`tf.function.get_concrete_function`)
            whose graph holds the step, gradients included.
        iterations: timed calls of the floor graph (median), after one
            untimed call.
        op_types: the op types counted as contractions.

    Returns:
        A dict: `floor_s` (median seconds of the floor graph, less an empty
        graph's call), `ops` (contractions counted), `groups` (distinct
        signatures), `flops` (the step graph's float operations, TensorFlow's
        profiler), `contraction_flops` (those of the floor graph, i.e. of
        the contractions), `call_overhead_s` (the empty graph's call),
        `nested_ops_left_out` (names of the loops, conditionals and function
        calls whose contractions are not counted: the floor stays a lower
        bound, just a looser one).

    Example:

    >>> step = tf.function(lambda a, b: tf.linalg.matmul(a, b))
    >>> floor = contraction_floor(step.get_concrete_function(
    ...     tf.ones((4, 8)), tf.ones((8, 3))), iterations=3)
    >>> floor["ops"], floor["contraction_flops"]
    (1, 192)
    """
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer
    from tensorflow.python.profiler import option_builder

    groups, nested = _group_contractions(concrete.graph, op_types)
    operands = {}
    for key, (op, _) in groups.items():
        values = []
        for (kind, dtype, spec), tensor in zip(key[1], op.inputs):
            if kind == "float":
                values.append(tf.Variable(tf.random.normal(spec, dtype=dtype),
                                          trainable=False))
            else:
                values.append(tf.constant(np.asarray(spec, dtype=dtype)))
        operands[key] = values

    @tf.function(autograph=False)
    def floor_graph():
        graph = tf.compat.v1.get_default_graph()
        outputs = []
        for key, (op, count) in groups.items():
            attrs = {name: value for name, value in op.node_def.attr.items()
                     if not name.startswith("_")}
            for _ in range(count):
                # A read per product: reads are stateful, so the runtime's
                # common-subexpression pass (it runs even without Grappler)
                # cannot merge the repeated products into one.
                inputs = [v.read_value() if isinstance(v, tf.Variable)
                          else v for v in operands[key]]
                # No edges between the products: the executor may overlap
                # any of them, as no schedule of the step's dependencies
                # can beat.
                outputs.append(graph._create_op_internal(  # pylint: disable=protected-access
                    op.type, inputs, dtypes=[t.dtype for t in op.outputs],
                    attrs=attrs).outputs[0])
        with tf.control_dependencies(outputs):
            return tf.constant(0.0)

    @tf.function(autograph=False)
    def empty_graph():
        return tf.constant(0.0)

    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    flops = model_analyzer.profile(concrete.graph, options=options)
    floor_concrete = floor_graph.get_concrete_function()
    contraction_flops = model_analyzer.profile(floor_concrete.graph,
                                               options=options)
    # Grappler would prune the products (their results are unused) or merge
    # the identical ones; the oneDNN kernel rewrite is not a Grappler pass,
    # so the kernels stay those of the step.
    saved = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": True})
    try:
        floor_s, overhead_s = timing.median_times(
            [lambda: float(floor_graph()), lambda: float(empty_graph())],
            iterations, 1)
    finally:
        tf.config.optimizer.set_experimental_options(
            dict(saved, disable_meta_optimizer=saved.get(
                "disable_meta_optimizer", False)))
    return {"floor_s": max(floor_s - overhead_s, 0.0),
            "ops": int(sum(count for _, count in groups.values())),
            "groups": len(groups),
            "flops": int(flops.total_float_ops),
            "contraction_flops": int(contraction_flops.total_float_ops),
            "call_overhead_s": overhead_s, "nested_ops_left_out": nested}
