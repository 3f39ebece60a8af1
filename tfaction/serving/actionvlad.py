"""ActionVLAD serving: sampled frames in, class probabilities and top-k out.

The client samples the frames (ActionVLAD: 25 uniformly spaced frames, or
25 stacks of consecutive flow frames) and sends them; everything after the
sampling runs in the graph, by the evaluation pipeline's own stage
functions (`tfaction.data.frames_pipeline`: `decode_stage`,
`augment_stage`, `normalize_stage`, `fold_views_stage` with
`training=False`), so a served video gives the logits of
`model(evaluation pipeline frames)`: decode (`dct_method` of the config),
resize to `resize`, the test crops (`test_crop_offsets` or `test_crop`),
BGR / mean / std, flow stacks into their layout, and all crop-frames of a
video folded into ONE time axis (crop-major: crop 0's T frames, then crop
1's, ...; `fold_views="time"`, as the ActionVLAD task configures, whatever
the config's `fold_views`), pooled by the model into one vector.

`ActionVLADExportModule`, RGB model (`frames_config.modality == "rgb"`):

| signature | input | dtype | shape |
|---|---|---|---|
| `serving_default` | `frames` | string | `[B, T]` encoded JPEGs |
| `serve_uint8` | `frames` | uint8 | `[B, T, H, W, 3]` RGB frames |

Flow model (`modality == "flow"`, `S = flow_stack`):

| signature | input | dtype | shape |
|---|---|---|---|
| `serving_default` | `flow_x`, `flow_y` | string | `[B, T, S]` JPEGs |
| `serve_uint8` | `flow` | uint8 | `[B, T, H, W, 2S]` |

`flow_x[b, t, s]` is the s-th flow frame of stack t (grey JPEGs); `flow`
interleaves them as the models do: channels `[x_0, y_0, x_1, y_1, ...]`.
JPEG frames of one video share a size (videos of a batch may differ when a
`resize` or crop makes the output size fixed); uint8 frames have any size
(the pipeline's resize / crops apply). `T >= 1`; the T frames of a request
are one temporal clip (with `num_clips > 1` the pipeline's clip-major order
differs from one long clip only in frame order, which ActionVLAD's pooling
ignores). With `crop_in_decode` the JPEG path decodes straight into the
crop, as the pipeline does, and differs from the uint8 path by libjpeg's
few grey levels at the crop border.

Outputs (every signature):

| output | dtype | shape | meaning |
|---|---|---|---|
| `logits` | float32 | `[B, K]` | the model's logits |
| `probabilities` | float32 | `[B, K]` | softmax (sigmoid if multi-label) |
| `top_k_classes` | int32 | `[B, k]` | class ids, best first |
| `top_k_scores` | float32 | `[B, k]` | their probabilities |
| `class_names` | string | `[B, k]` | the names of `top_k_classes` |

`k = min(top_k, K)`. The class list travels with the model as the asset
`assets/classes.txt` (line i = class i); `class_names` is looked up from
it in the graph. `TwoStreamExportModule` takes the RGB inputs and the
flow inputs together (`frames` + `flow_x`, `flow_y`; uint8: `frames` +
`flow`), runs both models and fuses their logits as the reference
(`combine_streams.py`): `logits = (1 - w) * rgb + w * flow`, `w = 0.667`;
it adds `rgb_logits` and `flow_logits`.

Bad requests fail with an `InvalidArgumentError` saying what is wrong: no
frames (`T = 0`), `flow_x` / `flow_y` of different shapes, a wrong number
of flow frames per stack, streams with different batch sizes, a frame that
is not a JPEG (naming the batch row and frame), frames smaller than a crop.

The modules take the task config's own key names (`top_k`,
`multi_label`, and the `frames` section as a `FramesConfig`);
`export_module_from_task` and `two_stream_module_from_tasks` build them
from tasks.

Example:

```python
module = tfaction.serving.build_export_module(task, model)
export_saved_model(module, "models/actionvlad_rgb")
# client: {"frames": [[jpeg_0, ..., jpeg_24]]} -> probabilities [1, 51]
```
"""

import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.data import frames_pipeline
from tfaction.data import schemas
from tfaction.data import video_ops
from tfaction.models.actionvlad import fusion
from tfaction.serving import export_module
from tfaction.serving import factory
from tfaction.tasks import actionvlad_config

