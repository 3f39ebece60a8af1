"""tfaction.losses.sequence_contrastive_loss: CARL's sequence contrastive loss.

Anchors: every `*.npz` case of every `carl_scl*` bundle in
`$TFACTION_ANCHORS` (and tests/anchors): the authors' `SCL.
compute_sequence_loss` on stored embeddings, steps, lengths and masks, with
the temperature and label variance stored in each case (see the bundle's
README). Variants are checked against the small numpy implementation below.
"""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import bundle_dirs
from tfaction.losses import sequence_contrastive_loss as module
from tfaction.losses.sequence_contrastive_loss import NEGATIVE_TYPES
from tfaction.losses.sequence_contrastive_loss import POSITIVE_TYPES
from tfaction.losses.sequence_contrastive_loss import SequenceContrastiveLoss
from tfaction.losses.sequence_contrastive_loss import (
    sequence_contrastive_loss as scl)

RTOL = 1e-6  # parity with the authors' loss and gradient


# ----------------------------------------------------------------------------
# Independent numpy implementation (float64 except for the float32 prior).

def _np_batch(embs, seq_lens, steps, masks, tau, var, pos, neg, window,
              masked_weight):
    """Per-video (KL sums, valid-frame counts) of one similarity matrix."""
    b, v, t, d = embs.shape
    n = b * v * t
    z = embs.reshape(n, d).astype(np.float64)
    s = steps.reshape(n).astype(np.float32)
    lens = np.broadcast_to(np.asarray(seq_lens).reshape(b, -1, 1),
                           (b, v, t)).reshape(n).astype(np.float32)
    m = masks.reshape(n).astype(np.float64)
    pair = m[:, None] * m[None, :]
    logits = z @ z.T / tau
    dist = np.abs(s[:, None] / lens[:, None] * lens[None, :] - s[None, :])
    dist = np.where(pair == 0, np.float32(1e6), dist).astype(np.float32)
    vid = np.repeat(np.arange(b), v * t)
    view = np.tile(np.repeat(np.arange(v), t), b)
    same = vid[:, None] == vid[None, :]
    same_view = same & (view[:, None] == view[None, :])
    other = same & ~same_view
    w = np.ones((n, n))
    if neg in ("single", "single_noself"):
        w[~same] = 0
    if neg in ("noself", "single_noself"):
        w[same_view] = 0
    w[pair == 0] = masked_weight
    if pos == "gauss":
        with np.errstate(under="ignore"):
            g = np.exp(-np.square(dist) / np.float32(2 * var))  # float32
        g = np.where(other, g.astype(np.float64), 0.0)
        total = g.sum(1, keepdims=True)
        label = np.divide(g, total, out=np.zeros_like(g), where=total > 0)
    else:
        # The exact gap for equal lengths, not the rounded float32 one.
        gap = np.abs(s[:, None] - s[None, :])
        gap = np.where((lens[:, None] == lens[None, :]) & (pair > 0), gap,
                       dist)
        nn = np.where(other, gap, np.inf).argmin(1)  # first on ties
        label = np.zeros((n, n))
        label[np.arange(n), nn] = 1.0
        label[gap > window] = 0.0
    q = np.exp(logits) / (w * np.exp(logits)).sum(1, keepdims=True)
    safe = np.where(label > 0, label, 1.0)
    kl = np.where(label > 0, label * (np.log(safe) - np.log(q + 1e-6)), 0.0)
    rows = (kl * pair).sum(1)
    return rows.reshape(b, -1).sum(1), m.reshape(b, -1).sum(1)


def np_scl(embs, steps, seq_lens, masks, tau=0.1, var=10.0, pos="gauss",
           neg="single_noself", window=5.0, scope="batch",
           masked_weight=1e-6):
    """(per-video KL sums [B], per-video valid frames [B])."""
    if scope == "batch":
        return _np_batch(embs, seq_lens, steps, masks, tau, var, pos, neg,
                         window, masked_weight)
    parts = [_np_batch(embs[i:i + 1], seq_lens[i:i + 1], steps[i:i + 1],
                       masks[i:i + 1], tau, var, pos, neg, window,
                       masked_weight) for i in range(len(embs))]
    return (np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]))


