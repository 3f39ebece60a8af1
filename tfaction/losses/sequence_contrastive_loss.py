"""Sequence contrastive loss (SCL) of CARL, written with `keras.ops`.

Two augmented views of each video are embedded frame by frame. For a valid
frame `i` of one view, the loss compares

* a prediction: a softmax of cosine similarities / `temperature` over the
  frames of the *other* view of the same video (`negative_type` chooses the
  frames of the softmax denominator), and
* a target: a Gaussian prior over the gap between original frame indices,
  `exp(-d^2 / (2 * label_variance))` normalised over the other view's valid
  frames (`positive_type="gauss"`), or a one-hot nearest frame
  (`positive_type="nn"`),

with `KL(target || prediction)`, in both view directions, padded frames
masked. The constants follow the authors' implementation: masked pairs get
distance `1e6` and negative weight `1e-6` (so a padded frame still adds
`1e-6 exp(l)` to a valid frame's softmax denominator), the prediction enters
as `log(q + 1e-6)`, and the prior is computed in float32 from float32 steps.

Everything is computed in float32 (float64 for float64 embeddings), so
float16 / bfloat16 embeddings under mixed precision are safe: with
`temperature = 0.1` the logits span [-10, 10] and their exponentials and the
Gaussian prior would lose precision in half precision.

Example (three frames, the second view a copy of the first):

>>> import numpy as np
>>> z = np.eye(3, 4, dtype="float32")[[0, 1, 2, 0, 1, 2]].reshape(1, 2, 3, 4)
>>> steps = np.array([[[0, 10, 20], [0, 10, 20]]])
>>> round(float(sequence_contrastive_loss(z, steps, [[30, 30]], None)), 4)
0.0354
"""

import math

import keras
from keras import ops

POSITIVE_TYPES = ("gauss", "nn")
NEGATIVE_TYPES = ("single_noself", "single", "noself", "all")
SCOPES = ("batch", "video")
REDUCTIONS = ("none", "sum", "mean")

# Reference constants: distance of a masked pair, and the epsilon inside the
# log of the prediction.
_MASKED_DISTANCE = 1e6
_LOG_EPS = 1e-6
# float32 exp(t) rounds to 0 below half the smallest subnormal, 2^-150: the
# reference's prior is exactly 0 there (computed here with a shifted exp, so
# CPU flush-to-zero of subnormals does not change the result).
_EXP_UNDERFLOW = -150.0 * math.log(2.0)


def _compute_dtype(x):
    dtype = keras.backend.standardize_dtype(x.dtype)
    return "float64" if dtype == "float64" else "float32"


