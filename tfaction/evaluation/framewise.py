"""TCC / CARL frame-wise representation metrics and their CLI contract.

Reproduces the official TCC evaluation (google-research `tcc/evaluation`) and
CARL's (`minghchen/CARL_code` `evaluation/`) on per-frame embeddings:

* `kendalls_tau_{val,train}_stride<s>` -- Kendall's tau (both variants);
* `phase_classification_svm_val_acc` (TCC, RBF SVC) or
  `phase_classification_logreg_val_acc` (CARL, LogisticRegression), per
  train fraction;
* `phase_progression_r2_val` per fraction (both variants);
* `few_shot_svm_val_acc_mean_over_episodes` / `few_shot_val_ci95` per k (TCC);
* `retrieval_AP_stride<s>` per K (CARL).

Result keys match the reference bundle (`anchors/eval/tcc/*_results.json`).
Input files: see `tfaction.evaluation.framewise_io`.

Notes on exactness: tau, accuracies, few-shot means and retrieval equal the
official numbers to float64 rounding. Retrieval ranks with `np.argsort`, as
CARL does; numpy >= 1.25 on AVX-512 CPUs sorts with a SIMD kernel whose order
among *equal* distances differs from the classic introsort (the reference
numbers were made with the classic one), so datasets with exactly tied
distances (e.g. duplicated frames) can differ by a few hits. Phase progression
is solved in float64 here; the official LinearRegression solves in float32
(differences ~1e-8 in R^2). CARL's `MODEL.L2_NORMALIZE` normalises the model
output, not the evaluation input; `l2_normalize=True` applies it here for
embeddings that were stored un-normalised.

Example:

>>> import numpy as np
>>> rng = np.random.RandomState(0)
>>> split = {"embs": [rng.rand(20, 3) for _ in range(3)],
...          "labels": [np.repeat([0, 1], 10)] * 3}
>>> res = evaluate_dataset(split, split, "carl", strides=[2],
...                        fractions=[1.0], retrieval_ks=[5])
>>> sorted(res)[:2]
['kendalls_tau_train_stride2', 'kendalls_tau_val_stride2']
"""

import numpy as np

from tfaction.errors import ConfigError, DataError
from tfaction.evaluation import framewise_alignment as align
from tfaction.evaluation import framewise_probes as probes
from tfaction.evaluation.framewise_io import load_framewise

VARIANTS = ("tcc", "carl")
DEFAULTS = {
    "variant": "tcc",
    "strides": [5, 2],
    "distance": "sqeuclidean",
    "fractions": [0.1, 0.5, 1.0],
    "few_shot_num_labeled": list(range(1, 11)),
    "few_shot_num_episodes": 50,
    "retrieval_ks": [5, 10, 15],
    "l2_normalize": False,
    "num_classes": None,
    "drop_unlabeled": False,
}


def _keyed(d):
    return {str(k): float(v) for k, v in d.items()}


def _prepare(split, name, l2_normalize, drop_unlabeled):
    embs, labels = [], []
    for i, (e, lab) in enumerate(zip(split["embs"], split["labels"])):
        lab = np.asarray(lab)
        if np.any(lab < 0):
            if not drop_unlabeled:
                raise DataError("negative (unlabelled) frame labels; remove "
                                "them or pass drop_unlabeled=True",
                                video_id=f"{name}[{i}]")
            keep = lab >= 0
            e, lab = np.asarray(e)[keep], lab[keep]
            if not len(lab):
                raise DataError("no labelled frames left",
                                video_id=f"{name}[{i}]")
        if l2_normalize:
            e = np.asarray(e, dtype=np.float64)
            e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True),
                               1e-12)
        embs.append(e)
        labels.append(lab)
    return {"embs": embs, "labels": labels}


