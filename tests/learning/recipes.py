"""Runs the synthetic recipes through their command-line launchers.

The learning tests call the same commands as `make demo`,
`make demo-actionvlad` and `make demo-action-transformer` (data,
conversion, training, scoring), with smaller data and fewer steps; the demo
tests run the Makefile targets themselves.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ACTIONFORMER_CONFIG = "experiments/configs/actionformer_synthetic.py"
ACTIONVLAD_CONFIG = "experiments/configs/actionvlad_synthetic_{}.py"
ACTION_TRANSFORMER_CONFIG = (
    "experiments/configs/action_transformer_synthetic.py")
TIOUS = "0.3,0.4,0.5,0.6,0.7"


def run(args, log_path, timeout=600):
    """Runs `args` in the repository root; returns its stdout + stderr.

    Args:
        args: the command line; a leading "-m" runs this interpreter.
        log_path: file that receives the output.
        timeout: seconds before the command is killed.

    Returns:
        The output as text. A non-zero exit fails the test with the
        output's tail.

    Example:

    >>> run(["-m", "tfaction.data.synthetic", "--help"], "/tmp/h.log")
    """
    if args[0] == "-m":
        args = [sys.executable, *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(args, cwd=REPO_ROOT, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    pathlib.Path(log_path).write_text(done.stdout)
    assert done.returncode == 0, (args, done.stdout[-4000:])
    return done.stdout


def actionformer_records(root, num_videos=None):
    """`make demo` steps 1-2 in `root`: synthetic localisation features,
    converted with `--feature_stride=4 --feature_window=16`.

    Args:
        root: working folder (gets `raw/` and `records/`).
        num_videos: synthetic videos (a fifth held out); None: the
            generator's default (60, as `make demo`).

    Returns:
        The converted dataset's folder (`root / "records"`).

    Example:

    >>> records = actionformer_records(tmp, num_videos=10)
    """
    root = pathlib.Path(root)
    count = [f"--num_videos={num_videos}"] if num_videos else []
    run(["-m", "tfaction.data.synthetic", "--kind=temporal_localization",
         *count, f"--out_dir={root / 'raw'}"], root / "data.log")
    run(["-m", "tfaction.data.convert", "--format=activitynet_features",
         f"--input={root / 'raw' / 'annotations.json'}",
         f"--features_dir={root / 'raw' / 'features'}",
         "--feature_stride=4", "--feature_window=16",
         f"--output_dir={root / 'records'}"], root / "convert.log")
    return root / "records"


def actionformer_average_map(root, overrides=()):
    """`make demo` steps 1-4 in `root`; returns the validation mAP.

    Args:
        root: empty working folder.
        overrides: extra `--config.x.y=v` flags of `experiments.train`.

    Returns:
        `(average_mAP, mAP_per_tiou)` over tIoU 0.3:0.1:0.7 from the
        official ActivityNet metric (`experiments.evaluate`).

    Example:

    >>> actionformer_average_map(tmp, ["--config.trainer.epochs=8"])[0]
    """
    root = pathlib.Path(root)
    actionformer_records(root)
    run(["-m", "experiments.train", f"--config={ACTIONFORMER_CONFIG}",
         f"--workdir={root / 'train'}", "--mode=train_and_eval",
         f"--config.task.data_dir={root / 'records'}", *overrides],
        root / "train.log")
    result = root / "map.json"
    run(["-m", "experiments.evaluate", "--metric=activitynet_detection",
         f"--ground_truth={root / 'records' / 'ground_truth.json'}",
         f"--predictions={root / 'train' / 'predictions.json'}",
         "--subset=validation", f"--tiou_thresholds={TIOUS}",
         "--skip_unknown_labels", f"--output_json={result}"],
        root / "evaluate.log")
    scores = json.loads(result.read_text())
    return scores["average_mAP"], scores["mAP_per_tiou"]


def actionvlad_records(root, num_videos):
    """`make demo-actionvlad` steps 1-2 in `root`: synthetic HMDB51-layout
    videos converted with both modalities (RGB and flow).

    Args:
        root: working folder (gets `raw/`, with the split lists under
            `raw/train_test_lists`, and `records/`).
        num_videos: synthetic videos to generate (30% held out).

    Returns:
        The converted dataset's folder (`root / "records"`).

    Example:

    >>> records = actionvlad_records(tmp, 16)
    """
    root = pathlib.Path(root)
    raw, records = root / "raw", root / "records"
    lists = raw / "train_test_lists"
    run(["-m", "tfaction.data.synthetic", "--kind=video_classification",
         f"--num_videos={num_videos}", f"--out_dir={raw}"], root / "data.log")
    run(["-m", "tfaction.data.convert", "--format=hmdb51_frames",
         f"--input={lists / 'train_split1.txt'},{lists / 'test_split1.txt'}",
         f"--frames_root={raw / 'frames'}", "--modalities=rgb,flow",
         f"--class_list={raw / 'actions.txt'}", f"--output_dir={records}"],
        root / "convert.log")
    return records


def actionvlad_accuracies(root, num_videos, overrides=()):
    """`make demo-actionvlad` steps 1-5 in `root`; returns the accuracies.

    Args:
        root: empty working folder.
        num_videos: synthetic videos to generate (30% held out).
        overrides: extra `--config.x.y=v` flags of both streams'
            `experiments.actionvlad_init_centers` and `experiments.train`.

    Returns:
        The JSON line of `experiments.actionvlad_fuse` (RGB:flow = 1:2) as
        a dict: `num_videos` and `{"top1", "top5"}` of `rgb`, `flow` and
        `fused` on the held-out videos.

    Example:

    >>> actionvlad_accuracies(tmp, 80, ["--config.trainer.epochs=8"])
    """
    root = pathlib.Path(root)
    records = actionvlad_records(root, num_videos)
    lists = root / "raw" / "train_test_lists"
    for stream in ("rgb", "flow"):
        config = (f"--config={ACTIONVLAD_CONFIG.format(stream)}",
                  f"--config.task.data_dir={records}", *overrides)
        run(["-m", "experiments.actionvlad_init_centers", *config,
             f"--workdir={root / stream / 'init'}"], root / f"{stream}.log")
        run(["-m", "experiments.train", *config,
             f"--workdir={root / stream / 'train'}", "--mode=train_and_eval",
             "--config.task.centers_file="
             f"{root / stream / 'init' / 'centers.npz'}"],
            root / f"{stream}_train.log")
    output = run(["-m", "experiments.actionvlad_fuse",
                  f"--rgb={root / 'rgb' / 'train' / 'predictions.npz'}",
                  f"--flow={root / 'flow' / 'train' / 'predictions.npz'}",
                  f"--output={root / 'fused.npz'}",
                  f"--split_list={lists / 'test_split1.txt'}"],
                 root / "fuse.log")
    return fuse_result(output)


def fuse_result(output):
    """The JSON line `experiments.actionvlad_fuse` printed in `output`.

    Args:
        output: text holding one line that starts with `{"num_videos"`.

    Returns:
        That line, parsed.

    Example:

    >>> fuse_result('x\\n{"num_videos": 2, "fused": {"top1": 1.0}}\\n')
    {'num_videos': 2, 'fused': {'top1': 1.0}}
    """
    lines = [line for line in output.splitlines()
             if line.startswith('{"num_videos"')]
    assert len(lines) == 1, output[-4000:]
    return json.loads(lines[0])


def average_map(output):
    """The `average mAP: X` figure `experiments.evaluate` printed.

    Args:
        output: text holding one `average mAP: <float>` line.

    Returns:
        The float.

    Example:

    >>> average_map("0.3000  0.94\\naverage mAP: 0.8959\\n")
    0.8959
    """
    found = re.findall(r"^average mAP: ([0-9.]+)$", output, re.MULTILINE)
    assert len(found) == 1, output[-4000:]
    return float(found[0])


def frame_ap_table(output):
    """The table `experiments.evaluate --metric=ava_frame_ap` printed.

    Args:
        output: text holding the table (`class  #gt  AP` rows, then
            `mAP  <float>`).

    Returns:
        `{"mAP": float, "ap_per_class": {name: float or None}}` (None for
        a class without ground truth, printed `n/a`).

    Example:

    >>> frame_ap_table("class  #gt      AP\\nsit      4  0.5000\\n"
    ...                "mAP         0.5000\\n")
    {'mAP': 0.5, 'ap_per_class': {'sit': 0.5}}
    """
    lines = output.splitlines()
    heads = [i for i, line in enumerate(lines)
             if re.match(r"^class\s+#gt\s+AP$", line)]
    assert len(heads) == 1, output[-4000:]
    aps = {}
    for line in lines[heads[0] + 1:]:
        found = re.match(r"^mAP\s+([0-9.]+)$", line)
        if found:
            return {"mAP": float(found.group(1)), "ap_per_class": aps}
        row = re.match(r"^(.+?)\s+(\d+|-)\s*(-?[0-9.]+|n/a)$", line)
        assert row, (line, output[-4000:])
        value = row.group(3)
        aps[row.group(1)] = None if value == "n/a" else float(value)
    raise AssertionError(output[-4000:])


def make(target, log_path, timeout, **variables):
    """Runs `make <target> VAR=value ...` with this interpreter.

    The install step (`.venv/.installed`) is treated as done (`make -o`):
    the tests already run inside the environment.

    Args:
        target: Makefile target.
        log_path: file that receives the output.
        timeout: seconds before make is killed.
        **variables: Makefile variables to override (e.g. `AV_DEMO`).

    Returns:
        make's output as text.

    Example:

    >>> make("demo", "/tmp/demo.log", 1800, DEMO="/tmp/demo")
    """
    overrides = [f"{k}={v}" for k, v in variables.items()]
    return run(["make", "-o", ".venv/.installed", target,
                f"PY={sys.executable}", *overrides], log_path, timeout)


def ava_frame_ap(records, detections, output_json, log_path):
    """Frame-AP@0.5 of an AVA detections CSV (official metric).

    Args:
        records: the converter's output folder (`ground_truth_val.csv`,
            `label_map.pbtxt`).
        detections: the detections CSV to score.
        output_json: where `experiments.evaluate` writes its result.
        log_path: file that receives the output.

    Returns:
        `{"mAP": float, "ap_per_class": {name: float}}`.

    Example:

    >>> ava_frame_ap(root / "records", root / "tx" / "detections_val.csv",
    ...              root / "tx.json", root / "tx_eval.log")["mAP"]
    """
    records = pathlib.Path(records)
    run(["-m", "experiments.evaluate", "--metric=ava_frame_ap",
         f"--ground_truth={records / 'ground_truth_val.csv'}",
         f"--predictions={detections}",
         f"--label_map={records / 'label_map.pbtxt'}",
         f"--output_json={output_json}"], log_path)
    result = json.loads(pathlib.Path(output_json).read_text())
    return {"mAP": result["mAP"], "ap_per_class": result["ap_per_class"]}


def ava_records(root, num_videos, seed=0, clip_frames=None):
    """`make demo-action-transformer` steps 1-2 in `root`: synthetic AVA
    videos and CSVs, converted to keyframe records.

    Args:
        root: working folder (gets `raw/` and `records/`).
        num_videos: synthetic videos to generate (a third held out).
        seed: the generator's seed.
        clip_frames: frames per stored clip (`--clip_frames`); None: the
            converter's default (64).

    Returns:
        The converted dataset's folder (`root / "records"`).

    Example:

    >>> records = ava_records(tmp, 3)
    """
    root = pathlib.Path(root)
    raw, records = root / "raw", root / "records"
    run(["-m", "tfaction.data.synthetic", "--kind=ava",
         f"--num_videos={num_videos}", f"--seed={seed}", f"--out_dir={raw}"],
        root / "data.log")
    splits = ("train", "val")
    run(["-m", "tfaction.data.convert", "--format=ava",
         "--input=" + ",".join(str(raw / f"ava_{s}_v2.1.csv")
                               for s in splits),
         f"--videos_root={raw / 'videos'}",
         f"--label_map={raw / 'ava_action_list_synthetic.pbtxt'}",
         "--excluded_timestamps=" + ",".join(
             str(raw / f"ava_{s}_excluded_timestamps_v2.1.csv")
             for s in splits),
         *([f"--clip_frames={clip_frames}"] if clip_frames else []),
         f"--output_dir={records}"], root / "convert.log")
    return records


def action_transformer_maps(root, num_videos, heads=("tx", "i3d"),
                            overrides=(), seed=0, detected=True,
                            timeout=600):
    """Synthetic AVA data, conversion, one training per head, frame-AP.

    The steps of `make demo-action-transformer` for each head of the
    synthetic recipe: each head is trained and scored on the ground-truth
    boxes (`task.evaluation.boxes=groundtruth`, the paper's "GT boxes"
    setting, which isolates the head), then, with `detected`, the same
    checkpoint is evaluated on its own detections (`--mode=eval`).

    Args:
        root: empty working folder.
        num_videos: synthetic videos to generate (a third held out).
        heads: recipe heads (`:tx`, `:i3d`, `:tx_i3d`) to train.
        overrides: extra `--config.x.y=v` flags of every training.
        seed: the generator's seed.
        detected: also score the detected boxes.
        timeout: seconds each training may take.

    Returns:
        `{head: {"groundtruth": ..., "detected": ...}}`, each the
        `ava_frame_ap` dict (`mAP`, `ap_per_class`); "detected" only with
        `detected`.

    Example:

    >>> maps = action_transformer_maps(tmp, 240)
    >>> maps["tx"]["groundtruth"]["ap_per_class"]["talk to"]
    """
    root = pathlib.Path(root)
    records = ava_records(root, num_videos, seed)
    results = {}
    for head in heads:
        workdir = root / head
        flags = [f"--config={ACTION_TRANSFORMER_CONFIG}:{head}",
                 f"--workdir={workdir}",
                 f"--config.task.data_dir={records}", *overrides]
        run(["-m", "experiments.train", *flags, "--mode=train_and_eval",
             "--config.task.evaluation.boxes=groundtruth"],
            root / f"{head}_train.log", timeout)
        scored = workdir / "detections_val_groundtruth.csv"
        os.replace(workdir / "detections_val.csv", scored)
        results[head] = {"groundtruth": ava_frame_ap(
            records, scored, root / f"{head}_groundtruth.json",
            root / f"{head}_groundtruth.log")}
        if detected:
            run(["-m", "experiments.train", *flags, "--mode=eval",
                 "--config.task.evaluation.boxes=detected"],
                root / f"{head}_eval.log")
            results[head]["detected"] = ava_frame_ap(
                records, workdir / "detections_val.csv",
                root / f"{head}_detected.json",
                root / f"{head}_detected.log")
    return results


CARL_CONFIG = "experiments/configs/carl_synthetic.py"


def carl_records(root, num_videos=32, seed=0):
    """`make demo-carl` steps 1-2 in `root`: synthetic phase videos in the
    TCC layout, converted.

    Args:
        root: working folder (`raw/` and `records/` are written in it).
        num_videos: synthetic videos (a quarter held out as val).
        seed: the generator's seed.

    Returns:
        The converted dataset's folder (`root / "records"`).

    Example:

    >>> records = carl_records(tmp)
    """
    root = pathlib.Path(root)
    raw, records = root / "raw", root / "records"
    run(["-m", "tfaction.data.synthetic", "--kind=tcc",
         f"--num_videos={num_videos}", f"--seed={seed}", f"--out_dir={raw}"],
        root / "data.log")
    run(["-m", "tfaction.data.convert", "--format=tcc",
         f"--input={raw / '*.tfrecord'}", f"--output_dir={records}"],
        root / "convert.log")
    return records


def carl_framewise(root, records, name, overrides=()):
    """`make demo-carl` steps 3-4: train and evaluate, rescore the
    embeddings.

    Trains the synthetic CARL recipe (`--mode=train_and_eval`, which
    embeds every frame of both subsets and writes `embeddings.npz`) in
    `root / name`, then scores the written embeddings with
    `experiments.evaluate --metric=framewise --variant=carl` (its default
    strides 5 and 2, train fractions 0.1 / 0.5 / 1.0, retrieval K 5 / 10 /
    15).

    Args:
        root: working folder.
        records: `carl_records` output.
        name: the run's folder name under `root`.
        overrides: extra `--config.x.y=v` flags of `experiments.train`.

    Returns:
        `{"evaluate": ..., "eval_metrics": ...}`: the JSON result of
        `experiments.evaluate` (`datasets`: per action, `mean`: over the
        actions) and the metrics of the run's own evaluation
        (`eval_metrics.json`).

    Example:

    >>> scores = carl_framewise(tmp, carl_records(tmp), "trained")
    >>> scores["evaluate"]["mean"]["kendalls_tau_val_stride2"]
    """
    root = pathlib.Path(root)
    workdir = root / name
    run(["-m", "experiments.train", f"--config={CARL_CONFIG}",
         f"--workdir={workdir}", "--mode=train_and_eval",
         f"--config.task.data_dir={records}", *overrides],
        root / f"{name}_train.log", timeout=1200)
    result = root / f"{name}_framewise.json"
    embeddings = workdir / "embeddings.npz"
    run(["-m", "experiments.evaluate", "--metric=framewise",
         "--variant=carl", f"--ground_truth={embeddings}",
         f"--predictions={embeddings}", f"--output_json={result}"],
        root / f"{name}_evaluate.log")
    metrics = json.loads((workdir / "eval_metrics.json").read_text())
    return {"evaluate": json.loads(result.read_text()),
            "eval_metrics": metrics["metrics"]}


def framewise_table(output):
    """The table `experiments.evaluate --metric=framewise` printed.

    Args:
        output: text holding the table: a `metric <dataset> ... mean`
            header, then one row per metric (`name[fraction or K]` for the
            per-fraction and per-K figures), 4 decimals, `-` or `nan` where
            undefined.

    Returns:
        `{metric: {column: float or None}}` (None for `-`).

    Example:

    >>> framewise_table("metric  pour  mean\\nkendalls_tau_val_stride2  "
    ...                 "0.9800  0.9800\\n")
    {'kendalls_tau_val_stride2': {'pour': 0.98, 'mean': 0.98}}
    """
    lines = output.splitlines()
    heads = [i for i, line in enumerate(lines)
             if re.match(r"^metric(\s+\S+)*\s+mean$", line)]
    assert len(heads) == 1, output[-4000:]
    columns = lines[heads[0]].split()[1:]
    table = {}
    for line in lines[heads[0] + 1:]:
        cells = line.split()
        if len(cells) != len(columns) + 1 or not all(
                re.match(r"^(-?[0-9.]+|nan|-)$", c) for c in cells[1:]):
            break
        table[cells[0]] = {c: None if v == "-" else float(v)
                           for c, v in zip(columns, cells[1:])}
    assert table, output[-4000:]
    return table


ADAFOCUS_CONFIG = "experiments/configs/adafocus_v2_synthetic.py"


def adafocus_scores(root, num_videos, overrides=(), seed=0):
    """Synthetic AdaFocus data, conversion, training, `adafocus_map`.

    The steps a user runs: `python -m tfaction.data.synthetic
    --kind=adafocus`, `python -m tfaction.data.convert
    --format=actnet_frames`, `python -m experiments.train` of the
    synthetic AdaFocus V2 recipe (`--mode=train_and_eval`, which also
    scores the glance head alone and the classifier on uniformly random
    patches), then `python -m experiments.evaluate --metric=adafocus_map`
    on the written `predictions.npz`.

    Args:
        root: empty working folder.
        num_videos: synthetic videos to generate (a quarter held out).
        overrides: extra `--config.x.y=v` flags of `experiments.train`.
        seed: the generator's seed.

    Returns:
        `{"eval_metrics": ..., "evaluate": ...}`: the run's own evaluation
        (`eval_metrics.json`: `mAP`, `top1`, `glance_*`,
        `random_patch_*`, `gflops_per_video`, `num_videos`) and the JSON
        result of `experiments.evaluate` on its predictions.

    Example:

    >>> scores = adafocus_scores(tmp, 1200)
    >>> scores["eval_metrics"]["top1"], scores["evaluate"]["mAP"]
    """
    root = pathlib.Path(root)
    raw, records = adafocus_records(root, num_videos, seed)
    workdir = root / "train"
    run(["-m", "experiments.train", f"--config={ADAFOCUS_CONFIG}",
         f"--workdir={workdir}", "--mode=train_and_eval",
         f"--config.task.data_dir={records}", *overrides],
        root / "train.log", timeout=1800)
    result = root / "scored.json"
    run(["-m", "experiments.evaluate", "--metric=adafocus_map",
         f"--ground_truth={raw / 'actnet_val_split.txt'}",
         f"--predictions={workdir / 'predictions.npz'}", "--top_k=1",
         f"--output_json={result}"], root / "evaluate.log")
    metrics = json.loads((workdir / "eval_metrics.json").read_text())
    return {"eval_metrics": metrics["metrics"],
            "evaluate": json.loads(result.read_text())}


ADAFOCUS_V1_CONFIG = "experiments/configs/adafocus_v1_synthetic.py"


def adafocus_records(root, num_videos, seed=0):
    """Synthetic AdaFocus data and its conversion, as a user runs them.

    `python -m tfaction.data.synthetic --kind=adafocus`, then `python -m
    tfaction.data.convert --format=actnet_frames`.

    Args:
        root: working folder (gets `raw/` and `records/`).
        num_videos: synthetic videos to generate (a quarter held out).
        seed: the generator's seed.

    Returns:
        `(raw, records)` folders.

    Example:

    >>> raw, records = adafocus_records(tmp, 1200)
    """
    root = pathlib.Path(root)
    raw, records = root / "raw", root / "records"
    run(["-m", "tfaction.data.synthetic", "--kind=adafocus",
         f"--num_videos={num_videos}", f"--seed={seed}", f"--out_dir={raw}"],
        root / "data.log")
    run(["-m", "tfaction.data.convert", "--format=actnet_frames",
         f"--input={raw / 'actnet_train_split.txt'},"
         f"{raw / 'actnet_val_split.txt'}",
         f"--frames_root={raw / 'frames'}",
         f"--class_list={raw / 'classInd.txt'}", "--num_workers=2",
         f"--output_dir={records}"], root / "convert.log")
    return raw, records


def adafocus_v1_stages(root, num_videos, overrides=None, seed=0):
    """The four AdaFocus V1 stages on synthetic data, each from the last.

    Data and conversion (`adafocus_records`), then `python -m
    experiments.train --config=...adafocus_v1_synthetic.py:stage<k>
    --mode=train_and_eval` for k = 0 ... 3, stage k with
    `--config.task.init_checkpoint=<stage k - 1 workdir>`, then `python -m
    experiments.evaluate --metric=adafocus_map` on stage 3's predictions.

    Args:
        root: empty working folder.
        num_videos: synthetic videos to generate (a quarter held out).
        overrides: dict stage -> extra `--config.x.y=v` flags.
        seed: the generator's seed.

    Returns:
        `{0: metrics, ..., 3: metrics, "evaluate": ...}`: each stage's
        `eval_metrics.json` metrics and the JSON result of
        `experiments.evaluate` on stage 3's `predictions.npz`.

    Example:

    >>> scores = adafocus_v1_stages(tmp, 1200)
    >>> scores[2]["top1"], scores[1]["top1"]
    """
    root = pathlib.Path(root)
    raw, records = adafocus_records(root, num_videos, seed)
    scores, previous = {}, None
    for stage in range(4):
        workdir = root / f"stage{stage}"
        run(["-m", "experiments.train",
             f"--config={ADAFOCUS_V1_CONFIG}:stage{stage}",
             f"--workdir={workdir}", "--mode=train_and_eval",
             f"--config.task.data_dir={records}",
             *([f"--config.task.init_checkpoint={previous}"] if previous
               else []), *(overrides or {}).get(stage, ())],
            root / f"train_stage{stage}.log", timeout=1800)
        metrics = json.loads((workdir / "eval_metrics.json").read_text())
        scores[stage], previous = metrics["metrics"], workdir
    result = root / "scored.json"
    run(["-m", "experiments.evaluate", "--metric=adafocus_map",
         f"--ground_truth={raw / 'actnet_val_split.txt'}",
         f"--predictions={previous / 'predictions.npz'}", "--top_k=1",
         f"--output_json={result}"], root / "evaluate.log")
    scores["evaluate"] = json.loads(result.read_text())
    return scores
