"""Benchmark of ActionFormer on CPU, against the authors' code; one JSON line.

Shapes (`--shapes`, `benchmarks/actionformer_shapes.py`) mirror the
authors' configs: `thumos` (`thumos_i3d.yaml`: I3D 2048-d, 20 classes,
embed/head 512, 4 heads, arch (2, 2, 5), window 19, T = 2304, training
batch 2; 29,251,612 parameters, checked), `anet` (`anet_i3d.yaml`: 1 class,
embed 256, windows 7 with a global last level, absolute position encoding,
T = 192, batch 16) and `ego4d` (`ego4d_slowfast_omnivore_egovlp.yaml`:
three feature sets projected to 1024 channels, 110 classes, 16 heads, 8
levels, T = 1024, batch 2); random weights. Measured per shape, with
`jit_compile` off (and on, `--configs`):

* training, the authors' batch at `T = max_seq_len` (even rows full, odd
  rows 78 % valid, 8 GT segments each): (a) forward + backward of the full
  loss: `assign_point_labels`, `sigmoid_focal_loss` (with the config's
  label smoothing) + the config's weight x `ctr_diou_loss_1d`, divided by
  the loss normaliser (EMA of the positive count, updated before use);
  (b) the full optimiser step: (a) + global-norm clip 1.0 + AdamW (weight
  decay 0.05 on kernels only, warm-up/cosine learning rate) + a weight EMA
  (0.999) update;
* the first training step of a fresh process: tracing alone, and tracing +
  graph optimisation + the step;
* inference, batch 1, `T = max_seq_len`: (c) network only; (d) network +
  the recipe's evaluation post-processing with the config's `test_cfg`
  (`VideoPostprocessor`: `decode_candidates` traced once, host Soft-NMS
  (Gaussian; per class, or class-agnostic with segment voting) and
  `grid_to_seconds`);
* peak memory: each configuration (train / inference x jit off / on) runs
  in its own subprocess, which reports `resource.getrusage` `ru_maxrss`
  (before the contraction floor below), and the same right after importing
  TensorFlow and Keras: the framework's own share;
* the contraction floor of (a) and (c): every matrix product and einsum of
  the traced graph, run back to back in one graph
  (`op_floor.contraction_floor`). No schedule of the same products beats it
  on this machine, so floor / the authors' time bounds from below the ratio
  reachable in float32 without changing the arithmetic, and what is left of
  a target once the floor is paid is what the rest of the step must fit.
  The authors' side splits (a) and (c) by `torch.profiler`
  (`benchmarks/actionformer_torch.py`), ours by TensorFlow's profiler
  (`op_profile.contraction_time`: the wall time during which at least one
  of our products runs inside the step): the rows compare the floor and
  our measured products with their products, and the two sides' time
  outside them.

Times are the median of `--iterations` (inference:
`--infer_iterations`, default the same) timed iterations after `--warmup`
untimed ones; (a) and (b), like (c) and (d), run alternately in the same
process so that load from other processes hits both alike.

With `--reference_repo=PATH` (a clone of happyharrycn/actionformer_release
with its NMS extension built; `--reference_python` a Python with PyTorch,
default this one) the authors' code is timed in the same run by
`benchmarks/actionformer_torch.py`, on the same inputs, each of its
subprocesses right after ours (train, then inference). The JSON holds, per
shape, its figures under `reference` and the ratios ours / reference (< 1 =
faster / smaller) for the configuration without XLA, and `rows`: one line
of the summary table per figure, with the targets (training step and
inference with post-processing <= 0.7x the authors', peak training memory
<= 1.0x, first-step tracing <= 10 s). Without it, `reference` is null.

Usage:
    python benchmarks/actionformer.py [--shapes thumos,anet,ego4d]
        [--iterations 5] [--infer_iterations N] [--warmup 2]
        [--configs no_jit,jit] [--quick]
        [--bench] [--attention auto|dense]
        [--reference_repo PATH [--reference_python PYTHON]]
        [--output result.json]

`--bench` (what `make bench` runs): `--shapes thumos,anet,ego4d --configs
no_jit --iterations 3 --infer_iterations 15 --warmup 1` (an inference
call at ActivityNet's length takes tens of milliseconds, too short for a
median of 3 to be steady).
"""

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import actionformer_shapes as shapes  # noqa: E402
from benchmarks import op_floor  # noqa: E402
from benchmarks import op_profile  # noqa: E402
from benchmarks import timing  # noqa: E402