def _group_losses(z, steps, lens, masks, video, view, temperature,
                  label_variance, positive_type, negative_type,
                  positive_window, masked_negative_weight):
    """Per-frame losses of groups of frames that see each other.

    Args:
        z: [G, M, D] embeddings (compute dtype).
        steps, lens: [G, M] float32 original frame index and video length.
        masks: [G, M] masks (compute dtype).
        video, view: [G, M] int32 video index and view index (0 or 1).
        Others: as `sequence_contrastive_loss`.

    Returns:
        [G, M] losses: row sums of the masked KL terms.
    """
    dtype = z.dtype
    logits = (ops.einsum("gid,gjd->gij", z, z)
              / ops.convert_to_tensor(temperature, dtype=dtype))
    pair = masks[:, :, None] * masks[:, None, :]
    pair_ok = pair != 0
    same_video = video[:, :, None] == video[:, None, :]
    same_view = ops.logical_and(same_video,
                                view[:, :, None] == view[:, None, :])
    other_view = ops.logical_and(same_video, ops.logical_not(same_view))

    # Gap between original frame indices, |s_i / L_i * L_j - s_j|, in float32
    # with the reference's operation order (its rounding shifts the prior by
    # up to ~1e-5 relative for videos of a few hundred frames).
    dist = ops.abs(steps[:, :, None] / lens[:, :, None] * lens[:, None, :]
                   - steps[:, None, :])
    dist = ops.where(pair_ok, dist, _MASKED_DISTANCE)

    # Target, zero outside the other view of the same video.
    if positive_type == "gauss":
        t = -ops.square(dist) / (2.0 * float(label_variance))
        keep = ops.logical_and(other_view, t > _EXP_UNDERFLOW)
        t_max = ops.max(ops.where(keep, t, -1e30), axis=-1, keepdims=True)
        g = ops.where(keep, ops.exp(ops.where(keep, t - t_max, 0.0)), 0.0)
        g = ops.cast(g, dtype)
        total = ops.sum(g, axis=-1, keepdims=True)
        label = g / ops.where(total > 0, total, ops.ones_like(total))
    else:  # "nn": the nearest frame of the other view, if within the window
        # The exact gap |s_i - s_j| for equal lengths (the views of a video):
        # the float32 expression above is within one rounding of it, which
        # decides ties and gaps equal to the window at random and changes
        # when a compiler contracts it into an FMA (XLA does).
        gap = ops.abs(steps[:, :, None] - steps[:, None, :])
        exact = ops.logical_and(pair_ok,
                                lens[:, :, None] == lens[:, None, :])
        d_other = ops.where(other_view, ops.where(exact, gap, dist),
                            math.inf)
        # One reduction (first index on ties) keeps the choice and its gap
        # consistent when a compiler fuses the distance differently.
        first = ops.argmin(d_other, axis=-1)[..., None]
        d_min = ops.take_along_axis(d_other, first, axis=-1)
        index = ops.arange(ops.shape(d_other)[-1], dtype=first.dtype)
        chosen = ops.logical_and(index == first,
                                 d_min <= float(positive_window))
        label = ops.cast(ops.logical_and(chosen, other_view), dtype)

    # Denominator weights: 1 for negatives, 0 otherwise, then the masked
    # weight wherever the pair involves a padded frame.
    weight = ops.ones_like(logits)
    if "single" in negative_type:
        weight = ops.where(same_video, weight, 0.0)
    if "noself" in negative_type:
        weight = ops.where(same_view, 0.0, weight)
    weight = ops.where(pair_ok, weight, ops.convert_to_tensor(
        masked_negative_weight, dtype=dtype))

    # log q_ij = l_ij - log sum_k w_ik exp(l_ik), stably.
    used = weight > 0
    row_max = ops.max(ops.where(used, logits, -math.inf), axis=-1,
                      keepdims=True)
    row_max = ops.stop_gradient(
        ops.where(ops.isfinite(row_max), row_max, ops.zeros_like(row_max)))
    terms = weight * ops.where(
        used, ops.exp(ops.where(used, logits - row_max, 0.0)), 0.0)
    denom = ops.sum(terms, axis=-1, keepdims=True)
    log_denom = row_max + ops.log(
        ops.where(denom > 0, denom, ops.ones_like(denom)))
    log_q = logits - log_denom
    # log(q + 1e-6) without overflowing exp(log q).
    log_q_eps = ops.logaddexp(
        log_q, ops.convert_to_tensor(math.log(_LOG_EPS), dtype=dtype))

    positive = label > 0
    log_label = ops.log(ops.where(positive, label, ops.ones_like(label)))
    kl = ops.where(positive, label * (log_label - log_q_eps), 0.0)
    return ops.sum(kl * pair, axis=-1)


