"""Tests of the frame-index samplers (tfaction.data.samplers)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfaction.data import samplers


def _np(x):
    return np.asarray(x).tolist()


def test_make_seed_depends_on_every_salt():
    a = _np(samplers.make_seed(1, 2, 3))
    assert a == _np(samplers.make_seed(1, 2, 3))
    assert a != _np(samplers.make_seed(1, 2, 4))
    assert a != _np(samplers.make_seed(1, 3, 3))
    assert a != _np(samplers.make_seed(2, 2, 3))
    # Both halves change: scalar-seed consumers (Dataset.shuffle) differ too.
    b = _np(samplers.make_seed(1, 2, 4))
    assert a[0] != b[0] and a[1] != b[1]


@pytest.mark.parametrize("n,k", [(10, 4), (16, 4), (3, 5), (25, 25),
                                 (101, 16), (1, 3)])
def test_tsn_test_indices_match_tsn_formula(n, k):
    tick = n / float(k)
    expected = [min(int(tick / 2.0 + tick * x), n - 1) for x in range(k)]
    assert _np(samplers.tsn_indices(n, k, training=False)) == expected


def test_tsn_training_one_random_frame_per_segment():
    n, k = 50, 8
    avg = n // k
    seen = set()
    for seed in range(20):
        idx = _np(samplers.tsn_indices(n, k, training=True, seed=seed))
        for i, v in enumerate(idx):
            assert i * avg <= v < (i + 1) * avg
        seen.add(tuple(idx))
    assert len(seen) > 15  # random
    again = samplers.tsn_indices(n, k, training=True, seed=3)
    assert _np(again) == _np(samplers.tsn_indices(n, k, training=True,
                                                  seed=3))


def test_tsn_short_video_and_multi_clip():
    idx = _np(samplers.tsn_indices(3, 6, training=True, seed=0))
    assert idx == sorted(idx) and all(0 <= v < 3 for v in idx)
    clips = _np(samplers.tsn_indices(20, 4, training=False, num_clips=2))
    # tick 5: clip 0 offset 1.25, clip 1 offset 3.75 within each segment.
    assert clips == [[1, 6, 11, 16], [3, 8, 13, 18]]
    with pytest.raises(ValueError, match="seed"):
        samplers.tsn_indices(10, 2, training=True)


def test_clip_indices_test_centred_and_evenly_spaced():
    assert _np(samplers.clip_indices(10, 4, 2, training=False)) == \
        [1, 3, 5, 7]
    three = _np(samplers.clip_indices(50, 4, 2, training=False,
                                      num_clips=3))
    assert [c[0] for c in three] == [0, 22, 43]
    assert all(c[-1] - c[0] == 6 for c in three)


def test_clip_indices_training_covers_all_starts():
    starts = {_np(samplers.clip_indices(12, 3, 2, training=True,
                                        seed=s))[0] for s in range(200)}
    assert starts == set(range(0, 12 - 5 + 1))


def test_clip_indices_short_video_loops_or_repeats():
    loop = samplers.clip_indices(5, 4, 2, training=False)
    assert _np(loop) == [0, 2, 4, 1]
    last = samplers.clip_indices(5, 4, 2, training=False,
                                 pad_mode="repeat_last")
    assert _np(last) == [0, 2, 4, 4]
    with pytest.raises(ValueError, match="pad_mode"):
        samplers.clip_indices(5, 4, pad_mode="zeros", training=False)


def test_temporal_crop_is_a_contiguous_resampled_window():
    n, t = 40, 8
    lengths = set()
    for seed in range(30):
        idx = np.asarray(samplers.temporal_crop_indices(
            n, t, training=True, seed=seed, scale=(0.25, 0.5)))
        assert np.all(np.diff(idx) >= 0) and idx.min() >= 0
        assert idx.max() < n
        span = idx[-1] - idx[0] + 1
        assert span <= math.ceil(0.5 * n)
        lengths.add(int(span))
    assert len(lengths) > 3
    assert _np(samplers.temporal_crop_indices(8, 4, training=False)) == \
        [1, 3, 5, 7]
    # Window shorter than T: frames repeat in order.
    short = _np(samplers.temporal_crop_indices(3, 6, training=False))
    assert short == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("n", [25, 26, 49, 100, 409, 10])
def test_actionvlad_rgb_formula(n):
    step = (n - 1) // 24
    expected = [i * step for i in range(25)]
    assert _np(samplers.actionvlad_indices(n, 25)) == expected


@pytest.mark.parametrize("n", [35, 60, 409, 261])
def test_actionvlad_flow_stacks(n):
    step = (n - 10) // 25
    got = np.asarray(samplers.actionvlad_flow_indices(n, 25, 10))
    assert got.shape == (25, 10)
    for i in range(25):
        assert got[i].tolist() == list(range(i * step, i * step + 10))
    assert got.max() <= n - 2  # inside the n - 1 flow frames


def test_actionvlad_short_and_single_sample():
    # n < stack: step truncates to 0 (TF 0.12 integer division).
    got = _np(samplers.actionvlad_flow_indices(7, 3, 10))
    assert got == [list(range(10))] * 3
    one = samplers.actionvlad_indices(30, 1, seed=4)
    assert one.shape == (1,) and 0 <= int(one[0]) < 30
    with pytest.raises(ValueError, match="seed"):
        samplers.actionvlad_indices(30, 1)


def test_carl_views_long_video_follow_time_augment():
    n, t = 100, 16
    for seed in range(10):
        idx, mask = samplers.carl_indices(n, t, seed=seed)
        idx, mask = np.asarray(idx), np.asarray(mask)
        assert idx.shape == (2, t) and mask.shape == (2, t)
        for v in range(2):
            valid = idx[v][mask[v]]
            # Sorted, distinct frames within the block ceil(r * n) <= 1.5 n.
            assert np.all(np.diff(valid) > 0)
            assert valid.max() < n
        # Block >= n: the offset is 0, so steps >= n are masked out.
        assert mask.sum() <= 2 * t


def test_carl_short_video_pads_with_invalid_steps():
    idx, mask = samplers.carl_indices(5, 8, seed=1)
    mask = np.asarray(mask)
    assert mask[:, 5:].sum() == 0  # right padding beyond num_valid = 5
    assert np.asarray(idx).max() == 4  # clamped to n - 1
    fine = samplers.carl_indices(500, 8, seed=1, block_from="valid")
    # FineGym mode: blocks of ceil(r * 8) <= 12 frames, so tight views.
    for v in range(2):
        view = np.asarray(fine[0])[v]
        assert view[-1] - view[0] < 12


def test_samplers_run_inside_tf_data():
    ds = tf.data.Dataset.from_tensor_slices(tf.constant([5, 30, 100]))
    ds = ds.map(lambda n: samplers.tsn_indices(
        n, 4, training=True, seed=samplers.make_seed(0, n)))
    out = [_np(x) for x in ds]
    assert [len(x) for x in out] == [4, 4, 4]
    assert out == [_np(x) for x in ds]  # deterministic
