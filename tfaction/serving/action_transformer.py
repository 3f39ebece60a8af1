"""Action Transformer serving: a clip in, people and their actions out.

`ActionTransformerExportModule` serves a Video Action Transformer
(`tfaction.models.action_transformer.ActionTransformer`) on the clip around
one keyframe. The client chooses the clip's frames (`num_frames` frames,
`stride` apart, the keyframe at index `num_frames // 2`, as the keyframe
pipeline does) and sends them; everything after the choice runs in the
graph with the evaluation pipeline's own stage functions
(`tfaction.data.keyframe_boxes_pipeline`: `decode_stage`, then `crop_stage`
and `flip_stage` with `training=False` (no-ops), `resize_stage` to the
recipe's `image_size` (bilinear, float32) and `normalize_stage` with its
`mean`, `std`, `bgr`: `(x - 127.5) / 127.5`, pixels in [-1, 1], for the
recipes), then the whole model with `training=False` and the person
decoding of the task's evaluation
(`tfaction.models.action_transformer.decoding.decode_detections`: box
refinement, person score `1 - sigmoid(background)`, class-agnostic person
NMS at `evaluation.nms_iou_threshold`, `N = evaluation.max_detections`
people kept). A served clip therefore gives what the task's evaluation
(`task.detect`, `evaluation.boxes="detected"`) gives on the same keyframe.

| signature | input | dtype | shape |
|---|---|---|---|
| `serving_default` | `frames` | uint8 | `[B, T, H, W, 3]` RGB frames |
| `serve_jpeg` | `frames` | string | `[B, T]` encoded JPEG frames |

`T = clips.num_frames` (fixed: the model's temporal extent; the RPN reads
the central trunk frame); `H`, `W` are any size (resized in the graph to
`clips.image_size`). JPEG frames of one clip share a size; clips of a batch
may differ. JPEGs are decoded with the pipeline's `clips.dct_method`, so a
JPEG request gives the outputs of the uint8 request of the frames the
pipeline would decode from the same bytes.

Outputs (both signatures):

| output | dtype | shape | meaning |
|---|---|---|---|
| `boxes` | float32 | `[B, N, 4]` | people, normalised `[y1, x1, y2, x2]` |
| `scores` | float32 | `[B, N, C]` | per-action probabilities (sigmoid) |
| `person_scores` | float32 | `[B, N]` | person score, descending |
| `num_detections` | int32 | `[B]` | rows of each clip that are people |
| `class_names` | string | `[B, C]` | the class list (column j of `scores`) |

Rows `>= num_detections[b]` are zeros. The class list travels with the
model as the asset `assets/classes.txt` (line j = column j of `scores`);
`class_names` repeats it for each clip so that every output has the batch
dimension first (TF Serving's row format needs it). The recipe's
`evaluation.boxes="groundtruth"` mode (scoring given boxes) is an
evaluation protocol, not served: the signatures always detect the people.

Bad requests fail with an `InvalidArgumentError` saying what is wrong: a
frame that is not a JPEG (naming the request row and frame), an empty
frame (height or width 0).

Example:

```python
module = tfaction.serving.build_export_module(task, model)
export_saved_model(module, "models/action_transformer")
# client: {"frames": uint8 [1, 16, 112, 112, 3]}
#   -> boxes [1, 8, 4], scores [1, 8, C], num_detections [1]
```
"""

import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.data import keyframe_boxes_pipeline as pipeline_lib
from tfaction.data import schemas
from tfaction.models.action_transformer import decoding
from tfaction.serving import export_module
from tfaction.serving import factory
from tfaction.tasks import action_transformer_config

JPEG_SIGNATURE = "serve_jpeg"
# Warm-up frames are at most this size: the graph resizes them to the
# recipe's image size, so the model runs at its serving size while the
# warm-up file stays small (64 x 400 x 400 x 3 bytes would be 30 MB).
WARMUP_MAX_SIDE = 64


