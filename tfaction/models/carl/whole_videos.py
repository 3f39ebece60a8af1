"""`embed_whole_videos`: CARL's evaluation-time embedding of long videos.

The network sees at most `frames_per_chunk` frames at a time: a video of n
frames is cut into `k = ceil(n / frames_per_chunk)` chunks of `ceil(n / k)`
frames (the last one shorter), each embedded on its own in inference mode
with its positions interpolated over the training length, and the chunks'
embeddings are written back in order. Within a chunk the frames go through
the 2-D trunk `frames_per_trunk_batch` at a time (the authors' backbone
blocks of `MODEL.BASE_MODEL.FRAMES_PER_BATCH` = 40), so memory stays
bounded on FineGym's chunks of 6,000 frames; the transformer then sees the
whole chunk. The task's evaluation and the SavedModel both call it, so
they compute the same numbers.
"""

import tensorflow as tf


def _trunk_features(model, frames, per_batch):
    """`model.frame_features` of `[n, H, W, 3]`, `per_batch` at a time."""
    n = tf.shape(frames)[0]
    blocks = (n + per_batch - 1) // per_batch

    def block(k, out):
        start = k * per_batch
        return k + 1, out.write(k, tf.cast(model.frame_features(
            frames[start:start + per_batch]), tf.float32))

    channels = int(model.trunk_model.output_shape[-1])
    _, out = tf.while_loop(
        lambda k, _: k < blocks, block,
        [tf.constant(0), tf.TensorArray(
            tf.float32, size=blocks, infer_shape=False,
            element_shape=tf.TensorShape([None, channels]))])
    return out.concat()


def embed_whole_videos(model, frames, lengths, frames_per_chunk,
                       frames_per_trunk_batch=None):
    """Per-frame embeddings of padded whole videos, chunk by chunk.

    Args:
        model: a `CARL` model (`{"frames", "mask"}` -> dict with
            `embeddings`).
        frames: `[B, N, H, W, 3]` float videos padded to N frames, already
            normalised for the model.
        lengths: int32 `[B]`, frames of each video (0: nothing to embed).
        frames_per_chunk: the longest chunk the network sees at once.
        frames_per_trunk_batch: frames per trunk call within a chunk
            (None: the whole chunk in one call).

    Returns:
        float32 `[B, N, D]`, zeros after each video's length.

    Example:

    ```python
    emb = embed_whole_videos(model, frames, tf.constant([300, 120]), 80,
                             frames_per_trunk_batch=40)
    emb.shape  # [2, 300, 128]
    ```
    """
    max_chunk = int(frames_per_chunk)
    dim = int(model.embedding_size)
    num_videos, padded = tf.shape(frames)[0], tf.shape(frames)[1]

    def video(i, outputs):
        n = lengths[i]
        chunks = (n + max_chunk - 1) // max_chunk
        per = (n + tf.maximum(chunks, 1) - 1) // tf.maximum(chunks, 1)

        def chunk(j, emb):
            start = j * per
            size = tf.minimum(per, n - start)
            clip = frames[i, start:start + size]
            mask = tf.ones([1, size], tf.bool)
            if frames_per_trunk_batch:
                features = _trunk_features(model, clip,
                                           int(frames_per_trunk_batch))
                out = model.embed_frame_features(
                    tf.cast(features[None], model.compute_dtype), mask)[0]
            else:
                out = model({"frames": clip[None], "mask": mask},
                            training=False)["embeddings"][0]
            rows = tf.range(start, start + size)[:, None]
            return j + 1, tf.tensor_scatter_nd_update(
                emb, rows, tf.cast(out, tf.float32))

        _, emb = tf.while_loop(
            lambda j, _: j < chunks, chunk,
            [tf.constant(0), tf.zeros([padded, dim], tf.float32)])
        return i + 1, outputs.write(i, emb)

    outputs = tf.TensorArray(tf.float32, size=num_videos,
                             element_shape=[None, dim])
    _, outputs = tf.while_loop(lambda i, _: i < num_videos, video,
                               [tf.constant(0), outputs])
    return tf.reshape(outputs.stack(), [num_videos, padded, dim])
