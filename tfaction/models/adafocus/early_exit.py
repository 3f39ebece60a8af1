"""AdaFocus V2+ early exit: thresholds on the classifier's max logit.

AdaFocus V2's `PoolingClassifier` has a head at every step `k = 1 ... T`
(its logits at step `k` see only the first `k` frames), so a video can
stop after any step. V2+ (the authors' `ops/early_exit.py`, training-free)
stops after step `k` when the step's confidence, the **max logit** (not a
softmax probability), reaches a threshold `T_k`; the last step takes every
video still left. The thresholds come from a budget `q`:

1. exit fractions `p_k = q^k / sum_j q^j` (MSDNet's geometric budgets; `q
   < 1` exits early, `q > 1` late; the authors sweep `q = 0.5, 0.6, ...,
   3.9`: `AUTHORS_BUDGETS`), in float32 as theirs (NumPy's float32 `exp`
   and sum may differ from PyTorch's in the last bits; the thresholds and
   exits agreed with the authors' code on all 420 cases checked: 35
   budgets x 12 random logit sets, half of them with tied logits);
2. on the logits of the TRAINING videos (`N` of them): for `k = 1 ... T -
   1`, `n_k = floor(N p_k)`; among the videos that have not exited yet,
   sorted by their step-`k` max logit (descending, PyTorch's CPU order of
   ties), the `n_k` first exit and `T_k` is the `n_k`-th's max logit
   (`+inf` when `n_k = 0`: no video exits after step k); `T_T = -inf`;
3. a video then exits after the first step with max logit `>= T_k`, and
   its prediction is that step's logits; it has seen `k` frames, so its
   cost is `k x` the per-frame GFLOPs (`flops.adafocus_v2_gflops(model)
   ["per_frame"]`: glance, policy, focus, classifier and the auxiliary
   heads), and the expected cost of a budget is `sum_k frac_exit(k) k
   per_frame`.

Steps count frames in the model's order (AdaFocus V2 feeds them
coarse-to-fine); an exit step `k` is "after `k` frames", 1-based.

The authors use `1e8` / `-1e8` for the two infinities and treat a video
below `-1e8` at the last step wrongly (it takes every video's logits);
here the last step takes every video left, whatever its logits.

Example:

>>> import numpy as np
>>> train = np.array([[[3., 0.]], [[1., 0.]], [[2., 0.]], [[0., 5.]]])
>>> train = np.repeat(train, 2, axis=1)          # [N=4, T=2, C=2]
>>> thresholds = calibrate_thresholds(train, 1.0)   # half exit at step 1
>>> thresholds.tolist()
[3.0, -inf]
>>> steps, logits = apply_thresholds(train, thresholds)
>>> steps.tolist()
[2, 2, 2, 1]
"""

import math

import numpy as np

from tfaction import errors
from tfaction.ops import torch_sort

# The authors' sweep: q = p / 10 for p in range(5, 40).
AUTHORS_BUDGETS = tuple(p / 10 for p in range(5, 40))


def _checked_logits(logits, what):
    """`[N, T, C]` float32 logits with N, T, C >= 1."""
    logits = np.asarray(logits, np.float32)
    if logits.ndim != 3 or min(logits.shape) < 1:
        raise errors.ConfigError(
            f"{what} must be per-step logits [N videos, T steps, C classes]"
            f" with N, T, C >= 1, got shape {logits.shape}")
    return logits


def _checked_budget(budget):
    budget = float(budget)
    if not (budget > 0 and math.isfinite(budget)):
        raise errors.ConfigError(
            f"early-exit budget q must be a finite number > 0 (exit "
            f"fractions proportional to q^k), got {budget}")
    return budget


def confidences(logits):
    """The V2+ exit criterion: the max logit of every video and step.

    Args:
        logits: `[N, T, C]` per-step logits.

    Returns:
        float32 `[N, T]`.
    """
    return _checked_logits(logits, "logits").max(axis=-1)