class ActionTransformerExportModule(export_module.ExportModule):
    """Serving module of an Action Transformer: clip -> people + actions.

    Args:
        model: the Keras `ActionTransformer` (clips `[B, T, H, W, 3]` in the
            pipeline's normalisation -> dict with `proposals`,
            `proposal_mask`, `class_logits` `[B, R, C + 1]`, `box_deltas`).
        clips_config: the evaluation `KeyframeBoxesConfig`
            (`task.clips_config()`): `num_frames`, `image_size`, `mean`,
            `std`, `bgr`, `dct_method` are read.
        class_names: the C action names in score-column order (saved as the
            asset `assets/classes.txt`; `class_names` output).
        max_detections: N, people kept per clip
            (`evaluation.max_detections`).
        nms_iou_threshold: person NMS IoU (`evaluation.nms_iou_threshold`).
        name: module name.

    Raises:
        ConfigError: a `clips_config` that is not a `KeyframeBoxesConfig`,
            `max_detections < 1`, an IoU threshold outside (0, 1], bad class
            names, or class names that do not match the model's classes
            (its `num_classes`; or, when tracing, the columns of
            `class_logits`).

    Example:

    ```python
    module = ActionTransformerExportModule(
        model, task.clips_config(), class_names=task.class_names,
        max_detections=8)
    out = module.signatures()["serving_default"](
        frames=tf.zeros([1, 16, 112, 112, 3], tf.uint8))
    out["boxes"].shape   # [1, 8, 4]
    ```
    """

    def __init__(self, model, clips_config, class_names,
                 max_detections=decoding.MAX_DETECTIONS,
                 nms_iou_threshold=decoding.NMS_IOU_THRESHOLD, name=None):
        super().__init__(model, class_names=class_names, name=name)
        if not isinstance(clips_config, pipeline_lib.KeyframeBoxesConfig):
            raise errors.ConfigError(
                "clips_config must be a KeyframeBoxesConfig, got "
                f"{clips_config!r}")
        if int(max_detections) < 1:
            raise errors.ConfigError(
                f"max_detections must be >= 1, got {max_detections}")
        if not 0.0 < float(nms_iou_threshold) <= 1.0:
            raise errors.ConfigError(
                "nms_iou_threshold must be in (0, 1], got "
                f"{nms_iou_threshold}")
        classes = getattr(model, "num_classes", None)
        if classes is not None and len(self.class_names) != int(classes):
            raise errors.ConfigError(
                f"{type(self).__name__}: {len(self.class_names)} "
                f"class_names for a model with {classes} action classes")
        self.clips_config = clips_config
        self.num_frames = int(clips_config.num_frames)
        self.image_size = tuple(int(v) for v in clips_config.image_size)
        self.max_detections = int(max_detections)
        self.nms_iou_threshold = float(nms_iou_threshold)
        self._clip_spec = tf.TensorSpec(
            [self.num_frames, *self.image_size, 3], tf.float32)
        # Both signatures call ONE traced function of the model and the
        # decoding: traced once, stored once in the SavedModel.
        self._detect_function = export_module._Untracked(tf.function(
            self._detect, autograph=False, input_signature=[
                tf.TensorSpec([None, *self._clip_spec.shape], tf.float32)]))

    # ------------------------------------------------------------ specs
    def input_specs(self):
        """`frames`: uint8 `[B, T, H, W, 3]` (`T = num_frames`)."""
        return {"frames": tf.TensorSpec([None, self.num_frames, None, None,
                                         3], tf.uint8)}

    def jpeg_input_specs(self):
        """`frames`: string `[B, T]`, one encoded JPEG per frame."""
        return {"frames": tf.TensorSpec([None, self.num_frames],
                                        tf.string)}

    # ---------------------------------------------------- preprocessing
    def _evaluate(self, ex):
        """The evaluation pipeline's stages after decoding: one clip."""
        config = self.clips_config
        ex = pipeline_lib.crop_stage(ex, config=config, training=False)
        ex = pipeline_lib.resize_stage(ex, config=config)
        ex = pipeline_lib.flip_stage(ex, config=config, training=False)
        ex = pipeline_lib.normalize_stage(ex, config=config)
        return tf.ensure_shape(ex["frames"], self._clip_spec.shape)

    def _one_jpeg_clip(self, args):
        row, encoded = args
        ex = {schemas.VIDEO_ID: tf.strings.format("request row {}", row),
              schemas.IMAGE_ENCODED: encoded,
              "indices": tf.range(self.num_frames)}
        ex = pipeline_lib.decode_stage(ex, config=self.clips_config)
        return self._evaluate(ex)

    def _one_uint8_clip(self, frames):
        return self._evaluate({"frames": frames})

    def clips_from_uint8(self, frames):
        """uint8 `[B, T, H, W, 3]` -> the model's float32 clips."""
        frames = tf.convert_to_tensor(frames, tf.uint8)
        check = tf.debugging.assert_positive(
            tf.shape(frames)[2:4],
            message="frames must have height and width >= 1: shape "
            f"[B, {self.num_frames}, H, W, 3]")
        with tf.control_dependencies([check]):
            frames = tf.identity(frames)
        return tf.map_fn(self._one_uint8_clip, frames,
                         fn_output_signature=self._clip_spec)

    def clips_from_jpegs(self, frames):
        """string `[B, T]` JPEGs -> the model's float32 clips."""
        rows = tf.range(tf.shape(frames)[0])
        return tf.map_fn(self._one_jpeg_clip, (rows, frames),
                         fn_output_signature=self._clip_spec)

    # -------------------------------------------------- postprocessing
    def _detect(self, clips):
        out = self.model(clips, training=False)
        num_classes = out["class_logits"].shape[-1]
        if num_classes is None:
            raise errors.ConfigError(
                f"{type(self).__name__}: the model's class_logits need a "
                "static number of columns")
        if len(self.class_names) != num_classes - 1:
            raise errors.ConfigError(
                f"{type(self).__name__}: {len(self.class_names)} "
                f"class_names for a model with {num_classes - 1} action "
                "classes (class_logits has a background column first)")
        det = decoding.decode_detections(
            out["proposals"], out["proposal_mask"], out["class_logits"],
            out["box_deltas"], nms_iou_threshold=self.nms_iou_threshold,
            max_detections=self.max_detections)
        batch = tf.shape(det["num_detections"])[0]
        names = self.class_name_lookup(tf.range(len(self.class_names)))
        return {"boxes": det["boxes"], "scores": det["scores"],
                "person_scores": det["person_scores"],
                "num_detections": det["num_detections"],
                "class_names": tf.tile(names[None], tf.stack([batch, 1]))}

    def detect(self, clips):
        """Model clips `[B, T, H, W, 3]` float32 -> the outputs."""
        return self._detect_function.value(clips)

    def serve(self, inputs):
        """uint8 frames -> people, their action scores, class names."""
        return self.detect(self.clips_from_uint8(inputs["frames"]))

    def serve_jpeg(self, inputs):
        """JPEG frames -> the same outputs."""
        return self.detect(self.clips_from_jpegs(inputs["frames"]))

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
        for t in range(self.num_frames):
            image = np.stack([(xx * 255 // max(w - 1, 1) + 3 * t) % 256,
                              (yy * 255 // max(h - 1, 1)) % 256,
                              (xx + yy + 8 * t) % 256], -1)
            frames.append(image.astype(np.uint8))
        return np.stack(frames)

    def warmup_inputs(self):
        """One small smooth uint8 clip `[1, T, h, w, 3]`."""
        return {"frames": self._warmup_frames()[None]}

    def warmup_jpeg_inputs(self):
        """The same clip as JPEG frames `[1, T]`."""
        jpegs = [tf.io.encode_jpeg(frame, quality=95).numpy()
                 for frame in self._warmup_frames()]
        return {"frames": np.array([jpegs], dtype=object)}

    def warmup_requests(self):
        """A uint8 and a JPEG request (both signatures)."""
        return [(export_module.SERVING_DEFAULT, self.warmup_inputs()),
                (JPEG_SIGNATURE, self.warmup_jpeg_inputs())]

    def batching_parameters(self):
        """Small batches of whole clips; frames are never padded."""
        return {"max_batch_size": 4, "pad_variable_length_inputs": False}


@factory.register_export_module(action_transformer_config.TASK_NAME)
def export_module_from_task(task, model):
    """The `ActionTransformerExportModule` of an `ActionTransformerTask`.

    Args:
        task: the task (its `clips_config()`, `class_names` and
            `config.evaluation`).
        model: its restored model.

    Returns:
        An `ActionTransformerExportModule` with the recipe's clips settings,
        `evaluation.max_detections` and `evaluation.nms_iou_threshold`.

    Example:

    ```python
    module = export_module_from_task(task, trainer.model)
    ```
    """
    ev = task.config.evaluation
    return ActionTransformerExportModule(
        model, task.clips_config(), class_names=task.class_names,
        max_detections=int(ev.max_detections),
        nms_iou_threshold=float(ev.nms_iou_threshold))