# Figures compared with the authors' code (ours / theirs).
COMPARED = ("train_fwd_bwd_s", "train_full_step_s", "infer_network_s",
            "infer_with_postprocess_s", "train_peak_rss_gb",
            "infer_peak_rss_gb")


# ----------------------------------------------------------------- child
def _build_model(model_kwargs, attention):
    from tfaction.layers.local_self_attention import LocalSelfAttention
    from tfaction.models.actionformer.model import ActionFormer

    model = ActionFormer(**model_kwargs)
    if attention == "dense":  # the former dense band attention, for A/B
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, LocalSelfAttention):
                layer.block_size = 0
    return model


def _train_child(args, shape):
    import keras
    import tensorflow as tf

    from tfaction.losses.ctr_diou_loss_1d import ctr_diou_loss_1d
    from tfaction.losses.sigmoid_focal_loss import sigmoid_focal_loss
    from tfaction.ops.label_assignment import assign_point_labels
    from tfaction.training.ema import ModelEMA
    from tfaction.training.fused_adam import FusedAdamW

    keras.utils.set_random_seed(0)
    model = _build_model(shape["model"], args.attention)
    num_classes = model.num_classes
    inputs = [tf.constant(x) for x in shapes.training_inputs(
        shape["train_batch"], model.max_seq_len, model.input_dim,
        num_classes)]
    loss_cfg = shape["loss"]
    normaliser = tf.Variable(loss_cfg["init_loss_norm"], trainable=False)

    def compute_loss(features, valid, segs, labs, gvalid):
        out = model({"features": features, "mask": valid}, training=True)
        cls_t, reg_t = assign_point_labels(
            out["points"][0], segs, labs, num_classes, gt_valid=gvalid)
        point_mask = out["mask"]
        positive = tf.logical_and(point_mask,
                                  tf.reduce_sum(cls_t, -1) > 0)
        num_pos = tf.reduce_sum(tf.cast(positive, tf.float32))
        normaliser.assign(0.9 * normaliser
                          + 0.1 * tf.maximum(num_pos, 1.0))
        cls_loss = sigmoid_focal_loss(
            cls_t, out["cls_logits"], mask=point_mask,
            label_smoothing=loss_cfg["label_smoothing"]) / normaliser
        reg_loss = ctr_diou_loss_1d(reg_t, out["offsets"],
                                    mask=positive) / normaliser
        return cls_loss + loss_cfg["loss_weight"] * reg_loss

    weights = model.trainable_variables

    @tf.function(jit_compile=args.jit)
    def fwd_bwd(*batch_inputs):
        with tf.GradientTape() as tape:
            loss = compute_loss(*batch_inputs)
        grads = tape.gradient(loss, weights)
        return loss, tf.linalg.global_norm(grads)

    decayed = set()
    for layer in model._flatten_layers(include_self=False):
        for name in ("kernel", "depthwise_kernel"):
            var = getattr(layer, name, None)
            if isinstance(var, keras.Variable):
                decayed.add(id(var))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=3000, alpha=1e-4, warmup_target=1e-4,
        warmup_steps=500)
    optimizer = FusedAdamW(  # the recipe's (tfaction.training.optimizers)
        learning_rate=schedule, weight_decay=0.05, beta_1=0.9, beta_2=0.999,
        epsilon=1e-8)
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in weights if id(v) not in decayed])
    optimizer.build(weights)
    ema = ModelEMA(model, decay=0.999)

    @tf.function(jit_compile=args.jit)
    def full_step(*batch_inputs):
        with tf.GradientTape() as tape:
            loss = compute_loss(*batch_inputs)
        grads = tape.gradient(loss, weights)
        grads, norm = tf.clip_by_global_norm(grads, 1.0)
        optimizer.apply_gradients(zip(grads, weights))
        ema.update()
        return loss, norm

    # The first training step, as a training run meets it: tracing alone,
    # then the first call (graph optimisation + the step itself).
    start = time.perf_counter()
    full_step.get_concrete_function(*inputs)
    trace_s = time.perf_counter() - start
    loss, norm = full_step(*inputs)
    float(loss), float(norm)
    first_step_s = time.perf_counter() - start

    def run_fwd_bwd():
        loss, norm = fwd_bwd(*inputs)
        float(loss), float(norm)

    def run_full():
        loss, norm = full_step(*inputs)
        float(loss), float(norm)

    first = []
    t_fb, t_full = timing.median_times([run_fwd_bwd, run_full],
                                       args.iterations, args.warmup, first,
                                       digits=2)
    loss = float(fwd_bwd(*inputs)[0])
    peak_rss_gb = timing.peak_rss_gb()  # before the floor's own operands
    resident_rss_gb = timing.rss_gb()  # between two steps
    tensor_peak_gb = timing.allocator_peak_gb()
    floor = op_floor.contraction_floor(
        fwd_bwd.get_concrete_function(*inputs), args.iterations)
    inside = op_profile.contraction_time(run_fwd_bwd, args.iterations)
    return {"peak_rss_gb": peak_rss_gb, "resident_rss_gb": resident_rss_gb,
            "tensor_peak_gb": tensor_peak_gb,
            "train_fwd_bwd_s": round(t_fb, 4),
            "train_floor_s": round(floor["floor_s"], 4),
            "train_floor": floor,
            "train_contraction_s": round(inside["contraction_s"], 4),
            "train_profile": inside,
            "train_full_step_s": round(t_full, 4),
            "train_loss": round(loss, 4),
            "first_step_trace_s": round(trace_s, 2),
            "first_step_s": round(first_step_s, 2),
            "first_call_s": first,
            "params": int(model.count_params())}


