"""AdaFocus V2 serving: a video's T frames in, classes and patches out.

`AdaFocusExportModule` serves an `AdaFocusV2` model the way the V2 task
evaluates it (`tfaction.tasks.adafocus.AdaFocusV2Task.validation_step`):
the client samples the `T` frames (the recipe's `frames.num_steps`; TSN:
the centre frame of each of T equal segments) and sends them in time
order; everything after the sampling runs in the graph with the
evaluation pipeline's own stage functions (`tfaction.data.
frames_pipeline`: `decode_stage`, `augment_stage` with `training=False`
(resize of the shorter side to `frames.resize`, the centre
`frames.crop_size` crop), `normalize_stage` (ImageNet mean / std)), the
task's frame order (coarse-to-fine, `frame_order`), and the model.

| signature | input | dtype | shape |
|---|---|---|---|
| `serving_default` | `frames` | uint8 | `[B, T, H, W, 3]` RGB frames |
| `serve_jpeg` | `frames` | string | `[B, T]` encoded JPEG frames |

`T` must be the model's number of frames; `H`, `W` any size the
recipe's resize and crop accept (with neither, the model's frame size).
JPEG frames of one video share a size; videos of a batch may differ.

| output | dtype | shape | meaning |
|---|---|---|---|
| `logits` | float32 | `[B, K]` | the classifier's logits (see below) |
| `probabilities` | float32 | `[B, K]` | their softmax |
| `top_k_classes` | int32 | `[B, k]` | class ids, best first |
| `top_k_scores` | float32 | `[B, k]` | their probabilities |
| `class_names` | string | `[B, k]` | the names of `top_k_classes` |
| `patch_centres` | float32 | `[B, T, 2]` | the focus patch of each frame |
| `exit_step` | int32 | `[B]` | early exit only: frames used |
| `gflops` | float32 | `[B]` | early exit only: GFLOPs spent |

`patch_centres[b, t]` is the (row, column) centre of the `P x P` patch the
policy chose on the t-th frame SENT (time order), in pixel coordinates of
that input frame (pixel `(i, j)` at `(i, j)`, so a frame's centre is
`((H - 1) / 2, (W - 1) / 2)`): the patch's centre on the model's frame,
`a (H' - P, W' - P) + (P - 1) / 2` for the policy's normalised origin `a`,
moved back through the centre crop and the bilinear resize (half-pixel
centres, as `tf.image.resize`). A patch covers about `P x s` input pixels
per side, `s` the resize factor (1 without resize).

Without early exit, `logits` are the last step's (all T frames). With
early-exit thresholds (V2+, `tfaction.models.adafocus.early_exit`, baked
in as constants from an evaluation's `early_exit.json`), a video exits
after the first step `k` (frames in the model's order) whose max logit
reaches `T_k` (the last step takes every video left): `logits` are step
`k`'s (the pooling classifier's head `k` sees the first `k` frames only),
`exit_step = k`, `gflops = k x` the model's per-frame GFLOPs
(`flops.adafocus_v2_gflops`), and the frames the model did not reach have
`patch_centres` `(-1, -1)`. The batched graph computes every step (the
outputs are those of a model that stopped; `gflops` is what stopping
costs).

Bad requests fail with an `InvalidArgumentError` saying what is wrong:
another number of frames than T, empty frames, frames that the recipe
neither resizes nor crops to the model's size, a frame that is not a
JPEG (naming the request row and the frame).

Example:

```python
module = tfaction.serving.build_export_module(task, model)
export_saved_model(module, "models/adafocus")
# client: {"frames": uint8 [1, 16, 360, 480, 3]} -> probabilities [1, 200],
#   patch_centres [1, 16, 2]
```
"""

import math

import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data import frames_pipeline
from tfaction.models.adafocus import early_exit
from tfaction.models.adafocus import flops
from tfaction.serving import actionvlad
from tfaction.serving import export_module
from tfaction.serving import factory
from tfaction.tasks import adafocus_config

JPEG_SIGNATURE = "serve_jpeg"
TOP_K = 5
# Unreached frames' patch centres under early exit.
NOT_SEEN = -1.0