def evaluate_dataset(train, val, variant="tcc", **options):
    """All frame-wise metrics of one dataset.

    Args:
        train, val: dicts {"embs": [(T_i, D) arrays], "labels": [(T_i,)]}.
        variant: "tcc" (SVC + few-shot) or "carl" (LogReg + retrieval).
        **options: any key of `DEFAULTS` except "variant".

    Returns:
        dict in the reference-bundle layout (fractions, k and K as str keys).

    Raises:
        ConfigError: unknown variant or option.
        DataError: unusable labels (negative, missing phase).
    """
    if variant not in VARIANTS:
        raise ConfigError(f"variant must be one of {VARIANTS}, got "
                          f"{variant!r}")
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown framewise option(s) {sorted(unknown)}; "
                          f"known: {sorted(DEFAULTS)}")
    opt = {**DEFAULTS, **options}
    train = _prepare(train, "train", opt["l2_normalize"],
                     opt["drop_unlabeled"])
    val = _prepare(val, "val", opt["l2_normalize"], opt["drop_unlabeled"])
    num_classes = opt["num_classes"] or int(
        max(lab.max() for lab in train["labels"] + val["labels"]) + 1)
    fractions = [float(f) for f in opt["fractions"]]
    dist = opt["distance"]
    out = {}
    for s in opt["strides"]:
        out[f"kendalls_tau_val_stride{s}"] = align.kendalls_tau(
            val["embs"], s, dist)
        out[f"kendalls_tau_train_stride{s}"] = align.kendalls_tau(
            train["embs"], s, dist)
        if variant == "carl":
            out[f"retrieval_AP_stride{s}"] = _keyed(align.retrieval_precision(
                val["embs"], val["labels"], opt["retrieval_ks"], s, dist))
    model = "svm" if variant == "tcc" else "logreg"
    out[f"phase_classification_{model}_val_acc"] = _keyed(
        probes.phase_classification(train, val, fractions, model))
    out["phase_progression_r2_val"] = _keyed(
        probes.phase_progression(train, val, fractions, num_classes))
    if variant == "tcc":
        means, cis = probes.few_shot(train, val, opt["few_shot_num_labeled"],
                                     int(opt["few_shot_num_episodes"]))
        out["few_shot_svm_val_acc_mean_over_episodes"] = _keyed(means)
        out["few_shot_val_ci95"] = _keyed(cis)
    return out


def _mean_over(datasets):
    """Mean over datasets (PennAction `all_<task>`); ci95 is not averaged."""
    first = next(iter(datasets.values()))
    mean = {}
    for key, value in first.items():
        if key == "few_shot_val_ci95":
            continue
        if isinstance(value, dict):
            mean[key] = {k: float(np.mean([d[key][k] for d in
                                           datasets.values()]))
                         for k in value}
        else:
            mean[key] = float(np.mean([d[key] for d in datasets.values()]))
    return mean


def evaluate(data, variant="tcc", **options):
    """Evaluate every dataset of `load_framewise` output.

    Args:
        data: {dataset: {"train": split, "val": split}}.
        variant: "tcc" or "carl".
        **options: see `DEFAULTS`.

    Returns:
        {"variant", "datasets": {name: metrics}, "mean": metrics}.
    """
    datasets = {}
    for name, splits in data.items():
        try:
            datasets[name] = evaluate_dataset(splits["train"], splits["val"],
                                              variant, **options)
        except DataError as e:
            raise type(e)(f"dataset {name!r}: {e.message}", path=e.path,
                          line=e.line, video_id=e.video_id, key=e.key) from e
    return {"variant": variant, "datasets": datasets,
            "mean": _mean_over(datasets)}


def run_cli(ground_truth, predictions, options):
    """CLI entry used by `experiments/evaluate.py`.

    Args:
        ground_truth: .npz/.json with the frame labels (may also hold the
            embeddings).
        predictions: .npz/.json with the embeddings; may be the same file.
        options: the CLI's flag values by name; "variant" ("tcc" when
            unset, or "carl") and the keys of `DEFAULTS` are used, the other
            metrics' flags are ignored.

    Returns:
        JSON-serialisable dict (see `evaluate`; undefined values are NaN).

    Example:

    >>> # run_cli("gt.npz", "embs.npz", {"variant": "carl"})
    """
    options = {k: v for k, v in (options or {}).items()
               if k in DEFAULTS and v is not None}
    variant = options.pop("variant", "tcc")
    if variant not in VARIANTS:
        raise ConfigError(f"variant must be one of {VARIANTS}, got "
                          f"{variant!r}")
    data = load_framewise(ground_truth, predictions)
    return evaluate(data, variant, **options)


def format_table(result):
    """Plain-text table: one row per metric, one column per dataset + mean.

    Example:

    >>> print(format_table({"datasets": {"a": {"tau": 0.5}},
    ...                     "mean": {"tau": 0.5}}))
    metric  a       mean
    tau     0.5000  0.5000
    """
    cols = list(result["datasets"]) + ["mean"]
    tables = {**result["datasets"], "mean": result.get("mean", {})}
    rows = []
    for key, value in next(iter(result["datasets"].values())).items():
        subs = value.keys() if isinstance(value, dict) else [None]
        for sub in subs:
            name = key if sub is None else f"{key}[{sub}]"
            cells = []
            for c in cols:
                v = tables[c].get(key)
                v = v.get(sub) if isinstance(v, dict) else v
                cells.append("-" if v is None else f"{v:.4f}")
            rows.append([name] + cells)
    header = ["metric"] + cols
    widths = [max(len(r[i]) for r in rows + [header])
              for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
             for r in [header] + rows]
    return "\n".join(lines)