def _infer_child(args, shape):
    import keras
    import tensorflow as tf

    from tfaction.models.actionformer.postprocessing import VideoPostprocessor

    keras.utils.set_random_seed(0)
    model = _build_model(shape["model"], args.attention)
    length = model.max_seq_len
    feats = tf.constant(shapes.inference_features(length, model.input_dim))
    mask = tf.ones((1, length), bool)
    strides = model.fpn_strides
    post = shape["post"]

    @tf.function(jit_compile=args.jit)
    def network(features, valid):
        out = model({"features": features, "mask": valid}, training=False)
        return out["cls_logits"][0], out["offsets"][0], out["mask"][0]

    # The recipe's evaluation path (`ActionFormerTask.postprocess_video`).
    postprocess = VideoPostprocessor(
        strides, pre_nms_thresh=0.001, pre_nms_topk=post["pre_nms_topk"],
        duration_thresh=post["duration_thresh"], iou_threshold=0.1,
        min_score=post["min_score"], max_seg_num=post["max_seg_num"],
        method="gaussian", multiclass=post["multiclass"],
        sigma=post["sigma"], voting_thresh=(0.0 if post["multiclass"]
                                            else post["voting_thresh"]))
    video = dict(fps=post["fps"], feature_stride=post["feat_stride"],
                 feature_window=post["num_frames"],
                 duration=length * post["feat_stride"] / post["fps"])
    counts = {"candidates": int(postprocess.decode(
        *(t.numpy() for t in network(feats, mask)))[1].shape[0])}

    def run_network():
        out = network(feats, mask)
        out[0].numpy()

    def run_with_post():
        logits, offsets, valid = network(feats, mask)
        seconds, _, _ = postprocess(logits, offsets, valid, **video)
        counts["detections"] = int(seconds.shape[0])

    first = []
    t_net, t_post = timing.median_times([run_network, run_with_post],
                                        args.iterations, args.warmup, first,
                                        digits=2)
    peak_rss_gb = timing.peak_rss_gb()  # before the floor's own operands
    floor = op_floor.contraction_floor(
        network.get_concrete_function(feats, mask), args.iterations)
    inside = op_profile.contraction_time(run_network, args.iterations)
    return {"peak_rss_gb": peak_rss_gb, "infer_network_s": round(t_net, 4),
            "infer_floor_s": round(floor["floor_s"], 4),
            "infer_floor": floor,
            "infer_contraction_s": round(inside["contraction_s"], 4),
            "infer_profile": inside,
            "infer_with_postprocess_s": round(t_post, 4),
            "candidates": counts["candidates"],
            "detections": counts["detections"],
            "first_call_s": first,
            "params": int(model.count_params())}


