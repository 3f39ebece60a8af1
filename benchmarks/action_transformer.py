"""Benchmarks of the Video Action Transformer heads; prints one JSON line.

Two parts, both at the paper's shapes: a 64 x 400 x 400 clip gives I3D
`Mixed_4f` features `[1, 16, 25, 25, 832]` (one clip, batch 1), the Tx
context adds 16 location-embedding channels (`[1, 16, 25, 25, 848]`),
`D = 128`, 2 heads x 3 layers, 80 AVA classes (+ background).

**Size and FLOPs** (`counts`, no timing): for each head of the paper's
Table 1, "i3d", "tx" HighRes and "tx" LowRes (plus "tx_i3d" HighRes, the
best system), at `R = 64` proposals:

* parameters of the box head alone (`ActionTransformerBoxHead`) and of the
  whole model (`ActionTransformer`: I3D trunk + RPN + box head), both from
  Keras (`count_params()`, trainable and all: the frozen batch-norm
  statistics of the I3D units are weights too, not trainable) and from the
  analytic counter below (which must agree with Keras: a layer it missed
  would show up here);
* the head's forward cost from an analytic counter (`count_cost`): it walks
  the head's Keras graph with concrete shapes and adds up, per layer,
  multiply-accumulates (MACs) of the products (Dense, Conv2D/Conv3D, the
  two attention einsums `QK^T` and `softmax(.) V`) and the other floating
  point operations (biases, normalisations, softmax, activations, pooling,
  the bilinear interpolation of crop-and-resize; conventions in
  `ELEMENTWISE_NOTE`). FLOPs = 2 x MACs + the others; MACs are reported as
  well, since papers often call MACs "FLOPs";
* a cross-check with TensorFlow's profiler
  (`tf.compat.v1.profiler.profile` with `float_operation()` options on the
  frozen graph of the head's forward at batch 1, `R = 64`): the FLOPs it
  attributes to MatMul / BatchMatMul / Conv2D / Conv3D must equal twice
  the analytic MACs less the attention einsums (TensorFlow's `Einsum` op
  registers no FLOP statistic, so the profiler misses them); its total
  also counts the elementwise ops that register one, in its own
  conventions (`MaxPool3D`, gathers and selects count 0);
* for context, the analytic forward cost of the trunk at 64 x 400 x 400
  and of the RPN on the 25 x 25 central frame (symbolic only: the trunk is
  never run).

What the comparison with Table 1 shows (the `table1` entry of the JSON line
gives the figures; numbers below from this port's defaults, 80 classes):

* Parameters are whole-model counts in Table 1: the trunk (I3D to
  Mixed_4f, 7.52 M) and the RPN (3.87 M) hold more than any head, and the
  whole I3D-head model has 16.23 M trainable parameters against Table 1's
  16.2 M (the I3D head alone: 4.84 M). The whole Tx models have 13.19 M
  (LowRes) and 13.99 M (HighRes) against 13.9 M and 19.3 M: the paper does
  not give the widths of the query preprocessor, FFN and location MLPs,
  and this port chooses small ones. Table 1's HighRes - LowRes gap is
  5.4 M, ours 0.80 M (a 1x1 reduction to 128 channels, then a
  7 x 7 x 128 -> 128 linear layer); a 7 x 7 x 848 -> 128 linear layer
  without the reduction alone would hold 5.3 M.
* GFLOPs are head-only at `R = 64` in Table 1: the trunk alone costs
  348 GMACs (700 GFLOPs) at 64 x 400 x 400. The Tx heads are dominated by
  the R-independent key and value projections of the 10,000-cell context
  (6 units x 2 x 10,000 x 848 x 128 = 13.0 GMACs, 90-93 %); counted as
  FLOPs = 2 x MACs they are 29.0 (HighRes) and 28.2 (LowRes) GFLOPs,
  against Table 1's 39.6 and 33.2 (x 1.37 and x 1.18), while in MACs
  (14.4, 14.0) they would be 2.4-2.7 x below: consistent with Table 1
  counting a multiply-add as 2 FLOPs, for Tx heads somewhat wider than
  this port's. The I3D head (Mixed_5b, 5c on 64 tubes of 16 x 7 x 7 x 832)
  costs 39.0 GMACs / 80.0 GFLOPs, 12 x Table 1's 6.5 GFLOPs; no reading of
  the described architecture reproduces that figure (even a one-frame
  tube is 4.9 GMACs / 9.9 GFLOPs).

**Speed and memory** (`timing`), on this machine, without XLA, float32:
forward (inference mode) and forward + backward (training mode: dropout
on; gradients with respect to every trainable weight and the input
features, as in end-to-end fine-tuning) of

* `unit`: one `ActionTransformerUnit` (query `[1, R, 128]`, context
  `[1, 16, 25, 25, 848]`), `R` in {64, 300};
* `tx`: the whole Tx HighRes box head (`[features, boxes]` in), `R` in
  {64, 300};
* `i3d`: the I3D box head, `R = 64` (the I3D blocks run once on all
  `B * R` tubes).

Each case runs in its own subprocess (a fresh process: nothing else built
in it): median of `--iterations` timed calls after `--warmup` untimed ones
(the first call traces; its time is `*_first_call_s`), and the peak
resident memory of the whole process (TensorFlow's own ~0.5 GB included)
from `/proc/self/status`: `rss_import_mb` before building, `rss_mb` after
building (weights and inputs), `peak_fwd_first_mb` = VmHWM over the
forward warm-up (tracing included), `peak_fwd_mb` over the timed forward
calls, and `peak_train_first_mb`, `peak_train_mb` likewise for forward +
backward (the high-water mark is reset to the current RSS before each, by
writing 5 to `/proc/self/clear_refs`; `peak_*_reset` says whether that
worked). Memory the allocator keeps after tracing stays resident, so a
timed peak is never below the warm-up's resident memory.
Other processes on the same cores slow every figure: read the times with
`load_average` in mind.

**Throughput against the FLOP count** (`throughput`): the Tx HighRes head
at the paper's shapes (`R = 64` proposals, `D = 128`, 2 heads x 3
layers, Mixed_4f features `[1, 16, 25, 25, 832]`), forward (inference
mode) and training step (forward + backward as in `timing`), float32
without XLA, in one subprocess together with a dense float32
`tf.linalg.matmul` of `--gemm_size` (2048) squared matrices; the three
alternate call by call (`timing.median_times`), so load from other
processes slows them alike. Achieved GFLOP/s = counted FLOPs (the
analytic counter's forward FLOPs; 3 x those for the training step, see
`throughput_figures`) / median time; the GEMM's 2 n^3 FLOPs / its time
is the machine's practical float32 peak, and the fraction achieved / peak
says how far the head is from it. The JSON's `rows` hold both figures for
the `make bench` table.

Usage:
    python benchmarks/action_transformer.py
        [--sections counts,timing,throughput] [--iterations 3]
        [--warmup 1] [--quick] [--no_profiler] [--gemm_size 2048]
        [--bench] [--output result.json]

`--bench` (the `make bench` preset) runs `counts` and `throughput` with 5
timed calls after 1 untimed.

`--quick` times only `R = 64` with one timed call and skips the profiler.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import timing  # noqa: E402

# The paper's setting: I3D Mixed_4f of a 64 x 400 x 400 clip.
CLIP_SHAPE = (64, 400, 400, 3)
FEATURE_SHAPE = (16, 25, 25, 832)
NUM_CLASSES = 80
TABLE1_PROPOSALS = 64
# Table 1 of the paper: (million parameters, GFLOPs), R = 64.
TABLE1 = {"i3d": (16.2, 6.5), "tx_high_res": (19.3, 39.6),
          "tx_low_res": (13.9, 33.2)}
# name -> (head, query) of `ActionTransformerBoxHead`.
HEAD_CONFIGS = {"i3d": ("i3d", "high_res"),
                "tx_high_res": ("tx", "high_res"),
                "tx_low_res": ("tx", "low_res"),
                "tx_i3d_high_res": ("tx_i3d", "high_res")}
# Timing cases: (module, proposals).
TIMING_CASES = (("unit", 64), ("unit", 300), ("tx", 64), ("tx", 300),
                ("i3d", 64))
PRODUCT_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3",
               "Conv2D", "Conv3D")

TABLE1_NOTE = (
    "Table 1's params match whole-model counts (trunk + RPN + head: I3D "
    "head 16.23 M vs 16.2 M; the Tx heads' unstated widths are smaller "
    "here) and its GFLOPs head-only counts at R = 64 (the trunk alone is "
    "~700 GFLOPs); the Tx GFLOPs are closer with a multiply-add counted as "
    "2 FLOPs than as 1 (MACs); the I3D head's 6.5 GFLOPs is not reproduced "
    "by any reading of the architecture (80 GFLOPs here; see the module "
    "docstring)")
ELEMENTWISE_NOTE = (
    "other FLOPs per element: bias add 1, ReLU/ReLU6 1, frozen batch norm "
    "2 (folded scale and offset), LayerNorm 7, softmax 5 (max, subtract, "
    "exp, sum, divide), residual add 1, attention scaling 1, max pool "
    "window-1 comparisons per output, mean 1 per input, crop-and-resize 9 "
    "per output sample (3 bilinear lerps: subtract, multiply, add); "
    "dropout 0 (inference); gathers, reshapes, concatenations and box "
    "arithmetic O(R * crop) are not counted")


# ------------------------------------------------------------ the counter
@dataclasses.dataclass
class Cost:
    """Forward cost and weights of a piece of a network.

    Attributes:
        macs: multiply-accumulates of matrix products and convolutions.
        other_flops: all other floating-point operations (`ELEMENTWISE_NOTE`).
        params: trainable weights.
        non_trainable: non-trainable weights (frozen batch-norm statistics).
    """

    macs: int = 0
    other_flops: int = 0
    params: int = 0
    non_trainable: int = 0

    @property
    def flops(self):
        """`2 * macs + other_flops`."""
        return 2 * self.macs + self.other_flops

    def __add__(self, other):
        return Cost(self.macs + other.macs,
                    self.other_flops + other.other_flops,
                    self.params + other.params,
                    self.non_trainable + other.non_trainable)


def _prod(values):
    out = 1
    for v in values:
        if v is None:
            raise ValueError("the FLOP counter needs concrete shapes, got "
                             f"a None dimension in {values}")
        out *= int(v)
    return out


def dense_cost(input_shape, units, use_bias=True, activation=None):
    """Cost of a Dense layer (`units` outputs) on `[..., C]` inputs."""
    rows, channels = _prod(input_shape[:-1]), int(input_shape[-1])
    out = rows * units
    other = (out if use_bias else 0) + (out if activation else 0)
    return Cost(macs=rows * channels * units, other_flops=other,
                params=channels * units + (units if use_bias else 0))


def conv_cost(output_shape, kernel_size, in_channels, use_bias=True,
              activation=None):
    """Cost of a convolution producing `output_shape` (any rank).

    Every output element is a dot product over the whole kernel window
    (`prod(kernel_size) * in_channels`); zeros of SAME padding are counted,
    as usual (and as TensorFlow's profiler does).
    """
    window = _prod(kernel_size) * int(in_channels)
    out = _prod(output_shape)
    filters = int(output_shape[-1])
    other = (out if use_bias else 0) + (out if activation else 0)
    return Cost(macs=out * window, other_flops=other,
                params=window * filters + (filters if use_bias else 0))


def attention_cost(batch, queries, cells, key_dim):
    """Cost of `softmax(Q K^T / sqrt(D)) V` for `queries` x `cells`.

    The two einsums are `queries * cells * key_dim` MACs each (per clip);
    the scaling of `Q` is one multiply per query element, the softmax 5
    FLOPs per logit.
    """
    logits = batch * queries * cells
    return Cost(macs=2 * logits * key_dim,
                other_flops=batch * queries * key_dim + 5 * logits)


def layer_norm_cost(shape):
    """Cost of a LayerNorm over the last axis (with scale and offset)."""
    return Cost(other_flops=7 * _prod(shape), params=2 * int(shape[-1]))


def crop_and_resize_cost(boxes, crop_size, pool_size, channels):
    """Cost of bilinear crops of `boxes` to `crop_size`^2, then max pool.

    `boxes` counts every crop (batch x proposals); `channels` the values
    interpolated per sample (T' x C for the tubes of the I3D head).
    """
    samples = boxes * crop_size * crop_size * channels
    other = 9 * samples
    if pool_size > 1:
        side = (crop_size - pool_size) // pool_size + 1
        other += boxes * side * side * channels * (pool_size ** 2 - 1)
    return Cost(other_flops=other)


class FlopCounter:
    """Analytic forward cost of a Keras network, layer by layer.

    `count(model, input_shapes)` walks a functional model's graph with
    concrete shapes (every layer's output shape comes from Keras' own
    shape inference) and adds up a `Cost` per leaf layer; nested models,
    `TimeDistributed` and the package's layers of the Action Transformer
    (location embedding, centre frame, RoI pooling, query preprocessors,
    Tx units and head, I3D `Unit3D`, RPN head) are expanded. A layer type
    it does not know raises `TypeError`, so no layer is silently skipped.

    Attributes:
        entries: list of `(path, kind, Cost)`, one per counted operation
            (`path` joins the layer names from the top model, `kind` is
            "dense", "conv", "attention", "norm", "pool", "crop", ...).
    """

    def __init__(self):
        self.entries = []

    # --------------------------------------------------------- results
    def total(self):
        """The sum of every entry's `Cost`."""
        out = Cost()
        for _, _, cost in self.entries:
            out = out + cost
        return out

    def by_group(self, depth=1):
        """`{path prefix of `depth` names: Cost}`, in first-seen order."""
        groups = {}
        for path, _, cost in self.entries:
            key = "/".join(path.split("/")[:depth])
            groups[key] = groups.get(key, Cost()) + cost
        return groups

    def by_kind(self):
        """`{kind: Cost}`."""
        kinds = {}
        for _, kind, cost in self.entries:
            kinds[kind] = kinds.get(kind, Cost()) + cost
        return kinds

    def _add(self, path, kind, cost):
        self.entries.append((path, kind, cost))

    # ------------------------------------------------------------ walk
    def count(self, model, input_shapes, prefix=""):
        """Counts a functional Keras model on inputs of `input_shapes`.

        Args:
            model: a functional `keras.Model` (or `keras.Sequential`).
            input_shapes: one shape tuple per model input (a list).
            prefix: path prefix of the entries.

        Returns:
            The output `KerasTensor`s (concrete shapes) as the model
            returns them.
        """
        import keras

        inputs = [keras.KerasTensor(tuple(s), dtype="float32")
                  for s in input_shapes]

        def operation_fn(op):
            def run(*args, **kwargs):
                return self._layer(op, args, kwargs, prefix)
            return run

        # Keras' own graph traversal (that of `Functional.call`).
        return model._run_through_graph(inputs, operation_fn=operation_fn)

    def _layer(self, layer, args, kwargs, prefix):
        """Adds the cost of `layer(*args, **kwargs)`; returns its output."""
        import keras

        from tfaction.layers.action_transformer_head import (
            ActionTransformerHead)
        from tfaction.layers.action_transformer_unit import (
            ActionTransformerUnit)
        from tfaction.layers.box_axis import BoxAxis
        from tfaction.layers.centre_frame import CentreFrame
        from tfaction.layers.frozen_batch_normalization import (
            FrozenBatchNormalization)
        from tfaction.layers.high_res_query import HighResQuery
        from tfaction.layers.location_embedding import LocationEmbedding
        from tfaction.layers.low_res_query import LowResQuery
        from tfaction.layers.region_proposal_head import RegionProposalHead
        from tfaction.layers.roi_pool import RoIPool
        from tfaction.layers.spatio_temporal_roi_pool import (
            SpatioTemporalRoIPool)
        from tfaction.layers.unit3d import Unit3D

        path = f"{prefix}{layer.name}"
        shapes = [tuple(a.shape) for a in _flatten(args)]
        kwargs = {k: v for k, v in kwargs.items() if k != "training"}

        if isinstance(layer, keras.layers.TimeDistributed):
            # [B, S, ...] -> the inner layer on [B * S, ...].
            outer = shapes[0]
            inner = (outer[0] * outer[1],) + outer[2:]
            out = self._inner(layer.layer, inner, path + "/")
            return keras.KerasTensor(outer[:2] + tuple(out.shape[1:]))
        if isinstance(layer, keras.Model):
            return self.count(layer, shapes, path + "/")

        out = layer.compute_output_spec(*args, **kwargs)
        out_shapes = [tuple(o.shape) for o in _flatten(out)]
        if isinstance(layer, keras.layers.InputLayer):
            return out
        if isinstance(layer, keras.layers.Dense):
            self._add(path, "dense", dense_cost(
                shapes[0], layer.units, layer.use_bias,
                _is_nonlinear(layer.activation)))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv3D)):
            self._add(path, "conv", conv_cost(
                out_shapes[0], layer.kernel_size, shapes[0][-1],
                layer.use_bias, _is_nonlinear(layer.activation)))
        elif isinstance(layer, Unit3D):
            self._unit3d(layer, shapes[0], out_shapes[0], path)
        elif isinstance(layer, FrozenBatchNormalization):
            self._add(path, "norm", _batch_norm_cost(layer, shapes[0]))
        elif isinstance(layer, (keras.layers.MaxPooling2D,
                                keras.layers.MaxPooling3D)):
            self._add(path, "pool", Cost(other_flops=_prod(out_shapes[0]) * (
                _prod(layer.pool_size) - 1)))
        elif isinstance(layer, (keras.layers.GlobalAveragePooling2D,
                                keras.layers.GlobalAveragePooling3D)):
            self._add(path, "pool", Cost(other_flops=_prod(shapes[0])
                                         + _prod(out_shapes[0])))
        elif isinstance(layer, (keras.layers.Concatenate,
                                keras.layers.Reshape, keras.layers.Flatten,
                                keras.layers.Dropout, CentreFrame,
                                BoxAxis)):
            pass  # data movement, or identity at inference
        elif isinstance(layer, keras.layers.Activation):
            if _is_nonlinear(layer.activation):
                self._add(path, "activation",
                          Cost(other_flops=_prod(out_shapes[0])))
        elif isinstance(layer, LocationEmbedding):
            self._location_embedding(layer, shapes[0], path)
        elif isinstance(layer, SpatioTemporalRoIPool):
            features, boxes = shapes
            self._add(path, "crop", crop_and_resize_cost(
                boxes[0] * boxes[1], layer.crop_size, layer.pool_size,
                features[1] * features[-1]))
        elif isinstance(layer, RoIPool):
            features, boxes = shapes
            self._add(path, "crop", crop_and_resize_cost(
                boxes[0] * boxes[1], layer.crop_size, layer.pool_size,
                features[-1]))
        elif isinstance(layer, HighResQuery):
            self._high_res(layer, shapes[0], path)
        elif isinstance(layer, LowResQuery):
            self._add(path + "/mean", "pool", Cost(
                other_flops=_prod(shapes[0]) + _prod(shapes[0][:-3]) *
                shapes[0][-1]))
            self._add(path + "/projection", "dense", dense_cost(
                shapes[0][:-3] + shapes[0][-1:], layer.units))
        elif isinstance(layer, ActionTransformerHead):
            self._tx_head(layer, shapes[0], shapes[1], path)
        elif isinstance(layer, ActionTransformerUnit):
            self.unit(layer, shapes[0], shapes[1], path)
        elif isinstance(layer, RegionProposalHead):
            self._rpn(layer, shapes[0], path)
        else:
            raise TypeError(f"FlopCounter: no rule for layer {layer.name!r} "
                            f"of type {type(layer).__name__}")
        return out

    def _inner(self, layer, shape, prefix):
        """Counts `layer` (a model or a leaf) on one input of `shape`."""
        import keras

        if isinstance(layer, keras.Model):
            return self.count(layer, [shape], prefix)
        return self._layer(layer, (keras.KerasTensor(shape),), {},
                           prefix)

    # ---------------------------------------------------- layer rules
    def _unit3d(self, layer, in_shape, out_shape, path):
        self._add(path + "/conv_3d", "conv", conv_cost(
            out_shape, layer.kernel_size, in_shape[-1], layer.use_bias))
        if layer.batch_norm is not None:
            self._add(path + "/batch_norm", "norm",
                      _batch_norm_cost(layer.batch_norm, out_shape))
        if layer.activation is not None and _is_nonlinear(layer.activation):
            self._add(path + "/activation", "activation",
                      Cost(other_flops=_prod(out_shape)))

    def _location_embedding(self, layer, shape, path):
        _, steps, height, width, _ = shape
        for name, rows, coords, units in (
                ("spatial", height * width, 2, layer.spatial_units),
                ("temporal", steps, 1, layer.temporal_units)):
            self._add(f"{path}/{name}_hidden", "dense", dense_cost(
                (rows, coords), units[0], activation=True))
            self._add(f"{path}/{name}_output", "dense",
                      dense_cost((rows, units[0]), units[1]))

    def _high_res(self, layer, shape, path):
        self._add(path + "/reduction", "dense", dense_cost(
            shape, layer.reduction_channels,
            activation=_is_nonlinear(layer.reduction_activation)))
        flat = shape[:-3] + (shape[-3] * shape[-2] *
                             layer.reduction_channels,)
        self._add(path + "/projection", "dense",
                  dense_cost(flat, layer.units))

    def _tx_head(self, layer, query_shape, context_shape, path):
        shape = query_shape
        for index, unit in enumerate(layer.transformer_units):
            self.unit(unit, shape, context_shape, f"{path}/{unit.name}")
            if (index + 1) % layer.num_heads == 0:  # end of a layer
                shape = shape[:-1] + (layer.num_heads * layer.key_dim,)

    def unit(self, unit, query_shape, context_shape, path):
        """Adds one `ActionTransformerUnit` on `[B, R, Dq]`, `[B, T, H, W,
        C]` (entries `.../query`, `key`, `value`, `attention`, `*_norm`,
        `ffn_*`, `residual`)."""
        batch, queries = query_shape[0], query_shape[1]
        cells = _prod(context_shape[1:-1])
        d, f = unit.key_dim, unit.ffn_units
        out = (batch, queries, d)
        context = (batch, cells, context_shape[-1])
        self._add(path + "/query", "dense", dense_cost(query_shape, d))
        self._add(path + "/key", "kv_projection",
                  dense_cost(context, d, use_bias=False))
        self._add(path + "/value", "kv_projection", dense_cost(context, d))
        self._add(path + "/attention", "attention",
                  attention_cost(batch, queries, cells, d))
        self._add(path + "/residual", "residual",
                  Cost(other_flops=2 * _prod(out)))
        self._add(path + "/attention_norm", "norm", layer_norm_cost(out))
        self._add(path + "/ffn_hidden", "dense",
                  dense_cost(out, f, activation=True))
        self._add(path + "/ffn_output", "dense",
                  dense_cost((batch, queries, f), d))
        self._add(path + "/output_norm", "norm", layer_norm_cost(out))

    def _rpn(self, layer, shape, path):
        hidden = shape[:-1] + (layer.filters,)
        self._add(path + "/rpn_conv", "conv", conv_cost(
            hidden, (layer.kernel_size,) * 2, shape[-1], activation=True))
        a = layer.num_anchors_per_location
        self._add(path + "/objectness_conv", "conv",
                  conv_cost(shape[:-1] + (a,), (1, 1), layer.filters))
        self._add(path + "/box_conv", "conv",
                  conv_cost(shape[:-1] + (4 * a,), (1, 1), layer.filters))


