"""CARL serving: a video's frames in, one embedding per frame out.

`CARLExportModule` serves a CARL model (`tfaction.models.carl.CARL`) the
way the CARL task evaluates it (`tfaction.tasks.carl.CARLTask.
validation_step`): the client sends the frames to embed (every frame of a
video, or every `eval_stride`-th as the recipe's evaluation chooses them;
the recipes use every frame), and everything after the choice runs in the
graph with the evaluation pipeline's own stage functions
(`tfaction.data.frame_sequence_pipeline`: `decode_stage` with the recipe's
`dct_method`, `augment_stage` with `training=False` (a centre crop of at
most `image_size`, or none with `eval_crop="none"`, then a bilinear resize
to `image_size`, pixels to [0, 1]) and `normalize_stage` with its `mean` /
`std`), then the task's whole-video embedding: a video of `n` frames is cut
into `k = ceil(n / frames_per_chunk)` chunks of `ceil(n / k)` frames (the
last one shorter), each embedded on its own with `training=False` (its
positions interpolated over the training length `num_frames` by the model's
`InterpolatedPositionEncoding`, as CARL's evaluation does). A served video
therefore gets the embeddings the task's evaluation computes for the same
frames (`embeddings.npz`, before the unlabelled frames are dropped).

| signature | input | dtype | shape |
|---|---|---|---|
| `serving_default` | `frames` | uint8 | `[B, T, H, W, 3]` RGB frames |
| | `lengths` | int32 | `[B]` frames of each video |
| `serve_jpeg` | `frames` | string | `[B, T]` encoded JPEG frames |
| | `lengths` | int32 | `[B]` frames of each video |

`T` is any length (videos of a batch padded to the longest; the frames
after `lengths[b]` are ignored: never decoded, never embedded), `H`, `W`
any size (cropped and resized in the graph). JPEG frames of one video share
a size; videos of a batch may differ. JPEGs are decoded as the pipeline
decodes them (`dct_method`), so a JPEG request gives the outputs of the
uint8 request of the same decoded frames.

| output | dtype | shape | meaning |
|---|---|---|---|
| `embeddings` | float32 | `[B, T, D]` | the frames' embeddings |

`D = embedding_size` (128 in the paper's recipes). Row `t < lengths[b]` is
the model's `embeddings` output for frame t, L2-normalised (CARL's
evaluation output, `normalize(emb)`; unnormalised for a model built with
`normalize_embeddings=False`); rows `>= lengths[b]` are zeros. The
projection head (training only) is not part of the export.

Bad requests fail with an `InvalidArgumentError` saying what is wrong:
`lengths` with another batch size than `frames`, a length outside
`[1, T]`, an empty frame (height or width 0), a frame that is not a JPEG
(naming the request row and the frame).

TF Serving may batch requests of different `T` (`batching_parameters()`:
`pad_variable_length_inputs`), since `lengths` says which frames are real;
uint8 requests batched by the server must share `H` and `W` (send frames of
one size, e.g. the recipe's `image_size`, or use `serve_jpeg`): the server
pads every dimension, and padded pixels would enter the crop.

Example:

```python
module = tfaction.serving.build_export_module(task, model)
export_saved_model(module, "models/carl")
# client: {"frames": uint8 [1, 300, 224, 224, 3], "lengths": [300]}
#   -> embeddings [1, 300, 128]
```
"""

import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.data import frame_sequence_pipeline as pipeline_lib
from tfaction.data import schemas
from tfaction.models.carl import whole_videos
from tfaction.serving import export_module
from tfaction.serving import factory
from tfaction.tasks import carl_config

JPEG_SIGNATURE = "serve_jpeg"
# The warm-up video: a few small frames (resized in the graph to the
# recipe's image size), so the warm-up file stays small.
WARMUP_FRAMES = 8
WARMUP_MAX_SIDE = 64


