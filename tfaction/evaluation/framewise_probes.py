"""Frame-wise probe metrics: phase classification, phase progression, few-shot.

Follows TCC `tcc/evaluation/{classification,event_completion,
few_shot_classification,task_utils}.py` and CARL `evaluation/{classification,
event_completion}.py`. Every scikit-learn hyper-parameter is passed explicitly
so that results do not depend on the installed version's defaults:

* SVC (TCC): RBF, C=1, `gamma` computed here as `1 / (D * X.var())` on the
  float64 training matrix -- what `gamma='scale'` means since sklearn 0.22.
* LogisticRegression (CARL): multinomial, lbfgs, L2, C=1, tol=1e-4,
  max_iter=1e5, on float64 inputs.
* Phase progression: least squares with intercept solved here in float64
  (`scipy.linalg.lstsq`), R^2 per target, mean over targets. The official
  `sklearn.linear_model.LinearRegression` casts the targets to the embedding
  dtype (float32) and solves in float32, so its R^2 carries float32 rounding
  noise (~1e-8) that differs between BLAS/LAPACK builds.

Example:

>>> import numpy as np
>>> labels = [np.array([0, 0, 1, 1, 2, 2])]
>>> progression_targets(labels, num_classes=3)[0][:, 0].tolist()
[-0.16666666666666666, 0.0, 0.16666666666666666, 0.3333333333333333, 0.5, 0.6666666666666666]
"""

import inspect

import numpy as np
from scipy import linalg
from scipy import stats

from tfaction.errors import DataError

FEW_SHOT_SEED = 42


def num_used(fraction, num_videos):
    """Number of train videos used for a fraction: `max(1, int(f * N))`."""
    return max(1, int(fraction * num_videos))


def svc_gamma(x):
    """`gamma='scale'`: 1 / (n_features * X.var()), 1.0 for constant X."""
    x = np.asarray(x, dtype=np.float64)
    var = x.var()
    return 1.0 / (x.shape[1] * var) if var != 0 else 1.0


def _make_classifier(model, x):
    if model == "svm":
        from sklearn.svm import SVC
        return SVC(C=1.0, kernel="rbf", gamma=svc_gamma(x), tol=1e-3,
                   shrinking=True, cache_size=200, class_weight=None,
                   max_iter=-1, decision_function_shape="ovo",
                   break_ties=False)
    if model == "logreg":
        from sklearn.linear_model import LogisticRegression
        params = inspect.signature(LogisticRegression).parameters
        kwargs = dict(C=1.0, tol=1e-4, fit_intercept=True, intercept_scaling=1,
                      class_weight=None, solver="lbfgs", max_iter=100000,
                      warm_start=False, dual=False)
        if params["penalty"].default == "deprecated":
            kwargs["l1_ratio"] = 0.0          # sklearn >= 1.8: pure L2
        else:
            kwargs["penalty"] = "l2"
        if "multi_class" in params:
            kwargs["multi_class"] = "multinomial"  # multinomial is the only
            # behaviour of lbfgs in versions without the parameter
        return LogisticRegression(**kwargs)
    raise ValueError(f"model must be 'svm' or 'logreg', got {model!r}")


def fit_and_score(train_x, train_y, val_x, val_y, model="svm"):
    """Fit a frame classifier and return its per-frame val accuracy.

    Args:
        train_x, train_y: pooled train frames (F, D) and labels (F,).
        val_x, val_y: pooled val frames and labels.
        model: "svm" (TCC) or "logreg" (CARL).

    Returns:
        float accuracy in [0, 1].

    Example:

    >>> x = np.array([[0.], [0.1], [1.], [1.1]]); y = np.array([0, 0, 1, 1])
    >>> fit_and_score(x, y, x, y, "logreg")
    1.0
    """
    train_x = np.asarray(train_x, dtype=np.float64)
    clf = _make_classifier(model, train_x)
    if np.unique(train_y).size < 2:
        # sklearn refuses single-class data; every frame gets that class.
        pred = np.full(len(val_y), np.asarray(train_y)[0])
    else:
        clf.fit(train_x, train_y)
        pred = clf.predict(np.asarray(val_x, dtype=np.float64))
    return float(np.mean(pred == np.asarray(val_y)))


def phase_classification(train, val, fractions, model="svm"):
    """Val frame accuracy of a classifier trained on the first videos.

    Args:
        train, val: dicts with "embs" (list of (T_i, D)) and "labels".
        fractions: train fractions f; uses the first `max(1, int(f*N))` videos.
        model: "svm" (TCC) or "logreg" (CARL).

    Returns:
        dict {fraction: accuracy}.
    """
    val_x = np.concatenate(val["embs"])
    val_y = np.concatenate(val["labels"])
    out = {}
    for f in fractions:
        m = num_used(f, len(train["embs"]))
        out[f] = fit_and_score(np.concatenate(train["embs"][:m]),
                               np.concatenate(train["labels"][:m]),
                               val_x, val_y, model)
    return out