def _flatten(structure):
    """The tensors (anything with a shape) of a nested structure."""
    import keras

    return [x for x in keras.tree.flatten(structure) if hasattr(x, "shape")]


def _is_nonlinear(activation):
    if activation is None:
        return False
    import keras

    return keras.activations.serialize(activation) not in ("linear", None)


def _batch_norm_cost(layer, shape):
    channels = int(shape[-1])
    params = channels * (int(layer.center) + int(layer.scale))
    return Cost(other_flops=2 * _prod(shape), params=params,
                non_trainable=2 * channels)


def count_cost(model, input_shapes):
    """Analytic forward cost of `model` on `input_shapes`.

    Args:
        model: a functional Keras model (e.g. an `ActionTransformerBoxHead`
            or I3D trunk).
        input_shapes: list of concrete shapes, one per model input.

    Returns:
        The `FlopCounter` (see `total`, `by_group`, `by_kind`).

    Example:

    >>> import keras
    >>> x = keras.Input((5,))
    >>> model = keras.Model(x, keras.layers.Dense(3)(x))
    >>> counter = count_cost(model, [(2, 5)])
    >>> counter.total().macs, counter.total().params
    (30, 18)
    """
    counter = FlopCounter()
    counter.count(model, input_shapes)
    return counter


# ------------------------------------------------------ the counts section
def build_head(config, num_classes=NUM_CLASSES, channels=FEATURE_SHAPE[-1],
               **kwargs):
    """The `ActionTransformerBoxHead` of `HEAD_CONFIGS[config]`."""
    from tfaction.models.action_transformer.box_head import (
        ActionTransformerBoxHead)

    head, query = HEAD_CONFIGS[config]
    return ActionTransformerBoxHead(num_classes, feature_channels=channels,
                                    head=head, query=query, **kwargs)


