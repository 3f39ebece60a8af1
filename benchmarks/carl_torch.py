"""Times the authors' PyTorch CARL training step beside `benchmarks/carl.py`.

Runs in a Python environment with PyTorch, torchvision, PyYAML, easydict,
simplejson and iopath (the imports of the authors' modules) and a clone of
minghchen/CARL_code; none of them is part of tfaction. `benchmarks/carl.py
--reference_repo=PATH --reference_python=PYTHON` starts it as a subprocess
right after its own case, so both run on the same machine in the same
state. It builds the authors' `TransformerModel` (`models/transformer.py`:
torchvision ResNet-50 with conv1 ... layer3 run in `eval()` mode under
`torch.no_grad()` in chunks of `FRAMES_PER_BATCH` frames, layer4 trained,
then their transformer embedder and `MLPHead`) from their config of the
case (`configs/scl_transformer_config.yml` for Pouring,
`configs/scl_transformer_action_config.yml` for PennAction) with random
weights (torchvision's `resnet50` is called without weights: nothing is
downloaded), and times their training step without its optimizer update:
`optimizer.zero_grad()`, `SCL.compute_loss` (`algos/scl.py`: both views
through the model in training mode, projection head, sequence contrastive
loss) and `loss.backward()`, in float32 (their `USE_AMP` is CUDA autocast,
which does nothing on a CPU).

Inputs are those of the tfaction benchmark: the frames are
`numpy.random.default_rng(seed).standard_normal([B, 2, T, H, W, 3])`
(transposed to their channels-first layout) and the views' steps and masks
are read from `--views` (an `.npz` written by `benchmarks/carl.py`,
`samplers.carl_indices` draws). Times are medians after warm-up; it prints
one `RESULT {json}` line with the peak resident memory of the process.

Usage (normally through `benchmarks/carl.py`):
    PYTHON benchmarks/carl_torch.py --repo PATH --case penn_action
        --views views.npz [--iterations 3] [--warmup 1] [--threads 2]
        [--frames_per_batch N]
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

CONFIGS = {"pouring": "scl_transformer_config.yml",
           "penn_action": "scl_transformer_action_config.yml"}


def load_config(repo, case):
    """The authors' config of a case (their defaults updated by the YAML).

    Args:
        repo: the CARL_code clone (already on `sys.path`).
        case: "pouring" or "penn_action".

    Returns:
        Their `EasyDict` config, as `utils.parser.load_config` builds it.
    """
    import yaml
    from utils.config import get_cfg

    cfg = get_cfg()
    with open(os.path.join(repo, "configs", CONFIGS[case])) as f:
        cfg.update(yaml.safe_load(f))
    return cfg


def build_model(cfg):
    """Their `TransformerModel` with random weights (nothing downloaded).

    Their constructor calls `torchvision.models.resnet50(pretrained=True)`;
    the call is redirected to `resnet50(weights=None)` while it runs.
    """
    import torchvision
    from models.transformer import TransformerModel

    original = torchvision.models.resnet50

    def random_resnet50(pretrained=False, **kwargs):
        del pretrained  # random weights: the step's cost does not use them
        return original(weights=None, **kwargs)

    torchvision.models.resnet50 = random_resnet50
    try:
        return TransformerModel(cfg)
    finally:
        torchvision.models.resnet50 = original


def _median(fn, iterations, warmup):
    """Median wall and process CPU seconds of `fn` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(iterations):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), statistics.median(cpu)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="CARL_code clone")
    parser.add_argument("--case", required=True, choices=sorted(CONFIGS))
    parser.add_argument("--views", required=True,
                        help=".npz with steps [B, 2, T], masks [B, 2, T]")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the NumPy generator of the frames")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch intra-op threads (as many as ours)")
    parser.add_argument("--frames_per_batch", type=int, default=0,
                        help="frames per trunk chunk; 0: their config's")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    repo = os.path.abspath(args.repo)
    sys.path.insert(0, repo)
    from algos.scl import SCL

    cfg = load_config(repo, args.case)
    if args.frames_per_batch:
        cfg.MODEL.BASE_MODEL.FRAMES_PER_BATCH = args.frames_per_batch
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    model.train()
    algo = SCL(cfg)
    # Their optimizer (parameter groups without the frozen backbone), built
    # so that `zero_grad` clears what their training loop clears.
    from utils.optimizer import construct_optimizer
    optimizer = construct_optimizer(model, cfg)

    views = np.load(args.views)
    steps, masks = views["steps"], views["masks"]
    batch, _, num_steps = steps.shape
    size = int(cfg.IMAGE_SIZE)
    if num_steps != int(cfg.TRAIN.NUM_FRAMES):
        raise SystemExit(f"views have T={num_steps}, their config "
                         f"{cfg.TRAIN.NUM_FRAMES}")
    rng = np.random.default_rng(args.seed)
    frames = rng.standard_normal((batch, 2, num_steps, size, size, 3),
                                 dtype=np.float32)
    videos = torch.from_numpy(
        np.ascontiguousarray(frames.transpose(0, 1, 2, 5, 3, 4)))
    del frames
    chosen_steps = torch.from_numpy(steps.astype(np.int64))
    video_masks = torch.from_numpy(masks.astype(np.float32))
    seq_lens = torch.full((batch, 2), num_steps, dtype=torch.int64)

    losses = []

    def step():
        optimizer.zero_grad()
        loss = algo.compute_loss(model, videos, seq_lens, chosen_steps,
                                 video_masks)["loss"]
        loss.backward()
        losses.append(loss.item())

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    seconds, cpu = _median(step, args.iterations, max(args.warmup - 1, 0))
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    result = {
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "config": CONFIGS[args.case],
        "frames_per_batch": int(cfg.MODEL.BASE_MODEL.FRAMES_PER_BATCH),
        "trainable_params": int(sum(p.numel() for p in trained)),
        "first_step_s": round(first, 3),
        "train_step_s": round(seconds, 3),
        "train_step_cpu_s": round(cpu, 3),
        "peak_train_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "loss": round(losses[0], 4)}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