def _normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _case(seed=0, b=3, t=7, d=6, lens=(12, 5, 30)):
    """CARL-like views: sorted draws from [0, ceil(r L)), masked >= L."""
    rng = np.random.default_rng(seed)
    steps = np.zeros((b, 2, t), np.int64)
    masks = np.zeros((b, 2, t), np.float64)
    for i, length in enumerate(lens):
        for view in range(2):
            block = int(np.ceil(rng.uniform(1, 1.5) * length))
            valid = min(length, t)
            raw = np.sort(rng.permutation(block)[:valid])
            raw = np.concatenate([raw, np.full(t - valid, length)])
            masks[i, view] = raw < length
            steps[i, view] = np.clip(raw, 0, length - 1)
    embs = _normalize(rng.normal(size=(b, 2, t, d)))
    seq_lens = np.repeat(np.array(lens)[:, None], 2, axis=1)
    return embs, steps, seq_lens, masks


# ----------------------------------------------------------------------------
# Parity with the authors' code.

@pytest.fixture(scope="module")
def scl_cases(anchors_dir):
    """[(name, npz dict)] for every case file of every carl_scl bundle."""
    files = [f for root in bundle_dirs(anchors_dir, "carl_scl", ())
             for f in sorted(root.glob("*.npz"))]
    if not files:
        pytest.fail(f"no carl_scl*/*.npz case under {anchors_dir}")
    return [(f"{f.parent.name}/{f.name}", dict(np.load(f))) for f in files]


def _loss_and_grad(case, dtype):
    embs = tf.Variable(case["embs"].astype(dtype))
    with tf.GradientTape() as tape:
        loss = scl(embs, case["steps"], case["seq_lens"], case["masks"],
                   temperature=float(case["temperature"]),
                   label_variance=float(case["label_variance"]))
    return float(loss), tape.gradient(loss, embs).numpy()


def test_parity_with_reference(scl_cases):
    for name, case in scl_cases:
        b, views, t, _ = case["embs"].shape
        assert views == 2 and case["steps"].shape == (b, 2, t), name
        assert case["masks"].shape == (b, 2, t), name
        assert case["seq_lens"].shape in ((b, 2), (b,)), name
        grad_ref = case["grad_f64"]
        for dtype in ("float64", "float32"):
            loss, grad = _loss_and_grad(case, dtype)
            for key in ("loss_f64", "loss_f32"):
                err = abs(loss / float(case[key]) - 1.0)
                assert err <= RTOL, (name, dtype, key, err)
            # Relative to the largest gradient entry (entries of masked
            # frames are ~0).
            err = np.abs(grad - grad_ref).max() / np.abs(grad_ref).max()
            assert err <= RTOL, (name, dtype, "grad_f64", err)


def test_reference_cases_match_numpy(scl_cases):
    for name, case in scl_cases:
        tau, var = float(case["temperature"]), float(case["label_variance"])
        sums, valid = np_scl(case["embs"], case["steps"], case["seq_lens"],
                             case["masks"], tau, var)
        assert sums.sum() / valid.sum() == pytest.approx(
            float(case["loss_f64"]), rel=1e-7), name


# ----------------------------------------------------------------------------
# Variants, reductions, scopes against numpy.