def _child(args):
    import keras  # noqa: F401
    import tensorflow as tf

    import_rss_gb = timing.peak_rss_gb()
    shape = shapes.SHAPES[args.shape]
    start = time.perf_counter()
    result = (_train_child if args.child == "train" else _infer_child)(
        args, shape)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["import_rss_gb"] = import_rss_gb
    result["tensorflow"] = tf.__version__
    print("RESULT " + json.dumps(result))


# ---------------------------------------------------------------- parent
def _iterations(args, kind):
    """Timed iterations of a child of `kind` (train / infer), both sides."""
    if kind == "infer" and args.infer_iterations:
        return args.infer_iterations
    return args.iterations


def _run_child(args, shape, kind, jit):
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()),
           "--child", kind, "--shape", shape, "--jit", str(int(jit)),
           "--iterations", str(_iterations(args, kind)), "--warmup",
           str(args.warmup), "--attention", args.attention]
    return timing.child_result(cmd, f"{shape} {kind} jit={jit}")


def _run_reference(args, shape, kind):
    """The authors' code, timed by benchmarks/actionformer_torch.py."""
    cmd = [args.reference_python,
           str(pathlib.Path(__file__).resolve().with_name(
               "actionformer_torch.py")),
           "--repo", args.reference_repo, "--child", kind, "--shape", shape,
           "--iterations", str(_iterations(args, kind)), "--warmup",
           str(args.warmup)]
    return timing.child_result(cmd, f"reference {shape} {kind}")


def _reference_name(args, ref):
    """`rows`' reference_name: the authors' code, its commit, torch."""
    commit = timing.git_commit(args.reference_repo)
    return (f"authors' PyTorch code (actionformer_release @ {commit}, "
            f"torch {ref['torch']}, {ref['torch_threads']} threads)")


