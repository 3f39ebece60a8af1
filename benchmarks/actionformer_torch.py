"""Times the authors' PyTorch ActionFormer beside `benchmarks/actionformer.py`.

Runs in a Python environment with PyTorch and a clone of
happyharrycn/actionformer_release (with its C++ NMS extension built, as its
INSTALL.md says); neither is part of tfaction. `benchmarks/actionformer.py
--reference_repo=PATH [--reference_python=PYTHON]` starts it as a subprocess
between its own measurements, so both run on the same machine in the same
state. It builds the authors' model from their config of the `--shape`
(`benchmarks/actionformer_shapes.py`: `thumos` = `configs/thumos_i3d.yaml`,
`anet` = `anet_i3d.yaml`, `ego4d` = `ego4d_slowfast_omnivore_egovlp.yaml`;
random weights; `quick`: the small shapes of the tfaction benchmark), with
as many torch threads as CPUs (TensorFlow's default), and times, on the
same inputs as the tfaction benchmark (same NumPy generators, shapes and
ground truth):

* `train`: (a) `model(video_list)` + `final_loss.backward()`; (b) the
  authors' training iteration (`train_one_epoch`): (a) + global-norm clip
  1.0 + their AdamW (`make_optimizer`) + warm-up/cosine scheduler
  (`make_scheduler`) + `ModelEma` update;
* `infer`: (c) the network (`preprocessing`, backbone, neck, both heads)
  in `eval()` mode under `torch.no_grad()`; (d) the whole `model([video])`
  (network + decoding + their C++ Soft-NMS + seconds).

Times are medians after warm-up, as in the tfaction benchmark. Then (a)
and (c) run `--iterations` more times under `torch.profiler`, which splits
their time into the convolutions and matrix products (the self time of the
ATen kernels in `CONTRACTIONS`) and everything else: the counterpart of the
tfaction benchmark's contraction floor. It prints one `RESULT {json}` line
with the peak RSS (taken before the profiler runs).

Usage (normally through `benchmarks/actionformer.py`):
    PYTHON benchmarks/actionformer_torch.py --repo PATH --child train|infer
        [--shape thumos|anet|ego4d|quick] [--iterations 5] [--warmup 2]
"""

import argparse
import json
import os
import statistics
import sys
import time

# benchmarks/ (this file's folder): the shapes and inputs shared with
# benchmarks/actionformer.py (NumPy only).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import actionformer_shapes as shapes  # noqa: E402
import timing  # noqa: E402


# The ATen kernels that do the convolutions and matrix products (their self
# time is the arithmetic; the dispatching ops above them, `aten::conv1d`,
# `aten::convolution`, `aten::matmul`, ..., only call these).
CONTRACTIONS = frozenset({
    "aten::mkldnn_convolution", "aten::convolution_backward",
    "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward",
    "aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
    "aten::addbmm", "aten::_mkldnn_linear", "aten::mkldnn_linear",
    "aten::mkldnn_linear_backward", "aten::dot", "aten::mv", "aten::addmv"})


def contraction_split(self_times, calls):
    """(contraction s, total s) per call from profiler self times.

    Args:
        self_times: iterable of `(op name, self CPU time in microseconds)`,
            one entry per op name (`torch.profiler`'s `key_averages()`).
        calls: how many calls of the profiled function they cover.

    Returns:
        `(contraction_s, total_s)`: the self time of the `CONTRACTIONS`
        kernels and of all ops, in seconds per call.
    """
    contraction = total = 0.0
    for name, micros in self_times:
        total += micros
        if name in CONTRACTIONS:
            contraction += micros
    return contraction / calls / 1e6, total / calls / 1e6


