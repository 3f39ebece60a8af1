"""Frame-sequence pipeline: CARL views, per-view augmentation, evaluation."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import frame_sequence_pipeline as fsp
from tfaction.data import samplers
from tfaction.data import schemas

S = 16  # frame side


def _jpeg(image):
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    return buf.tobytes()


def _level(i):
    return 10 + (7 * np.asarray(i)) % 240


def _flat(level, size=(S, S)):
    return _jpeg(np.full((*size, 3), level, np.uint8))


def _record(vid, n, labels=None, action=None, images=None):
    labels = list(range(n)) if labels is None else labels
    images = [_flat(_level(i)) for i in range(n)] if images is None \
        else images
    kwargs = {} if action is None else {"label_index": [action],
                                        "label_text": [f"a{action}"]}
    return schemas.frame_labels_example(
        vid, images=images, frame_labels=labels, **kwargs)


def _write(tmp_path, examples, name="data.tfrecord"):
    path = str(tmp_path / name)
    with tf.io.TFRecordWriter(path) as writer:
        for ex in examples:
            writer.write(ex.SerializeToString())
    return path


def _plain(**kwargs):
    """No spatial / colour augmentation: frames show the stored levels."""
    base = dict(num_frames=8, image_size=(S, S), crop_scale=(1.0, 1.0),
                crop_ratio=(1.0, 1.0), flip_prob=0.0, jitter_prob=0.0,
                grayscale_prob=0.0, mean=(0.0, 0.0, 0.0),
                std=(1.0, 1.0, 1.0), batch_size=1, drop_remainder=False)
    base.update(kwargs)
    return fsp.FrameSequenceConfig(**base)


def _batches(path, config, training, seed=0, num_epochs=1):
    ds = fsp.make_frame_sequence_dataset(path, config, training=training,
                                         seed=seed, num_epochs=num_epochs)
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


@pytest.mark.parametrize("n", [5, 30])
def test_views_follow_the_carl_sampler(tmp_path, n):
    path = _write(tmp_path, [_record("vid", n, labels=[i // 3
                                                       for i in range(n)],
                                     action=2)])
    config = _plain(num_frames=8)
    batch = _batches(path, config, training=True, seed=7)[0]
    seed = samplers.make_seed(fsp.example_seed(7, tf.constant(0, tf.int64),
                                               tf.constant("vid")), 1)
    steps, masks = samplers.carl_indices(n, 8, seed=seed)
    np.testing.assert_array_equal(batch["steps"][0], steps.numpy())
    np.testing.assert_array_equal(batch["masks"][0], masks.numpy())
    assert batch["frames"].shape == (1, 2, 8, S, S, 3)
    assert batch["seq_lens"][0].tolist() == [n, n]
    assert batch["num_frames"][0] == n and batch["label"][0] == 2
    assert batch["video_id"][0] == b"vid"
    np.testing.assert_array_equal(batch["frame_labels"][0],
                                  steps.numpy() // 3)
    # The frames are the chosen ones (flat levels), padded slots = last.
    levels = batch["frames"][0].mean(axis=(2, 3, 4)) * 255
    np.testing.assert_allclose(levels, _level(steps.numpy()), atol=2)
    if n < 8:
        assert not batch["masks"][0][:, n:].any()


def test_frames_are_chosen_before_decoding(tmp_path):
    n = 40
    config = _plain(num_frames=6)
    ex = fsp.parse_stage(tf.constant(0, tf.int64),
                         _record("v", n).SerializeToString())
    chosen = fsp.choose_frames_stage(ex, config=config, training=True,
                                     seed=3)
    used = set(chosen["steps"].numpy().ravel().tolist())
    assert len(used) < n
    # Every frame no view uses is garbage: decoding it would fail.
    images = [_flat(_level(i)) if i in used else b"not a jpeg"
              for i in range(n)]
    path = _write(tmp_path, [_record("v", n, images=images)])
    batch = _batches(path, config, training=True, seed=3)[0]
    np.testing.assert_array_equal(batch["steps"][0], chosen["steps"])
    # A garbage frame that is chosen is an error naming the video.
    first = min(used)
    images[first] = b"not a jpeg"
    bad = _write(tmp_path, [_record("v", n, images=images)], "bad.tfrecord")
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="not a JPEG; video:.*v"):
        _batches(bad, config, training=True, seed=3)


def test_one_draw_per_view(tmp_path):
    rng = np.random.default_rng(0)
    image = _jpeg(rng.integers(0, 256, (24, 32, 3), np.uint8))
    n = 12
    path = _write(tmp_path, [_record("same", n, images=[image] * n)])
    config = fsp.FrameSequenceConfig(num_frames=8, image_size=(S, S),
                                     jitter_prob=1.0, blur_prob=1.0,
                                     batch_size=1)
    views_differ = False
    for batch in _batches(path, config, training=True, num_epochs=4):
        frames = batch["frames"][0]  # each epoch draws anew
        for view in frames:  # identical input frames stay identical
            np.testing.assert_allclose(view, view[:1].repeat(8, 0),
                                       atol=1e-5)
        views_differ |= not np.allclose(frames[0, 0], frames[1, 0],
                                        atol=1e-3)
    assert views_differ


def test_augment_view_applies_each_step(tmp_path):
    frames = tf.constant(np.random.default_rng(1).integers(
        0, 256, (3, 20, 20, 3), np.uint8))
    base = dict(num_frames=3, image_size=(S, S), jitter_prob=0.0,
                grayscale_prob=0.0, flip_prob=0.0)
    seed = tf.constant([1, 2], tf.int64)
    plain = fsp.augment_view(frames, seed, fsp.FrameSequenceConfig(**base))
    crop, box = fsp.random_resized_crop(frames, samplers.make_seed(seed, 0),
                                        (S, S))
    np.testing.assert_allclose(plain, crop.numpy() / 255, atol=1e-6)
    y, x, h, w = box.numpy()
    assert 0.8 * 400 - 40 <= h * w <= 400 and 3 / 4 - 0.1 <= w / h <= 4 / 3 \
        + 0.1
    flipped = fsp.augment_view(frames, seed, fsp.FrameSequenceConfig(
        **{**base, "flip_prob": 1.0}))
    np.testing.assert_allclose(flipped, plain.numpy()[:, :, ::-1], atol=1e-6)
    gray = fsp.augment_view(frames, seed, fsp.FrameSequenceConfig(
        **{**base, "grayscale_prob": 1.0})).numpy()
    np.testing.assert_allclose(
        gray[..., 0], plain.numpy() @ np.array([0.299, 0.587, 0.114]),
        atol=1e-5)
    assert np.array_equal(gray[..., 0], gray[..., 2])


# --- torchvision's functional formulas, re-implemented in numpy -------------
GRAY = np.array([0.299, 0.587, 0.114])


def np_gray(img):
    return (img * GRAY).sum(-1, keepdims=True)


def np_blend(a, b, f):
    return np.clip(f * a + (1 - f) * b, 0, 1)


def np_brightness(img, f):
    return np_blend(img, 0.0, f)


def np_contrast(img, f):
    mean = np_gray(img).mean(axis=(-3, -2, -1), keepdims=True)
    return np_blend(img, mean, f)


def np_saturation(img, f):
    return np_blend(img, np_gray(img), f)


def np_rgb2hsv(img):
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    maxc, minc = img.max(-1), img.min(-1)
    eqc = maxc == minc
    cr = maxc - minc
    s = cr / np.where(eqc, 1.0, maxc)
    div = np.where(eqc, 1.0, cr)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = np.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return np.stack([h, s, maxc], -1)


def np_hsv2rgb(img):
    h, s, v = img[..., 0], img[..., 1], img[..., 2]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(int) % 6
    p = np.clip(v * (1 - s), 0, 1)
    q = np.clip(v * (1 - s * f), 0, 1)
    t = np.clip(v * (1 - s * (1 - f)), 0, 1)
    mask = i[..., None] == np.arange(6)
    table = [(v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q)]
    return np.stack([(mask * np.stack(c, -1)).sum(-1) for c in table], -1)


def np_hue(img, f):
    hsv = np_rgb2hsv(img)
    hsv[..., 0] = np.mod(hsv[..., 0] + f, 1.0)
    return np_hsv2rgb(hsv)


NP_OPS = (np_brightness, np_contrast, np_saturation, np_hue)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(5)
    img = rng.uniform(0, 1, (3, 9, 11, 3))
    img[0, :2] = 0.5  # grey pixels: hue undefined (0)
    return img


@pytest.mark.parametrize("op,np_op,factor", [
    (fsp.adjust_brightness, np_brightness, 1.6),
    (fsp.adjust_brightness, np_brightness, 0.3),
    (fsp.adjust_contrast, np_contrast, 1.7),
    (fsp.adjust_contrast, np_contrast, 0.25),
    (fsp.adjust_saturation, np_saturation, 1.8),
    (fsp.adjust_saturation, np_saturation, 0.2),
    (fsp.adjust_hue, np_hue, 0.17),
    (fsp.adjust_hue, np_hue, -0.2),
])
def test_colour_ops_match_torchvision_formulas(images, op, np_op, factor):
    out = op(tf.constant(images, tf.float32), factor).numpy()
    np.testing.assert_allclose(out, np_op(images, factor), atol=2e-6)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_color_jitter_matches_numpy_for_fixed_factors(images, order):
    factors = {"brightness": 1.3, "contrast": 0.6, "saturation": 1.5,
               "hue": 0.12}
    params = {k: tf.constant(v, tf.float32) for k, v in factors.items()}
    params["order"] = tf.constant(order, tf.int32)
    out = fsp.apply_color_jitter(tf.constant(images, tf.float32), params,
                                 blur="off").numpy()
    expected = images
    for i in order:
        expected = NP_OPS[i](expected, factors[fsp.JITTER_OPS[i]])
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_color_jitter_params_ranges():
    draws = [fsp.color_jitter_params(tf.constant([i, 0], tf.int64))
             for i in range(30)]
    for key, lo, hi in (("brightness", 0.2, 1.8), ("contrast", 0.2, 1.8),
                        ("saturation", 0.2, 1.8), ("hue", -0.2, 0.2),
                        ("sigma", 0.1, 2.0)):
        values = [float(d[key]) for d in draws]
        assert lo <= min(values) and max(values) <= hi
        assert len(set(values)) == 30
    for d in draws:
        assert sorted(d["order"].numpy().tolist()) == [0, 1, 2, 3]
    assert 5 < sum(bool(d["blur"]) for d in draws) < 25


def _np_blur(img, sigma, radius):
    x = np.arange(-radius, radius + 1)
    w = np.exp(-x ** 2 / (2 * sigma ** 2))
    w /= w.sum()
    pad = np.pad(img, [(0, 0), (radius, radius), (radius, radius), (0, 0)],
                 mode="edge")
    rows = sum(w[k] * pad[:, k:k + img.shape[1]] for k in range(len(w)))
    return sum(w[k] * rows[:, :, k:k + img.shape[2]] for k in range(len(w)))


def test_gaussian_blur_and_its_placement(images):
    out = fsp.gaussian_blur(tf.constant(images, tf.float32), 1.3).numpy()
    np.testing.assert_allclose(out, _np_blur(images, 1.3, 6), atol=1e-5)
    flat = np.full((1, 8, 8, 3), 0.4)
    np.testing.assert_allclose(fsp.gaussian_blur(
        tf.constant(flat, tf.float32), 2.0), flat, atol=1e-6)
    # "reference" blurs after each of the four ops.
    params = {"brightness": tf.constant(1.0), "contrast": tf.constant(1.0),
              "saturation": tf.constant(1.0), "hue": tf.constant(0.0),
              "order": tf.constant([0, 1, 2, 3]), "blur": tf.constant(True),
              "sigma": tf.constant(0.8)}
    x = tf.constant(images, tf.float32)
    expected = images
    for _ in range(4):
        expected = _np_blur(expected, 0.8, 6)
    np.testing.assert_allclose(fsp.apply_color_jitter(x, params), expected,
                               atol=1e-4)
    np.testing.assert_allclose(fsp.apply_color_jitter(x, params, "once"),
                               _np_blur(images, 0.8, 6), atol=1e-5)


def test_evaluation_returns_every_frame_and_label(tmp_path):
    path = _write(tmp_path, [
        _record("long", 7, labels=[0, 0, 1, 1, 1, 2, -1], action=1),
        _record("short", 5, labels=[0, 1, 1, 2, 2])])
    config = _plain(batch_size=2)
    (batch,) = _batches(path, config, training=False)
    assert batch["video_id"].tolist() == [b"long", b"short"]
    assert batch["frames"].shape == (2, 7, S, S, 3)
    assert batch["masks"].sum(1).tolist() == [7, 5]
    assert batch["steps"].tolist() == [list(range(7)),
                                       [0, 1, 2, 3, 4, -1, -1]]
    assert batch["frame_labels"].tolist() == [[0, 0, 1, 1, 1, 2, -1],
                                              [0, 1, 1, 2, 2, -1, -1]]
    assert batch["num_frames"].tolist() == [7, 5]
    assert batch["label"].tolist() == [1, -1]
    levels = batch["frames"].mean(axis=(2, 3, 4)) * 255
    np.testing.assert_allclose(levels[0], _level(np.arange(7)), atol=2)
    (strided,) = _batches(path, _plain(batch_size=2, eval_stride=3),
                          training=False)
    assert strided["steps"].tolist() == [[0, 3, 6], [0, 3, -1]]
    assert strided["frame_labels"].tolist() == [[0, 1, -1], [0, 2, -1]]


def test_evaluation_centre_crop(tmp_path):
    image = np.zeros((20, 30, 3), np.uint8)
    image[2:18, 7:23] = 200  # the 16 x 16 centre (offsets ceil(d / 2))
    path = _write(tmp_path, [_record("v", 2, images=[_jpeg(image)] * 2)])
    (batch,) = _batches(path, _plain(), training=False)
    assert batch["frames"].shape == (1, 2, S, S, 3)
    assert batch["frames"][0, :, 1:-1, 1:-1].min() * 255 > 190
    assert fsp.center_crop_box([20, 30], (S, S)).numpy().tolist() == [
        2, 7, 16, 16]
    (whole,) = _batches(path, _plain(eval_crop="none"), training=False)
    assert whole["frames"].mean() < batch["frames"].mean()


def test_normalisation_and_label_count_check(tmp_path):
    path = _write(tmp_path, [_record("v", 3)])
    config = _plain(mean=fsp.IMAGENET_MEAN, std=fsp.IMAGENET_STD)
    (batch,) = _batches(path, config, training=False)
    x = batch["frames"][0, 1, 0, 0]
    np.testing.assert_allclose(
        x, (_level(1) / 255 - np.array(fsp.IMAGENET_MEAN))
        / np.array(fsp.IMAGENET_STD), atol=0.05)
    ex = _record("short_labels", 3)
    del ex.feature_lists.feature_list[
        schemas.FRAME_LABEL_INDEX].feature[-1]
    bad = _write(tmp_path, [ex], "bad.tfrecord")
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="short_labels.*frame labels"):
        _batches(bad, config, training=False)


def test_pipeline_stages_config_and_chunks():
    pipe = fsp.build_frame_sequence_pipeline(fsp.FrameSequenceConfig(),
                                             training=False)
    assert pipe.names.index("choose_frames") < pipe.names.index("decode")
    assert fsp.FrameSequenceConfig.for_dataset("penn_action").num_frames == 80
    finegym = fsp.FrameSequenceConfig.for_dataset("finegym")
    assert (finegym.block_from, finegym.blur) == ("valid", "off")
    with pytest.raises(errors.ConfigError, match="blur"):
        fsp.FrameSequenceConfig(blur="sometimes")
    with pytest.raises(errors.ConfigError, match="hue"):
        fsp.FrameSequenceConfig(hue=0.7)
    assert fsp.eval_chunks(2500, 1000) == [(0, 834), (834, 834),
                                           (1668, 832)]
    assert fsp.eval_chunks(300, 1000) == [(0, 300)]
