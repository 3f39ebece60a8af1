"""The keyframe-boxes (AVA) tf.data pipeline: frames, boxes, augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import keyframe_boxes_pipeline as kbp
from tfaction.data import schemas
from tfaction.data import tfrecord_io
from tfaction.data.formats import jpeg

H, W = 48, 64


def _frame(index, height=H, width=W):
    """Left half bright, right half dark; green channel = 8 * index."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :width // 2, 0] = 220
    image[:, width // 2:, 0] = 30
    image[..., 1] = 8 * index
    return jpeg.encode_jpeg(image, 98)


def _ramp_frame(height, width):
    """Red = 4 x, blue = 4 y: a crop's offset is readable at its corner."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([4 * xx, np.full_like(xx, 128), 4 * yy], -1)
    return jpeg.encode_jpeg(image.astype(np.uint8), 100)


BOXES = [[0.1, 0.2, 0.5, 0.9], [0.55, 0.1, 0.95, 0.6]]
LABELS = [[11, 78], [13]]  # AVA ids 12, 79 and 14


def _record(video_id="v", timestamp=902.0, *, boxes=BOXES, labels=LABELS,
            num_frames=16, keyframe_index=None, padded=(0, 0), images=None,
            person_ids=None):
    images = ([_frame(i) for i in range(num_frames)] if images is None
              else images)
    return schemas.keyframe_boxes_example(
        video_id, timestamp=timestamp, boxes=boxes, labels=labels,
        person_ids=person_ids or list(range(len(boxes))), images=images,
        fps=25, keyframe_index=keyframe_index,
        timestamp_text=f"{timestamp:04.0f}", padded=padded
    ).SerializeToString()


def _write(path, records, num_shards=1):
    with tfrecord_io.ShardedTFRecordWriter(str(path), "train",
                                           num_shards) as writer:
        for record in records:
            writer.write(record)
    return str(path / "train-*.tfrecord")


def _config(**kwargs):
    base = dict(num_frames=4, stride=2, image_size=(H, W), max_boxes=4,
                num_classes=80, batch_size=1)
    base.update(kwargs)
    return kbp.KeyframeBoxesConfig(**base)


def _examples(pattern, config, training, **kwargs):
    return [{k: v.numpy()[0] for k, v in batch.items()}
            for batch in kbp.make_keyframe_boxes_dataset(
                pattern, config, training=training, **kwargs)]


def test_eval_padding_mask_and_labels(tmp_path):
    pattern = _write(tmp_path, [_record(person_ids=[7, 3])])
    (ex,) = _examples(pattern, _config(), training=False)
    assert ex["video_id"] == b"v" and ex["timestamp"] == 902.0
    assert ex["timestamp_text"] == b"0902"
    assert ex["frames"].shape == (4, H, W, 3)
    # Keyframe 16 // 2 = 8 at output index 2, stride 2.
    assert ex["frame_indices"].tolist() == [4, 6, 8, 10]
    assert ex["keyframe_index"] == 2
    np.testing.assert_allclose(ex["frames"][:, 0, 0, 1],
                               [32, 48, 64, 80], atol=2)
    assert ex["num_boxes"] == 2
    assert ex["box_mask"].tolist() == [True, True, False, False]
    np.testing.assert_array_equal(
        ex["boxes"], np.float32([[0.2, 0.1, 0.9, 0.5], [0.1, 0.55, 0.6, 0.95],
                                 [0, 0, 0, 0], [0, 0, 0, 0]]))
    want = np.zeros((4, 80), np.float32)
    want[0, [11, 78]] = want[1, 13] = 1
    np.testing.assert_array_equal(ex["labels"], want)
    assert ex["person_ids"].tolist() == [7, 3, -1, -1]


def test_class_ids_map_columns_and_ignore_others(tmp_path):
    pattern = _write(tmp_path, [_record()])
    (ex,) = _examples(pattern, _config(class_ids=(79, 12, 3)),
                      training=False)
    np.testing.assert_array_equal(ex["labels"][:2],
                                  [[1, 1, 0], [0, 0, 0]])  # 14 not listed
    assert kbp.class_ids_from_label_map("ava60")[:3] == (1, 3, 4)
    assert kbp.class_ids_from_class_list("ava60") == (
        kbp.class_ids_from_label_map("ava60"))
    names = tmp_path / "mine.txt"
    names.write_text("talk to (e.g., self, a person, a group)\nstand\n")
    assert kbp.class_ids_from_class_list(str(names)) == (79, 12)
    names.write_text("stand\nmoonwalk\n")
    with pytest.raises(errors.UnknownLabelError, match=r"mine\.txt:2"):
        kbp.class_ids_from_class_list(str(names))
    with pytest.raises(errors.ConfigError, match="class_ids"):
        _config(class_ids=(0, 1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes"):
        _examples(pattern, _config(num_classes=20), training=False)


def test_frames_are_chosen_before_decoding(tmp_path):
    # Only the chosen frames (4, 6, 8, 10) are JPEGs; decoding any other
    # would fail.
    images = [_frame(i) if i in (4, 6, 8, 10) else b"not a jpeg"
              for i in range(16)]
    pattern = _write(tmp_path, [_record(images=images)])
    (ex,) = _examples(pattern, _config(), training=False)
    assert ex["frame_indices"].tolist() == [4, 6, 8, 10]
    images[6] = b"broken"
    pattern = _write(tmp_path / "bad", [_record("bad/video",
                                                images=images)])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="not a JPEG.*bad/video"):
        _examples(pattern, _config(), training=False)


def test_edge_padding_and_clamping_are_masked(tmp_path):
    # 8 stored frames, keyframe 4; the converter padded 2 before, 1 after.
    pattern = _write(tmp_path, [_record(num_frames=8, keyframe_index=4,
                                        padded=(2, 1))])
    (ex,) = _examples(pattern, _config(num_frames=6, stride=2),
                      training=False)
    # Raw indices -2, 0, 2, 4, 6, 8 -> clamped to [0, 7].
    assert ex["frame_indices"].tolist() == [0, 0, 2, 4, 6, 7]
    assert ex["frame_mask"].tolist() == [False, False, True, True, True,
                                         False]


def test_flip_mirrors_frames_and_boxes_exactly(tmp_path):
    records = [_record(f"v{i}", 900.0 + i) for i in range(12)]
    pattern = _write(tmp_path, records)
    plain = {e["video_id"]: e for e in _examples(pattern, _config(),
                                                 training=False)}
    flipped = 0
    for ex in _examples(pattern, _config(crop=False, flip=True),
                        training=True, seed=5):
        base = plain[ex["video_id"]]
        # The frames' bright half tells whether this example was flipped.
        is_flipped = ex["frames"][0, 0, 0, 0] < ex["frames"][0, 0, -1, 0]
        if is_flipped:
            flipped += 1
            np.testing.assert_array_equal(ex["frames"],
                                          base["frames"][:, :, ::-1])
            ymin, xmin, ymax, xmax = np.float32(BOXES).T[[1, 0, 3, 2]]
            want = np.stack([ymin, np.float32(1) - xmax, ymax,
                             np.float32(1) - xmin], 1)
            np.testing.assert_array_equal(ex["boxes"][:2], want)
        else:
            np.testing.assert_array_equal(ex["frames"], base["frames"])
            np.testing.assert_array_equal(ex["boxes"], base["boxes"])
        np.testing.assert_array_equal(ex["labels"], base["labels"])
    assert 0 < flipped < 12
    np.testing.assert_allclose(
        kbp.flip_boxes(tf.constant([[0.1, 0.2, 0.4, 0.9]])).numpy(),
        [[0.6, 0.2, 0.9, 0.9]], atol=1e-7)


def test_crop_clips_boxes_and_drops_empty_ones(tmp_path):
    size = 64
    boxes = [[0.0, 0.0, 0.2, 0.2],     # a corner: often cut away
             [0.3, 0.3, 0.7, 0.7],     # the centre: always kept
             [0.85, 0.4, 0.95, 0.6],   # near the right edge
             [0.0, 0.9, 1.0, 1.0]]     # a bottom strip
    labels = [[0], [1], [2], [3]]
    images = [_ramp_frame(size, size)] * 4
    records = [_record(f"v{i}", 900.0 + i, boxes=boxes, labels=labels,
                       num_frames=4, images=images) for i in range(16)]
    pattern = _write(tmp_path, records)
    config = _config(num_frames=1, image_size=(32, 32), crop_scale=(0.5, 0.5),
                     flip=False, min_box_size=0.05, num_classes=4)
    dropped = clipped = 0
    for ex in _examples(pattern, config, training=True, seed=1):
        # The 32x32 crop is resized to 32x32 unchanged: its top-left pixel
        # holds the crop's offset.
        x0 = int(round(ex["frames"][0, 0, 0, 0] / 4))
        y0 = int(round(ex["frames"][0, 0, 0, 2] / 4))
        want = kbp.crop_boxes(tf.constant(boxes, tf.float32), [size, size],
                              [y0, x0, 32, 32]).numpy()
        sizes = want[:, 2:] - want[:, :2]
        keep = np.all((sizes > 0) & (sizes >= 0.05), axis=1)
        n = int(keep.sum())
        assert ex["num_boxes"] == n
        np.testing.assert_allclose(ex["boxes"][:n],
                                   want[keep][:, [1, 0, 3, 2]], atol=1e-6)
        np.testing.assert_array_equal(ex["labels"][:n],
                                      np.eye(4, dtype=np.float32)[keep])
        assert ex["person_ids"][:n].tolist() == np.flatnonzero(keep).tolist()
        assert not ex["box_mask"][n:].any()
        assert ((ex["boxes"][:n] >= 0) & (ex["boxes"][:n] <= 1)).all()
        dropped += n < 4
        clipped += np.any((want[keep] == 0) | (want[keep] == 1))
    assert dropped > 0 and clipped > 0
    np.testing.assert_allclose(
        kbp.crop_boxes(tf.constant([[0.25, 0.0, 0.75, 1.0]]), [100, 100],
                       [0, 50, 100, 50]).numpy(), [[0.0, 0.0, 0.5, 1.0]])


def test_too_many_boxes_is_an_error(tmp_path):
    pattern = _write(tmp_path, [_record("crowd", boxes=BOXES * 3,
                                        labels=LABELS * 3)])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="more boxes than max_boxes.*crowd"):
        _examples(pattern, _config(), training=False)


def test_deterministic_eval_order_and_stages(tmp_path):
    records = [_record(f"v{i:02d}", 900.0 + i) for i in range(10)]
    pattern = _write(tmp_path, records, num_shards=3)
    config = _config(batch_size=4)
    runs = []
    for _ in range(2):
        keys = []
        for batch in kbp.make_keyframe_boxes_dataset(pattern, config,
                                                     training=False):
            keys += [(v.decode(), float(t)) for v, t in
                     zip(batch["video_id"].numpy(),
                         batch["timestamp"].numpy())]
        runs.append(keys)
    assert runs[0] == runs[1] and len(runs[0]) == 10
    # Shards written round-robin and interleaved back in file order: the
    # records come in the order they were written.
    assert runs[0] == [(f"v{i:02d}", 900.0 + i) for i in range(10)]
    pipe = kbp.build_keyframe_boxes_pipeline(config, training=True)
    assert pipe.names == ["parse", "choose_frames", "decode", "crop",
                          "resize", "flip", "boxes", "normalize", "batch",
                          "prefetch"]
    with pytest.raises(errors.ConfigError, match="crop_scale"):
        _config(crop_scale=(0.0, 1.0))