def _profile(fn, iterations, prefix):
    """`contraction_split` of `iterations` calls of `fn`, as result keys."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iterations):
            fn()
    contraction, total = contraction_split(
        ((e.key, e.self_cpu_time_total) for e in prof.key_averages()),
        iterations)
    return {f"{prefix}_contraction_s": round(contraction, 4),
            f"{prefix}_profiled_s": round(total, 4)}


def _load(repo, shape_name):
    sys.path.insert(0, repo)
    sys.path.insert(0, os.path.join(repo, "libs", "utils"))
    from libs.core.config import load_config
    from libs.modeling import make_meta_arch

    shape = shapes.SHAPES[shape_name]
    cfg = load_config(os.path.join(repo, "configs", shape["yaml"]))
    if shape_name == "quick":  # benchmarks/actionformer.py quick shapes
        ours = shape["model"]
        cfg["dataset"].update(input_dim=ours["input_dim"],
                              num_classes=ours["num_classes"],
                              max_seq_len=ours["max_seq_len"])
        cfg["model"].update(input_dim=ours["input_dim"],
                            num_classes=ours["num_classes"],
                            max_seq_len=ours["max_seq_len"],
                            embd_dim=ours["embed_dim"],
                            fpn_dim=ours["embed_dim"],
                            head_dim=ours["head_dim"],
                            n_mha_win_size=ours["window_size"])
    return shape, cfg, make_meta_arch(cfg["model_name"], **cfg["model"])


def _input_dim(cfg):
    dim = cfg["model"]["input_dim"]  # a list: concatenated feature sets
    return sum(dim) if isinstance(dim, (list, tuple)) else dim


def _median(fn, iterations, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _train(args):
    import numpy as np
    import torch

    shape, cfg, model = _load(args.repo, args.shape)  # puts the repo
    from libs.utils import ModelEma  # on the path
    from libs.utils import make_optimizer
    from libs.utils import make_scheduler

    model.train()
    length = cfg["model"]["max_seq_len"]
    num_classes = cfg["model"]["num_classes"]
    batch = shape["train_batch"]
    # The tfaction benchmark's inputs (same generator, same draws).
    feats, _, segments, labels, gt_valid = shapes.training_inputs(
        batch, length, _input_dim(cfg), num_classes)
    lengths = shapes.training_lengths(batch, length)
    post = shape["post"]
    videos = []
    for i, n in enumerate(lengths):
        valid = gt_valid[i]
        videos.append({
            "video_id": f"v{i}",
            "feats": torch.from_numpy(feats[i, :n].T.copy()),
            "segments": torch.from_numpy(segments[i][valid]),
            "labels": torch.from_numpy(labels[i][valid].astype(np.int64)),
            "fps": post["fps"], "duration": n * post["feat_stride"]
            / post["fps"], "feat_stride": post["feat_stride"],
            "feat_num_frames": post["num_frames"]})
    optimizer = make_optimizer(model, cfg["opt"])
    scheduler = make_scheduler(optimizer, cfg["opt"], 100)
    ema = ModelEma(model, decay=0.999)
    clip = float(cfg["train_cfg"]["clip_grad_l2norm"])

    def fwd_bwd():
        optimizer.zero_grad(set_to_none=True)
        losses = model(videos)
        losses["final_loss"].backward()
        return float(losses["final_loss"])

    def full_step():
        loss = fwd_bwd()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        ema.update(model)
        return loss

    t_fb = _median(fwd_bwd, args.iterations, args.warmup)
    t_full = _median(full_step, args.iterations, args.warmup)
    out = {"train_fwd_bwd_s": round(t_fb, 4),
           "train_full_step_s": round(t_full, 4),
           "resident_rss_gb": timing.rss_gb(),  # between two steps
           "peak_rss_gb": timing.peak_rss_gb(),  # before the profiler
           "params": int(sum(p.numel() for p in model.parameters()))}
    out.update(_profile(fwd_bwd, args.iterations, "train"))
    return out


def _infer(args):
    import numpy as np
    import torch

    shape, cfg, model = _load(args.repo, args.shape)
    model.eval()
    length = cfg["model"]["max_seq_len"]
    feats = shapes.inference_features(length, _input_dim(cfg))
    post = shape["post"]
    video = {"video_id": "v0", "feats": torch.from_numpy(feats[0].T.copy()),
             "segments": None, "labels": None, "fps": post["fps"],
             "duration": length * post["feat_stride"] / post["fps"],
             "feat_stride": post["feat_stride"],
             "feat_num_frames": post["num_frames"]}
    counts = {}

    @torch.no_grad()
    def network():
        x, mask = model.preprocessing([video])
        feats_, masks = model.backbone(x, mask)
        fpn, fpn_masks = model.neck(feats_, masks)
        model.cls_head(fpn, fpn_masks)
        model.reg_head(fpn, fpn_masks)

    @torch.no_grad()
    def with_post():
        (result,) = model([video])
        counts["detections"] = int(result["scores"].shape[0])

    t_net = _median(network, args.iterations, args.warmup)
    t_post = _median(with_post, args.iterations, args.warmup)
    out = {"infer_network_s": round(t_net, 4),
           "infer_with_postprocess_s": round(t_post, 4),
           "detections": counts["detections"],
           "peak_rss_gb": timing.peak_rss_gb(),  # before the profiler
           "params": int(sum(p.numel() for p in model.parameters()))}
    out.update(_profile(network, args.iterations, "infer"))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True,
                        help="clone of happyharrycn/actionformer_release")
    parser.add_argument("--child", choices=("train", "infer"), required=True)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--shape", default="thumos",
                        choices=sorted(shapes.SHAPES))
    args = parser.parse_args(argv)
    import torch

    import_rss_gb = timing.peak_rss_gb()
    torch.set_num_threads(os.cpu_count())  # as TensorFlow's intra-op pool
    start = time.perf_counter()
    result = (_train if args.child == "train" else _infer)(args)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["import_rss_gb"] = import_rss_gb
    result["torch"] = torch.__version__
    result["torch_threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