def exit_fractions(budget, num_steps):
    """The target share of videos leaving after each step, `p_k ~ q^k`.

    Computed in float32 as the authors' `torch.exp(torch.log(q) *
    torch.range(1, T))` normalised by its sum.

    Args:
        budget: `q > 0`.
        num_steps: `T >= 1`.

    Returns:
        float32 `[T]`, summing to 1 (to float32 rounding).

    Example:

    >>> exit_fractions(1.0, 4).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    q = np.float32(_checked_budget(budget))
    steps = np.arange(1, int(num_steps) + 1, dtype=np.float32)
    probs = np.exp(np.log(q) * steps).astype(np.float32)
    return (probs / probs.sum(dtype=np.float32)).astype(np.float32)


def calibrate_thresholds(train_logits, budget):
    """Per-step thresholds from training logits for budget `q`.

    The authors' `dynamic_eval_find_threshold` (module docstring, step 2).

    Args:
        train_logits: `[N, T, C]` per-step logits of the training videos.
        budget: `q > 0`.

    Returns:
        float64 `[T]`: `T_k` (float32 values), `+inf` where no training
        video exits, `-inf` at the last step.

    Raises:
        ConfigError: bad shapes or budget.

    Example:

    ```python
    thresholds = calibrate_thresholds(train_logits, 1.5)
    ```
    """
    values = confidences(train_logits)
    n, steps = values.shape
    probs = exit_fractions(budget, steps)
    thresholds = np.full([steps], np.inf)
    thresholds[-1] = -np.inf
    exited = np.zeros([n], bool)
    for k in range(steps - 1):
        # n_sample * p[k] in float32, as the reference's tensor product.
        count = math.floor(np.float32(n) * probs[k])
        if count <= 0:
            continue
        order = _descending(values[:, k])
        remaining = order[~exited[order]]
        thresholds[k] = float(values[remaining[count - 1], k])
        exited[remaining[:count]] = True
    return thresholds


def _descending(values):
    """Indices sorting `values` descending, ties as PyTorch's CPU sort."""
    if np.unique(values).size == values.size:
        return np.argsort(-values, kind="stable")
    return torch_sort.torch_sort_order(values)


def apply_thresholds(logits, thresholds):
    """Exit step and prediction of every video.

    Args:
        logits: `[N, T, C]` per-step logits.
        thresholds: `[T]` (`calibrate_thresholds`).

    Returns:
        `(exit_steps, exit_logits)`: int64 `[N]` in `1 ... T` (frames
        seen), float32 `[N, C]` (the logits at the exit step).

    Raises:
        ConfigError: thresholds of another length than T.

    Example:

    ```python
    steps, predictions = apply_thresholds(val_logits, thresholds)
    ```
    """
    logits = _checked_logits(logits, "logits")
    thresholds = np.asarray(thresholds, np.float64)
    steps = logits.shape[1]
    if thresholds.shape != (steps,):
        raise errors.ConfigError(
            f"thresholds of shape {thresholds.shape} for logits of {steps} "
            f"steps; expected one threshold per step, shape ({steps},)")
    leaves = logits.max(axis=-1) >= thresholds
    leaves[:, -1] = True  # the last step takes every video left
    exit_index = np.argmax(leaves, axis=1)
    rows = np.arange(logits.shape[0])
    return exit_index + 1, logits[rows, exit_index]


def expected_gflops(exit_steps, per_frame_gflops):
    """Mean GFLOPs per video: frames seen x the per-frame GFLOPs.

    Args:
        exit_steps: `[N]` exit steps (1-based frames seen).
        per_frame_gflops: the model's per-frame GFLOPs.

    Returns:
        float: `mean(exit_steps) * per_frame_gflops`, i.e. `sum_k
        frac_exit(k) k per_frame`.
    """
    return float(np.mean(np.asarray(exit_steps, np.float64))
                 * float(per_frame_gflops))


def exit_histogram(exit_steps, num_steps):
    """Share of videos exiting after each step: float64 `[T]`."""
    counts = np.bincount(np.asarray(exit_steps, np.int64) - 1,
                         minlength=int(num_steps))
    return counts / max(int(counts.sum()), 1)


