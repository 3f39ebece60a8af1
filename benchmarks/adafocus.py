"""Benchmark of AdaFocus inference and training steps; one JSON line.

Inference section (`--section infer`, the default; cases `--cases`):
per-video latency and GFLOPs of AdaFocus' inference path (batch norms in
inference mode, dropout off, the policy's own patches) at each patch
size, against the baseline it saves compute over: its focus network, a
ResNet-50, on the whole frames. Every case sees `T` = 16 frames of
224 x 224 per video (`--num_frames`, `--frame_size`) and 200 classes
(ActivityNet, `--num_classes`). Cases (`--cases`, comma-separated):

* `full_frame` (the baseline, always run): ResNet-50 v1.5 (torchvision
  layout, the focus trunk's) on every whole frame -> average pool ->
  Dense head -> logits averaged over the frames;
* `v2_<glance>_p<P>`: `AdaFocusV2` as the recipe builds it
  (`adafocus_config.experiment_config("actnet", glance, P)`; the
  variant is a recipe's, `adafocus_config.parse_variant`): the glance
  (`mbv2`: MobileNet-V2 on the full frame; `res50`: ResNet-50 on a
  96 x 96 bilinear downsample) -> `PolicySTN` -> bilinear `P x P` crop
  -> ResNet-50 focus on the patch -> `PoolingClassifier`, plus the two
  auxiliary heads the model computes. Defaults: `mbv2` at P = 96, 128,
  160, 192 (per-frame GFLOPs 1.101 / 1.685 / 2.436 / 3.353 in the
  authors' `ops/early_exit.py`) and `res50` at 128;
* `v1_mbv2_p<P>`: `AdaFocusV1` with its published settings (MobileNet-V2
  glance on the full frame, the `ActorCritic` policy's argmax patch on
  the 7 x 7 grid, integer crop, ResNet-50 focus, GRU classifier);
  default P = 128 (26.6 GFLOPs per video in the paper).

GFLOPs are multiply-accumulates, as the AdaFocus papers count them
(`tfaction.models.adafocus.flops`: `adafocus_v2_gflops`,
`adafocus_v1_gflops`, and `frame_classifier_gflops` for the baseline),
per video and per frame, with each part. Weights are random (no
checkpoint is read; the cost does not depend on them), and so are the
frames.

Each case runs in its own subprocess (a fresh process: nothing else built
in it before these figures): the model's forward in one `tf.function`
without XLA, on a batch of `--batch_size` videos (1), every output
fetched; the median of `--iterations` timed calls after `--warmup`
untimed ones (the first call traces; its time is `first_call_s`).
`latency_s` is the median call divided by the batch size (per video).
Peak resident memory of the process (`resource.getrusage` `ru_maxrss`,
TensorFlow itself included): `peak_build_mb` after building the model and
the inputs, `peak_mb` after the calls; with a GPU visible, the GPU
allocator's peak during the timed calls (`gpu_peak_mb`).

Against the baseline: `gflops_ratio` is the case's GFLOPs over the
baseline's (`1 / gflops_ratio` is the speed-up the GFLOPs predict), and
`speedup` the baseline's latency over the case's, both timed in the
case's own process after the figures above, their calls alternating
(`paired_latency_s`, `paired_baseline_latency_s`): load from other
processes on the same cores then slows both alike, where cases timed one
after the other see different loads. Every case records the load average
when it ends (`load_average`), the whole run at its start and end.

Training section (`--section train` or `all`; cases `--train_cases`):
one training step of the task as the trainer runs it: the task's
`train_step` (built by `tasks.build_task` from the recipe,
`adafocus_config.experiment_config("actnet", "mbv2", P)` /
`v1_experiment_config("actnet", stage, P)`) in one `tf.function`, with
the recipe's optimizer (`optimizers.build_optimizer`) in a
`GlobalBatchOptimizer`, on `--train_batch_size` (1) videos of the same
sizes, the logs fetched. Cases:

* `v2_mbv2_p<P>`: AdaFocus V2's end-to-end step: glance, `PolicySTN` on
  the detached glance maps, bilinear crops of the policy's and of random
  patches, focus on both, `PoolingClassifier`, the loss of both passes
  (classifier + focus + glance cross-entropies), coupled L2 decay,
  backward, SGD with momentum and per-group learning rates;
* `v1_stage1_p<P>`: AdaFocus V1 stage 1: frozen glance, focus on random
  patches, GRU classifier, cross-entropy at every step, SGD;
* `v1_stage2_p<P>`: AdaFocus V1 stage 2: the rollout (the policy's
  sampled patches and random ones through the frozen focus and
  classifier, rewards, discounted standardised returns) and one PPO
  update of the policy (Adam).

The task's constructor reads a converted dataset, so the child writes a
two-video stub (`_stub_dataset`: the class list of `--num_classes`
classes, 3 blank frames per video) that only gives the task its classes;
the timed steps take the benchmark's own inputs. V1 stages 1 and 2 start
from a saved random model of the previous stage (`init_checkpoint`), as
the task requires.

With `--reference_repo` (a clone of LeapLabTHU/AdaFocusV2),
`--reference_repo_v1` (blackfeather-wang/AdaFocus) and
`--reference_python` (an environment with torch + torchvision +
hydra-core), each case also times the authors' code in a server
subprocess (`benchmarks/adafocus_torch.py`: their `main_v2.train` /
`main_dist.train` on a one-batch loader, and their V2 model in `eval()`
for the inference cases `v2_mbv2_*`), built once, warmed up like ours,
then its timed calls alternate with ours (`reference_s`, `ratio` =
ours / theirs). On a busy machine PyTorch's OpenMP threads spin at their
barriers while other processes hold the cores, which slows its 2-thread
figures several times more than TensorFlow's: compare there with
`--threads 1` or `OMP_WAIT_POLICY=PASSIVE` in the environment, and take
the default figures from an idle machine. Both sides draw the same
inputs from one NumPy generator
(`adafocus_torch.frames_and_labels`); weights are random on both sides.
The result's `rows` are the table lines of `make bench`.

Usage:
    python benchmarks/adafocus.py [--section infer|train|all]
        [--cases full_frame,v2_mbv2_p96,v2_mbv2_p128,v1_mbv2_p128,...]
        [--train_cases v2_mbv2_p128,v2_mbv2_p96,v1_stage1_p128,...]
        [--batch_size 1] [--train_batch_size 1] [--iterations 3]
        [--warmup 1] [--num_frames 16] [--frame_size 224]
        [--num_classes 200] [--quick] [--bench]
        [--reference_repo V2_CLONE --reference_repo_v1 V1_CLONE
         --reference_python PYTHON] [--output result.json]

`--quick` times one call of each case after one untimed call. `--bench`
(`make bench`, within 5 minutes with the references on an idle 2-core
machine): the training cases `v2_mbv2_p128`, `v1_stage1_p128` and
`v1_stage2_p128`, 2 timed calls after 1 untimed one (`--section all
--cases v2_mbv2_p128` adds the inference line against the authors').
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import op_floor  # noqa: E402
from benchmarks import timing  # noqa: E402

BASELINE = "full_frame"
CASES = (BASELINE, "v2_mbv2_p96", "v2_mbv2_p128", "v2_mbv2_p160",
         "v2_mbv2_p192", "v2_res50_p128", "v1_mbv2_p128")
VERSIONS = ("v1", "v2")
# ActivityNet v1.3, the dataset of the papers' headline numbers.
NUM_CLASSES = 200
TRAIN_CASES = ("v2_mbv2_p128", "v2_mbv2_p96", "v1_stage1_p128",
               "v1_stage2_p128")
SECTIONS = ("infer", "train", "all")
# `--bench` (`make bench`): the cases of the table's lines.
BENCH_TRAIN_CASES = "v2_mbv2_p128,v1_stage1_p128,v1_stage2_p128"
# Issue #16: our training step at most this fraction of the authors'.
TARGET_RATIO = 0.8
TORCH_HARNESS = ROOT / "benchmarks" / "adafocus_torch.py"


def parse_case(case, frame_size=224):
    """The model a case name describes.

    Args:
        case: `"full_frame"`, `"v2_<glance>_p<P>"` (glance "mbv2" or
            "res50") or `"v1_mbv2_p<P>"`.
        frame_size: the frames' side, which `P` may not exceed.

    Returns:
        `(version, glance, patch_size)`: `("full_frame", None, None)` for
        the baseline, else e.g. `("v2", "mbv2", 128)`.

    Raises:
        ValueError: naming the case and what was expected.

    Example:

    >>> parse_case("v2_res50_p96")
    ('v2', 'res50', 96)
    """
    from tfaction import errors
    from tfaction.tasks import adafocus_config

    if case == BASELINE:
        return BASELINE, None, None
    version, _, variant = case.partition("_")
    expected = (f"expected {BASELINE!r}, 'v2_<glance>_p<patch size>' "
                "(glance mbv2 or res50) or 'v1_mbv2_p<patch size>'")
    if version not in VERSIONS or not variant:
        raise ValueError(f"unknown AdaFocus benchmark case {case!r}; "
                         f"{expected}")
    try:
        glance, patch_size = adafocus_config.parse_variant(variant)
    except errors.ConfigError as e:
        raise ValueError(f"unknown AdaFocus benchmark case {case!r}: "
                         f"{e}") from None
    if version == "v1" and glance != "mbv2":
        raise ValueError(f"case {case!r}: AdaFocus V1 is published with the "
                         "MobileNet-V2 glance only; expected "
                         f"'v1_mbv2_p{patch_size}'")
    if patch_size > frame_size:
        raise ValueError(f"case {case!r}: patch size {patch_size} exceeds "
                         f"the frame size {frame_size}")
    return version, glance, patch_size


def full_frame_model(num_frames, frame_size, num_classes):
    """The baseline: ResNet-50 on every whole frame, logits averaged.

    Args:
        num_frames: frames per video `T`.
        frame_size: the frames' side.
        num_classes: classes of the Dense head.

    Returns:
        `(model, trunk, head)`: a functional `keras.Model`
        `{"frames": [B, T, H, W, 3]}` -> `{"logits": [B, num_classes]}`,
        its ResNet-50 trunk (the AdaFocus focus trunk, `focus_arch
        "resnet50"`) and its `Dense` head (PyTorch's initialisation).

    Example:

    ```python
    model, trunk, head = full_frame_model(16, 224, 200)
    ```
    """
    import keras

    from tfaction.layers.box_axis import BoxAxis
    from tfaction.models.adafocus import common

    frames = common.frames_input(num_frames, (frame_size, frame_size))
    trunk = common.build_trunk("resnet50", name="focus", dtype=None)
    channels = common.trunk_output(trunk, (frame_size, frame_size),
                                   "focus")[-1]
    head = common.dense(num_classes, channels, "focus_head", None)
    maps = trunk(BoxAxis("merge", name="fold_frames")(frames))
    features = keras.layers.GlobalAveragePooling2D(name="focus_pool")(maps)
    frame_logits = BoxAxis("split", name="unfold_frames")(
        [head(features), frames])
    logits = keras.layers.GlobalAveragePooling1D(name="frame_average")(
        frame_logits)
    model = keras.Model({"frames": frames}, {"logits": logits},
                        name="resnet50_full_frame")
    return model, trunk, head


def build_case(case, num_frames=16, frame_size=224,
               num_classes=NUM_CLASSES, seed=0):
    """The model of a case and its GFLOPs, with random weights.

    Args:
        case: a case name (`parse_case`).
        num_frames: frames per video `T`.
        frame_size: the frames' side.
        num_classes: number of classes.
        seed: the seed of the weights.

    Returns:
        Dict with `model` (`{"frames": [B, T, H, W, 3]}` -> a dict of
        outputs), `gflops` (the `flops` function's dict: parts per frame,
        `per_frame`, `per_video`) and `description` (JSON-ready: the model
        class, glance trunk and input size, focus trunk and input size).

    Raises:
        ValueError: an unknown case.

    Example:

    ```python
    built = build_case("v2_mbv2_p128")
    built["gflops"]["per_video"]   # 26.96
    ```
    """
    import keras

    from tfaction.models.adafocus import flops
    from tfaction.models.adafocus.v1 import AdaFocusV1
    from tfaction.models.adafocus.v2 import AdaFocusV2
    from tfaction.tasks import adafocus_config

    version, glance, patch_size = parse_case(case, frame_size)
    keras.utils.set_random_seed(seed)
    if version == BASELINE:
        model, trunk, head = full_frame_model(num_frames, frame_size,
                                              num_classes)
        return {"model": model,
                "gflops": flops.frame_classifier_gflops(
                    trunk, head, (frame_size, frame_size), num_frames),
                "description": {
                    "model": "ResNet-50 on full frames", "glance": None,
                    "glance_input": None, "focus": "resnet50",
                    "focus_input": [frame_size, frame_size]}}
    if version == "v2":
        task = adafocus_config.experiment_config("actnet", glance,
                                                 patch_size).task
        task.frames.num_steps = num_frames
        task.frames.crop_size = (frame_size, frame_size)
        model = AdaFocusV2(num_classes,
                           **adafocus_config.model_values(task))
        gflops = flops.adafocus_v2_gflops(model)
    else:
        model = AdaFocusV1(num_classes, num_frames=num_frames,
                           frame_size=frame_size, patch_size=patch_size)
        gflops = flops.adafocus_v1_gflops(model)
    return {"model": model, "gflops": gflops,
            "description": {
                "model": type(model).__name__, "glance": model.glance_arch,
                "glance_input": list(model.glance_size),
                "focus": model.focus_arch,
                "focus_input": [patch_size, patch_size]}}


def _peak_rss_mb():
    """The process's peak resident memory so far (MB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                 1)


def _forward_call(model, frames):
    """A zero-argument call of `model`'s forward (inference mode, one
    `tf.function` without XLA) on `frames`; returns every output."""
    import tensorflow as tf

    @tf.function(jit_compile=False)
    def forward(frames):
        return model({"frames": frames}, training=False)

    def call():
        # Fetching every output waits for the device.
        return {k: v.numpy() for k, v in forward(frames).items()}

    return call


def _case_child(args):
    """One case in this (fresh) process; prints 'RESULT {json}'."""
    import numpy as np
    import tensorflow as tf

    sizes = (args.num_frames, args.frame_size, args.num_classes)
    built = build_case(args.child_case, *sizes)
    model = built["model"]
    # Drawn on the default device (the GPU when there is one), so the
    # timed calls copy nothing from the host.
    frames = tf.random.stateless_normal(
        (args.batch_size, args.num_frames, args.frame_size, args.frame_size,
         3), seed=[0, 0])
    call = _forward_call(model, frames)
    gflops = built["gflops"]
    result = {
        "case": args.child_case, **built["description"],
        "params": int(model.count_params()),
        "gflops_per_video": round(gflops["per_video"], 6),
        "gflops_per_frame": round(gflops["per_frame"], 6),
        "gflops_parts": {k: round(v, 6) for k, v in gflops.items()
                         if k not in ("per_frame", "per_video")},
        "peak_build_mb": _peak_rss_mb()}
    gpu = bool(tf.config.list_physical_devices("GPU"))
    start = time.perf_counter()
    outputs = call()
    result["first_call_s"] = round(time.perf_counter() - start, 3)
    for _ in range(args.warmup - 1):
        call()
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    seconds = timing.median_times([call], args.iterations, 0)[0]
    result.update({
        "batch_s": round(seconds, 4),
        "latency_s": round(seconds / args.batch_size, 4),
        "videos_per_s": round(args.batch_size / seconds, 2),
        "peak_mb": _peak_rss_mb(),
        "outputs_finite": bool(all(np.isfinite(v).all()
                                   for v in outputs.values()))})
    if gpu:
        result["gpu_peak_mb"] = round(tf.config.experimental.get_memory_info(
            "GPU:0")["peak"] / 2**20, 1)
    if args.child_case == BASELINE:
        result.update(speedup=1.0, gflops_ratio=1.0)
    else:
        # The baseline again, here, its calls alternating with the case's:
        # load from other processes then slows both alike.
        base = build_case(BASELINE, *sizes)
        base_call = _forward_call(base["model"], frames)
        for _ in range(args.warmup):
            base_call()
        paired, paired_base = timing.median_times(
            [call, base_call], args.iterations, 0)
        result.update({
            "paired_latency_s": round(paired / args.batch_size, 4),
            "paired_baseline_latency_s": round(
                paired_base / args.batch_size, 4),
            "speedup": round(paired_base / paired, 3),
            "gflops_ratio": round(
                gflops["per_video"] / base["gflops"]["per_video"], 3)})
    version, glance, patch_size = parse_case(args.child_case,
                                             args.frame_size)
    if (version, glance) == ("v2", "mbv2") and _has_reference(args, "v2"):
        # The authors' V2 in eval(), its calls alternating with ours.
        figures, _ = timed_against(
            call, Reference(args, "v2_infer", patch_size, args.batch_size),
            args)
        result.update(
            latency_vs_reference_s=round(
                figures["seconds"] / args.batch_size, 4),
            reference_latency_s=round(
                figures["reference_s"] / args.batch_size, 4),
            reference=figures["reference"])
    result["load_average"] = timing.load_average()
    print("RESULT " + json.dumps(result))


def run_cases(args, cases):
    """Every case in its own subprocess; dict case -> figures."""
    common = timing.flag_args(args, ("iterations", "warmup", "batch_size",
                                     "num_frames", "frame_size",
                                     "num_classes", "threads"))
    common += _reference_flags(args)
    return {case: timing.case_row(__file__, ["--child_case", case, *common],
                                  f"case {case}") for case in cases}


# --------------------------------------------------------------- training
def parse_train_case(case, frame_size=224):
    """The training step a training case names.

    Args:
        case: `"v2_mbv2_p<P>"`, `"v1_stage1_p<P>"` or `"v1_stage2_p<P>"`.
        frame_size: the frames' side, which `P` may not exceed.

    Returns:
        `(version, stage, patch_size)`, e.g. `("v2", None, 128)` or
        `("v1", 2, 128)`.

    Raises:
        ValueError: naming the case and what was expected.

    Example:

    >>> parse_train_case("v1_stage2_p128")
    ('v1', 2, 128)
    """
    expected = ("expected 'v2_mbv2_p<patch size>', 'v1_stage1_p<patch "
                "size>' or 'v1_stage2_p<patch size>'")
    version, _, rest = case.partition("_")
    part, _, patch = rest.partition("_p")
    known = {"v2": {"mbv2": None}, "v1": {"stage1": 1, "stage2": 2}}
    if (version not in known or part not in known[version]
            or not patch.isdigit() or int(patch) < 1):
        raise ValueError(f"unknown AdaFocus training case {case!r}; "
                         f"{expected}")
    if int(patch) > frame_size:
        raise ValueError(f"training case {case!r}: patch size {patch} "
                         f"exceeds the frame size {frame_size}")
    return version, known[version][part], int(patch)


def _stub_dataset(root, num_classes):
    """A converted two-video dataset whose class list has `num_classes`
    classes: the task's constructor reads one; the steps never do.

    Returns:
        The records folder.
    """
    import numpy as np
    import tensorflow as tf

    from tfaction.data.formats.adafocus_lists import convert_adafocus_lists

    raw = root / "raw"
    (raw / "frames").mkdir(parents=True)
    (raw / "classInd.txt").write_text(
        "".join(f"class_{k}\n" for k in range(num_classes)))
    jpeg = tf.io.encode_jpeg(np.zeros((8, 8, 3), np.uint8)).numpy()
    lists = []
    for split in ("train", "val"):
        folder = raw / "frames" / f"video_{split}"
        folder.mkdir()
        for index in range(1, 4):  # the converter's minimum of 3 frames
            (folder / f"image_{index:05d}.jpg").write_bytes(jpeg)
        lists.append(raw / f"actnet_{split}_split.txt")
        lists[-1].write_text(f"video_{split},3,0\n")
    convert_adafocus_lists(lists, raw / "frames", root / "records",
                           dataset="actnet",
                           class_list=raw / "classInd.txt")
    return root / "records"


def _previous_stage(config, num_classes, workdir):
    """A run folder of the V1 stage before `config.stage`: a random model
    saved as its checkpoint, and the `config.json` naming its stage."""
    import tensorflow as tf

    from tfaction import config as config_lib
    from tfaction.models.adafocus.v1 import AdaFocusV1
    from tfaction.tasks import adafocus_config

    model = AdaFocusV1(num_classes, **adafocus_config.v1_model_values(config))
    tf.train.Checkpoint(model=model).save(
        str(workdir / "checkpoints" / "ckpt"))
    (workdir / config_lib.CONFIG_JSON).write_text(json.dumps(
        {"task": {"name": adafocus_config.V1_TASK_NAME,
                  "stage": int(config.stage) - 1}}))
    return str(workdir)


def train_config(case, root, *, batch_size=1, num_frames=16,
                 frame_size=224, num_classes=NUM_CLASSES):
    """The recipe of a training case at the benchmark's sizes.

    Args:
        case: a training case (`parse_train_case`).
        root: an empty folder for the stub dataset (and the previous V1
            stage's run).
        batch_size, num_frames, frame_size, num_classes: the sizes.

    Returns:
        The experiment `ConfigDict` (`tasks.build_task` builds its task).

    Example:

    ```python
    config = train_config("v2_mbv2_p128", pathlib.Path(tmp))
    task = tasks.build_task(config)
    ```
    """
    from tfaction.tasks import adafocus_config

    version, stage, patch_size = parse_train_case(case, frame_size)
    if version == "v2":
        config = adafocus_config.experiment_config("actnet", "mbv2",
                                                   patch_size)
        config.task.train_from_scratch = True  # random trunks
    else:
        config = adafocus_config.v1_experiment_config("actnet", stage,
                                                      patch_size)
    task = config.task
    task.data_dir = str(_stub_dataset(root, num_classes))
    task.frames.num_steps = num_frames
    task.frames.crop_size = (frame_size, frame_size)
    if version == "v1":
        task.init_checkpoint = _previous_stage(task, num_classes,
                                               root / "previous_stage")
    config.trainer.global_batch_size = batch_size
    return config


def step_inputs(case, batch_size, num_frames, frame_size, num_classes):
    """`(features, labels)` of a training case's step, from the NumPy
    draws the authors' side also takes (`adafocus_torch`)."""
    import tensorflow as tf

    from benchmarks import adafocus_torch

    frames, labels, locations, noise = adafocus_torch.frames_and_labels(
        batch_size, num_frames, frame_size, num_classes)
    features = {"frames": tf.constant(frames),
                "random_locations": tf.constant(locations)}
    if case.startswith("v1_stage2"):
        features["action_noise"] = tf.constant(noise)
    return features, {"label": tf.constant(labels, tf.int32)}


class Reference:
    """The authors' code for one case, in a server subprocess.

    `benchmarks/adafocus_torch.py` builds the case once; `step()` asks for
    one call and returns the seconds it took there.

    Args:
        args: the parsed flags (`reference_repo`, `reference_repo_v1`,
            `reference_python`, sizes).
        child: the harness case (`adafocus_torch.CHILDREN`).
        patch_size: the focus patch side.
        batch_size: videos per call.

    Raises:
        RuntimeError: the server ended without answering (its log's tail).
    """

    def __init__(self, args, child, patch_size, batch_size):
        self.repo = (args.reference_repo_v1 if child.startswith("v1")
                     else args.reference_repo)
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [args.reference_python, str(TORCH_HARNESS), "--repo",
             self.repo, "--child", child, "--patch_size", str(patch_size),
             "--batch_size", str(batch_size),
             "--num_frames", str(args.num_frames),
             "--frame_size", str(args.frame_size),
             "--num_classes", str(args.num_classes),
             # As many threads as TensorFlow's intra-op pool here.
             "--threads", str(args.threads or os.cpu_count())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True)
        self.built = json.loads(self._answer("READY"))

    def _answer(self, tag):
        line = self.proc.stdout.readline()
        if not line.startswith(tag + " "):
            self.proc.kill()
            self.log.seek(0)
            raise RuntimeError(f"the reference server ({self.repo}) gave "
                               f"{line!r}, not {tag}:\n"
                               f"{self.log.read()[-4000:]}")
        return line[len(tag) + 1:]

    def step(self):
        """One call of the authors' code; its seconds."""
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        return float(self._answer("TIME"))

    def close(self):
        """Ends the server; its facts (peak memory, versions, threads)."""
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        result = json.loads(self._answer("RESULT"))
        self.proc.wait()
        self.log.close()
        return dict(result, build_s=self.built["build_s"],
                    params=self.built["params"],
                    commit=repo_commit(self.repo))


def repo_commit(path):
    """The clone's HEAD commit, or None when `path` is no git work tree."""
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def timed_against(call, reference, args):
    """Times `call` alone, then alternating with the reference.

    Returns:
        Dict: `first_call_s` and, with a reference, `reference_first_call_s`
        (their first calls: tracing / allocation), `seconds` and
        `reference_s` (medians of `args.iterations` alternating calls after
        `args.warmup` untimed ones each), `ratio` (ours / theirs) and
        `reference` (the server's facts).
    """
    start = time.perf_counter()
    outputs = call()
    result = {"first_call_s": round(time.perf_counter() - start, 3)}
    for _ in range(args.warmup - 1):
        call()
    if reference is None:
        result["seconds"] = round(
            timing.median_times([call], args.iterations, 0)[0], 4)
        return result, outputs
    result["reference_first_call_s"] = round(reference.step(), 3)
    for _ in range(args.warmup - 1):
        reference.step()
    ours, theirs = [], []
    for _ in range(args.iterations):
        start = time.perf_counter()
        call()
        ours.append(time.perf_counter() - start)
        theirs.append(reference.step())
    result.update(seconds=round(timing.median(ours), 4),
                  reference_s=round(timing.median(theirs), 4))
    result["ratio"] = round(result["seconds"] / result["reference_s"], 3)
    result["reference"] = reference.close()
    return result, outputs


def _has_reference(args, version):
    repo = args.reference_repo_v1 if version == "v1" else args.reference_repo
    return bool(repo and args.reference_python)


def _train_child(args):
    """One training case in this (fresh) process; prints 'RESULT {json}'."""
    import numpy as np
    import tensorflow as tf

    from tfaction import tasks
    from tfaction.training import optimizers
    from tfaction.training.global_batch_optimizer import (
        GlobalBatchOptimizer)

    case = args.child_train
    version, stage, patch_size = parse_train_case(case, args.frame_size)
    batch = args.train_batch_size
    sizes = dict(num_frames=args.num_frames, frame_size=args.frame_size,
                 num_classes=args.num_classes)
    with tempfile.TemporaryDirectory() as tmp:
        config = train_config(case, pathlib.Path(tmp), batch_size=batch,
                              **sizes)
        task = tasks.build_task(config)
        model = task.build_model()
    # As the trainer builds them (tfaction.training.trainer).
    optimizer = optimizers.build_optimizer(
        config.optimizer, 1000,
        exclude_variables=task.weight_decay_exclusions(model),
        steps_per_epoch=100)
    optimizer.build(model.trainable_variables)
    updater = GlobalBatchOptimizer(optimizer, batch,
                                   clip_norm=config.optimizer.clip_norm,
                                   num_replicas=1)
    metrics = task.build_metrics(training=True)
    features, labels = step_inputs(case, batch, **sizes)

    @tf.function(jit_compile=False)
    def train_fn(features, labels):
        return task.train_step((features, labels), model, updater, metrics)

    def call():
        return {k: v.numpy() for k, v in train_fn(features, labels).items()}

    result = {"case": case, "stage": stage, "patch_size": patch_size,
              "batch_size": batch,
              "trainable_params": int(sum(
                  np.prod(v.shape) for v in model.trainable_variables)),
              "peak_build_mb": _peak_rss_mb()}
    reference = None
    if _has_reference(args, version):
        child = "v2_train" if version == "v2" else f"v1_stage{stage}"
        reference = Reference(args, child, patch_size, batch)
    figures, logs = timed_against(call, reference, args)
    result.update(figures)
    result.update(loss=float(logs["loss"]),
                  loss_finite=bool(np.isfinite(logs["loss"])),
                  peak_mb=_peak_rss_mb(),
                  load_average=timing.load_average())
    # After the peak: the floor's operands are its own.
    floor = op_floor.contraction_floor(
        train_fn.get_concrete_function(features, labels), args.iterations)
    result.update(floor_s=round(floor["floor_s"], 4), floor=floor)
    print("RESULT " + json.dumps(result))


def run_train_cases(args, cases):
    """Every training case in its own subprocess; dict case -> figures."""
    common = timing.flag_args(args, ("iterations", "warmup",
                                     "train_batch_size", "num_frames",
                                     "frame_size", "num_classes", "threads"))
    common += _reference_flags(args)
    return {case: timing.case_row(__file__, ["--child_train", case, *common],
                                  f"training case {case}")
            for case in cases}


def _reference_flags(args):
    return [part for name in ("reference_repo", "reference_repo_v1",
                              "reference_python")
            if getattr(args, name)
            for part in (f"--{name}", getattr(args, name))]


def _reference_name(row):
    facts = row.get("reference")
    if not facts:
        return None
    repo = ("AdaFocusV2" if row.get("repo") == "v2" else "AdaFocus")
    commit = facts["commit"][:7] if facts["commit"] else "unknown commit"
    return (f"authors' PyTorch code ({repo} @ {commit}, torch "
            f"{facts['torch']}, {facts['torch_threads']} threads)")


def _row(measure, row, ours_key, reference_key, target=None):
    reference = row.get(reference_key)
    ratio = (round(row[ours_key] / reference, 2) if reference else None)
    met = None
    if target is not None and ratio is not None:
        met = ratio <= target
    return {"family": "AdaFocus", "measure": measure,
            "ours": row[ours_key], "reference": reference, "unit": "s",
            "ratio": ratio, "reference_name": _reference_name(row),
            "target": f"<= {target}x" if target is not None else None,
            "met": met}


def table_rows(result, num_frames, frame_size):
    """The `make bench` lines of a result (see `benchmarks/README.md`).

    Args:
        result: the benchmark's result so far (`cases`, `train_cases`).
        num_frames, frame_size: the clip sizes, for the measures' text.

    Returns:
        List of row dicts (`family`, `measure`, `ours`, `reference`,
        `unit`, `ratio`, `reference_name`, `target`, `met`).
    """
    rows = []
    shapes = f"T={num_frames}, {frame_size}x{frame_size}"
    what = {None: "V2 end-to-end training step",
            1: "V1 stage-1 training step (random patches)",
            2: "V1 stage-2 step (rollout + PPO update)"}
    for case, row in result.get("train_cases", {}).items():
        version, stage, patch = parse_train_case(case, frame_size)
        row = dict(row, repo=version)
        measure = (f"{what[stage]}, ActivityNet shapes "
                   f"(B={row['batch_size']}, {shapes}, P={patch})")
        rows.append(_row(measure, row, "seconds", "reference_s",
                         TARGET_RATIO))
        if "floor_s" in row:  # what no schedule of our products beats
            rows.append(_row(measure.replace(
                " step", " step's contraction floor (its convolutions and "
                "matrix products in one graph) vs the authors' step", 1),
                row, "floor_s", "reference_s"))
    for case, row in result.get("cases", {}).items():
        if case == BASELINE:
            continue
        row = dict(row, repo=case[:2])
        version, glance, patch = parse_case(case, frame_size)
        rows.append(_row(f"{version.upper()} inference per video "
                         f"({glance} glance, {shapes}, P={patch}; "
                         f"{row['speedup']}x the full-frame ResNet-50)",
                         row, ("latency_vs_reference_s"
                               if "reference_latency_s" in row
                               else "latency_s"), "reference_latency_s"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=SECTIONS, default="infer",
                        help="inference cases, training cases or both")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated cases (default "
                             f"{','.join(CASES)}); {BASELINE} always runs")
    parser.add_argument("--train_cases", default=",".join(TRAIN_CASES),
                        help="comma-separated training cases")
    parser.add_argument("--batch_size", type=int, default=1,
                        help="videos per inference call")
    parser.add_argument("--train_batch_size", type=int, default=1,
                        help="videos per training step")
    parser.add_argument("--iterations", type=int, default=3,
                        help="timed calls per case")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed calls per case (the first traces)")
    parser.add_argument("--num_frames", type=int, default=16,
                        help="frames per video")
    parser.add_argument("--frame_size", type=int, default=224,
                        help="side of the square frames")
    parser.add_argument("--num_classes", type=int, default=NUM_CLASSES)
    parser.add_argument("--quick", action="store_true",
                        help="one untimed and one timed call per case")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow intra- and inter-op threads and "
                             "torch threads (0: TensorFlow's default, the "
                             "CPU count, and as many torch threads)")
    parser.add_argument("--bench", action="store_true",
                        help="the `make bench` preset (module docstring)")
    parser.add_argument("--reference_repo",
                        help="clone of LeapLabTHU/AdaFocusV2")
    parser.add_argument("--reference_repo_v1",
                        help="clone of blackfeather-wang/AdaFocus")
    parser.add_argument("--reference_python",
                        help="Python with torch, torchvision, hydra-core")
    parser.add_argument("--output", help="also write the JSON line here")
    parser.add_argument("--child_case", help=argparse.SUPPRESS)
    parser.add_argument("--child_train", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.warmup = 1, 1
    if args.bench:
        args.section, args.iterations, args.warmup = "train", 2, 1
        args.train_cases = BENCH_TRAIN_CASES
    for flag in ("iterations", "warmup", "batch_size", "train_batch_size",
                 "num_frames", "frame_size", "num_classes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.threads < 0:
        parser.error(f"--threads must be >= 0, got {args.threads}")
    if (args.reference_repo or args.reference_repo_v1) and not (
            args.reference_python):
        parser.error("--reference_repo(_v1) needs --reference_python")
    # The baseline first: every other case is compared with it.
    cases = ([args.child_case] if args.child_case else list(dict.fromkeys(
        [BASELINE] + [c for c in args.cases.split(",") if c])))
    train_cases = ([args.child_train] if args.child_train else list(
        dict.fromkeys(c for c in args.train_cases.split(",") if c)))
    # Only the cases this run times are checked.
    if args.child_train or args.section == "train":
        cases = []
    if args.child_case or args.section == "infer":
        train_cases = []
    try:
        for case in cases:
            parse_case(case, args.frame_size)
        for case in train_cases:
            parse_train_case(case, args.frame_size)
    except ValueError as e:
        parser.error(str(e))

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if args.child_case:
        return _case_child(args)
    if args.child_train:
        return _train_child(args)
    start = time.perf_counter()
    loads = [timing.load_average()]
    result = {"benchmark": "adafocus", "section": args.section,
              "baseline": BASELINE, "batch_size": args.batch_size,
              "train_batch_size": args.train_batch_size,
              "num_frames": args.num_frames,
              "frame_size": [args.frame_size, args.frame_size],
              "num_classes": args.num_classes}
    if args.section in ("infer", "all"):
        result["cases"] = run_cases(args, cases)
    if args.section in ("train", "all"):
        result["train_cases"] = run_train_cases(args, train_cases)
    result.update(iterations=args.iterations, warmup=args.warmup,
                  threads=args.threads or os.cpu_count(),
                  rows=table_rows(result, args.num_frames, args.frame_size))
    loads.append(timing.load_average())
    result.update(timing.run_facts(start, loads))
    return timing.write_result(result, args.output)


if __name__ == "__main__":
    main()
