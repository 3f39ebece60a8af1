"""`embed_whole_videos`: CARL's evaluation-time embedding of long videos.

The network sees at most `frames_per_chunk` frames at a time: a video of n
frames is cut into `k = ceil(n / frames_per_chunk)` chunks of `ceil(n / k)`
frames (the last one shorter), each embedded on its own in inference mode
with its positions interpolated over the training length, and the chunks'
embeddings are written back in order. The task's evaluation and the
SavedModel both call it, so they compute the same numbers.
"""

import tensorflow as tf


def embed_whole_videos(model, frames, lengths, frames_per_chunk):
    """Per-frame embeddings of padded whole videos, chunk by chunk.

    Args:
        model: a `CARL` model (`{"frames", "mask"}` -> dict with
            `embeddings`).
        frames: `[B, N, H, W, 3]` float videos padded to N frames, already
            normalised for the model.
        lengths: int32 `[B]`, frames of each video (0: nothing to embed).
        frames_per_chunk: the longest chunk the network sees at once.

    Returns:
        float32 `[B, N, D]`, zeros after each video's length.

    Example:

    ```python
    emb = embed_whole_videos(model, frames, tf.constant([300, 120]), 80)
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
            out = model({"frames": frames[i, start:start + size][None],
                         "mask": tf.ones([1, size], tf.bool)},
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