def read_early_exit_thresholds(path, budget):
    """The thresholds of budget `q` in an evaluation's `early_exit.json`.

    Args:
        path: the file (`<workdir>/early_exit.json` of an evaluation with
            `task.early_exit_budgets`).
        budget: one of its budgets `q`.

    Returns:
        `(thresholds, report)`: float64 `[T]` (`early_exit.
        thresholds_from_json`) and the whole JSON dict.

    Raises:
        MalformedFileError: unreadable, or without the expected keys.
        ConfigError: `budget` is not among the file's budgets.

    Example:

    ```python
    thresholds, _ = read_early_exit_thresholds(
        "runs/adafocus/early_exit.json", 1.5)
    ```
    """
    try:
        report = filesystems.read_json(path)
    except (OSError, ValueError) as e:
        raise errors.MalformedFileError(
            f"cannot read the early-exit calibration: {e}",
            path=path) from None
    points = report.get("budgets") if isinstance(report, dict) else None
    if not isinstance(points, list) or not all(
            isinstance(p, dict) and "budget" in p and "thresholds" in p
            for p in points):
        raise errors.MalformedFileError(
            "expected an early_exit.json written by the AdaFocus V2 "
            "evaluation: a 'budgets' list of {'budget', 'thresholds', ...}",
            path=path, key="budgets")
    available = [p["budget"] for p in points]
    for point in points:
        if math.isclose(float(point["budget"]), float(budget),
                        rel_tol=1e-9):
            return early_exit.thresholds_from_json(
                point["thresholds"], path=path,
                key=f"budgets[{available.index(point['budget'])}]"
                    ".thresholds"), report
    raise errors.ConfigError(
        f"early-exit budget q={budget} is not in {path}; its budgets are "
        f"{available}")


