"""Tests of the feature-sequence pipeline (features_pipeline)."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import features_pipeline as fp
from tfaction.data import schemas
from tfaction.data import tfrecord_io

C = 6
FPS, STRIDE, WINDOW = 30.0, 4.0, 16.0


def _feats(t, k):
    return (np.arange(t * C, dtype=np.float32).reshape(t, C) / 7 + k)


VIDEOS = [  # (id, T, segments, labels)
    ("a", 20, [[1.0, 2.5]], [3]),
    ("b", 33, [[0.5, 1.0], [2.0, 4.0]], [1, 2]),
    ("c", 9, [], []),
]


def _write(tmp_path, encoding, videos=VIDEOS, **kw):
    with tfrecord_io.ShardedTFRecordWriter(tmp_path / encoding, "f",
                                           2) as w:
        for k, (vid, t, segs, labels) in enumerate(videos):
            w.write(schemas.feature_sequence_example(
                vid, _feats(t, k), fps=FPS, duration=t * STRIDE / FPS,
                stride=STRIDE, window=WINDOW, segments=segs,
                label_index=labels, encoding=encoding,
                **kw).SerializeToString())
    return tfrecord_io.shard_pattern(tmp_path / encoding, "f")


def _all(pattern, config, training=False, **kw):
    return [{k: v.numpy() for k, v in b.items()}
            for b in fp.make_features_dataset(pattern, config,
                                              training=training, **kw)]


@pytest.mark.parametrize("encoding", schemas.FEATURE_ENCODINGS)
def test_pad_to_batch_max_with_masks(tmp_path, encoding):
    pattern = _write(tmp_path, encoding)
    config = fp.FeaturesConfig(feature_dim=C, encoding=encoding,
                               batch_size=2)
    first, second = _all(pattern, config)
    assert first["video_id"].tolist() == [b"a", b"b"]
    assert first["features"].shape == (2, 33, C)
    assert first["length"].tolist() == [20, 33]
    assert first["mask"].sum(1).tolist() == [20, 33]
    np.testing.assert_array_equal(first["features"][0, :20], _feats(20, 0))
    assert not first["features"][0, 20:].any()
    assert first["segments"].shape == (2, 2, 2)
    assert first["segment_labels"].tolist() == [[3, -1], [1, 2]]
    assert first["segment_mask"].tolist() == [[True, False], [True, True]]
    np.testing.assert_allclose(first["segments"][1], [[0.5, 1.0],
                                                      [2.0, 4.0]])
    assert first["fps"].tolist() == [FPS, FPS]
    assert first["feature_stride"].tolist() == [STRIDE] * 2
    assert first["feature_window"].tolist() == [WINDOW] * 2
    assert second["segments"].shape == (1, 0, 2)  # video c: no segments
    assert second["num_segments"].tolist() == [0]


def test_encodings_agree_and_float16_storage(tmp_path):
    tensor = _all(_write(tmp_path, "tensor"),
                  fp.FeaturesConfig(feature_dim=C, batch_size=3,
                                    encoding="tensor"))
    floats = _all(_write(tmp_path, "floats"),
                  fp.FeaturesConfig(feature_dim=C, batch_size=3,
                                    encoding="floats"))
    for key in tensor[0]:
        np.testing.assert_array_equal(tensor[0][key], floats[0][key])
    half = _all(_write(tmp_path / "h", "tensor", dtype=np.float16),
                fp.FeaturesConfig(feature_dim=C, batch_size=3,
                                  encoding="tensor", storage_dtype="float16"))
    np.testing.assert_allclose(half[0]["features"], tensor[0]["features"],
                               rtol=1e-3)
    assert half[0]["features"].dtype == np.float32


def test_fixed_length_multiple_and_too_long(tmp_path):
    pattern = _write(tmp_path, "floats")
    fixed = _all(pattern, fp.FeaturesConfig(
        feature_dim=C, max_length=40, max_segments=3, batch_size=3))[0]
    assert fixed["features"].shape == (3, 40, C)
    assert fixed["segment_labels"].shape == (3, 3)
    assert fixed["segment_mask"].sum(1).tolist() == [1, 2, 0]
    multiple = _all(pattern, fp.FeaturesConfig(
        feature_dim=C, pad_multiple=16, batch_size=1))
    assert [b["features"].shape[1] for b in multiple] == [32, 48, 16]
    assert [int(b["mask"].sum()) for b in multiple] == [20, 33, 9]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"longer than max_length(.|\n)*\bb\b"):
        _all(pattern, fp.FeaturesConfig(feature_dim=C, max_length=30,
                                        batch_size=3))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="more segments than max_segments"):
        _all(pattern, fp.FeaturesConfig(feature_dim=C, max_segments=1,
                                        batch_size=3))


def _reference_truncate(t, segs_sec, labels, start, length, thresh=0.5):
    """ActionFormer `truncate_feats` for a given window start (numpy)."""
    offset = 0.5 * WINDOW / STRIDE
    grid = np.asarray(segs_sec, np.float64).reshape(-1, 2) * FPS / STRIDE \
        - offset
    st, ed = float(start), float(start + length)
    left = np.maximum(st - offset, grid[:, 0])
    right = np.minimum(ed + offset, grid[:, 1])
    inter = np.clip(right - left, 0, None)
    keep = inter / np.abs(grid[:, 1] - grid[:, 0]) >= thresh
    seg_grid = np.stack([left[keep], right[keep]], 1) - st
    return (seg_grid + offset) * STRIDE / FPS, np.asarray(labels)[keep]


def test_random_truncate_matches_actionformer(tmp_path):
    t = 120
    segs = [[0.5, 1.5], [3.0, 5.5], [7.0, 7.4], [10.0, 15.5], [2.0, 8.0],
            [6.0, 12.0]]
    labels = [0, 1, 2, 3, 4, 5]
    pattern = _write(tmp_path, "floats", videos=[("long", t, segs, labels)])
    config = fp.FeaturesConfig(feature_dim=C, max_length=48, truncate=True,
                               batch_size=1)
    starts, clipped = set(), 0
    for epoch in range(6):
        (b,) = _all(pattern, config, training=True, seed=3,
                    start_epoch=epoch)
        start = int(b["crop_start"][0])
        starts.add(start)
        np.testing.assert_array_equal(b["features"][0],
                                      _feats(t, 0)[start:start + 48])
        want, want_labels = _reference_truncate(t, segs, labels, start, 48)
        n = int(b["num_segments"][0])
        assert n >= 1  # a window keeping an action was found
        np.testing.assert_allclose(b["segments"][0, :n], want, atol=1e-5)
        assert b["segment_labels"][0, :n].tolist() == want_labels.tolist()
        kept = np.asarray(segs)[want_labels]
        shift = start * STRIDE / FPS
        clipped += int(np.abs(want - (kept - shift)).max() > 1e-6)
    assert len(starts) > 1  # a function of the epoch
    assert clipped  # windows cut segments: the slack rule was exercised
    again = _all(pattern, config, training=True, seed=3, start_epoch=5)
    assert int(again[0]["crop_start"][0]) == start


def test_crop_ratio_on_short_sequences(tmp_path):
    pattern = _write(tmp_path, "floats")
    config = fp.FeaturesConfig(feature_dim=C, max_length=64, truncate=True,
                               crop_ratio=(0.9, 1.0), batch_size=3,
                               drop_remainder=False)
    lengths = {}
    for epoch in range(5):
        (b,) = _all(pattern, config, training=True, start_epoch=epoch)
        for vid, n in zip(b["video_id"], b["length"]):
            lengths.setdefault(vid, set()).add(int(n))
    full = {b"a": 20, b"b": 33, b"c": 9}
    for vid, seen in lengths.items():
        lo = max(round(0.9 * full[vid]), 1)
        assert seen <= set(range(lo, full[vid] + 1)), vid
    assert len(lengths[b"b"]) > 1
    evaluation = _all(pattern, config)  # no crop at evaluation
    assert evaluation[0]["length"].tolist() == [20, 33, 9]


def test_custom_crop_hook(tmp_path):
    pattern = _write(tmp_path, "floats")

    def first_half(ex, seed):
        del seed
        t = tf.shape(ex["features"])[0] // 2
        return {**ex, "features": ex["features"][:t]}

    config = fp.FeaturesConfig(feature_dim=C, encoding="floats",
                               batch_size=3)
    (b,) = _all(pattern, config, crop_fn=first_half)
    assert b["length"].tolist() == [10, 16, 4]
    pipe = fp.build_features_pipeline(config, training=False,
                                      crop_fn=functools.partial(first_half))
    assert pipe.names == ["parse", "crop", "pad", "batch", "prefetch"]


def test_config_validation():
    with pytest.raises(errors.ConfigError, match="encoding"):
        fp.FeaturesConfig(feature_dim=4, encoding="npy")
    with pytest.raises(errors.ConfigError, match="max_length"):
        fp.FeaturesConfig(feature_dim=4, truncate=True)
