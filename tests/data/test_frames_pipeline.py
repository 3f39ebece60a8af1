"""Tests of the frames pipeline (tfaction.data.frames_pipeline)."""

import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import frames_pipeline as fp
from tfaction.data import input_reader
from tfaction.data import samplers
from tfaction.data import schemas
from tfaction.data import tfrecord_io

H, W = 32, 40


def _value(i):
    return 5 + 10 * i  # frame i is a flat image of this grey level


def _flat(value, channels=3):
    return tf.io.encode_jpeg(np.full((H, W, channels), value,
                                     np.uint8)).numpy()


def _textured(seed):
    """A frame whose crops and flips are all distinguishable."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([4 * xx + yy, 3 * yy + xx, (xx * yy) % 200], -1)
    img = img + rng.integers(0, 20, (H, W, 3))
    return tf.io.encode_jpeg(np.clip(img, 0, 255).astype(np.uint8),
                             quality=95).numpy()


def _decode(data, channels=3):
    return tf.io.decode_jpeg(data, channels=channels,
                             dct_method="INTEGER_ACCURATE").numpy()


def _write(tmp_path, examples, shards=2):
    with tfrecord_io.ShardedTFRecordWriter(tmp_path, "v", shards) as w:
        for ex in examples:
            w.write(ex.SerializeToString())
    return tfrecord_io.shard_pattern(tmp_path, "v")


def _videos(tmp_path, lengths=(12, 16, 20), **kw):
    return _write(tmp_path, [
        schemas.frames_example(f"v{k}", num_frames=n, label_index=[k],
                               images=[_flat(_value(i)) for i in range(n)],
                               **kw)
        for k, n in enumerate(lengths)])


def _first(pattern, config, training=False, **kw):
    return next(iter(fp.make_frames_dataset(pattern, config,
                                            training=training, **kw)))


def _levels(frames):
    """Mean grey level of every frame: [..., H, W, C] → [...]."""
    return np.asarray(frames).mean(axis=(-3, -2, -1))


def test_only_the_chosen_frames_are_decoded(tmp_path):
    n = 20
    chosen = samplers.tsn_indices(n, 4, training=False).numpy().tolist()
    images = [_flat(_value(i)) if i in chosen else b"junk %d" % i
              for i in range(n)]
    pattern = _write(tmp_path, [schemas.frames_example(
        "only_some", num_frames=n, label_index=[1], images=images)], 1)
    config = fp.FramesConfig(num_steps=4, crop_size=(H, W), batch_size=1)
    batch = _first(pattern, config)
    assert batch["frame_indices"].numpy().tolist() == [chosen]
    np.testing.assert_allclose(_levels(batch["frames"])[0],
                               [_value(i) for i in chosen], atol=2)
    # A chosen frame that is not a JPEG: the error names the video.
    images[chosen[1]] = b"junk"
    pattern = _write(tmp_path / "bad", [schemas.frames_example(
        "bad_video", num_frames=n, label_index=[1], images=images)], 1)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"not a JPEG(.|\n)*bad_video(.|\n)*7"):
        _first(pattern, config)


def test_eval_order_content_and_labels(tmp_path):
    pattern = _videos(tmp_path)
    config = fp.FramesConfig(sampler="clip", num_steps=4, stride=3,
                             crop_size=(24, 24), batch_size=2)
    batches = list(fp.make_frames_dataset(pattern, config, training=False))
    assert [b["frames"].shape[0] for b in batches] == [2, 1]  # remainder
    ids = [v for b in batches for v in b["video_id"].numpy().tolist()]
    assert ids == [b"v0", b"v1", b"v2"]
    b = batches[0]
    assert b["frames"].shape == (2, 4, 24, 24, 3)
    assert b["frames"].dtype == tf.float32
    assert b["label"].numpy().tolist() == [0, 1]
    assert b["num_frames"].numpy().tolist() == [12, 16]
    # Centred clips: span 10 of 12 frames → start 1; of 16 → start 3.
    assert b["frame_indices"].numpy().tolist() == [[1, 4, 7, 10],
                                                   [3, 6, 9, 12]]
    np.testing.assert_allclose(_levels(b["frames"]),
                               _value(b["frame_indices"].numpy()), atol=2)
    assert b["frame_mask"].numpy().all()


def test_test_views_fold_into_batch_or_time(tmp_path):
    pattern = _videos(tmp_path, lengths=(12, 16))
    base = dict(num_steps=3, crop_size=(24, 24), batch_size=2,
                num_clips=2, test_crop="three")
    keep = _first(pattern, fp.FramesConfig(**base))
    assert keep["frames"].shape == (2, 6, 3, 24, 24, 3)
    folded = _first(pattern, fp.FramesConfig(**base, fold_views="batch"))
    assert folded["frames"].shape == (12, 3, 24, 24, 3)
    assert folded["label"].numpy().tolist() == [0] * 6 + [1] * 6
    assert folded["video_id"].numpy().tolist() == [b"v0"] * 6 + [b"v1"] * 6
    np.testing.assert_array_equal(
        folded["frames"].numpy().reshape(keep["frames"].shape),
        keep["frames"].numpy())
    timed = _first(pattern, fp.FramesConfig(**base, fold_views="time"))
    assert timed["frames"].shape == (2, 18, 24, 24, 3)
    assert timed["frame_indices"].shape == (2, 18)
    # Clip-major, crop-minor: three crops of clip 0 share its indices.
    idx = keep["frame_indices"].numpy()[0]
    assert (idx[0] == idx[1]).all() and (idx[0] == idx[2]).all()
    assert not (idx[0] == idx[3]).all()


def test_resize_fixed_offsets_bgr_mean_match_reference_ops(tmp_path):
    data = _textured(0)
    pattern = _write(tmp_path, [schemas.frames_example(
        "v", num_frames=30, label_index=[0], images=[data] * 30)], 1)
    offsets = ((0, 0), (4, 4))
    config = fp.FramesConfig(
        sampler="actionvlad", num_steps=5, resize=(36, 44),
        crop_size=(H, W), test_crop_offsets=offsets, bgr=True,
        mean=(104.0, 117.0, 123.0), batch_size=1, fold_views="time")
    batch = _first(pattern, config)
    assert batch["frames"].shape == (1, 10, H, W, 3)
    assert batch["frame_indices"].numpy()[0, :5].tolist() == [
        0, 7, 14, 21, 28]
    full = tf.image.resize(_decode(data).astype(np.float32), (36, 44))
    for k, (y, x) in enumerate(offsets):
        want = full.numpy()[y:y + H, x:x + W, ::-1] - [104.0, 117.0, 123.0]
        np.testing.assert_allclose(batch["frames"].numpy()[0, 5 * k], want,
                                   atol=1e-3)


def test_flow_stacks_interleave_and_stack_layouts(tmp_path):
    n = 12  # RGB frames; 11 flow frames
    pattern = _write(tmp_path, [schemas.frames_example(
        "f", num_frames=n, label_index=[0],
        flow_x=[_flat(_value(j), 1) for j in range(n - 1)],
        flow_y=[_flat(250 - 10 * j, 1) for j in range(n - 1)])], 1)
    base = dict(modality="flow", sampler="actionvlad", num_steps=2,
                flow_stack=3, crop_size=(H, W), batch_size=1)
    inter = _first(pattern, fp.FramesConfig(**base))
    assert inter["frames"].shape == (1, 2, H, W, 6)
    # step = (12 - 3) // 2 = 4: stacks start at flow frames 0 and 4.
    assert inter["frame_indices"].numpy().tolist() == [[0, 4]]
    got = inter["frames"].numpy()[0].mean(axis=(1, 2))
    for t, start in enumerate((0, 4)):
        want = [v for j in range(start, start + 3)
                for v in (_value(j), 250 - 10 * j)]
        np.testing.assert_allclose(got[t], want, atol=2)
    stack = _first(pattern, fp.FramesConfig(**base, flow_layout="stack"))
    assert stack["frames"].shape == (1, 6, H, W, 2)
    assert stack["frame_indices"].numpy().tolist() == [[0, 1, 2, 4, 5, 6]]
    np.testing.assert_allclose(
        stack["frames"].numpy()[0, :, :, :, 0].mean(axis=(1, 2)),
        [_value(j) for j in (0, 1, 2, 4, 5, 6)], atol=2)


def _find_crop(out, ref):
    """(y, x, flipped) such that `out` is that crop of `ref`, or None."""
    h, w = out.shape[:2]
    for flipped in (False, True):
        src = ref[:, ::-1] if flipped else ref
        for y in range(ref.shape[0] - h + 1):
            for x in range(ref.shape[1] - w + 1):
                if np.array_equal(src[y:y + h, x:x + w], out):
                    return y, x, flipped
    return None


def test_training_crops_flips_and_determinism(tmp_path):
    frames = [_textured(i) for i in range(8)]
    pattern = _write(tmp_path, [schemas.frames_example(
        f"v{k}", num_frames=8, label_index=[0], images=frames)
        for k in range(8)])
    config = fp.FramesConfig(num_steps=3, crop_size=(24, 24), batch_size=4,
                             deterministic=True)

    def run(seed, epoch):
        ds = fp.make_frames_dataset(pattern, config, training=True,
                                    seed=seed, start_epoch=epoch)
        return [{k: v.numpy() for k, v in b.items()} for b in ds]

    a, again, other = run(7, 0), run(7, 0), run(7, 1)
    assert len(a) == 2
    for x, y in zip(a, again):
        assert all(np.array_equal(x[k], y[k]) for k in x)
    assert not all(np.array_equal(x["frame_indices"], y["frame_indices"])
                   for x, y in zip(a, other))
    flips = set()
    for batch in a:
        for clip, idx in zip(batch["frames"], batch["frame_indices"]):
            found = [_find_crop(f, _decode(frames[i]).astype(np.float32))
                     for f, i in zip(clip, idx)]
            assert None not in found
            assert len(set(found)) == 1  # one crop + flip per clip
            flips.add(found[0][2])
    assert flips == {False, True}


def test_crop_in_decode_is_close_to_decode_then_crop(tmp_path):
    pattern = _write(tmp_path, [schemas.frames_example(
        "v", num_frames=4, label_index=[0],
        images=[_textured(i) for i in range(4)])], 1)
    base = dict(num_steps=2, crop_size=(24, 24), batch_size=1)
    exact = _first(pattern, fp.FramesConfig(**base))["frames"].numpy()
    fast = _first(pattern, fp.FramesConfig(
        **base, crop_in_decode=True))["frames"].numpy()
    assert exact.shape == fast.shape
    assert np.abs(exact - fast).mean() < 2.0


def test_multi_label_and_label_errors(tmp_path):
    pattern = _write(tmp_path, [schemas.frames_example(
        "multi", num_frames=4, label_index=[1, 3],
        images=[_flat(0)] * 4)], 1)
    config = fp.FramesConfig(num_steps=2, crop_size=(H, W), batch_size=1,
                             num_classes=5, multi_label=True)
    batch = _first(pattern, config)
    assert batch["label"].numpy().tolist() == [[0, 1, 0, 1, 0]]
    single = fp.FramesConfig(num_steps=2, crop_size=(H, W), batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"exactly one(.|\n)*multi"):
        _first(pattern, single)
    small = fp.FramesConfig(num_steps=2, crop_size=(H, W), batch_size=1,
                            num_classes=2, multi_label=True)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="outside"):
        _first(pattern, small)


def test_carl_views_carry_masks_and_frame_labels(tmp_path):
    n = 6
    ex = schemas.frame_labels_example(
        "pour", images=[_flat(_value(i)) for i in range(n)],
        frame_labels=[0, 0, 1, 1, 2, 2])
    pattern = _write(tmp_path, [ex], 1)
    config = fp.FramesConfig(sampler="carl", num_steps=8, crop_size=(H, W),
                             flip=False, frame_labels=True, batch_size=1,
                             drop_remainder=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="exactly one"):
        _first(pattern, config, training=True)  # no clip label: checked
    config = fp.FramesConfig(sampler="carl", num_steps=8, crop_size=(H, W),
                             flip=False, frame_labels=True, batch_size=1,
                             drop_remainder=False, multi_label=True,
                             num_classes=1)
    batch = _first(pattern, config, training=True)
    assert batch["frames"].shape == (1, 2, 8, H, W, 3)
    mask = batch["frame_mask"].numpy()[0]
    assert mask[:, n:].sum() == 0 and mask.sum() >= 2
    idx = batch["frame_indices"].numpy()[0]
    assert batch["frame_labels"].numpy()[0].tolist() == (
        np.array([0, 0, 1, 1, 2, 2])[idx]).tolist()
    np.testing.assert_allclose(_levels(batch["frames"])[0], _value(idx),
                               atol=2)
    with pytest.raises(errors.ConfigError, match="sampler='all'"):
        _first(pattern, config, training=False)


def test_all_frames_sampler_pads_with_mask(tmp_path):
    pattern = _videos(tmp_path, lengths=(5, 8))
    config = fp.FramesConfig(sampler="all", stride=2, crop_size=(H, W),
                             batch_size=2)
    batch = _first(pattern, config)
    assert batch["frames"].shape == (2, 4, H, W, 3)
    assert batch["frame_mask"].numpy().sum(1).tolist() == [3, 4]
    assert batch["frame_indices"].numpy()[0, :3].tolist() == [0, 2, 4]


def test_per_worker_shards_and_batch(tmp_path):
    pattern = _videos(tmp_path, lengths=(6, 7, 8, 9))
    config = fp.FramesConfig(num_steps=2, crop_size=(H, W), batch_size=4)
    seen = []
    for i in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2,
                                         input_pipeline_id=i,
                                         num_replicas_in_sync=2)
        batches = list(fp.make_frames_dataset(pattern, config,
                                              training=False,
                                              input_context=ctx))
        assert [b["frames"].shape[0] for b in batches] == [2]
        seen.append(set(batches[0]["video_id"].numpy().tolist()))
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 4


def test_corrupt_shard_is_named(tmp_path):
    pattern = _videos(tmp_path, lengths=(6, 7, 8, 9))
    files = tfrecord_io.list_files(pattern)
    data = open(files[1], "rb").read()
    open(files[1], "wb").write(data[:len(data) // 2])
    config = fp.FramesConfig(num_steps=2, crop_size=(H, W), batch_size=2)
    ds = fp.make_frames_dataset(pattern, config, training=False)
    with pytest.raises(errors.CorruptRecordError) as info:
        with input_reader.naming_corrupt_files(files):
            list(ds)
    assert info.value.path == files[1]


def test_stages_can_be_replaced(tmp_path):
    pattern = _videos(tmp_path, lengths=(6,))
    config = fp.FramesConfig(num_steps=2, crop_size=(H, W), batch_size=1)
    pipe = fp.build_frames_pipeline(config, training=False)
    assert pipe.names == ["parse", "sample", "decode", "augment",
                          "normalize", "labels", "batch", "fold_views",
                          "prefetch"]
    zero = input_reader.map_stage(
        lambda ex: {**ex, "frames": ex["frames"] * 0.0}, deterministic=True)
    pipe.add("blank", zero, after="labels")
    batch = _first(pattern, config, pipeline=pipe)
    assert float(tf.reduce_max(tf.abs(batch["frames"]))) == 0.0


def test_config_validation():
    with pytest.raises(errors.ConfigError, match="sampler"):
        fp.FramesConfig(sampler="random")
    with pytest.raises(errors.ConfigError, match="num_classes"):
        fp.FramesConfig(multi_label=True)
    with pytest.raises(errors.ConfigError, match="num_steps"):
        fp.FramesConfig(num_steps=0)


def test_empty_video_and_oversized_crop_are_named(tmp_path):
    empty = _write(tmp_path / "e", [schemas.frames_example(
        "empty_video", num_frames=0, label_index=[0], images=[])], 1)
    config = fp.FramesConfig(num_steps=2, crop_size=(H, W), batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"video has no\] \[rgb(.|\n)*empty_video"):
        _first(empty, config)
    pattern = _videos(tmp_path / "v", lengths=(4,))
    for training in (False, True):
        big = fp.FramesConfig(num_steps=2, crop_size=(H + 8, W),
                              batch_size=1, drop_remainder=False)
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match="does not fit frames of size"):
            _first(pattern, big, training=training)