@pytest.mark.parametrize("scope", ["batch", "video"])
@pytest.mark.parametrize("pos", POSITIVE_TYPES)
@pytest.mark.parametrize("neg", NEGATIVE_TYPES)
def test_variants_match_numpy(neg, pos, scope):
    embs, steps, seq_lens, masks = _case(seed=len(neg) + len(pos))
    kwargs = dict(temperature=0.2, label_variance=4.0, positive_type=pos,
                  negative_type=neg, positive_window=2.0, scope=scope)
    sums, valid = np_scl(embs, steps, seq_lens, masks, 0.2, 4.0, pos, neg,
                         2.0, scope)
    assert sums.min() > 0
    got = {r: np.asarray(scl(embs, steps, seq_lens, masks, reduction=r,
                             **kwargs)) for r in ("none", "sum", "mean")}
    np.testing.assert_allclose(got["none"], sums / valid, rtol=1e-6)
    np.testing.assert_allclose(got["sum"], sums.sum(), rtol=1e-6)
    np.testing.assert_allclose(got["mean"], sums.sum() / valid.sum(),
                               rtol=1e-6)
    # float32 embeddings give the same within float32 rounding.
    got32 = scl(embs.astype("float32"), steps, seq_lens, masks, **kwargs)
    assert got32.dtype == "float32"
    np.testing.assert_allclose(float(got32), got["mean"], rtol=1e-5)


def test_nn_ties_pick_the_first_frame_and_respect_the_window():
    # Frame at step 5 of view 0; view 1 holds steps 4 and 6 (a tie) and 9.
    embs = _normalize(np.random.default_rng(3).normal(size=(1, 2, 3, 4)))
    steps = np.array([[[5, 20, 30], [4, 6, 9]]])
    lens = np.array([[40, 40]])
    for window in (0.5, 1.0, 3.0):
        sums, valid = np_scl(embs, steps, lens, np.ones((1, 2, 3)),
                             pos="nn", window=window)
        got = scl(embs, steps, lens, None, positive_type="nn",
                  positive_window=window)
        np.testing.assert_allclose(float(got), sums.sum() / valid.sum(),
                                   rtol=1e-9)


def test_far_apart_views_prior_underflow_like_float32():
    # Gaps of 43-45 frames: the float32 prior is subnormal but not 0 (rows
    # count); gaps >= 46 frames underflow to 0 (rows are dropped), as in
    # float32 without flush-to-zero.
    embs = _normalize(np.random.default_rng(4).normal(size=(2, 2, 3, 8)))
    steps = np.array([[[0, 1, 2], [45, 46, 47]],
                      [[0, 1, 2], [48, 49, 50]]])
    lens = np.array([[60, 60], [60, 60]])
    masks = np.ones((2, 2, 3))
    sums, valid = np_scl(embs, steps, lens, masks, scope="video")
    got = np.asarray(scl(embs, steps, lens, masks, scope="video",
                         reduction="none"))
    assert sums[0] > 0 and sums[1] == 0.0
    np.testing.assert_allclose(got, sums / valid, rtol=1e-3)


def test_scope_video_is_each_video_alone():
    embs, steps, seq_lens, masks = _case(seed=5)
    per_video = np.asarray(scl(embs, steps, seq_lens, masks, scope="video",
                               negative_type="all", reduction="none"))
    alone = [float(scl(embs[i:i + 1], steps[i:i + 1], seq_lens[i:i + 1],
                       masks[i:i + 1], negative_type="all"))
             for i in range(len(embs))]
    np.testing.assert_allclose(per_video, alone, rtol=1e-12)
    # In a batch, other videos' padded frames enter with weight 1e-6 only
    # (times exp(l) <= e^10: 4e-4 here with D = 6).
    per_video = np.asarray(scl(embs, steps, seq_lens, masks, scope="video",
                               reduction="none"))
    batch = np.asarray(scl(embs, steps, seq_lens, masks, reduction="none"))
    np.testing.assert_allclose(batch, per_video, rtol=1e-3)
    assert not np.array_equal(batch, per_video)


@pytest.mark.parametrize("pos", POSITIVE_TYPES)
def test_xla_matches_eager(pos):
    embs, steps, seq_lens, masks = _case(seed=1)
    embs = embs.astype("float32")

    def fn(*args):
        return scl(*args, positive_type=pos, reduction="none")

    eager = fn(embs, steps, seq_lens, masks)
    xla = tf.function(fn, jit_compile=True)(embs, steps, seq_lens, masks)
    np.testing.assert_allclose(xla.numpy(), eager.numpy(), rtol=1e-6)


# ----------------------------------------------------------------------------
# Precision and masking.