def sequence_contrastive_loss(embeddings, steps, seq_lens, masks=None, *,
                              temperature=0.1, label_variance=10.0,
                              positive_type="gauss",
                              negative_type="single_noself",
                              positive_window=5.0, scope="batch",
                              masked_negative_weight=1e-6,
                              reduction="mean"):
    """CARL's sequence contrastive loss between two views of each video.

    With `z` the embeddings, `l_ij = z_i . z_j / temperature`, `m` the masks
    and `d_ij = |s_i / L_i * L_j - s_j|` the gap between original frame
    indices (`1e6` for a pair with a padded frame), each frame `i` gets

        loss_i = sum_j m_i m_j p_ij (log p_ij - log(q_ij + 1e-6)),
        q_ij = exp(l_ij) / sum_k w_ik exp(l_ik),

    where `p_i` is the target over the other view of the same video and `w`
    the negative weights (`negative_type`; `masked_negative_weight` wherever
    `m_i m_k = 0`). Targets: `"gauss"` normalises `exp(-d^2 / (2
    label_variance))` (computed in float32) over the other view (a row whose
    prior underflows to 0 everywhere is 0, as in float32 in the reference);
    `"nn"` is one-hot at the other view's nearest frame (first one on ties),
    zero when that gap exceeds `positive_window`; it uses the exact gap
    `|s_i - s_j|` for views of equal length, which the float32 expression
    only approximates to one rounding (enough to flip ties, and to differ
    between eager and XLA).

    Negative types (the reference tests substrings "single" and "noself"):

    * `"single_noself"` (CARL): the other view of the same video only;
    * `"single"`: both views of the same video, the frame itself included;
    * `"noself"`: every frame in the batch except the same view of the same
      video;
    * `"all"`: every frame in the batch, the frame itself included.

    Scopes:

    * `"batch"` (the reference on a whole batch): one similarity matrix over
      all videos. Even with `"single*"` negatives a video then depends on
      the others slightly, because a pair with a padded frame of another
      video keeps weight `masked_negative_weight`, adding up to
      `1e-6 exp(l) <= 1e-6 e^(1 / temperature)` per padded frame to a
      denominator (3e-7 relative on a 2-video PennAction-like batch of
      random 128-d embeddings, more when padded embeddings resemble valid
      ones).
    * `"video"`: each video on its own, as the reference trains (one video
      per GPU). A video's loss depends on its frames only, so splitting
      whole videos over replicas does not change it. `"noself"` then
      equals `"single_noself"` and `"all"` equals `"single"`.

    Data parallelism: `scope="video"`, `reduction="none"`, summed per
    replica and divided by the global number of videos, gives 1 and N
    replicas the same gradient: the mean of per-video losses (the
    reference's `"mean"` when every video has as many valid frames, e.g.
    one video per replica as CARL trains). For the reference's `"mean"`
    over the global batch, divide `reduction="sum"` by the valid-frame
    count summed over replicas.

    Args:
        embeddings: `[B, 2, T, D]` frame embeddings of two views per video
            (L2-normalised in CARL), any float dtype.
        steps: `[B, 2, T]` original frame index of each frame (clamped to
            `[0, seq_len - 1]` in CARL); int or float.
        seq_lens: `[B, 2]` (per view) or `[B]` video lengths in frames.
        masks: `[B, 2, T]` 1/True = valid, 0/False = padding, or None (all
            valid). Non-binary values weight pairs by `m_i m_j` as in the
            reference.
        temperature: softmax temperature `tau`.
        label_variance: variance `sigma^2` of the Gaussian prior, in frames^2.
        positive_type: `"gauss"` (CARL) or `"nn"` (earlier revision of the
            authors' code).
        negative_type: one of `NEGATIVE_TYPES` (see above).
        positive_window: largest gap of an `"nn"` positive, in frames.
        scope: `"batch"` or `"video"` (see above).
        masked_negative_weight: negative weight of pairs with a padded frame
            (reference 1e-6; 0 makes padded frames invisible to valid ones).
        reduction: `"mean"` (the reference: sum over valid frames divided by
            the number of valid frames of the batch, 0 if none), `"sum"` (the
            sum; divide by a global valid-frame count under data
            parallelism) or `"none"` (`[B]` per-video losses, each divided by
            the video's own valid frames over both views).

    Returns:
        float32 scalar, or `[B]` for `"none"` (float64 for float64
        embeddings).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2, 2, 8, 16)).astype("float32")
    >>> z /= np.linalg.norm(z, axis=-1, keepdims=True)
    >>> steps = np.sort(rng.choice(40, (2, 2, 8)), axis=-1)
    >>> masks = np.ones((2, 2, 8))
    >>> masks[1, :, 6:] = 0  # the second video has 6 valid frames per view
    >>> per_video = sequence_contrastive_loss(
    ...     z, steps, [40, 40], masks, scope="video", reduction="none")
    >>> tuple(per_video.shape)
    (2,)
    >>> mean = sequence_contrastive_loss(z, steps, [40, 40], masks,
    ...                                  scope="video")
    >>> bool(np.isclose(float(mean),
    ...                 (16 * per_video[0] + 12 * per_video[1]) / 28))
    True

    Reference:
        Chen, Wei, Li, Cai, Frame-wise Action Representations for Long
        Videos via Sequence Contrastive Learning, CVPR 2022;
        `SCL.compute_sequence_loss` in `algos/scl.py` of
        minghchen/CARL_code (`"nn"`: `algos/simclr.py` at commit bba74db).
    """
    if positive_type not in POSITIVE_TYPES:
        raise ValueError(f"positive_type must be one of {POSITIVE_TYPES}, "
                         f"got {positive_type!r}")
    if negative_type not in NEGATIVE_TYPES:
        raise ValueError(f"negative_type must be one of {NEGATIVE_TYPES}, "
                         f"got {negative_type!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got "
                         f"{reduction!r}")
    embeddings = ops.convert_to_tensor(embeddings)
    if len(embeddings.shape) != 4 or embeddings.shape[1] != 2:
        raise ValueError("embeddings must be [B, 2, T, D] (two views), got "
                         f"shape {embeddings.shape}")
    dtype = _compute_dtype(embeddings)
    z = ops.cast(embeddings, dtype)
    shape = ops.shape(z)
    batch, frames, channels = shape[0], shape[2], shape[3]

    steps = ops.cast(ops.convert_to_tensor(steps), "float32")
    lens = ops.cast(ops.convert_to_tensor(seq_lens), "float32")
    if len(lens.shape) == 1:
        lens = lens[:, None]
    lens = ops.broadcast_to(lens[:, :, None], ops.shape(steps))
    if masks is None:
        masks = ops.ones(ops.shape(steps), dtype)
    else:
        masks = ops.cast(ops.convert_to_tensor(masks), dtype)
    video = ops.broadcast_to(
        ops.cast(ops.arange(batch), "int32")[:, None, None],
        ops.shape(steps))
    view = ops.broadcast_to(ops.cast(ops.arange(2), "int32")[None, :, None],
                            ops.shape(steps))

    # Rows stay in (video, view, frame) order in both scopes.
    groups, size = (1, -1) if scope == "batch" else (batch, 2 * frames)
    per_frame = _group_losses(
        ops.reshape(z, (groups, size, channels)),
        *(ops.reshape(x, (groups, size))
          for x in (steps, lens, masks, video, view)),
        temperature=temperature, label_variance=label_variance,
        positive_type=positive_type, negative_type=negative_type,
        positive_window=positive_window,
        masked_negative_weight=masked_negative_weight)
    per_video = ops.sum(ops.reshape(per_frame, (batch, -1)), axis=-1)
    if reduction == "sum":
        return ops.sum(per_video)
    valid = ops.sum(ops.reshape(masks, (batch, -1)), axis=-1)
    if reduction == "none":
        return per_video / ops.maximum(valid, 1.0)
    return ops.sum(per_video) / ops.maximum(ops.sum(valid), 1.0)