def progression_targets(labels_list, num_classes, split="", start=0):
    """Per-frame progress targets, one column per key event 0..K-2.

    Column e is `(t - last_index(label == e)) / T` (signed, unclipped).

    Args:
        labels_list: per-video label arrays (monotone phase ids).
        num_classes: K, the number of phases.
        split, start: only used to name a video in errors.

    Returns:
        list of float64 arrays (T_i, K - 1).

    Raises:
        DataError: a phase 0..K-2 never occurs in a video.
    """
    out = []
    for n, labels in enumerate(labels_list):
        labels = np.asarray(labels)
        t = np.arange(float(len(labels)))
        cols = []
        for e in range(num_classes - 1):
            where = np.flatnonzero(labels == e)
            if where.size == 0:
                raise DataError(f"phase {e} does not occur; phase progression "
                                f"needs every phase 0..{num_classes - 2}",
                                video_id=f"{split}[{start + n}]")
            cols.append((t - where[-1]) / len(labels))
        out.append(np.stack(cols, axis=1) if cols
                   else np.zeros((len(labels), 0)))
    return out


def _r2(y, pred):
    ss_res = np.sum((y - pred) ** 2, axis=0)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    # sklearn's r2_score convention for constant targets.
    return np.where(ss_tot == 0, np.where(ss_res == 0, 1.0, 0.0), r2)


def linear_r2(train_x, train_y, val_x, val_y):
    """Least squares with intercept on train, R^2 per target column on val.

    Example:

    >>> x = np.arange(8.).reshape(4, 2); y = x @ [[1.], [2.]] + 3
    >>> linear_r2(x, y, x, y).round(12).tolist()
    [1.0]
    """
    x = np.asarray(train_x, dtype=np.float64)
    y = np.asarray(train_y, dtype=np.float64)
    x_off, y_off = x.mean(axis=0), y.mean(axis=0)
    coef = linalg.lstsq(x - x_off, y - y_off)[0]
    pred = np.asarray(val_x, dtype=np.float64) @ coef + (y_off - x_off @ coef)
    return _r2(np.asarray(val_y, dtype=np.float64), pred)


def phase_progression(train, val, fractions, num_classes):
    """Mean-over-key-events R^2 of linear progress regression on val frames.

    Args:
        train, val: dicts with "embs" and "labels" lists.
        fractions: train fractions (first `max(1, int(f*N))` videos).
        num_classes: number of phases K (K - 1 regression targets).

    Returns:
        dict {fraction: R^2}.
    """
    val_t = np.concatenate(progression_targets(val["labels"], num_classes,
                                               "val"))
    val_x = np.concatenate(val["embs"])
    out = {}
    for f in fractions:
        m = num_used(f, len(train["embs"]))
        tr_t = np.concatenate(progression_targets(train["labels"][:m],
                                                  num_classes, "train"))
        out[f] = float(np.mean(linear_r2(np.concatenate(train["embs"][:m]),
                                         tr_t, val_x, val_t)))
    return out


def few_shot_episodes(num_train, num_labeled_list, num_episodes,
                      seed=FEW_SHOT_SEED):
    """Episodes as TCC draws them: seed 42, then `permutation(N)[:k]`.

    All episodes for every k are drawn up front, k in list order, from one
    legacy `RandomState` stream (identical to `np.random.seed(42)`).
    """
    rng = np.random.RandomState(seed)
    return {k: [rng.permutation(num_train)[:k] for _ in range(num_episodes)]
            for k in num_labeled_list}


def ci95(accs):
    """Half width of the 95 % t-interval; NaN when the sem is 0 (as scipy)."""
    accs = np.asarray(accs, dtype=np.float64)
    mean = np.mean(accs)
    sem = stats.sem(accs)
    if not sem > 0:
        return float("nan")
    return float(mean + sem * stats.t.ppf(0.975, len(accs) - 1) - mean)


def few_shot(train, val, num_labeled_list, num_episodes, model="svm"):
    """TCC few-shot phase classification.

    Args:
        train, val: dicts with "embs" and "labels" lists.
        num_labeled_list: k values (videos per episode).
        num_episodes: episodes per k.
        model: classifier ("svm" in TCC).

    Returns:
        (mean accuracy dict {k: float}, ci95 dict {k: float}).
    """
    val_x = np.concatenate(val["embs"])
    val_y = np.concatenate(val["labels"])
    cache = {}
    means, cis = {}, {}
    episodes = few_shot_episodes(len(train["embs"]), num_labeled_list,
                                 num_episodes)
    for k, eps in episodes.items():
        accs = []
        for ep in eps:
            key = tuple(int(i) for i in ep)
            if key not in cache:
                cache[key] = fit_and_score(
                    np.concatenate([train["embs"][i] for i in key]),
                    np.concatenate([train["labels"][i] for i in key]),
                    val_x, val_y, model)
            accs.append(cache[key])
        means[k] = float(np.mean(accs))
        cis[k] = ci95(accs)
    return means, cis