def _rows(name, shape, ours, ref, ref_name, import_row=True):
    """The `rows` of one shape (ratios ours / reference, no-XLA run).

    `import_row`: include the frameworks' import RSS (the same at every
    shape, so only the first shape's rows carry it).
    """
    batch = shape["train_batch"]
    length = shape["model"]["max_seq_len"]
    where = {"thumos": "THUMOS", "anet": "ActivityNet", "ego4d": "Ego4D",
             "quick": "quick"}[name]
    train = f"{where} shapes (B={batch}, T={length})"
    infer = f"{where} shapes (B=1, T={length})"
    spec = [
        ("training step (fwd+bwd, clip, AdamW, EMA), " + train,
         "train_full_step_s", "s", 0.7),
        ("training forward+backward, " + train, "train_fwd_bwd_s", "s",
         None),
        ("inference, network, " + infer, "infer_network_s", "s", None),
        ("inference with post-processing (decode, Soft-NMS), " + infer,
         "infer_with_postprocess_s", "s", 0.7),
        ("peak memory (RSS), training, " + train, "train_peak_rss_gb", "GB",
         1.0),
        ("peak memory (RSS), inference, " + infer, "infer_peak_rss_gb",
         "GB", None),
    ]
    # The profile behind the targets: what no float32 schedule of our
    # products beats (compared with the authors' measured time), and the
    # frameworks' own memory.
    floors = [
        ("training forward+backward, contraction floor (its matrix products "
         "back to back in one graph) vs the authors' forward+backward, "
         + train, "train_floor_s", "train_fwd_bwd_s"),
        ("inference network, contraction floor (its matrix products back "
         "to back in one graph) vs the authors' network, " + infer,
         "infer_floor_s", "infer_network_s"),
    ]
    # ... and the authors' own products, timed by torch.profiler: how much
    # faster ours are, and what the rest of their step takes.
    floors += [
        ("training forward+backward, contraction floor vs the authors' "
         "contractions (self time of their convolutions and matrix products "
         "under torch.profiler), " + train, "train_floor_s",
         "train_contraction_s"),
        ("inference network, contraction floor vs the authors' contractions "
         "(self time of their convolutions and matrix products under "
         "torch.profiler), " + infer, "infer_floor_s",
         "infer_contraction_s"),
        ("training forward+backward, our contractions as they run in the "
         "step (wall time with at least one running, TensorFlow profiler) "
         "vs the authors' contractions, " + train, "train_contraction_s",
         "train_contraction_s"),
        ("inference network, our contractions as they run in it (wall time "
         "with at least one running, TensorFlow profiler) vs the authors' "
         "contractions, " + infer, "infer_contraction_s",
         "infer_contraction_s"),
        ("training forward+backward outside the contractions (each side: "
         "forward+backward - its contractions as profiled above), "
         + train, "train_rest_s", "train_rest_s"),
        ("inference network outside the contractions (each side: network - "
         "its contractions as profiled above), " + infer, "infer_rest_s",
         "infer_rest_s"),
    ]
    floors.append(("peak memory (RSS) above the framework's import, "
                   "training, " + train, "train_peak_over_import_gb",
                   "train_peak_over_import_gb"))
    floors.append(("RSS between two training steps (framework, weights, "
                   "optimiser state, EMA, traced graphs), " + train,
                   "train_resident_rss_gb", "train_resident_rss_gb"))
    if import_row:
        floors.append(("RSS right after importing the framework "
                       "(TensorFlow + Keras vs PyTorch)", "import_rss_gb",
                       "import_rss_gb"))
    profile = []
    for measure, key, ref_key in floors:
        theirs = None if ref is None else ref[ref_key]
        profile.append({
            "family": "ActionFormer", "measure": measure, "ours": ours[key],
            "reference": theirs,
            "unit": "GB" if key.endswith("_gb") else "s",
            "ratio": None if theirs is None else round(ours[key] / theirs,
                                                       2),
            "reference_name": None if ref is None else ref_name,
            "target": None, "met": None})
    rows = []
    for measure, key, unit, target in spec:
        theirs = None if ref is None else ref[key]
        ratio = None if theirs is None else round(ours[key] / theirs, 2)
        rows.append({
            "family": "ActionFormer", "measure": measure,
            "ours": ours[key], "reference": theirs, "unit": unit,
            "ratio": ratio, "reference_name": None if ref is None
            else ref_name,
            "target": None if target is None else f"<= {target}x",
            "met": None if (target is None or ratio is None)
            else ratio <= target})
    trace = ours["details"]["first_step_trace_s"]
    rows.append({
        "family": "ActionFormer",
        "measure": "first training step, tracing, " + train,
        "ours": trace, "reference": None, "unit": "s", "ratio": None,
        "reference_name": None, "target": "<= 10 s", "met": trace <= 10.0})
    if ours.get("train_tensor_peak_gb") is not None:
        rows.append({
            "family": "ActionFormer",
            "measure": "training, peak of live tensors (TensorFlow's CPU "
                       "allocator: weights, optimiser state, EMA, "
                       "activations), " + train,
            "ours": ours["train_tensor_peak_gb"], "reference": None,
            "unit": "GB", "ratio": None, "reference_name": None,
            "target": None, "met": None})
    rows.append({
        "family": "ActionFormer",
        "measure": "first training step, tracing + graph optimisation + "
                   "step, " + train,
        "ours": ours["details"]["first_step_s"], "reference": None,
        "unit": "s", "ratio": None, "reference_name": None, "target": None,
        "met": None})
    return rows + profile