def sweep(train_logits, eval_logits, budgets, per_frame_gflops, score):
    """Calibrates and evaluates every budget: the accuracy-vs-GFLOPs curve.

    Args:
        train_logits: `[N, T, C]` per-step logits of the training videos.
        eval_logits: `[M, T, C]` per-step logits of the evaluated videos.
        budgets: the `q`s (e.g. `AUTHORS_BUDGETS`).
        per_frame_gflops: the model's per-frame GFLOPs.
        score: `[M, C]` prediction logits -> dict of named floats (e.g.
            mAP and top-1).

    Returns:
        List, one dict per budget in the given order: `budget`,
        `thresholds` (`[T]` floats, `+-inf` as in `calibrate_thresholds`),
        `exit_fractions` (share of evaluated videos per exit step),
        `mean_frames`, `expected_gflops`, and `score`'s entries.

    Raises:
        ConfigError: no budget, a bad budget, or logits whose steps or
            classes differ.

    Example:

    ```python
    curve = sweep(train, val, AUTHORS_BUDGETS, 1.685,
                  lambda logits: {"top1": top1(logits, labels)})
    ```
    """
    train_logits = _checked_logits(train_logits, "training logits")
    eval_logits = _checked_logits(eval_logits, "evaluation logits")
    if train_logits.shape[1:] != eval_logits.shape[1:]:
        raise errors.ConfigError(
            f"training logits [N, T, C] = {train_logits.shape} and "
            f"evaluation logits {eval_logits.shape} differ in T or C")
    budgets = [_checked_budget(q) for q in budgets]
    if not budgets:
        raise errors.ConfigError("early-exit sweep: no budget q given")
    steps = train_logits.shape[1]
    curve = []
    for q in budgets:
        thresholds = calibrate_thresholds(train_logits, q)
        exits, predictions = apply_thresholds(eval_logits, thresholds)
        point = {"budget": q, "thresholds": thresholds.tolist(),
                 "exit_fractions": exit_histogram(exits, steps).tolist(),
                 "mean_frames": float(np.mean(exits)),
                 "expected_gflops": expected_gflops(exits,
                                                    per_frame_gflops)}
        point.update({k: float(v) for k, v in score(predictions).items()})
        curve.append(point)
    return curve


def thresholds_to_json(thresholds):
    """`[T]` thresholds -> JSON-safe list (`None` for `+-inf`: no exit
    before the last step; the last step takes every video)."""
    return [None if not math.isfinite(t) else float(t)
            for t in np.asarray(thresholds, np.float64).tolist()]


def thresholds_from_json(values, *, path=None, key="thresholds"):
    """The inverse of `thresholds_to_json`.

    Args:
        values: list of T floats / None (`None` before the last step:
            `+inf`; the last entry is always `-inf`).
        path, key: where the list was read, for error messages.

    Returns:
        float64 `[T]`.

    Raises:
        MalformedFileError: not a non-empty list of numbers or nulls.
    """
    if not isinstance(values, list) or not values or not all(
            v is None or (isinstance(v, (int, float))
                          and not isinstance(v, bool)
                          and math.isfinite(v)) for v in values):
        raise errors.MalformedFileError(
            f"expected a non-empty list of finite numbers or null (one "
            f"threshold per step), got {values!r}", path=path, key=key)
    out = np.array([np.inf if v is None else float(v) for v in values])
    out[-1] = -np.inf
    return out


# --- accuracy-vs-GFLOPs figure ----------------------------------------------
_INK, _GRID, _LINE, _REF = (40, 40, 40), (225, 225, 225), (180, 90, 20), (
    40, 40, 200)  # BGR


def _nice_ticks(low, high, count=5):
    """About `count` round tick values covering `[low, high]`."""
    if not high > low:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10)
                if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _label(value):
    return f"{value:g}"


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise errors.MissingDependencyError(
            "drawing the early-exit figure needs OpenCV "
            "(opencv-contrib-python-headless)") from e
    return cv2


def encode_png(image):
    """A BGR uint8 image -> PNG bytes (OpenCV)."""
    ok, png = _cv2().imencode(".png", image)
    if not ok:
        raise errors.ConfigError("OpenCV could not encode the figure as PNG")
    return png.tobytes()


def render_curve_png(curve, metric, **kwargs):
    """`render_curve` encoded as PNG bytes."""
    return encode_png(render_curve(curve, metric, **kwargs))


