"""Frame-index samplers: which frames of a video a model sees.

Pure TensorFlow ops, usable inside `tf.data` (graph mode) and eagerly. They
return int32 frame indices only; the pipelines gather and decode just those
frames (indices are chosen before decoding). Randomness comes from stateless ops
(`tf.random.stateless_*`) driven by an explicit seed, so a pipeline is a
deterministic function of (seed, epoch, video).

| sampler | used by | train | test |
|---|---|---|---|
| `tsn_indices` | AdaFocus, TSN | random frame / segment | segment centre |
| `clip_indices` | 3-D CNNs (DMVR) | random start | centred, spaced |
| `temporal_crop_indices` | generic | random window | whole video |
| `actionvlad_indices` | ActionVLAD RGB | uniform | same |
| `actionvlad_flow_indices` | ActionVLAD flow | uniform stacks | same |
| `carl_indices` | CARL two views | `time_augment` | - |

Every sampler taking `num_clips` returns [T] when it is None and
[num_clips, T] otherwise (several clips of one video, e.g. multi-clip test).

Example:

>>> import tensorflow as tf
>>> tsn_indices(10, 4, training=False).numpy().tolist()
[1, 3, 6, 8]
>>> actionvlad_indices(101, 5).numpy().tolist()
[0, 25, 50, 75, 100]
"""

import tensorflow as tf

_INT64_MAX = 2**63 - 1


def make_seed(seed, *salts):
    """A stateless-op seed [2] int64 derived from `seed` and integer salts.

    Args:
        seed: int, scalar tensor, or an existing [2] seed tensor.
        *salts: ints or int scalar tensors (epoch, video hash, view, ...);
            each gives an independent stream.

    Returns:
        int64 tensor [2], usable as `seed=` of `tf.random.stateless_*`.

    Example:
        `make_seed(42, epoch, 3)` differs for every (42, epoch, 3).
    """
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 0:
        seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    seed = tf.cast(seed, tf.int64)
    for salt in salts:
        # fold_in only changes seed[1]; mixing it through a draw makes both
        # halves depend on every salt (a plain fold_in chain would not).
        seed = tf.random.experimental.stateless_fold_in(
            seed, tf.cast(salt, tf.int64))
        seed = tf.random.stateless_uniform(
            [2], seed, minval=None, maxval=None, dtype=tf.int64)
    return seed


def seed_scalar(seed):
    """One int64 drawn from a [2] seed (for ops taking a scalar seed)."""
    return tf.random.stateless_uniform([], seed, minval=0, maxval=_INT64_MAX,
                                       dtype=tf.int64)


def _rand_int(shape, seed, low, high):
    """Uniform ints in [low, high) (high > low), tensor bounds allowed."""
    low = tf.cast(low, tf.int32)
    high = tf.cast(high, tf.int32)
    u = tf.random.stateless_uniform(shape, seed, dtype=tf.float64)
    span = tf.cast(high - low, tf.float64)
    return low + tf.minimum(tf.cast(tf.floor(u * span), tf.int32),
                            high - low - 1)


def _clips(make, num_clips, training, seed):
    """Stacks `make(clip, clip_seed)` over clips; squeezes when None."""
    n = 1 if num_clips is None else int(num_clips)
    if n < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if training and seed is None:
        raise ValueError("a seed is required when training=True")
    out = tf.stack([make(c, None if seed is None else make_seed(seed, c))
                    for c in range(n)])
    return out[0] if num_clips is None else out


def _positive(num_frames):
    return tf.maximum(tf.cast(num_frames, tf.int32), 1)


def tsn_indices(num_frames, num_segments, *, training, seed=None,
                num_clips=None):
    """TSN segment sampling: one frame per equal segment (0-based).

    Training: `avg = n // K`; index `i*avg + U[0, avg)` (TSN
    `_sample_indices`; the last `n % K` frames are never chosen). When n < K
    TSN returns frame 0 K times; we draw K sorted random frames instead.
    Test: `int(tick/2 + tick*i)`, `tick = n/K` (TSN `_get_val_indices`; for
    n < K this repeats frames in order instead of TSN's all-zeros). Clip c of
    `num_clips` test clips uses `tick*(c + 0.5)/num_clips` as the offset, so
    one clip is the centre.

    Args:
        num_frames: int scalar (tensor), n >= 1.
        num_segments: K (python int).
        training: random (True) or deterministic (False) offsets.
        seed: required when training: int or [2] seed.
        num_clips: None or the number of clips (see module docstring).

    Returns:
        int32 [K] or [num_clips, K], values in [0, n).

    Example:
        >>> tsn_indices(16, 4, training=False).numpy().tolist()
        [2, 6, 10, 14]
    """
    n = _positive(num_frames)
    k = int(num_segments)
    i = tf.range(k, dtype=tf.int32)

    def make(clip, seed_c):
        if training:
            avg = n // k
            jitter = _rand_int([k], seed_c, 0, tf.maximum(avg, 1))
            short = tf.sort(_rand_int([k], make_seed(seed_c, 1), 0, n))
            return tf.where(avg > 0, i * avg + jitter, short)
        tick = tf.cast(n, tf.float64) / k
        clips = 1 if num_clips is None else num_clips
        offset = tick * (clip + 0.5) / clips
        idx = tf.cast(offset + tick * tf.cast(i, tf.float64), tf.int32)
        return tf.minimum(idx, n - 1)

    return _clips(make, num_clips, training, seed)