@pytest.mark.parametrize("low", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(low):
    embs, steps, seq_lens, masks = _case(seed=6, t=12, d=16,
                                         lens=(40, 9, 100))
    half = tf.Variable(tf.cast(embs, low))
    with tf.GradientTape() as tape:
        loss = scl(half, steps, seq_lens, masks)
    grad = tape.gradient(loss, half)
    assert loss.dtype == "float32" and grad.dtype == low
    assert np.isfinite(float(loss))
    assert np.isfinite(tf.cast(grad, tf.float32).numpy()).all()
    # Exactly the float32 loss of the rounded embeddings ...
    rounded = tf.cast(half, tf.float32).numpy()
    np.testing.assert_allclose(
        float(loss), float(scl(rounded, steps, seq_lens, masks)), rtol=1e-6)
    # ... and close to the float32 loss of the original ones.
    ref = float(scl(embs.astype("float32"), steps, seq_lens, masks))
    tol = 5e-3 if low == "float16" else 5e-2
    assert float(loss) == pytest.approx(ref, rel=tol)


def test_masks_exclude_padded_frames():
    rng = np.random.default_rng(7)
    embs = _normalize(rng.normal(size=(3, 2, 8, 6)))
    # 6 valid frames per view, then 2 padded ones (clamped to L - 1).
    steps = np.sort(rng.choice(20, (3, 2, 6)), axis=-1)
    steps = np.concatenate([steps, np.full((3, 2, 2), 19)], axis=-1)
    masks = np.concatenate([np.ones((3, 2, 6)), np.zeros((3, 2, 2))], -1)
    seq_lens = np.full((3, 2), 20)
    trimmed = scl(embs[:, :, :6], steps[:, :, :6], seq_lens, None,
                  reduction="none")
    rng = np.random.default_rng(8)
    changed = embs.copy()
    changed[..., 6:, :] = _normalize(rng.normal(size=changed[..., 6:, :]
                                                .shape))
    garbage_steps = steps.copy()
    garbage_steps[..., 6:] = 999
    for weight in (0.0, 1e-6):
        kwargs = dict(masked_negative_weight=weight, reduction="none")
        got = np.asarray(scl(embs, steps, seq_lens, masks, **kwargs))
        other = np.asarray(scl(changed, garbage_steps, seq_lens, masks,
                               **kwargs))
        if weight == 0.0:  # padded frames are invisible
            np.testing.assert_allclose(got, trimmed, rtol=1e-12)
            np.testing.assert_allclose(other, trimmed, rtol=1e-12)
        else:  # the reference: padded frames weigh 1e-6 in denominators
            np.testing.assert_allclose(got, trimmed, rtol=1e-4)
            np.testing.assert_allclose(other, got, rtol=1e-4)
        # No gradient through padded frames when they are invisible.
        var = tf.Variable(embs)
        with tf.GradientTape() as tape:
            loss = scl(var, steps, seq_lens, masks,
                       masked_negative_weight=weight)
        grad = tape.gradient(loss, var).numpy()
        padded = np.abs(grad[..., 6:, :]).max()
        valid = np.abs(grad[..., :6, :]).max()
        assert valid > 1e-2
        # 1e-6 exp(l) with l up to 1 / tau = 10 leaks a little gradient.
        assert padded == 0.0 if weight == 0.0 else padded < 1e-2 * valid


def test_all_padding_gives_zero_not_nan():
    embs, steps, seq_lens, _ = _case(seed=9)
    masks = np.zeros(steps.shape)
    for r in ("none", "sum", "mean"):
        assert not np.asarray(scl(embs, steps, seq_lens, masks,
                                  reduction=r)).any()


# ----------------------------------------------------------------------------
# Data parallelism: whole videos per replica.

def _per_video_grads(kernel, features, steps, seq_lens, masks, global_batch):
    with tf.GradientTape() as tape:
        z = tf.math.l2_normalize(tf.einsum("bvtc,cd->bvtd", features,
                                           kernel), axis=-1)
        per_video = scl(z, steps, seq_lens, masks, scope="video",
                        reduction="none")
        loss = tf.reduce_sum(per_video) / global_batch
    return loss, tape.gradient(loss, kernel)


def test_one_and_two_replicas_give_the_same_gradient(two_cpu_strategy):
    strategy = two_cpu_strategy
    assert strategy.num_replicas_in_sync == 2
    _, steps, seq_lens, masks = _case(seed=10, b=4, t=6,
                                      lens=(12, 5, 30, 4))
    rng = np.random.default_rng(11)
    features = rng.normal(size=(4, 2, 6, 5)).astype("float32")
    kernel = rng.normal(size=(5, 8)).astype("float32")
    masks = masks.astype("float32")

    one_kernel = tf.Variable(kernel)
    one_loss, one_grad = _per_video_grads(one_kernel, features, steps,
                                          seq_lens, masks, 4.0)
    # The global-batch mean of per-video losses.
    mean = float(tf.reduce_mean(scl(
        tf.math.l2_normalize(features @ kernel, axis=-1), steps, seq_lens,
        masks, scope="video", reduction="none")))
    assert float(one_loss) == pytest.approx(mean, rel=1e-6)

    with strategy.scope():
        mirrored = tf.Variable(kernel)

    def shard(x):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: x[2 * ctx.replica_id_in_sync_group:
                          2 * ctx.replica_id_in_sync_group + 2])

    @tf.function
    def step(*args):
        return strategy.run(_per_video_grads, args=(mirrored, *args, 4.0))

    losses, grads = step(*(shard(x) for x in (features, steps, seq_lens,
                                              masks)))
    loss = strategy.reduce("SUM", losses, axis=None)
    grad = strategy.reduce("SUM", grads, axis=None)
    assert float(loss) == pytest.approx(float(one_loss), rel=1e-6)
    np.testing.assert_allclose(grad.numpy(), one_grad.numpy(), rtol=1e-5,
                               atol=1e-7)