def head_input_shapes(proposals, feature_shape=FEATURE_SHAPE, batch=1):
    """`[features, boxes]` shapes of a box head."""
    return [(batch,) + tuple(feature_shape), (batch, proposals, 4)]


def keras_params(model):
    """`(trainable, all)` weight counts from Keras."""
    import numpy as np

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, int(model.count_params())


def _summary(cost):
    return {"gmacs": round(cost.macs / 1e9, 3),
            "gflops": round(cost.flops / 1e9, 3),
            "gflops_products_only": round(2 * cost.macs / 1e9, 3)}


def profile_flops(model, input_shapes):
    """TensorFlow profiler FLOPs of `model`'s forward, by op type.

    Freezes the inference-mode forward at the given static shapes into a
    graph of constants and runs `tf.compat.v1.profiler.profile` with the
    `float_operation()` options (FLOPs of the ops that register a "flops"
    statistic; the others count 0).

    Returns:
        `(total_float_ops, {op type: float_ops})`.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    fn = tf.function(lambda *xs: model(list(xs), training=False))
    concrete = fn.get_concrete_function(
        *[tf.TensorSpec(s, tf.float32) for s in input_shapes])
    frozen = convert_variables_to_constants_v2(concrete)
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name="")
    options = (tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation())
        .with_empty_output().build())
    result = tf.compat.v1.profiler.profile(graph, cmd="op", options=options)
    # The "op" view nests the op types in a chain (each node's
    # `total_float_ops` includes those below it); `float_ops` is its own.
    by_op, stack = {}, list(result.children)
    while stack:
        node = stack.pop()
        by_op[node.name] = by_op.get(node.name, 0) + int(node.float_ops)
        stack.extend(node.children)
    return int(result.total_float_ops), by_op


def run_counts(args):
    """The `counts` section: params and GFLOPs of each head; a dict."""
    import keras

    from tfaction.models.action_transformer.model import ActionTransformer

    r = args.proposals
    out = {}
    whole_models = {}
    for name in HEAD_CONFIGS:
        head, query = HEAD_CONFIGS[name]
        keras.utils.set_random_seed(0)
        model = ActionTransformer(args.num_classes, head=head, query=query,
                                  num_proposals=r)
        whole_models[name] = model
        box_head = model.box_head
        counter = count_cost(box_head, head_input_shapes(r))
        total = counter.total()
        head_trainable, head_all = keras_params(box_head)
        model_trainable, model_all = keras_params(model)
        row = {
            "head_params": head_trainable,
            "head_params_all": head_all,
            "head_params_analytic": total.params,
            "head_params_analytic_all": total.params + total.non_trainable,
            "params_match_keras": (
                total.params == head_trainable
                and total.params + total.non_trainable == head_all),
            "model_params": model_trainable,
            "model_params_all": model_all,
            **_summary(total),
            "by_layer_gmacs": {k: round(v.macs / 1e9, 4) for k, v in
                               counter.by_group().items() if v.macs},
            "by_kind_gflops": {k: round(v.flops / 1e9, 4) for k, v in
                               counter.by_kind().items() if v.flops},
        }
        if not args.no_profiler and name in TABLE1:
            total_ops, by_op = profile_flops(box_head, head_input_shapes(r))
            products = sum(v for k, v in by_op.items() if k in PRODUCT_OPS)
            # TensorFlow's `Einsum` op has no "flops" statistic: the
            # profiler misses the two attention products.
            attention = counter.by_kind().get("attention", Cost()).macs
            row["profiler"] = {
                "gflops": round(total_ops / 1e9, 3),
                "gflops_products": round(products / 1e9, 3),
                "gflops_attention_einsums_missed": round(
                    2 * attention / 1e9, 3),
                "products_match_analytic": (
                    products == 2 * (total.macs - attention)),
                "by_op_gflops": {k: round(v / 1e9, 4) for k, v in
                                 sorted(by_op.items(), key=lambda kv: -kv[1])
                                 if v >= 1e6},
            }
        out[name] = row

    # Context: what the trunk and the RPN cost (symbolic, never run).
    model = whole_models["i3d"]
    trunk = count_cost(model.trunk, [(1,) + CLIP_SHAPE]).total()
    rpn = FlopCounter()
    rpn._rpn(model.rpn_head, (1,) + FEATURE_SHAPE[1:], "rpn_head")
    rpn = rpn.total()
    trunk_trainable, trunk_all = keras_params(model.trunk)
    rpn_params = keras_params(model.rpn_head)[0]
    context = {
        "trunk_params": trunk_trainable, "trunk_params_all": trunk_all,
        "trunk_params_analytic": trunk.params,
        "rpn_params": rpn_params, "rpn_params_analytic": rpn.params,
        "trunk": _summary(trunk), "rpn": _summary(rpn)}

    table1 = {}
    for name, (params_m, gflops) in TABLE1.items():
        row = out[name]
        table1[name] = {
            "paper_params_m": params_m,
            "head_params_m": round(row["head_params"] / 1e6, 2),
            "model_params_m": round(row["model_params"] / 1e6, 2),
            "paper_gflops": gflops,
            "gflops": row["gflops"],
            "gmacs": row["gmacs"],
            # > 1: Table 1 is larger than this port's figure.
            "paper_over_model_params": round(
                params_m * 1e6 / row["model_params"], 2),
            "paper_over_head_params": round(
                params_m * 1e6 / row["head_params"], 2),
            "paper_over_gflops": round(gflops / row["gflops"], 2),
            "paper_over_gmacs": round(gflops / row["gmacs"], 2),
        }
    return {"heads": out, "trunk_and_rpn": context, "table1": table1,
            "table1_note": TABLE1_NOTE, "flop_conventions": ELEMENTWISE_NOTE}


# ----------------------------------------------------- the timing section
def _proc_status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_rss_peak():
    """Resets VmHWM to VmRSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _timing_setup(module, proposals, num_classes, seed=0):
    """`(forward, train_step)` zero-argument callables for one case."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tfaction.layers.action_transformer_unit import ActionTransformerUnit

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    features = tf.constant(rng.standard_normal((1,) + FEATURE_SHAPE,
                                               dtype=np.float32))
    if module == "unit":
        layer = ActionTransformerUnit(key_dim=128, ffn_units=128,
                                      dropout=0.3)
        context = tf.constant(rng.standard_normal(
            (1,) + FEATURE_SHAPE[:-1] + (FEATURE_SHAPE[-1] + 16,),
            dtype=np.float32))
        query = tf.constant(rng.standard_normal((1, proposals, 128),
                                                dtype=np.float32))
        inputs = [query, context]
        cot = [tf.constant(rng.standard_normal((1, proposals, 128),
                                               dtype=np.float32))]

        def call(xs, training):
            return [layer(xs[0], xs[1], training=training)]
    else:
        layer = build_head("tx_high_res" if module == "tx" else "i3d",
                           num_classes=num_classes)
        y1x1 = rng.uniform(0.0, 0.6, (1, proposals, 2))
        hw = rng.uniform(0.1, 0.4, (1, proposals, 2))
        boxes = tf.constant(np.concatenate([y1x1, y1x1 + hw], -1),
                            tf.float32)
        inputs = [features, boxes]
        cot = [tf.constant(rng.standard_normal(
            (1, proposals, num_classes + 1), dtype=np.float32)),
            tf.constant(rng.standard_normal((1, proposals, 4),
                                            dtype=np.float32))]

        def call(xs, training):
            out = layer(xs, training=training)
            return [out["class_logits"], out["box_deltas"]]
    if module == "unit":  # (the box heads are built when constructed)
        layer.build(tuple(inputs[0].shape), tuple(inputs[1].shape))
    variables = list(layer.trainable_variables)
    # Gradients reach the query and context (Tx unit) or the features
    # (box heads): the trunk is fine-tuned end to end.
    watched = inputs if module == "unit" else inputs[:1]

    @tf.function(jit_compile=False)
    def forward(xs):
        return tf.add_n([tf.reduce_sum(o) for o in call(xs, False)])

    @tf.function(jit_compile=False)
    def train_step(xs):
        with tf.GradientTape() as tape:
            tape.watch(watched)
            outs = call(xs, True)
            loss = tf.add_n([tf.reduce_sum(o * c) for o, c in
                             zip(outs, cot)])
        grads = tape.gradient(loss, variables + watched)
        return loss, tf.linalg.global_norm(grads)

    def run_forward():
        float(forward(inputs))

    def run_train():
        float(train_step(inputs)[1])

    params = sum(int(np.prod(v.shape)) for v in variables)
    return run_forward, run_train, params


def _timing_child(args):
    """One timing case in this (fresh) process; prints 'RESULT {json}'."""
    module, proposals = args.child_module, args.child_proposals
    rss_start = _proc_status_kb("VmRSS")
    run_forward, run_train, params = _timing_setup(module, proposals,
                                                   args.num_classes)
    result = {"module": module, "proposals": proposals, "params": params}
    rss0 = _proc_status_kb("VmRSS")
    result["rss_import_mb"] = round(rss_start / 1024, 1)
    result["rss_mb"] = round(rss0 / 1024, 1)
    for phase, fn in (("fwd", run_forward), ("train", run_train)):
        # Warm-up (the first call traces): peak RSS with tracing included.
        reset = _reset_rss_peak()
        for rep in range(args.warmup):
            start = time.perf_counter()
            fn()
            if rep == 0:
                result[f"{phase}_first_call_s"] = round(
                    time.perf_counter() - start, 3)
        result[f"peak_{phase}_first_mb"] = round(
            _proc_status_kb("VmHWM") / 1024, 1)
        # Timed calls: their own peak (the high-water mark reset first).
        reset = _reset_rss_peak() and reset
        t = timing.median_times([fn], args.iterations, 0)[0]
        result[f"{phase}_ms"] = round(t * 1e3, 1)
        result[f"peak_{phase}_mb"] = round(
            _proc_status_kb("VmHWM") / 1024, 1)
        result[f"peak_{phase}_reset"] = reset
    print("RESULT " + json.dumps(result))


def run_timing(args):
    """The `timing` section: one subprocess per case; a dict."""
    cases = [c for c in TIMING_CASES if not args.quick or c[1] == 64]
    common = timing.flag_args(args, ("iterations", "warmup", "num_classes"))
    return {f"{module}_r{proposals}": timing.case_row(
        __file__, ["--child_module", module, "--child_proposals",
                   str(proposals), *common],
        f"timing case {module} R={proposals}", drop=("module", "proposals"))
        for module, proposals in cases}


# ------------------------------------------------- the throughput section
def gemm_call(size, seed=0):
    """A zero-argument dense float32 `size` x `size` matrix product.

    Each call runs one `tf.linalg.matmul` (2 x size^3 FLOPs) in a
    `tf.function` and waits for it; large enough products keep every core
    busy, so their rate is the machine's practical float32 peak.

    Returns:
        `(call, flops)`.
    """
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    a, b = (tf.constant(rng.standard_normal((size, size), dtype=np.float32))
            for _ in range(2))
    product = tf.function(lambda: tf.linalg.matmul(a, b)[0, 0],
                          jit_compile=False)

    def call():
        float(product())

    return call, 2 * size ** 3


def throughput_figures(forward_flops, forward_s, train_s, gemm_flops,
                       gemm_s):
    """Achieved GFLOP/s of the head's forward and training step and their
    fraction of the GEMM rate.

    The training step's FLOPs are 3 x the forward's: every product's
    backward pass forms the gradients of both of its operands (weights and
    activations; the features are differentiated too), each as many MACs as
    the forward product, and the elementwise operations (under 1 % of the
    count) are given the same factor.

    Args:
        forward_flops: counted forward FLOPs (`Cost.flops`).
        forward_s, train_s: median seconds of a forward / training call.
        gemm_flops, gemm_s: FLOPs and median seconds of a GEMM call.

    Returns:
        Dict of GFLOP/s and fractions of the GEMM rate.

    Example:

    >>> throughput_figures(2e9, 0.1, 0.5, 4e9, 0.1)["train_fraction"]
    0.3
    """
    gemm = gemm_flops / gemm_s / 1e9
    fwd = forward_flops / forward_s / 1e9
    train = 3 * forward_flops / train_s / 1e9
    return {"forward_gflops": round(forward_flops / 1e9, 3),
            "train_gflops": round(3 * forward_flops / 1e9, 3),
            "forward_gflops_per_s": round(fwd, 2),
            "train_gflops_per_s": round(train, 2),
            "gemm_gflops_per_s": round(gemm, 2),
            "forward_fraction": round(fwd / gemm, 3),
            "train_fraction": round(train / gemm, 3)}


def _throughput_child(args):
    """The throughput case in this (fresh) process; prints 'RESULT
    {json}'."""
    run_forward, run_train, params = _timing_setup("tx", args.proposals,
                                                   args.num_classes)
    counted = count_cost(build_head("tx_high_res",
                                    num_classes=args.num_classes),
                         head_input_shapes(args.proposals)).total()
    gemm, gemm_flops = gemm_call(args.gemm_size)
    first = []
    # The three alternate call by call: load from other processes slows
    # them alike, so the fractions hold within the run.
    fwd_s, train_s, gemm_s = timing.median_times(
        [run_forward, run_train, gemm], args.iterations, args.warmup, first)
    result = {"head": "tx_high_res", "proposals": args.proposals,
              "params": params, "gemm_size": args.gemm_size,
              "forward_ms": round(fwd_s * 1e3, 1),
              "train_ms": round(train_s * 1e3, 1),
              "gemm_ms": round(gemm_s * 1e3, 1),
              "first_call_s": dict(zip(("forward", "train", "gemm"),
                                       first)),
              **throughput_figures(counted.flops, fwd_s, train_s,
                                   gemm_flops, gemm_s)}
    print("RESULT " + json.dumps(result))


