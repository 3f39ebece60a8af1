"""Small input layouts written by the converter tests (frames, videos, JSON)."""

import json
import os

import av
import cv2
import numpy as np


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def jpeg_bytes(image, quality=90):
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def frame_image(index, size=16, channels=3):
    rng = np.random.RandomState(index)
    shape = (size, size, channels) if channels > 1 else (size, size)
    return rng.randint(0, 255, shape, dtype=np.uint8)


def make_frame_folder(root, video_path, num_frames, *, rgb=True, flow=True,
                      flow_root=None):
    """Writes image_%05d.jpg (1..n) and flow_[xy]_%05d.jpg (1..n-1)."""
    folder = os.path.join(root, video_path)
    os.makedirs(folder, exist_ok=True)
    if rgb:
        for i in range(1, num_frames + 1):
            with open(os.path.join(folder, f"image_{i:05d}.jpg"), "wb") as f:
                f.write(jpeg_bytes(frame_image(i)))
    if flow:
        flow_folder = os.path.join(flow_root or root, video_path)
        os.makedirs(flow_folder, exist_ok=True)
        for i in range(1, num_frames):
            for axis in "xy":
                name = f"flow_{axis}_{i:05d}.jpg"
                with open(os.path.join(flow_folder, name), "wb") as f:
                    f.write(jpeg_bytes(frame_image(1000 + i, channels=1)))
    return folder


def moving_square_frames(num_frames, size=64, square=16, step=2):
    """Grey background with a textured square moving `step` px right/frame."""
    rng = np.random.RandomState(0)
    texture = rng.randint(0, 255, (square, square, 3), dtype=np.uint8)
    frames = []
    for t in range(num_frames):
        image = np.full((size, size, 3), 90, np.uint8)
        x = 8 + t * step
        y = (size - square) // 2
        image[y:y + square, x:x + square] = texture
        frames.append(image)
    return frames


def write_video(path, frames, fps=10, codec="mpeg4"):
    """Encodes RGB frames with PyAV (mpeg4 is in every PyAV wheel)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = frames[0].shape[1]
        stream.height = frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def snapshot(folder):
    """{relative path: bytes} of every file below `folder` (hidden too)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def read_feature_records(output_dir, subset, *, feature_dim,
                         encoding="floats", dtype="float32"):
    """Parses every record of a subset with `schemas.parse_feature_sequence`."""
    import tensorflow as tf

    from tfaction.data import schemas
    files = sorted(tf.io.gfile.glob(os.path.join(str(output_dir),
                                                 f"{subset}-*.tfrecord")))
    dataset = tf.data.TFRecordDataset(files).map(
        lambda s: schemas.parse_feature_sequence(
            s, feature_dim=feature_dim, encoding=encoding,
            dtype=tf.as_dtype(dtype)))
    return [{k: v.numpy() for k, v in record.items()} for record in dataset]


def read_segment_records(output_dir, subset, *, feature_dim,
                         encoding="floats", dtype="float32"):
    """Fast read-back of ids/subsets/segments/labels (parsed, no features).

    Returns:
        List of dicts with python values: `video/id`, `video/subset` (str),
        `segments` (list of [start, end] float64), `segment/label/index`
        and `segment/label/string` (lists).
    """
    import tensorflow as tf

    from tfaction.data import schemas
    keys = ("video/id", "video/subset", "segments", "segment/label/index",
            "segment/label/string")
    files = sorted(tf.io.gfile.glob(os.path.join(str(output_dir),
                                                 f"{subset}-*.tfrecord")))

    def parse(serialized):
        record = schemas.parse_feature_sequence(
            serialized, feature_dim=feature_dim, encoding=encoding,
            dtype=tf.as_dtype(dtype))
        return {k: record[k] for k in keys}

    dataset = tf.data.TFRecordDataset(files).map(parse).ragged_batch(512)
    out = []
    for batch in dataset:
        columns = {k: (v.to_list() if isinstance(v, tf.RaggedTensor)
                       else v.numpy().tolist()) for k, v in batch.items()}
        for i in range(len(columns["video/id"])):
            row = {k: columns[k][i] for k in keys}
            for k in ("video/id", "video/subset"):
                row[k] = row[k].decode()
            row["segment/label/string"] = [
                s.decode() for s in row["segment/label/string"]]
            out.append(row)
    return out


def read_frame_records(output_dir, subset, modalities=("rgb", "flow")):
    import tensorflow as tf

    from tfaction.data import schemas
    files = sorted(tf.io.gfile.glob(os.path.join(str(output_dir),
                                                 f"{subset}-*.tfrecord")))
    dataset = tf.data.TFRecordDataset(files).map(
        lambda s: schemas.parse_frames(s, modalities=modalities))
    return [{k: v.numpy() for k, v in record.items()} for record in dataset]
