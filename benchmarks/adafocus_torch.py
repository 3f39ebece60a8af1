"""Times the authors' PyTorch AdaFocus V1 / V2 beside `benchmarks/adafocus.py`.

Runs in a Python environment with PyTorch + torchvision (and hydra-core,
which the V1 training script imports), with clones of LeapLabTHU/AdaFocusV2
and blackfeather-wang/AdaFocus; none of them is part of tfaction.
`benchmarks/adafocus.py --reference_repo=V2_CLONE
--reference_repo_v1=V1_CLONE --reference_python=PYTHON` starts it as a
server subprocess of each case: after building, it answers every `step`
line on stdin with one timed call of the case, so the tfaction process can
alternate its own calls with these (load from other processes then slows
both alike). It imports the authors' code from the clone's `Experiments on
ActivityNet, FCVID and Mini-Kinetics` folder at run time and times:

* `v2_train`: their `main_v2.train` on a one-batch loader (zero_grad,
  `AdaFocus` forward in training mode: glance, `PolicySTN` on the detached
  glance maps, `affine_grid` + `grid_sample` crops of the policy's and of
  random patches, ResNet-50 focus on both, `PoolingClassifier`; the sum of
  the 3 cross-entropies of each pass averaged over the passes; backward;
  SGD with momentum, their parameter groups and learning-rate multipliers
  from `adjust_learning_rate`; their accuracy and logging), the model and
  optimizer built from their `opts.py` parser with the ActivityNet flags
  of `scripts/train.sh`;
* `v2_infer`: `AdaFocus` in `eval()` under `torch.no_grad()` (the policy's
  patches only), as their `validate`;
* `v1_stage1`, `v1_stage2`: their `main_dist.train` on a one-batch loader
  with `conf/default.yaml` and the README's ActivityNet stage-1 / stage-2
  overrides (their default `amp=true`: stage 1's only runnable branch
  (the other omits `training=`); CUDA's autocast and `GradScaler` are off
  without CUDA, so both sides run float32). Stage 1: frozen glance under
  `no_grad`, focus on uniformly random patches, GRU classifier,
  cross-entropy at every step, backward, SGD. Stage 2: the glance under
  `no_grad`, then per frame the `policy_old` action, the focus on its
  patch and on a random patch, the GRU step and the reward, then
  `PPO.update` (K_epochs = 1, Adam).

Weights are random (`pretrained` is forced off: nothing is downloaded);
`.cuda()` is the identity. Inputs are the tfaction benchmark's (the same
NumPy generator, `frames_and_labels`). Prints `READY {json}` once built,
`TIME <seconds>` per `step`, and `RESULT {json}` (peak RSS, versions) on
`quit`.

Usage (normally through `benchmarks/adafocus.py`):
    PYTHON benchmarks/adafocus_torch.py --repo PATH --child v2_train
        [--patch_size 128] [--batch_size 1] [--num_frames 16]
        [--frame_size 224] [--num_classes 200] [--threads 2]
"""

import argparse
import contextlib
import io
import json
import os
import resource
import sys
import time

# The folder of the ActivityNet / FCVID / Mini-Kinetics experiments in both
# repositories.
EXPERIMENTS = "Experiments on ActivityNet, FCVID and Mini-Kinetics"
CHILDREN = ("v2_train", "v2_infer", "v1_stage1", "v1_stage2")


def frames_and_labels(batch_size, num_frames, frame_size, num_classes,
                      seed=0):
    """The benchmark's inputs, drawn alike on both sides.

    Returns:
        `(frames, labels, random_locations, action_noise)`: float32
        `[B, T, S, S, 3]` standard normal, int `[B]`, float32 `[B, T, 2]`
        uniform in [0, 1) and float32 `[B, T, 49]` uniform in (0, 1).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    frames = rng.standard_normal(
        (batch_size, num_frames, frame_size, frame_size, 3), np.float32)
    labels = rng.integers(0, num_classes, batch_size)
    locations = rng.random((batch_size, num_frames, 2), np.float32)
    noise = rng.uniform(1e-6, 1.0, (batch_size, num_frames, 49)).astype(
        np.float32)
    return frames, labels, locations, noise


def _cpu_only():
    """The authors' code calls `.cuda()`; on CPU it is the identity."""
    import torch

    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self


def _no_download(module, names):
    """Builds the trunks of `module` with `pretrained=False` (random)."""
    for name in names:
        build = getattr(module, name)
        setattr(module, name,
                lambda *a, _build=build, **k: _build(
                    **dict(k, pretrained=False)))


def _torch_inputs(args):
    """Their loader's layout: images `[B, T*3, S, S]`, target `[B, 1]`."""
    import torch

    frames, labels, _, _ = frames_and_labels(
        args.batch_size, args.num_frames, args.frame_size, args.num_classes)
    b, t, s = args.batch_size, args.num_frames, args.frame_size
    images = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).reshape(
        b, t * 3, s, s).contiguous()
    return images, torch.from_numpy(labels).long().view(b, 1)