def run_throughput(args):
    """The `throughput` section: one subprocess; a dict."""
    return timing.case_row(
        __file__, ["--child_module", "throughput", *timing.flag_args(
            args, ("iterations", "warmup", "num_classes", "proposals",
                   "gemm_size"))], "throughput case", drop=())


def throughput_rows(figures):
    """The `make bench` rows of the throughput section.

    Args:
        figures: the section's dict (`run_throughput`).

    Returns:
        Two rows (forward; forward + backward): achieved GFLOP/s against
        the float32 GEMM rate of the same run, ratio = the fraction.
    """
    shape = (f"Tx HighRes head, R = {figures['proposals']}, D 128, 2 heads "
             f"x 3 layers, Mixed_4f [1, 16, 25, 25, 832]")
    gemm = figures["gemm_gflops_per_s"]
    n = figures["gemm_size"]
    reference = (f"dense float32 tf.linalg.matmul, {n} x {n} by {n} x {n}, "
                 f"same run")
    return [{"family": "Video Action Transformer",
             "measure": f"{what}, counted GFLOPs / time ({shape})",
             "ours": figures[f"{key}_gflops_per_s"], "reference": gemm,
             "unit": "GFLOP/s",
             # From the row's own (rounded) figures, as the report checks.
             "ratio": round(figures[f"{key}_gflops_per_s"] / gemm, 2),
             "reference_name": reference, "target": None, "met": None}
            for key, what in (("forward", "head forward"),
                              ("train", "head training step (fwd + bwd)"))]