def _add_rest(figures, products):
    """`train_rest_s` / `infer_rest_s`: the time less `*_{products}_s`."""
    for kind, whole in (("train", "train_fwd_bwd_s"),
                        ("infer", "infer_network_s")):
        figures[f"{kind}_rest_s"] = round(
            figures[whole] - figures[f"{kind}_{products}_s"], 4)


def _run_shape(args, name, names, loads):
    """Our configurations (and the authors' code) at one shape."""
    configs, reference = {}, {}
    for config in names:
        jit = config == "jit"
        train = _run_child(args, name, "train", jit)
        loads.append(timing.load_average())
        if args.reference_repo and not jit and not reference:
            reference["train"] = _run_reference(args, name, "train")
            loads.append(timing.load_average())
        infer = _run_child(args, name, "infer", jit)
        loads.append(timing.load_average())
        if args.reference_repo and not jit and "infer" not in reference:
            reference["infer"] = _run_reference(args, name, "infer")
            loads.append(timing.load_average())
        if train["params"] != infer["params"]:
            raise RuntimeError("train and inference models differ")
        row = {key: train[key] for key in ("train_fwd_bwd_s",
                                           "train_full_step_s")}
        row.update({key: infer[key] for key in ("infer_network_s",
                                                "infer_with_postprocess_s")})
        row.update(params=infer["params"],
                   train_peak_rss_gb=train["peak_rss_gb"],
                   infer_peak_rss_gb=infer["peak_rss_gb"],
                   import_rss_gb=train["import_rss_gb"],
                   train_resident_rss_gb=train["resident_rss_gb"],
                   train_peak_over_import_gb=round(
                       train["peak_rss_gb"] - train["import_rss_gb"], 3),
                   train_tensor_peak_gb=train["tensor_peak_gb"],
                   train_floor_s=train["train_floor_s"],
                   infer_floor_s=infer["infer_floor_s"],
                   train_contraction_s=train["train_contraction_s"],
                   infer_contraction_s=infer["infer_contraction_s"])
        # the time in which none of our products runs (the profiler's
        # intervals), as the authors' side is split by theirs
        _add_rest(row, "contraction")
        row["details"] = {
            "train_loss": train["train_loss"],
            "candidates_before_nms": infer["candidates"],
            "detections": infer["detections"],
            "first_step_trace_s": train["first_step_trace_s"],
            "first_step_s": train["first_step_s"],
            # first calls of the timing loops: [fwd_bwd (traced after the
            # full step), full_step, network, network_with_postprocess]
            "first_call_s": train["first_call_s"] + infer["first_call_s"],
            "child_seconds": [train["seconds"], infer["seconds"]],
            "train_floor": train["train_floor"],
            "infer_floor": infer["infer_floor"],
            "train_profile": train["train_profile"],
            "infer_profile": infer["infer_profile"],
        }
        configs[config] = row
    params = configs[names[0]]["params"]
    expected = shapes.SHAPES[name]["params"]
    if expected is not None and params != expected:
        raise RuntimeError(f"{name}: parameter count {params} != {expected}")
    out = {"train_batch": shapes.SHAPES[name]["train_batch"],
           "length": shapes.SHAPES[name]["model"]["max_seq_len"],
           "params": params, "reference": None, **configs}
    if reference:
        ref_train, ref_infer = reference["train"], reference["infer"]
        ref = {key: ref_train[key] for key in ("train_fwd_bwd_s",
                                               "train_full_step_s")}
        ref.update({key: ref_infer[key] for key in
                    ("infer_network_s", "infer_with_postprocess_s")})
        for kind, figures in (("train", ref_train), ("infer", ref_infer)):
            for part in ("contraction", "profiled"):
                ref[f"{kind}_{part}_s"] = figures[f"{kind}_{part}_s"]
        _add_rest(ref, "contraction")
        ref.update(params=ref_train["params"],
                   train_peak_rss_gb=ref_train["peak_rss_gb"],
                   infer_peak_rss_gb=ref_infer["peak_rss_gb"],
                   import_rss_gb=ref_train["import_rss_gb"],
                   train_resident_rss_gb=ref_train["resident_rss_gb"],
                   train_peak_over_import_gb=round(
                       ref_train["peak_rss_gb"] - ref_train["import_rss_gb"],
                       3),
                   detections=ref_infer["detections"],
                   torch=ref_train["torch"],
                   torch_threads=ref_train["torch_threads"],
                   repo=args.reference_repo)
        if ref["params"] != params:
            raise RuntimeError(f"{name}: the authors' model has "
                               f"{ref['params']} parameters, ours {params}: "
                               f"not the same network")
        out["reference"] = ref
        if "no_jit" in configs:
            configs["no_jit"]["ratio_to_reference"] = {
                key: round(configs["no_jit"][key] / ref[key], 3)
                for key in COMPARED}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes (smoke test of the script)")
    parser.add_argument("--bench", action="store_true",
                        help="the `make bench` preset: --shapes "
                             "thumos,anet,ego4d --configs no_jit "
                             "--iterations 3 --infer_iterations 15 "
                             "--warmup 1")
    parser.add_argument("--shapes", default="thumos",
                        help="comma list of " + ", ".join(
                            k for k in shapes.SHAPES if k != "quick"))
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--infer_iterations", type=int, default=None,
                        help="timed iterations of inference (default "
                             "--iterations)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--attention", choices=("auto", "dense"),
                        default="auto",
                        help="'dense': force the dense T x T band attention "
                             "(the former implementation) for comparison")
    parser.add_argument("--configs", default="no_jit,jit",
                        help="comma list of no_jit / jit (jit compiles for "
                             "minutes on CPU)")
    parser.add_argument("--reference_repo",
                        help="clone of happyharrycn/actionformer_release: "
                             "time the authors' code in the same run")
    parser.add_argument("--reference_python", default=sys.executable,
                        help="Python with PyTorch for --reference_repo")
    parser.add_argument("--child", choices=("train", "infer"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--jit", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.jit = bool(args.jit)
        return _child(args)
    if args.bench:
        args.shapes, args.configs = "thumos,anet,ego4d", "no_jit"
        args.iterations, args.warmup = 3, 1
        args.infer_iterations = 15
    if args.quick:
        args.shapes = "quick"
        args.iterations, args.warmup = min(args.iterations, 2), 1

    names = [n for n in args.configs.split(",") if n]
    if not names or set(names) - {"no_jit", "jit"}:
        parser.error(f"--configs: no_jit and/or jit, got {args.configs!r}")
    shape_names = [n for n in args.shapes.split(",") if n]
    unknown = set(shape_names) - set(shapes.SHAPES)
    if not shape_names or unknown:
        parser.error(f"--shapes: unknown {sorted(unknown)}; choose from "
                     f"{sorted(shapes.SHAPES)}")
    start = time.perf_counter()
    loads = [timing.load_average()]
    results, rows = {}, []
    for name in shape_names:
        results[name] = _run_shape(args, name, names, loads)
        ref = results[name]["reference"]
        ours = results[name]["no_jit" if "no_jit" in names else names[0]]
        rows += _rows(name, shapes.SHAPES[name], ours, ref,
                      None if ref is None else _reference_name(args, ref),
                      import_row=not rows)
    result = {
        "benchmark": "actionformer",
        "shapes": {name: {k: list(v) if isinstance(v, tuple) else v
                          for k, v in shapes.SHAPES[name]["model"].items()}
                   for name in shape_names},
        "attention": args.attention,
        "iterations": args.iterations,
        "infer_iterations": _iterations(args, "infer"),
        "warmup": args.warmup,
        # per shape: our configurations and the authors' code (--reference_repo)
        "results": results,
        "rows": rows,
    }
    result.update(timing.run_facts(start, loads))
    return timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