def clip_indices(num_frames, clip_length, stride=1, *, training, seed=None,
                 num_clips=None, pad_mode="loop"):
    """A clip of `clip_length` frames `stride` apart (DMVR-style).

    The clip spans `(L - 1) * stride + 1` frames. Training: start uniform in
    [0, n - span]. Test: one clip centred, or `num_clips` clips with starts
    evenly spaced over [0, n - span]. A video shorter than the span starts at
    0 and either loops (`pad_mode="loop"`, index mod n, as DMVR) or repeats
    its last frame (`pad_mode="repeat_last"`).

    Args:
        num_frames: int scalar (tensor), n >= 1.
        clip_length: L (python int).
        stride: frame step within the clip (python int >= 1).
        training: random (True) or deterministic (False) start.
        seed: required when training.
        num_clips: None or the number of clips.
        pad_mode: "loop" or "repeat_last".

    Returns:
        int32 [L] or [num_clips, L].

    Example:
        >>> clip_indices(10, 4, 2, training=False).numpy().tolist()
        [1, 3, 5, 7]
    """
    if pad_mode not in ("loop", "repeat_last"):
        raise ValueError(f"pad_mode must be 'loop' or 'repeat_last', got "
                         f"{pad_mode!r}")
    if stride < 1 or clip_length < 1:
        raise ValueError("clip_length and stride must be >= 1")
    n = _positive(num_frames)
    span = (clip_length - 1) * stride + 1
    room = tf.maximum(n - span, 0)
    steps = tf.range(clip_length, dtype=tf.int32) * stride
    clips = 1 if num_clips is None else num_clips

    def make(clip, seed_c):
        if training:
            start = _rand_int([], seed_c, 0, room + 1)
        elif clips == 1:
            start = room // 2
        else:
            start = tf.cast(tf.round(tf.cast(room, tf.float64) * clip
                                     / (clips - 1)), tf.int32)
        idx = start + steps
        return idx % n if pad_mode == "loop" else tf.minimum(idx, n - 1)

    return _clips(make, num_clips, training, seed)


def temporal_crop_indices(num_frames, num_steps, *, training, seed=None,
                          scale=(0.5, 1.0), num_clips=None):
    """A random contiguous window, resampled to `num_steps` frames.

    Training: window length `w = round(U(scale) * n)` (at least 1), start
    uniform in [0, n - w]; the window is split into `num_steps` equal parts
    and the centre frame of each is taken (frames repeat when w < T). Test:
    a window of `round(scale[1] * n)` frames, centred (or `num_clips`
    windows evenly spaced).

    Args:
        num_frames: int scalar (tensor), n >= 1.
        num_steps: T (python int).
        training: random or deterministic window.
        seed: required when training.
        scale: (min, max) window length as a fraction of the video.
        num_clips: None or the number of windows.

    Returns:
        int32 [T] or [num_clips, T], non-decreasing within a clip.

    Example:
        >>> temporal_crop_indices(8, 4, training=False).numpy().tolist()
        [1, 3, 5, 7]
    """
    lo, hi = float(scale[0]), float(scale[1])
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got "
                         f"{scale}")
    n = _positive(num_frames)
    nf = tf.cast(n, tf.float64)
    t = tf.cast(tf.range(num_steps), tf.float64)
    clips = 1 if num_clips is None else num_clips

    def make(clip, seed_c):
        if training:
            frac = tf.random.stateless_uniform([], seed_c, lo, hi,
                                               dtype=tf.float64)
        else:
            frac = tf.constant(hi, tf.float64)
        w = tf.clip_by_value(tf.cast(tf.round(frac * nf), tf.int32), 1, n)
        room = n - w
        if training:
            start = _rand_int([], make_seed(seed_c, 1), 0, room + 1)
        elif clips == 1:
            start = room // 2
        else:
            start = tf.cast(tf.round(tf.cast(room, tf.float64) * clip
                                     / (clips - 1)), tf.int32)
        offs = tf.floor((t + 0.5) * tf.cast(w, tf.float64) / num_steps)
        return start + tf.cast(offs, tf.int32)

    return _clips(make, num_clips, training, seed)