def _v2(args, infer):
    folder = os.path.join(args.repo, EXPERIMENTS)
    sys.path.insert(0, folder)
    import torch

    import main_v2
    from models import adafocus_v2
    from opts import parser

    _no_download(adafocus_v2, ("resnet50", "mobilenet_v2"))
    # scripts/train.sh, ActivityNet, MobileNet-V2 glance.
    their = parser.parse_args([
        "--glance_arch", "mbv2", "--dataset", "actnet",
        "--num_segments", str(args.num_frames), "--dropout", "0.2",
        "--fc_dropout", "0.2", "--epochs", "50", "--lr", "0.002",
        "--lr_type", "cos", "--lr_steps", "0", "0",
        "--batch_size", str(args.batch_size), "--momentum", "0.9",
        "--weight_decay", "1e-4", "--patch_size", str(args.patch_size),
        "--global_lr_ratio", "0.5", "--stn_lr_ratio", "0.1",
        "--classifier_lr_ratio", "5.0", "--hidden_dim", "1024",
        "--stn_hidden_dim", "2048", "--sample",
        "--input_size", str(args.frame_size)])
    their.num_classes = args.num_classes
    their.input_order = main_v2.input_order(args.num_frames)
    main_v2.args = their
    model = adafocus_v2.AdaFocus(their)
    images, target = _torch_inputs(args)
    if infer:
        model.eval()

        @torch.no_grad()
        def step():
            model(images)
        return model, step
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.get_optim_policies(their), their.lr,
                                momentum=their.momentum,
                                weight_decay=their.weight_decay)
    main_v2.adjust_learning_rate(optimizer, 0, their.lr_type,
                                 their.lr_steps)
    loader = [(images, target)]
    log = io.StringIO()

    def step():
        main_v2.train(loader, model, criterion, optimizer, 0, log)
    return model, step


def _v1(args, stage):
    folder = os.path.join(args.repo, EXPERIMENTS)
    sys.path.insert(0, folder)
    import torch
    from omegaconf import OmegaConf

    import main_dist
    from models import gfv_net

    _no_download(gfv_net, ("resnet50", "mobilenet_v2"))
    their = OmegaConf.load(os.path.join(folder, "conf", "default.yaml"))
    # The README's ActivityNet commands of stages 1 and 2.
    their.update({
        "dataset": "actnet", "train_stage": stage,
        "batch_size": args.batch_size, "dropout": 0.8, "lr_type": "cos",
        "backbone_lr": 0.0005, "fc_lr": 0.05, "epochs": 50,
        "random_patch": stage == 1, "patch_size": args.patch_size,
        "glance_size": args.frame_size, "input_size": args.frame_size,
        "action_dim": 49, "consensus": "gru", "hidden_dim": 1024,
        "num_segments": args.num_frames, "num_classes": args.num_classes,
        "distributed": False, "multiprocessing_distributed": False})
    # CUDA's autocast / GradScaler, disabled (with a warning) on CPU.
    scaler = main_dist.GradScaler()
    model = gfv_net.GFV(their)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = None
    if stage == 1:
        optimizer = torch.optim.SGD(
            [{"params": model.focuser.parameters()},
             {"params": model.classifier.parameters()}], lr=0,
            momentum=their.momentum, weight_decay=their.weight_decay)
        main_dist.adjust_learning_rate(their, optimizer, 0)
    images, target = _torch_inputs(args)
    loader = [(images, target)]

    def step():
        main_dist.train(loader, model, criterion, optimizer, 0, their,
                        scaler)
    return model, step


def _build(args):
    if args.child.startswith("v2_"):
        return _v2(args, infer=args.child == "v2_infer")
    return _v1(args, stage=1 if args.child == "v1_stage1" else 2)


def serve(args, stdin=sys.stdin, stdout=sys.stdout):
    """Builds the case, then answers `step` / `quit` lines (see module)."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)  # their random_crop draws from NumPy's global state
    _cpu_only()
    start = time.perf_counter()
    # Their code prints progress; stdout is this protocol's channel.
    with contextlib.redirect_stdout(sys.stderr):
        model, step = _build(args)
    print("READY " + json.dumps({
        "build_s": round(time.perf_counter() - start, 2),
        "params": int(sum(p.numel() for p in model.parameters()))}),
        file=stdout, flush=True)
    for line in stdin:
        command = line.strip()
        if command == "step":
            with contextlib.redirect_stdout(sys.stderr):
                start = time.perf_counter()
                step()
                seconds = time.perf_counter() - start
            print(f"TIME {seconds:.6f}", file=stdout, flush=True)
        elif command == "quit":
            break
        else:
            raise SystemExit(f"unknown command {command!r}")
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("RESULT " + json.dumps({
        "peak_mb": round(rss_kb / 1024, 1), "torch": torch.__version__,
        "torchvision": _torchvision_version(),
        "torch_threads": torch.get_num_threads()}), file=stdout, flush=True)


def _torchvision_version():
    import torchvision

    return torchvision.__version__


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True,
                        help="clone of LeapLabTHU/AdaFocusV2 (v2_*) or "
                             "blackfeather-wang/AdaFocus (v1_*)")
    parser.add_argument("--child", choices=CHILDREN, required=True)
    parser.add_argument("--patch_size", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--num_frames", type=int, default=16)
    parser.add_argument("--frame_size", type=int, default=224)
    parser.add_argument("--num_classes", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (keep equal to tfaction's)")
    serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