class AdaFocusExportModule(export_module.ExportModule):
    """Serving module of an AdaFocus V2 model (module docstring).

    Args:
        model: an `AdaFocusV2` (`{"frames": [B, T, H', W', 3]}` ->
            `logits` `[B, T, K]`, `locations` `[B, T, 2]`).
        frames_config: the evaluation `FramesConfig` (`task.
            frames_config()`): resize, centre crop, mean / std.
        frame_order: the model's frame order, a permutation of `range(T)`
            (`task.frame_order`).
        class_names: the K class names in id order (the asset
            `assets/classes.txt`; `class_names` output).
        top_k: classes in the top-k outputs (at most K).
        early_exit_thresholds: None (no early exit) or `[T]` thresholds
            (`early_exit.calibrate_thresholds`).
        name: module name.

    Raises:
        ConfigError: a model that is not an AdaFocus V2, a frames config
            or frame order that does not fit it, thresholds of another
            length than T, bad `top_k` or class names.

    Example:

    ```python
    module = AdaFocusExportModule(model, task.frames_config(),
                                  task.frame_order, task.class_names,
                                  early_exit_thresholds=thresholds)
    out = module.signatures()["serving_default"](frames=frames)
    out["exit_step"], out["patch_centres"]
    ```
    """

    def __init__(self, model, frames_config, frame_order, class_names,
                 top_k=TOP_K, early_exit_thresholds=None, name=None):
        super().__init__(model, class_names=class_names, name=name)
        owner = type(self).__name__
        if not all(hasattr(model, a) for a in (
                "num_frames", "frame_size", "patch_size", "classifier")):
            raise errors.ConfigError(
                f"{owner} serves an AdaFocusV2 model, got "
                f"{type(model).__name__}")
        self.num_frames = int(model.num_frames)
        self.frame_size = tuple(int(v) for v in model.frame_size)
        self.patch_size = int(model.patch_size)
        self._stream = actionvlad.StreamInputs(frames_config)
        self.frames_config = frames_config
        if (frames_config.modality != "rgb"
                or frames_config.num_steps != self.num_frames
                or self._stream.crops != 1
                or frames_config.temporal_views != 1):
            raise errors.ConfigError(
                f"{owner}: the frames config must give one view of "
                f"{self.num_frames} RGB frames (the model's T), got "
                f"modality {frames_config.modality!r}, num_steps "
                f"{frames_config.num_steps}, {self._stream.crops} crops")
        if sorted(int(i) for i in frame_order) != list(
                range(self.num_frames)):
            raise errors.ConfigError(
                f"{owner}: frame_order {list(frame_order)} is not a "
                f"permutation of range({self.num_frames})")
        self.frame_order = [int(i) for i in frame_order]
        self.top_k = actionvlad._check_top_k(top_k)
        self.per_frame_gflops = float(
            flops.adafocus_v2_gflops(model)["per_frame"])
        self.early_exit_thresholds = None
        if early_exit_thresholds is not None:
            thresholds = np.asarray(early_exit_thresholds, np.float64)
            if thresholds.shape != (self.num_frames,):
                raise errors.ConfigError(
                    f"{owner}: {thresholds.shape} early-exit thresholds "
                    f"for a model of {self.num_frames} steps; expected one "
                    "per step")
            self.early_exit_thresholds = thresholds

    # ------------------------------------------------------------ specs
    def input_specs(self):
        """`frames` uint8 `[B, T, H, W, 3]`."""
        return self._stream.uint8_specs()

    def jpeg_input_specs(self):
        """`frames` string `[B, T]` (one JPEG per frame)."""
        return self._stream.jpeg_specs()

    def _checked_steps(self, frames, shape):
        check = tf.debugging.assert_equal(
            tf.shape(frames)[1], self.num_frames,
            message=f"frames must hold T = {self.num_frames} frames per "
            f"video (the frames.num_steps of the model), shape {shape}")
        with tf.control_dependencies([check]):
            return tf.identity(frames)

    def _checked_model_frames(self, frames):
        """Pipeline frames `[B, T, h, w, 3]` of the model's size."""
        check = tf.debugging.assert_equal(
            tf.shape(frames)[2:4], self.frame_size,
            message=f"the frames must be {self.frame_size[0]} x "
            f"{self.frame_size[1]} (the frame size of the model) after the "
            "resize and crop of the recipe")
        with tf.control_dependencies([check]):
            return tf.ensure_shape(tf.identity(frames),
                                   [None, self.num_frames,
                                    *self.frame_size, 3])

    # ------------------------------------------------------- geometry
    def _resized_size(self, hw):
        """The frame size after `frames.resize` (as `video_ops.
        resize_frames` computes it), float64 `[2]`."""
        resize = self.frames_config.resize
        hw = tf.cast(hw, tf.float64)
        if resize is None:
            return hw
        if not isinstance(resize, int):
            return tf.constant(resize, tf.float64)
        short = tf.reduce_min(hw)
        scaled = tf.floor(hw * resize / short)
        return tf.where(hw == short, tf.constant(float(resize),
                                                 tf.float64), scaled)

    def _to_input_pixels(self, centres, hw):
        """Model-frame pixel centres `[B, T, 2]` -> input-frame pixels.

        Args:
            centres: float32 `[B, T, 2]` (row, column) on the model frame.
            hw: int32 `[B, 2]` input frame sizes.
        """
        def one(args):
            points, size = args
            resized = self._resized_size(size)
            boxes = frames_pipeline.eval_crop_boxes(
                tf.cast(resized, tf.int32), self.frames_config)
            offset = (tf.zeros([2], tf.float64) if boxes is None
                      else tf.cast(boxes[0, :2], tf.float64))
            points = tf.cast(points, tf.float64) + offset
            if self.frames_config.resize is not None:
                scale = tf.cast(size, tf.float64) / resized
                points = (points + 0.5) * scale - 0.5
            return tf.cast(points, tf.float32)

        return tf.map_fn(one, (centres, hw),
                         fn_output_signature=tf.TensorSpec(
                             [self.num_frames, 2], tf.float32))

    # ------------------------------------------------------ prediction
    def _predict(self, frames, hw):
        """Model frames in time order + input sizes -> the outputs."""
        order = tf.constant(self.frame_order, tf.int32)
        outputs = self.model({"frames": tf.gather(frames, order, axis=1)},
                             training=False)
        logits = tf.cast(outputs["logits"], tf.float32)  # [B, T, K]
        span = tf.constant([self.frame_size[0] - self.patch_size,
                            self.frame_size[1] - self.patch_size],
                           tf.float32)
        centres = (tf.cast(outputs["locations"], tf.float32) * span
                   + (self.patch_size - 1) / 2.0)  # model order
        extra = {}
        seen = tf.ones_like(centres, tf.bool)
        if self.early_exit_thresholds is None:
            chosen = logits[:, -1]
        else:
            thresholds = tf.constant(self.early_exit_thresholds,
                                     tf.float32)
            leaves = tf.reduce_max(logits, axis=-1) >= thresholds
            # The last step takes every video left (even a NaN one).
            leaves = tf.concat([leaves[:, :-1],
                                tf.ones_like(leaves[:, -1:])], axis=1)
            index = tf.argmax(tf.cast(leaves, tf.int32), axis=1,
                              output_type=tf.int32)
            chosen = tf.gather(logits, index, axis=1, batch_dims=1)
            seen = tf.broadcast_to(
                (tf.range(self.num_frames)[None] <= index[:, None])[
                    ..., None], tf.shape(centres))
            extra = {"exit_step": index + 1,
                     "gflops": tf.cast(index + 1, tf.float32)
                     * self.per_frame_gflops}
        # Back to the order the frames were sent in.
        inverse = tf.constant(np.argsort(self.frame_order), tf.int32)
        centres = tf.gather(centres, inverse, axis=1)
        seen = tf.gather(seen, inverse, axis=1)
        pixels = self._to_input_pixels(centres, hw)
        out = actionvlad.classifier_outputs(
            self, chosen, multi_label=False, top_k=self.top_k)
        out["patch_centres"] = tf.where(seen, pixels, NOT_SEEN)
        out.update(extra)
        return out

    def serve(self, inputs):
        """uint8 frames -> classes, patch centres (and the exit)."""
        frames = self._checked_steps(inputs["frames"], "[B, T, H, W, 3]")
        model_frames = self._checked_model_frames(
            self._stream.from_uint8({"frames": frames}))
        shape = tf.shape(frames)
        hw = tf.tile(shape[None, 2:4], [shape[0], 1])
        return self._predict(model_frames, hw)

    def serve_jpeg(self, inputs):
        """JPEG frames -> the same outputs."""
        frames = self._checked_steps(inputs["frames"], "[B, T]")
        model_frames = self._checked_model_frames(
            self._stream.from_jpegs({"frames": frames}))
        # Each video's size from its first JPEG, read once the frames
        # decoded (a bad JPEG fails in the decoder, which names it).
        with tf.control_dependencies([model_frames]):
            hw = tf.map_fn(
                lambda video: tf.image.extract_jpeg_shape(video[0])[:2],
                frames, fn_output_signature=tf.int32)
        return self._predict(model_frames, hw)

    def signature_definitions(self):
        """`serving_default` (uint8 frames) and `serve_jpeg` (JPEGs)."""
        return {
            export_module.SERVING_DEFAULT: (self.input_specs(), self.serve),
            JPEG_SIGNATURE: (self.jpeg_input_specs(), self.serve_jpeg),
        }

    # ---------------------------------------------------------- warm-up
    def _warmup_frames(self):
        h, w = self._stream.warmup_size()
        yy, xx = np.mgrid[0:h, 0:w]
        return np.stack([np.stack([(xx * 255 // max(w - 1, 1) + 9 * t) % 256,
                                   (yy * 255 // max(h - 1, 1)) % 256,
                                   (xx + yy + 16 * t) % 256], -1)
                         for t in range(self.num_frames)]).astype(np.uint8)

    def warmup_inputs(self):
        """One smooth uint8 video `[1, T, h, w, 3]` the recipe accepts."""
        return {"frames": self._warmup_frames()[None]}

    def warmup_jpeg_inputs(self):
        """The same video as JPEG frames `[1, T]`."""
        jpegs = [tf.io.encode_jpeg(frame, quality=95).numpy()
                 for frame in self._warmup_frames()]
        return {"frames": np.array([jpegs], dtype=object)}

    def warmup_requests(self):
        """A uint8 and a JPEG request (both signatures)."""
        return [(export_module.SERVING_DEFAULT, self.warmup_inputs()),
                (JPEG_SIGNATURE, self.warmup_jpeg_inputs())]

    def batching_parameters(self):
        """Small batches of whole videos (T is fixed; JPEG strings and
        frame sizes are not padded)."""
        return {"max_batch_size": 8, "pad_variable_length_inputs": False}


@factory.register_export_module(adafocus_config.TASK_NAME)
def export_module_from_task(task, model):
    """The `AdaFocusExportModule` of an `AdaFocusV2Task`'s model.

    With `task.export_early_exit_file` (an evaluation's `early_exit.json`)
    and `task.export_early_exit_budget` (one of its budgets q), the
    thresholds of that budget are baked in.

    Args:
        task: the task (its evaluation `frames_config()`, `frame_order`,
            `class_names`, config).
        model: its restored model.

    Returns:
        An `AdaFocusExportModule`.

    Raises:
        ConfigError, MalformedFileError: a calibration file that does not
            hold the budget or does not fit the model.

    Example:

    ```python
    module = export_module_from_task(task, trainer.model)
    ```
    """
    config = task.config
    thresholds = None
    if config.export_early_exit_file:
        path = config.export_early_exit_file
        thresholds, report = read_early_exit_thresholds(
            path, config.export_early_exit_budget)
        order = report.get("frame_order")
        if order is not None and list(order) != list(task.frame_order):
            raise errors.ConfigError(
                f"{path} was calibrated with frame order {order}; this "
                f"recipe feeds the model {list(task.frame_order)} "
                "(task.frame_order)")
    return AdaFocusExportModule(
        model, task.frames_config(), task.frame_order, task.class_names,
        early_exit_thresholds=thresholds)