@keras.saving.register_keras_serializable(package="tfaction")
class SequenceContrastiveLoss(keras.losses.Loss):
    """`sequence_contrastive_loss` as a Keras loss of per-video values.

    `call(y_true, y_pred)` returns the `[B]` per-video losses
    (`reduction="none"` of the function: each video's KL sum over its valid
    frames of both views); the Keras `reduction` then combines them
    (`"sum_over_batch_size"` = the mean over videos; under data parallelism
    use `"none"`/`"sum"` and divide by the global batch size).

    Args:
        temperature, label_variance, positive_type, negative_type,
        positive_window, scope, masked_negative_weight: as
            `sequence_contrastive_loss`.
        reduction: Keras reduction of the per-video losses.
        name: loss name.
        dtype: Keras dtype of the loss inputs (default float32, so mixed
            precision embeddings are cast up).

    Inputs:
        y_true: dict with `"steps"` `[B, 2, T]`, `"seq_lens"` `[B, 2]` or
            `[B]` and optionally `"masks"` `[B, 2, T]`, or the tuple
            `(steps, seq_lens[, masks])`.
        y_pred: `[B, 2, T, D]` embeddings.

    Example:

    >>> import numpy as np
    >>> z = np.eye(3, 4, dtype="float32")[[0, 1, 2, 0, 1, 2]]
    >>> z = z.reshape(1, 2, 3, 4)
    >>> y = {"steps": np.array([[[0, 10, 20], [0, 10, 20]]]),
    ...      "seq_lens": np.array([[30, 30]])}
    >>> loss = SequenceContrastiveLoss()
    >>> round(float(loss(y, z)), 4)
    0.0354
    >>> SequenceContrastiveLoss.from_config(loss.get_config()).temperature
    0.1

    Reference:
        Chen, Wei, Li, Cai, Frame-wise Action Representations for Long
        Videos via Sequence Contrastive Learning, CVPR 2022.
    """

    def __init__(self, temperature=0.1, label_variance=10.0,
                 positive_type="gauss", negative_type="single_noself",
                 positive_window=5.0, scope="batch",
                 masked_negative_weight=1e-6,
                 reduction="sum_over_batch_size",
                 name="sequence_contrastive_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if positive_type not in POSITIVE_TYPES:
            raise ValueError(f"positive_type must be one of "
                             f"{POSITIVE_TYPES}, got {positive_type!r}")
        if negative_type not in NEGATIVE_TYPES:
            raise ValueError(f"negative_type must be one of "
                             f"{NEGATIVE_TYPES}, got {negative_type!r}")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        self.temperature = float(temperature)
        self.label_variance = float(label_variance)
        self.positive_type = positive_type
        self.negative_type = negative_type
        self.positive_window = float(positive_window)
        self.scope = scope
        self.masked_negative_weight = float(masked_negative_weight)

    def call(self, y_true, y_pred):
        if isinstance(y_true, dict):
            steps, seq_lens = y_true["steps"], y_true["seq_lens"]
            masks = y_true.get("masks")
        else:
            steps, seq_lens, *rest = y_true
            masks = rest[0] if rest else None
        return sequence_contrastive_loss(
            y_pred, steps, seq_lens, masks, temperature=self.temperature,
            label_variance=self.label_variance,
            positive_type=self.positive_type,
            negative_type=self.negative_type,
            positive_window=self.positive_window, scope=self.scope,
            masked_negative_weight=self.masked_negative_weight,
            reduction="none")

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature,
                      label_variance=self.label_variance,
                      positive_type=self.positive_type,
                      negative_type=self.negative_type,
                      positive_window=self.positive_window,
                      scope=self.scope,
                      masked_negative_weight=self.masked_negative_weight)
        return config