UINT8_SIGNATURE = "serve_uint8"
WARMUP_STEPS = 2  # frames (stacks) per warm-up video


class StreamInputs:
    """One stream's serving inputs -> the evaluation pipeline's frames.

    The in-graph half of a frames-pipeline serving module (ActionVLAD's
    streams, AdaFocus): the signatures' input specs, checks of a request's
    shapes with clear messages, and the evaluation stages after sampling
    (`decode_stage`, `augment_stage`, `normalize_stage`,
    `fold_views_stage` with `training=False`) run per video with
    `tf.map_fn`; plus a small warm-up video the config accepts.

    Args:
        config: the stream's evaluation `FramesConfig`; its modality picks
            the inputs (RGB: `frames`; flow: `flow_x`, `flow_y` JPEG
            stacks or interleaved uint8 `flow`, module docstring).

    Raises:
        ConfigError: `config` is not a `FramesConfig`.

    Example:

    ```python
    stream = StreamInputs(task.frames_config(training=False))
    stream.jpeg_specs()       # {"frames": TensorSpec([None, None], string)}
    frames = stream.from_jpegs({"frames": jpegs})  # [B, V·T', H, W, C]
    ```
    """

    def __init__(self, config):
        if not isinstance(config, frames_pipeline.FramesConfig):
            raise errors.ConfigError(
                f"frames_config must be a FramesConfig, got {config!r}")
        self.config = config
        self.flow = config.modality == "flow"
        self.stack = int(config.flow_stack)
        self.crops = config.spatial_views(False)
        self.channels = frames_pipeline.channels(config)
        if frames_pipeline.has_crops(config, False):
            hw = tuple(config.crop_size)
        elif isinstance(config.resize, (tuple, list)):
            hw = tuple(config.resize)
        else:
            hw = (None, None)
        self.output_spec = tf.TensorSpec([None, *hw, self.channels],
                                         tf.float32)

    # ------------------------------------------------------------ specs
    def jpeg_specs(self):
        if self.flow:
            spec = tf.TensorSpec([None, None, self.stack], tf.string)
            return {"flow_x": spec, "flow_y": spec}
        return {"frames": tf.TensorSpec([None, None], tf.string)}

    def uint8_specs(self):
        if self.flow:
            return {"flow": tf.TensorSpec([None, None, None, None,
                                           2 * self.stack], tf.uint8)}
        return {"frames": tf.TensorSpec([None, None, None, None, 3],
                                        tf.uint8)}

    def batch_size(self, inputs):
        key = "flow_x" if self.flow and "flow_x" in inputs else (
            "flow" if self.flow else "frames")
        return tf.shape(inputs[key])[0]

    # ---------------------------------------------------------- checks
    def _checked(self, inputs, jpeg):
        """Inputs after in-graph checks with clear messages."""
        checks = []
        name = "frames" if not self.flow else ("flow_x" if jpeg else "flow")
        first = inputs[name]
        what = "flow stack" if self.flow else "frame"
        shape = ("[B, T, S]" if self.flow and jpeg else
                 "[B, T]" if jpeg else "[B, T, H, W, C]")
        checks.append(tf.debugging.assert_greater(
            tf.shape(first)[1], 0,
            message=f"{name} holds no {what} (T = 0): send at least one "
            f"{what} per video, shape {shape} with T >= 1"))
        # The stack size S (2 S interleaved uint8 channels) is fixed in the
        # specs, so `ExportModule` has already checked it.
        if self.flow and jpeg:
            checks.append(tf.debugging.assert_equal(
                tf.shape(inputs["flow_x"]), tf.shape(inputs["flow_y"]),
                message="flow_x and flow_y must have the same shape "
                "[B, T, S] (one y frame per x frame)"))
        if not jpeg:
            checks.append(tf.debugging.assert_positive(
                tf.shape(first)[2:4],
                message=f"{name} frames must have height and width >= 1"))
        with tf.control_dependencies(checks):
            return {k: tf.identity(inputs[k]) for k in
                    (self.jpeg_specs() if jpeg else self.uint8_specs())}

    # ---------------------------------------------------- preprocessing
    def _evaluate(self, ex):
        """The pipeline's evaluation stages after decoding -> [V·T', ...]."""
        config = self.config
        ex = frames_pipeline.augment_stage(ex, config=config,
                                           training=False)
        ex = frames_pipeline.normalize_stage(ex, config=config)
        views = config.temporal_views * self.crops
        folded = frames_pipeline.fold_views_stage(
            {"frames": ex["frames"][None]}, mode="time", views=views)
        return tf.ensure_shape(folded["frames"][0], self.output_spec.shape)

    def _indices(self, steps):
        if self.flow:
            return tf.reshape(tf.range(steps * self.stack),
                              [1, steps, self.stack])
        return tf.range(steps)[None]

    def _one_jpeg_video(self, args):
        row, encoded = args[0], args[1:]
        steps = tf.shape(encoded[0])[0]
        ex = {schemas.VIDEO_ID: tf.strings.format("request row {}", row),
              "indices": self._indices(steps),
              "frame_mask": tf.ones([1, steps], tf.bool)}
        if self.flow:  # frame index t * S + s in the decode errors
            ex[schemas.FLOW_X_ENCODED] = tf.reshape(encoded[0], [-1])
            ex[schemas.FLOW_Y_ENCODED] = tf.reshape(encoded[1], [-1])
        else:
            ex[schemas.IMAGE_ENCODED] = encoded[0]
        ex = frames_pipeline.decode_stage(ex, config=self.config,
                                          training=False)
        return self._evaluate(ex)

    def _one_uint8_video(self, frames):
        steps = tf.shape(frames)[0]
        if self.flow:  # [T, H, W, 2S] -> decoded layout [T·S, H, W, 2]
            hw = tf.shape(frames)[1:3]
            frames = tf.reshape(frames, tf.concat(
                [[steps], hw, [self.stack, 2]], 0))
            frames = tf.transpose(frames, [0, 3, 1, 2, 4])
            frames = tf.reshape(frames, tf.concat(
                [[steps * self.stack], hw, [2]], 0))
        if frames_pipeline.crop_at_decode(self.config, False):
            # The pipeline crops these while decoding (no resize first).
            box = frames_pipeline.eval_crop_boxes(tf.shape(frames)[-3:-1],
                                              self.config)[0]
            frames = video_ops.crop_frames(frames, box)
        ex = {"frames": frames[None], "indices": self._indices(steps),
              "frame_mask": tf.ones([1, steps], tf.bool)}
        return self._evaluate(ex)

    def from_jpegs(self, inputs):
        """JPEG inputs -> float32 model frames [B, V·T', H, W, C]."""
        inputs = self._checked(inputs, jpeg=True)
        keys = ["flow_x", "flow_y"] if self.flow else ["frames"]
        rows = tf.range(tf.shape(inputs[keys[0]])[0])
        return tf.map_fn(self._one_jpeg_video,
                         (rows, *[inputs[k] for k in keys]),
                         fn_output_signature=self.output_spec)

    def from_uint8(self, inputs):
        """uint8 inputs -> float32 model frames [B, V·T', H, W, C]."""
        inputs = self._checked(inputs, jpeg=False)
        key = "flow" if self.flow else "frames"
        return tf.map_fn(self._one_uint8_video, inputs[key],
                         fn_output_signature=self.output_spec)

    # ---------------------------------------------------------- warm-up
    def warmup_size(self):
        """A frame size the config accepts (its resize, or the crops')."""
        config = self.config
        if config.test_crop_offsets is not None:
            h, w = config.crop_size
            need = (max(y for y, _ in config.test_crop_offsets) + h,
                    max(x for _, x in config.test_crop_offsets) + w)
        else:
            need = tuple(int(v) for v in config.crop_size)
        resize = config.resize
        if resize is None:
            return need
        if not isinstance(resize, int):
            return tuple(int(v) for v in resize)
        # Shorter side -> resize: keep the needed extent on the long side.
        if need[0] <= resize:
            return resize, max(resize, need[1])
        return max(resize, need[0]), resize

    def _warmup_frames(self, channels):
        h, w = self.warmup_size()
        yy, xx = np.mgrid[0:h, 0:w]
        image = (xx * 255 // max(w - 1, 1) + yy) % 256
        return np.repeat(image[..., None], channels, -1).astype(np.uint8)

    def warmup_jpegs(self):
        """One video of `WARMUP_STEPS` small smooth JPEG frames (stacks)."""
        if self.flow:
            jpeg = tf.io.encode_jpeg(self._warmup_frames(1)).numpy()
            stacks = np.array([[[jpeg] * self.stack] * WARMUP_STEPS],
                              dtype=object)
            return {"flow_x": stacks, "flow_y": stacks.copy()}
        jpeg = tf.io.encode_jpeg(self._warmup_frames(3)).numpy()
        return {"frames": np.array([[jpeg] * WARMUP_STEPS], dtype=object)}

    def warmup_uint8(self):
        """The same video as decoded uint8 frames."""
        if self.flow:
            frames = self._warmup_frames(2 * self.stack)
            return {"flow": np.stack([frames] * WARMUP_STEPS)[None]}
        frames = self._warmup_frames(3)
        return {"frames": np.stack([frames] * WARMUP_STEPS)[None]}


def _check_top_k(top_k):
    if int(top_k) < 1:
        raise errors.ConfigError(f"top_k must be >= 1, got {top_k}")
    return int(top_k)


def classifier_outputs(module, logits, *, multi_label, top_k):
    """A classifier's serving outputs: logits -> probabilities and top-k.

    Args:
        module: the `ExportModule` (its `class_names` and
            `class_name_lookup` name the classes).
        logits: float `[B, K]`, K static.
        multi_label: sigmoid probabilities (else softmax).
        top_k: classes in the top-k outputs (at most K are returned).

    Returns:
        Dict `logits` (float32), `probabilities`, `top_k_classes` (int32
        `[B, k]`, best first), `top_k_scores` and `class_names` (string
        `[B, k]`), `k = min(top_k, K)`.

    Raises:
        ConfigError: K is not static, or `module.class_names` does not
            hold K names (the error names the module's class).

    Example:

    ```python
    out = classifier_outputs(self, self.model(frames), multi_label=False,
                             top_k=5)
    out["class_names"]        # [B, 5] names of the best classes
    ```
    """
    logits = tf.cast(logits, tf.float32)
    num_classes = logits.shape[-1]
    owner = type(module).__name__
    if num_classes is None:
        raise errors.ConfigError(f"{owner}: the model's logits need a static "
                                 "number of classes")
    if len(module.class_names) != num_classes:
        raise errors.ConfigError(
            f"{owner}: {len(module.class_names)} class_names for a model "
            f"with {num_classes} logits")
    probabilities = (tf.sigmoid(logits) if multi_label
                     else tf.nn.softmax(logits, axis=-1))
    scores, classes = tf.math.top_k(probabilities, min(top_k, num_classes))
    return {"logits": logits, "probabilities": probabilities,
            "top_k_classes": tf.cast(classes, tf.int32),
            "top_k_scores": scores,
            "class_names": module.class_name_lookup(classes)}


class ActionVLADExportModule(export_module.ExportModule):
    """Serving module of one ActionVLAD stream (RGB or flow).

    Args:
        model: Keras model, float32 frames `[B, T, H, W, C]` -> logits
            `[B, K]` (`tfaction.models.actionvlad.model.ActionVLAD`).
        frames_config: the stream's evaluation `FramesConfig`
            (`task.frames_config(training=False)`); its modality picks the
            inputs (module docstring).
        class_names: the K class names in id order (saved as the asset
            `assets/classes.txt`; `class_names` output).
        top_k: classes in the top-k outputs (at most K).
        multi_label: sigmoid probabilities; default
            `frames_config.multi_label`.
        name: module name.

    Raises:
        ConfigError: bad `top_k` or class names, or a `frames_config` that
            is not a `FramesConfig`.

    Example:

    ```python
    module = ActionVLADExportModule(model, config, class_names=names)
    out = module.signatures()["serving_default"](
        frames=tf.constant([[jpeg_0, jpeg_1, jpeg_2]]))
    out["class_names"]   # [1, 5] names of out["top_k_classes"]
    ```
    """

    def __init__(self, model, frames_config, class_names, top_k=5,
                 multi_label=None, name=None):
        super().__init__(model, class_names=class_names, name=name)
        self._stream = StreamInputs(frames_config)
        self.frames_config = frames_config
        self.top_k = _check_top_k(top_k)
        self.multi_label = bool(frames_config.multi_label
                                if multi_label is None else multi_label)

    def input_specs(self):
        """`frames [B, T]` JPEGs, or flow `flow_x`, `flow_y` [B, T, S]."""
        return self._stream.jpeg_specs()

    def uint8_input_specs(self):
        """`frames` uint8 `[B, T, H, W, 3]`, or flow `[B, T, H, W, 2S]`."""
        return self._stream.uint8_specs()

    def _predict(self, frames):
        return classifier_outputs(
            self, self.model(frames, training=False),
            multi_label=self.multi_label, top_k=self.top_k)

    def serve(self, inputs):
        """JPEGs -> probabilities, logits, top-k."""
        return self._predict(self._stream.from_jpegs(inputs))

    def serve_uint8(self, inputs):
        """Decoded uint8 frames -> the same outputs."""
        return self._predict(self._stream.from_uint8(inputs))

    def signature_definitions(self):
        """`serving_default` (JPEGs) and `serve_uint8` (decoded frames)."""
        return {
            export_module.SERVING_DEFAULT: (self.input_specs(), self.serve),
            UINT8_SIGNATURE: (self.uint8_input_specs(), self.serve_uint8),
        }

    def warmup_inputs(self):
        """One video of two small smooth JPEG frames (stacks)."""
        return self._stream.warmup_jpegs()

    def warmup_requests(self):
        """A JPEG and a uint8 request (both signatures)."""
        return [(export_module.SERVING_DEFAULT, self.warmup_inputs()),
                (UINT8_SIGNATURE, self._stream.warmup_uint8())]

    def batching_parameters(self):
        """Small batches of whole videos; JPEG strings are not padded."""
        return {"max_batch_size": 4, "pad_variable_length_inputs": False}


class TwoStreamExportModule(export_module.ExportModule):
    """RGB + flow ActionVLAD with late fusion of the logits, in one graph.

    `logits = (1 - flow_weight) * rgb_logits + flow_weight * flow_logits`
    (reference `combine_streams.py`, `--temporal_ratio 0.667`), then the
    probabilities and top-k of `ActionVLADExportModule`. Both models'
    variables are saved.

    Args:
        rgb_model, rgb_frames_config: the RGB stream (modality "rgb").
        flow_model, flow_frames_config: the flow stream (modality "flow").
        flow_weight: `w` in [0, 1] (default 0.667, as the reference).
        class_names: the K class names in id order (saved as the asset
            `assets/classes.txt`; `class_names` output).
        top_k: classes in the top-k outputs.
        multi_label: sigmoid probabilities; default
            `rgb_frames_config.multi_label`.
        name: module name.

    Example:

    ```python
    module = TwoStreamExportModule(rgb, rgb_config, flow, flow_config,
                                   class_names=names)
    out = module.signatures()["serving_default"](
        frames=rgb_jpegs, flow_x=x_jpegs, flow_y=y_jpegs)
    out["probabilities"], out["rgb_logits"], out["flow_logits"]
    out["class_names"]   # names of out["top_k_classes"]
    ```
    """

    def __init__(self, rgb_model, rgb_frames_config, flow_model,
                 flow_frames_config, class_names,
                 flow_weight=fusion.FLOW_WEIGHT,
                 top_k=5, multi_label=None, name=None):
        super().__init__(rgb_model, class_names=class_names, name=name)
        self._rgb = StreamInputs(rgb_frames_config)
        self._flow = StreamInputs(flow_frames_config)
        if self._rgb.flow or not self._flow.flow:
            raise errors.ConfigError(
                "TwoStreamExportModule needs an RGB frames config and a flow "
                f"one, got modalities {rgb_frames_config.modality!r} and "
                f"{flow_frames_config.modality!r}")
        if not 0.0 <= float(flow_weight) <= 1.0:
            raise errors.ConfigError(
                f"flow_weight must be in [0, 1], got {flow_weight}")
        self.flow_weight = float(flow_weight)
        self._flow_model = export_module._Untracked(flow_model)
        self.flow_model_variables = [getattr(v, "value", v)
                                     for v in flow_model.variables]
        self.top_k = _check_top_k(top_k)
        self.multi_label = bool(rgb_frames_config.multi_label
                                if multi_label is None else multi_label)

    @property
    def rgb_model(self):
        """The RGB stream's Keras model (also `model`)."""
        return self.model

    @property
    def flow_model(self):
        """The flow stream's Keras model."""
        return self._flow_model.value

    def input_specs(self):
        """`frames [B, T]` + `flow_x`, `flow_y [B, T', S]` JPEGs."""
        return {**self._rgb.jpeg_specs(), **self._flow.jpeg_specs()}

    def uint8_input_specs(self):
        """`frames [B, T, H, W, 3]` + `flow [B, T', H', W', 2S]` uint8."""
        return {**self._rgb.uint8_specs(), **self._flow.uint8_specs()}

    def _predict(self, inputs, rgb_frames, flow_frames):
        same = tf.debugging.assert_equal(
            self._rgb.batch_size(inputs), self._flow.batch_size(inputs),
            message="the RGB and flow inputs must hold the same videos: "
            "their batch sizes B differ")
        with tf.control_dependencies([same]):
            rgb_frames = tf.identity(rgb_frames)
            flow_frames = tf.identity(flow_frames)
        rgb = tf.cast(self.rgb_model(rgb_frames, training=False), tf.float32)
        flow = tf.cast(self.flow_model(flow_frames, training=False),
                       tf.float32)
        if rgb.shape[-1] != flow.shape[-1]:
            raise errors.ConfigError(
                f"the RGB model has {rgb.shape[-1]} logits, the flow model "
                f"{flow.shape[-1]}")
        fused = (1.0 - self.flow_weight) * rgb + self.flow_weight * flow
        out = classifier_outputs(self, fused, multi_label=self.multi_label,
                                 top_k=self.top_k)
        out.update(rgb_logits=rgb, flow_logits=flow)
        return out

    def serve(self, inputs):
        """RGB + flow JPEGs -> fused probabilities, logits, top-k."""
        return self._predict(inputs, self._rgb.from_jpegs(inputs),
                             self._flow.from_jpegs(inputs))

    def serve_uint8(self, inputs):
        """RGB + flow uint8 frames -> the same outputs."""
        return self._predict(inputs, self._rgb.from_uint8(inputs),
                             self._flow.from_uint8(inputs))

    def signature_definitions(self):
        """`serving_default` (JPEGs) and `serve_uint8` (decoded frames)."""
        return {
            export_module.SERVING_DEFAULT: (self.input_specs(), self.serve),
            UINT8_SIGNATURE: (self.uint8_input_specs(), self.serve_uint8),
        }

    def warmup_inputs(self):
        """One video: two RGB JPEG frames and two flow stacks."""
        return {**self._rgb.warmup_jpegs(), **self._flow.warmup_jpegs()}

    def warmup_requests(self):
        """A JPEG and a uint8 request (both signatures)."""
        return [(export_module.SERVING_DEFAULT, self.warmup_inputs()),
                (UINT8_SIGNATURE, {**self._rgb.warmup_uint8(),
                                   **self._flow.warmup_uint8()})]

    def batching_parameters(self):
        """Small batches of whole videos; JPEG strings are not padded."""
        return {"max_batch_size": 4, "pad_variable_length_inputs": False}


@factory.register_export_module(actionvlad_config.TASK_NAME)
def export_module_from_task(task, model):
    """The `ActionVLADExportModule` of an `ActionVLADTask`'s model.

    Args:
        task: the task (config, classes, evaluation `frames_config`).
        model: its restored model.

    Returns:
        An `ActionVLADExportModule`.

    Example:

    ```python
    module = export_module_from_task(task, trainer.model)
    ```
    """
    return ActionVLADExportModule(
        model, task.frames_config(False), class_names=task.class_names,
        top_k=task.config.top_k, multi_label=task.config.multi_label)


def two_stream_module_from_tasks(rgb_task, rgb_model, flow_task, flow_model,
                                 flow_weight=fusion.FLOW_WEIGHT):
    """The `TwoStreamExportModule` of an RGB and a flow `ActionVLADTask`.

    Args:
        rgb_task, rgb_model: the RGB stream's task and restored model.
        flow_task, flow_model: the flow stream's.
        flow_weight: `w` of the logit fusion.

    Returns:
        A `TwoStreamExportModule` (`top_k`, `multi_label` of the RGB task).

    Raises:
        ConfigError: the streams were trained on different classes.

    Example:

    ```python
    module = two_stream_module_from_tasks(rgb_task, rgb, flow_task, flow)
    ```
    """
    if list(rgb_task.class_names) != list(flow_task.class_names):
        raise errors.ConfigError(
            "the RGB and flow streams were trained on different classes "
            f"({len(rgb_task.class_names)} vs "
            f"{len(flow_task.class_names)} names, or another order)")
    return TwoStreamExportModule(
        rgb_model, rgb_task.frames_config(False), flow_model,
        flow_task.frames_config(False), flow_weight=flow_weight,
        class_names=rgb_task.class_names, top_k=rgb_task.config.top_k,
        multi_label=rgb_task.config.multi_label)