def render_curve(curve, metric, *, full_model=None, title="",
                 size=(640, 480)):
    """Draws an accuracy-vs-GFLOPs curve (OpenCV).

    Axes with ticks and labels, the budgets' points joined by a line in
    GFLOPs order, and the model without early exit as a separate marker.

    Args:
        curve: `sweep` output (`expected_gflops` and `metric` per point).
        metric: the key plotted on the y axis (e.g. "mAP", "top1").
        full_model: optional `(gflops, value)` of the model without early
            exit (all T frames).
        title: text at the top.
        size: `(width, height)` in pixels.

    Returns:
        BGR uint8 image `[height, width, 3]`.

    Raises:
        ConfigError: an empty curve or a point without `metric`.
        MissingDependencyError: OpenCV is not installed.

    Example:

    ```python
    png = encode_png(render_curve(curve, "mAP", full_model=(27.0, 79.0)))
    ```
    """
    cv2 = _cv2()
    if not curve or any(metric not in point for point in curve):
        raise errors.ConfigError(
            f"cannot plot {metric!r}: the curve is empty or a point lacks "
            f"it (keys: {sorted(curve[0]) if curve else []})")
    points = sorted((p["expected_gflops"], p[metric]) for p in curve)
    xs = [x for x, _ in points] + ([full_model[0]] if full_model else [])
    ys = [y for _, y in points] + ([full_model[1]] if full_model else [])
    x_ticks = _nice_ticks(min(0.0, min(xs)), max(xs))
    y_ticks = _nice_ticks(min(ys), max(ys))
    width, height = (int(v) for v in size)
    left, right, top, bottom = 80, 30, 50, 70
    image = np.full((height, width, 3), 255, np.uint8)

    def to_pixel(x, y):
        px = left + (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (
            width - left - right)
        py = height - bottom - (y - y_ticks[0]) / (
            y_ticks[-1] - y_ticks[0]) * (height - top - bottom)
        return int(round(px)), int(round(py))

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    for x in x_ticks:
        (px, py0), (_, py1) = to_pixel(x, y_ticks[0]), to_pixel(
            x, y_ticks[-1])
        cv2.line(image, (px, py0), (px, py1), _GRID, 1)
        cv2.line(image, (px, py0), (px, py0 + 5), _INK, 1)
        text = _label(x)
        w = cv2.getTextSize(text, font, scale, 1)[0][0]
        cv2.putText(image, text, (px - w // 2, py0 + 20), font, scale, _INK,
                    1, cv2.LINE_AA)
    for y in y_ticks:
        (px0, py), (px1, _) = to_pixel(x_ticks[0], y), to_pixel(
            x_ticks[-1], y)
        cv2.line(image, (px0, py), (px1, py), _GRID, 1)
        cv2.line(image, (px0 - 5, py), (px0, py), _INK, 1)
        text = _label(y)
        w = cv2.getTextSize(text, font, scale, 1)[0][0]
        cv2.putText(image, text, (px0 - 10 - w, py + 5), font, scale, _INK,
                    1, cv2.LINE_AA)
    origin = to_pixel(x_ticks[0], y_ticks[0])
    cv2.line(image, origin, to_pixel(x_ticks[-1], y_ticks[0]), _INK, 1)
    cv2.line(image, origin, to_pixel(x_ticks[0], y_ticks[-1]), _INK, 1)
    pixels = [to_pixel(x, y) for x, y in points]
    if len(pixels) > 1:
        cv2.polylines(image, [np.array(pixels, np.int32)], False, _LINE, 2,
                      cv2.LINE_AA)
    for p in pixels:
        cv2.circle(image, p, 4, _LINE, -1, cv2.LINE_AA)
    if full_model:
        px, py = to_pixel(*full_model)
        cv2.rectangle(image, (px - 5, py - 5), (px + 5, py + 5), _REF, 2)
        cv2.putText(image, "all frames", (px - 90, py - 10), font, scale,
                    _REF, 1, cv2.LINE_AA)
    label = "expected GFLOPs per video"
    w = cv2.getTextSize(label, font, 0.55, 1)[0][0]
    cv2.putText(image, label, ((left + width - right - w) // 2,
                               height - 20), font, 0.55, _INK, 1,
                cv2.LINE_AA)
    (w, h), _ = cv2.getTextSize(metric, font, 0.55, 1)
    vertical = np.full((h + 8, w + 4, 3), 255, np.uint8)
    cv2.putText(vertical, metric, (2, h + 2), font, 0.55, _INK, 1,
                cv2.LINE_AA)
    vertical = cv2.rotate(vertical, cv2.ROTATE_90_COUNTERCLOCKWISE)
    y0 = max((top + height - bottom - vertical.shape[0]) // 2, 0)
    image[y0:y0 + vertical.shape[0], 8:8 + vertical.shape[1]] = np.minimum(
        image[y0:y0 + vertical.shape[0], 8:8 + vertical.shape[1]], vertical)
    if title:
        cv2.putText(image, title, (left, 30), font, 0.6, _INK, 1,
                    cv2.LINE_AA)
    return image