# ------------------------------------------------------------------ main
SECTIONS = ("counts", "timing", "throughput")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated subset of "
                             "counts,timing,throughput")
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--iterations", type=int, default=3,
                        help="timed calls per phase")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed calls per phase (the first traces)")
    parser.add_argument("--proposals", type=int, default=TABLE1_PROPOSALS,
                        help="R for the counts and the throughput "
                             "(Table 1: 64)")
    parser.add_argument("--num_classes", type=int, default=NUM_CLASSES)
    parser.add_argument("--quick", action="store_true",
                        help="time R = 64 only, one timed call, no "
                             "profiler")
    parser.add_argument("--no_profiler", action="store_true",
                        help="skip the TensorFlow profiler cross-check")
    parser.add_argument("--gemm_size", type=int, default=2048,
                        help="side of the float32 GEMM whose rate the "
                             "throughput section compares with")
    parser.add_argument("--bench", action="store_true",
                        help="the `make bench` preset: counts (with the "
                             "profiler) and throughput, 5 timed calls")
    parser.add_argument("--child_module",
                        choices=("unit", "tx", "i3d", "throughput"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--child_proposals", type=int,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bench:
        args.sections, args.iterations, args.warmup = (
            "counts,throughput", 5, 1)
    if args.quick:
        args.iterations = min(args.iterations, 1)
        args.no_profiler = True
    sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if args.child_module == "throughput":
        return _throughput_child(args)
    if args.child_module:
        return _timing_child(args)
    start = time.perf_counter()
    loads = [timing.load_average()]
    result = {
        "benchmark": "action_transformer",
        "features": [1, *FEATURE_SHAPE],
        "clip": [1, *CLIP_SHAPE],
        "num_classes": args.num_classes,
    }
    if "counts" in sections:
        result["counts"] = run_counts(args)
        loads.append(timing.load_average())
    if "timing" in sections:
        result["timing"] = run_timing(args)
        result["iterations"] = args.iterations
        result["warmup"] = args.warmup
        loads.append(timing.load_average())
    if "throughput" in sections:
        result["throughput"] = run_throughput(args)
        result["rows"] = throughput_rows(result["throughput"])
        result["iterations"] = args.iterations
        result["warmup"] = args.warmup
        loads.append(timing.load_average())
    result.update(timing.run_facts(start, loads, devices=False))
    return timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