class CARLExportModule(export_module.ExportModule):
    """Serving module of a CARL model: frames -> per-frame embeddings.

    Args:
        model: the Keras `CARL` model (`{"frames": [B, T, H, W, 3],
            "mask": [B, T]}` -> dict with `embeddings` `[B, T, D]`), with
            its `crop_size` and `embedding_size`.
        views_config: the evaluation `FrameSequenceConfig`
            (`task.views_config()`): `image_size`, `eval_crop`, `mean`,
            `std` and `dct_method` are read.
        frames_per_chunk: the largest chunk embedded in one model call
            (`evaluation.frames_per_chunk`: 1000 Pouring / PennAction,
            6000 FineGym).
        frames_per_trunk_batch: frames per trunk call within a chunk
            (`evaluation.frames_per_trunk_batch`, 40); 0 or None: the
            whole chunk at once.
        name: module name.

    Raises:
        ConfigError: a `views_config` that is not a `FrameSequenceConfig`,
            `frames_per_chunk < 1`, `frames_per_trunk_batch < 0`, a model
            without an `embedding_size`, or
            one whose `crop_size` is not the views' `image_size`.

    Example:

    ```python
    module = CARLExportModule(model, task.views_config(),
                              frames_per_chunk=1000)
    out = module.signatures()["serving_default"](
        frames=tf.zeros([1, 50, 224, 224, 3], tf.uint8),
        lengths=tf.constant([50]))
    out["embeddings"].shape   # [1, 50, 128]
    ```
    """

    def __init__(self, model, views_config, frames_per_chunk,
                 frames_per_trunk_batch=None, name=None):
        super().__init__(model, name=name)
        if not isinstance(views_config, pipeline_lib.FrameSequenceConfig):
            raise errors.ConfigError(
                "views_config must be a FrameSequenceConfig, got "
                f"{views_config!r}")
        if int(frames_per_chunk) < 1:
            raise errors.ConfigError(
                f"frames_per_chunk must be >= 1, got {frames_per_chunk}")
        if int(frames_per_trunk_batch or 0) < 0:
            raise errors.ConfigError(
                "frames_per_trunk_batch must be >= 0, got "
                f"{frames_per_trunk_batch}")
        if not hasattr(model, "embedding_size"):
            raise errors.ConfigError(
                f"{type(self).__name__} serves a CARL model (with an "
                f"embedding_size), got {type(model).__name__}")
        self.image_size = tuple(int(v) for v in views_config.image_size)
        crop_size = getattr(model, "crop_size", None)
        if crop_size is not None and tuple(
                int(v) for v in crop_size) != self.image_size:
            raise errors.ConfigError(
                f"{type(self).__name__}: the model takes "
                f"{tuple(crop_size)} frames, the views config's image_size "
                f"is {self.image_size}")
        self.views_config = views_config
        self.frames_per_chunk = int(frames_per_chunk)
        self.frames_per_trunk_batch = int(frames_per_trunk_batch or 0)
        self.embedding_size = int(model.embedding_size)
        self._frames_spec = tf.TensorSpec([None, *self.image_size, 3],
                                          tf.float32)
        # Both signatures call ONE traced function of the model: traced
        # once, stored once in the SavedModel.
        self._embed_function = export_module._Untracked(tf.function(
            self._embed, autograph=False, input_signature=[
                tf.TensorSpec([None, *self._frames_spec.shape], tf.float32),
                tf.TensorSpec([None], tf.int32)]))

    # ------------------------------------------------------------ specs
    def input_specs(self):
        """`frames` uint8 `[B, T, H, W, 3]`, `lengths` int32 `[B]`."""
        return {"frames": tf.TensorSpec([None, None, None, None, 3],
                                        tf.uint8),
                "lengths": tf.TensorSpec([None], tf.int32)}

    def jpeg_input_specs(self):
        """`frames` string `[B, T]` (one JPEG per frame), `lengths`."""
        return {"frames": tf.TensorSpec([None, None], tf.string),
                "lengths": tf.TensorSpec([None], tf.int32)}

    # ---------------------------------------------------------- checks
    def _checked(self, inputs, jpeg):
        """`(frames, lengths)` after in-graph checks with clear messages."""
        frames, lengths = inputs["frames"], inputs["lengths"]
        shape = "[B, T]" if jpeg else "[B, T, H, W, 3]"
        steps = tf.shape(frames)[1]
        checks = [
            tf.debugging.assert_equal(
                tf.shape(lengths)[0], tf.shape(frames)[0],
                message=f"lengths needs one entry per video of frames "
                f"{shape}"),
            tf.debugging.assert_greater_equal(
                lengths, 1, message="lengths must be >= 1 (every video "
                "needs a frame)"),
            tf.debugging.assert_less_equal(
                lengths, steps,
                message=f"lengths must not exceed T, the frames per video "
                f"of frames {shape}"),
        ]
        if not jpeg:
            checks.append(tf.debugging.assert_positive(
                tf.shape(frames)[2:4],
                message="frames must have height and width >= 1: shape "
                "[B, T, H, W, 3]"))
        with tf.control_dependencies(checks):
            return tf.identity(frames), tf.identity(lengths)

    # ---------------------------------------------------- preprocessing
    def _evaluate(self, ex, steps):
        """The pipeline's evaluation stages after decoding, padded to T."""
        config = self.views_config
        ex = pipeline_lib.augment_stage(ex, config=config, training=False)
        ex = pipeline_lib.normalize_stage(ex, config=config)
        frames = ex["frames"]
        padding = steps - tf.shape(frames)[0]
        frames = tf.pad(frames, [[0, padding], [0, 0], [0, 0], [0, 0]])
        return tf.ensure_shape(frames, self._frames_spec.shape)

    def _one_uint8_video(self, args):
        frames, length = args
        return self._evaluate({"frames": frames[:length]},
                              tf.shape(frames)[0])

    def _one_jpeg_video(self, args):
        row, encoded, length = args
        ex = {schemas.VIDEO_ID: tf.strings.format("request row {}", row),
              schemas.IMAGE_ENCODED: encoded[:length],
              "steps": tf.range(length)}
        ex = pipeline_lib.decode_stage(ex, config=self.views_config)
        return self._evaluate(ex, tf.shape(encoded)[0])

    def frames_from_uint8(self, inputs):
        """uint8 inputs -> the model's float32 frames `[B, T, h, w, 3]`
        (zeros after each video's length)."""
        frames, lengths = self._checked(inputs, jpeg=False)
        return tf.map_fn(self._one_uint8_video, (frames, lengths),
                         fn_output_signature=self._frames_spec)

    def frames_from_jpegs(self, inputs):
        """JPEG inputs -> the model's float32 frames `[B, T, h, w, 3]`
        (zeros after each video's length)."""
        frames, lengths = self._checked(inputs, jpeg=True)
        rows = tf.range(tf.shape(frames)[0])
        return tf.map_fn(self._one_jpeg_video, (rows, frames, lengths),
                         fn_output_signature=self._frames_spec)

    # -------------------------------------------------------- embedding
    def _embed(self, frames, lengths):
        """Whole-video embeddings, chunk by chunk (the task's evaluation).

        A video of n frames is cut into `k = ceil(n / frames_per_chunk)`
        chunks of `ceil(n / k)` frames (the last one shorter), each
        embedded on its own in inference mode, as
        `CARLTask.embed_videos`.
        """
        return {"embeddings": whole_videos.embed_whole_videos(
            self.model, frames, lengths, self.frames_per_chunk,
            self.frames_per_trunk_batch)}

    def embed(self, frames, lengths):
        """Model frames `[B, T, h, w, 3]` float32 + lengths -> outputs."""
        return self._embed_function.value(frames, lengths)

    def serve(self, inputs):
        """uint8 frames + lengths -> per-frame embeddings."""
        return self.embed(self.frames_from_uint8(inputs), inputs["lengths"])

    def serve_jpeg(self, inputs):
        """JPEG frames + lengths -> the same outputs."""
        return self.embed(self.frames_from_jpegs(inputs), inputs["lengths"])

    def signature_definitions(self):
        """`serving_default` (uint8 frames) and `serve_jpeg` (JPEGs)."""
        return {
            export_module.SERVING_DEFAULT: (self.input_specs(), self.serve),
            JPEG_SIGNATURE: (self.jpeg_input_specs(), self.serve_jpeg),
        }

    # ---------------------------------------------------------- warm-up
    def _warmup_frames(self):
        h, w = (min(s, WARMUP_MAX_SIDE) for s in self.image_size)
        yy, xx = np.mgrid[0:h, 0:w]
        frames = []
        for t in range(WARMUP_FRAMES):
            image = np.stack([(xx * 255 // max(w - 1, 1) + 9 * t) % 256,
                              (yy * 255 // max(h - 1, 1)) % 256,
                              (xx + yy + 16 * t) % 256], -1)
            frames.append(image.astype(np.uint8))
        return np.stack(frames)

    def warmup_inputs(self):
        """One small smooth uint8 video `[1, 8, h, w, 3]` and its length."""
        return {"frames": self._warmup_frames()[None],
                "lengths": np.array([WARMUP_FRAMES], np.int32)}

    def warmup_jpeg_inputs(self):
        """The same video as JPEG frames `[1, 8]`."""
        jpegs = [tf.io.encode_jpeg(frame, quality=95).numpy()
                 for frame in self._warmup_frames()]
        return {"frames": np.array([jpegs], dtype=object),
                "lengths": np.array([WARMUP_FRAMES], np.int32)}

    def warmup_requests(self):
        """A uint8 and a JPEG request (both signatures)."""
        return [(export_module.SERVING_DEFAULT, self.warmup_inputs()),
                (JPEG_SIGNATURE, self.warmup_jpeg_inputs())]

    def batching_parameters(self):
        """Small batches of whole videos; variable `T` padded across
        requests (`lengths` marks the real frames)."""
        return {"max_batch_size": 4, "pad_variable_length_inputs": True}


@factory.register_export_module(carl_config.TASK_NAME)
def export_module_from_task(task, model):
    """The `CARLExportModule` of a `CARLTask`.

    Args:
        task: the task (its `views_config()` and
            `config.evaluation.frames_per_chunk` /
            `frames_per_trunk_batch`).
        model: its restored model.

    Returns:
        A `CARLExportModule` with the recipe's evaluation frames and chunk
        size.

    Example:

    ```python
    module = export_module_from_task(task, trainer.model)
    ```
    """
    ev = task.config.evaluation
    return CARLExportModule(
        model, task.views_config(),
        frames_per_chunk=int(ev.frames_per_chunk),
        frames_per_trunk_batch=int(ev.frames_per_trunk_batch))