def actionvlad_indices(num_frames, num_samples=25, *, seed=None):
    """ActionVLAD's deterministic uniform RGB sampling (0-based).

    `step = (n - 1) // (T - 1)`, frames `i * step` for i < T (the reference
    reads the 1-based file `1 + i*step`). Videos with n < T give step 0, i.e.
    T copies of frame 0, as the reference. With T = 1 the reference draws
    one random frame (used to collect k-means features): pass a seed.

    Args:
        num_frames: n, the number of RGB frames.
        num_samples: T (25 in the paper).
        seed: only for T = 1.

    Returns:
        int32 [T].

    Example:
        >>> actionvlad_indices(49, 25).numpy().tolist()[:4]
        [0, 2, 4, 6]
    """
    n = _positive(num_frames)
    if num_samples == 1:
        if seed is None:
            raise ValueError("num_samples=1 draws a random frame: pass seed")
        return _rand_int([1], make_seed(seed), 0, n)
    step = tf.maximum((n - 1) // (num_samples - 1), 0)
    return tf.range(num_samples, dtype=tf.int32) * step


def actionvlad_flow_indices(num_frames, num_samples=25, stack=10, *,
                            seed=None):
    """ActionVLAD's "flow10" stacks: T stacks of `stack` consecutive flows.

    `step = (n - stack) // T` (truncated toward zero, as TF 0.12's integer
    division; 0 for n < stack); stack i holds flow indices
    `i*step .. i*step + stack - 1` (0-based; the reference's 1-based files
    `i*step + 1 .. i*step + stack`). n is the number of RGB frames; a video
    has n - 1 flow frames, and the largest index is at most n - 2 for
    n >= stack. Callers clamp to the flow frames actually stored. With T = 1
    the reference draws a random start in [0, n - stack - 1): pass a seed.

    Args:
        num_frames: n, the number of RGB frames.
        num_samples: T stacks (25).
        stack: flow frames per stack (10 → 20 channels).
        seed: only for T = 1.

    Returns:
        int32 [T, stack].

    Example:
        >>> actionvlad_flow_indices(60, 2, 3).numpy().tolist()
        [[0, 1, 2], [28, 29, 30]]
    """
    n = _positive(num_frames)
    j = tf.range(stack, dtype=tf.int32)
    if num_samples == 1:
        if seed is None:
            raise ValueError("num_samples=1 draws a random stack: pass seed")
        start = _rand_int([1], make_seed(seed), 0,
                          tf.maximum(n - stack - 1, 1))
    else:
        step = tf.maximum(n - stack, 0) // num_samples
        start = tf.range(num_samples, dtype=tf.int32) * step
    return start[:, None] + j[None, :]


def carl_indices(num_frames, num_steps, *, seed, sampling_region=1.5,
                 consistent_offset=0.2, block_from="video"):
    """CARL's two `time_augment` views (sorted random frame subsets).

    Per view: `num_valid = min(n, T)`, `r ~ U(1, sampling_region)`, block
    `ceil(r * n)` (`block_from="video"`: Pouring, PennAction) or
    `ceil(r * num_valid)` ("valid": FineGym); view 1's offset is uniform in
    [0, max(n - block, 1)), view 2's within `int((1 - consistent_offset) *
    num_valid)` of view 1's first frame; steps = sort(offset +
    randperm(block)[:num_valid]) right-padded to T with n. A step is valid
    when 0 <= step < n; indices are the steps clamped to [0, n - 1].

    Args:
        num_frames: n >= 1.
        num_steps: T frames per view.
        seed: int or [2] seed (required).
        sampling_region: upper bound of r (<= 1 disables expansion).
        consistent_offset: 0 draws view 2's offset like view 1's.
        block_from: "video" or "valid".

    Returns:
        (indices int32 [2, T], mask bool [2, T]).

    Example:
        >>> idx, mask = carl_indices(10, 8, seed=0)
        >>> idx.shape.as_list(), mask.shape.as_list()
        ([2, 8], [2, 8])
    """
    if block_from not in ("video", "valid"):
        raise ValueError(f"block_from must be 'video' or 'valid', got "
                         f"{block_from!r}")
    n = _positive(num_frames)
    num_valid = tf.minimum(n, num_steps)
    views, first = [], None
    for v in range(2):
        s = make_seed(seed, v)
        if sampling_region > 1:
            r = tf.random.stateless_uniform([], make_seed(s, 0), 1.0,
                                            sampling_region, tf.float64)
        else:
            r = tf.constant(1.0, tf.float64)
        base = n if block_from == "video" else num_valid
        block = tf.cast(tf.math.ceil(r * tf.cast(base, tf.float64)),
                        tf.int32)
        if first is not None and consistent_offset != 0:
            shift = tf.cast(
                (1.0 - consistent_offset) * tf.cast(num_valid, tf.float64),
                tf.int32)
            low = tf.maximum(0, tf.minimum(n - block, first - shift))
            high = tf.maximum(1, tf.minimum(n - block + 1, first + shift + 1))
        else:
            low, high = tf.constant(0), tf.maximum(n - block, 1)
        offset = _rand_int([], make_seed(s, 1), low, tf.maximum(high, low + 1))
        perm = tf.argsort(tf.random.stateless_uniform([block],
                                                      make_seed(s, 2)))
        steps = tf.sort(offset + tf.cast(perm[:num_valid], tf.int32))
        steps = tf.pad(steps, [[0, num_steps - num_valid]],
                       constant_values=n)
        steps = tf.ensure_shape(steps, [num_steps])
        if first is None:
            first = steps[0]
        views.append(steps)
    steps = tf.stack(views)
    mask = (steps >= 0) & (steps < n)
    return tf.clip_by_value(steps, 0, n - 1), mask