# ----------------------------------------------------------------------------
# Keras loss class.

def test_loss_class_and_serialization():
    embs, steps, seq_lens, masks = _case(seed=12)
    loss = SequenceContrastiveLoss(temperature=0.2, label_variance=4.0,
                                   negative_type="single", scope="video",
                                   reduction="sum")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss))
    assert type(restored) is SequenceContrastiveLoss
    assert restored.get_config() == loss.get_config()
    assert restored.get_config()["negative_type"] == "single"
    per_video = scl(embs, steps, seq_lens, masks, temperature=0.2,
                    label_variance=4.0, negative_type="single",
                    scope="video", reduction="none")
    y_true = {"steps": steps, "seq_lens": seq_lens, "masks": masks}
    for fn in (loss, restored):
        np.testing.assert_allclose(float(fn(y_true, embs)),
                                   float(tf.reduce_sum(per_video)),
                                   rtol=1e-6)
        np.testing.assert_allclose(float(fn((steps, seq_lens, masks), embs)),
                                   float(tf.reduce_sum(per_video)),
                                   rtol=1e-6)
    default = SequenceContrastiveLoss()
    np.testing.assert_allclose(
        float(default(y_true, embs)),
        float(tf.reduce_mean(scl(embs, steps, seq_lens, masks,
                                 reduction="none"))), rtol=1e-6)


def test_bad_arguments():
    embs, steps, seq_lens, masks = _case()
    with pytest.raises(ValueError, match="negative_type"):
        scl(embs, steps, seq_lens, masks, negative_type="multi")
    with pytest.raises(ValueError, match="positive_type"):
        scl(embs, steps, seq_lens, masks, positive_type="window")
    with pytest.raises(ValueError, match="reduction"):
        scl(embs, steps, seq_lens, masks, reduction="avg")
    with pytest.raises(ValueError, match="scope"):
        scl(embs, steps, seq_lens, masks, scope="replica")
    with pytest.raises(ValueError, match="two views"):
        scl(embs[:, :1], steps[:, :1], seq_lens[:, :1], masks[:, :1])
    with pytest.raises(ValueError, match="negative_type"):
        SequenceContrastiveLoss(negative_type="multi")


def test_docstrings():
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0
