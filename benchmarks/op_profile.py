"""The wall time a traced step spends in its contractions, as it runs.

`op_floor` bounds the contractions from below by timing them on their own.
This module measures them inside the step: it runs the step under
TensorFlow's profiler and reads back, from the host plane of the trace, the
interval of every kernel the executor ran. A step's kernels may overlap
(the executor runs independent ops side by side), so the time is the length
of the union of the intervals, not their sum: `contraction_s` is the wall
time during which at least one matrix product, einsum or convolution ran,
and `step_s - contraction_s` is the time in which none did. That is the
same split as PyTorch's profiler gives for an eager step, where the ops run
one after the other and the union is the sum of their self times.
"""

import glob
import os
import tempfile

from benchmarks import op_floor

# oneDNN and Grappler rename the kernels they rewrite: `_MklMatMul`,
# `_MklNativeFusedMatMul` (product + bias + activation), `_FusedConv2D` ...
_KERNEL_PREFIXES = ("_MklNative", "_Mkl", "_")


def kernel_type(name):
    """The TF op a kernel of the trace runs, without the rewrite prefixes.

    Args:
        name: a kernel's name in the trace, e.g. `"_MklNativeFusedMatMul"`.

    Returns:
        The op type, e.g. `"MatMul"` (a fused product's type is its
        product's).

    Example:

    >>> kernel_type("_MklNativeFusedMatMul")
    'MatMul'
    """
    for prefix in _KERNEL_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name.startswith("Fused"):
        name = name[len("Fused"):]
    return name.removesuffix("WithBias")


def union_length(intervals):
    """Total length covered by `(start, end)` intervals (overlaps once).

    Args:
        intervals: iterable of `(start, end)` pairs, `start <= end`.

    Returns:
        The length of their union, in the intervals' unit.

    Example:

    >>> union_length([(0, 3), (2, 5), (7, 8)])
    6
    """
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def _host_kernels(logdir):
    """`[(type, start_ps, end_ps)]` of the kernels in a profile's trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = glob.glob(os.path.join(logdir, "plugins", "profile", "*",
                                   "*.xplane.pb"))
    if len(paths) != 1:
        raise RuntimeError(f"expected one profile under {logdir}, found "
                           f"{len(paths)}")
    space = xplane_pb2.XSpace()
    with open(paths[0], "rb") as f:
        space.ParseFromString(f.read())
    kernels = []
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            base = line.timestamp_ns * 1000
            for event in line.events:
                meta = plane.event_metadata[event.metadata_id]
                # Kernels are named "op_name:OpType" with the type as their
                # display name; the executor's and the runtime's own events
                # ("ExecutorState::Process", "EagerExecute") have none.
                if not meta.display_name or "::" in meta.name:
                    continue
                start = base + event.offset_ps
                kernels.append((meta.display_name, start,
                                start + event.duration_ps))
    if not kernels:
        raise RuntimeError(f"the profile under {logdir} holds no kernels")
    return kernels


def contraction_time(fn, iterations, op_types=op_floor.CONTRACTIONS):
    """Runs `fn` under the profiler; how long its contractions ran.

    Call it after `fn` is traced and warm: every call is profiled.

    Args:
        fn: no-argument callable running one step (and waiting for it).
        iterations: calls to profile.
        op_types: the op types that count as contractions.

    Returns:
        Dict, per call: `contraction_s` (union of the contraction kernels'
        intervals), `kernel_s` (union of all kernels' intervals), and
        `kernels` (kernel launches per call). The wall time of the profiled
        calls is not reported: the profiler's own start-up lands in the
        first of them.
    """
    import tensorflow as tf

    contraction_types = set(op_types)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(iterations):
                fn()
        finally:
            tf.profiler.experimental.stop()
        kernels = _host_kernels(logdir)
    contractions = [(s, e) for name, s, e in kernels
                    if kernel_type(name) in contraction_types]
    ps = 1e-12 / iterations
    return {"contraction_s": union_length(contractions) * ps,
            "kernel_s": union_length((s, e) for _, s, e in kernels) * ps,
            "kernels": len(kernels) // iterations}
