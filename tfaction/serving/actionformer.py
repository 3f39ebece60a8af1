"""`ActionFormerExportModule`: features in, detections in seconds out.

The `serving_default` signature runs the whole of ActionFormer's inference
(per-level decoding, Soft-NMS, conversion to seconds) in the graph:

| input | dtype | shape | meaning |
|---|---|---|---|
| `features` | float32 | `[B, T, C]` | zero-padded to the longest video |
| `lengths` | int32 | `[B]` | valid steps, `1 <= lengths[i] <= T` |
| `fps` | float32 | `[B]` | frame rate the features come from |

Any `T <= max_length = max_seq_len * max_buffer_len_factor` is accepted (a
`None` dimension).

| output | dtype | shape | meaning |
|---|---|---|---|
| `segments` | float32 | `[B, N, 2]` | `[start, end]` in seconds |
| `scores` | float32 | `[B, N]` | detection scores, descending |
| `labels` | int32 | `[B, N]` | class ids |
| `num_detections` | int32 | `[B]` | rows of each video that are detections |

`N = max_seg_num`; rows `>= num_detections[i]` hold segment `[0, 0]`,
score 0 and label -1.

Steps: `T` is zero-padded to the model's inference length (at least
`max_seq_len`, a multiple of `max_div_factor`: `ActionFormer.padded_length`,
computed on the dynamic `T`), the mask comes from `lengths`, the model runs
with `training=False`; then per video (`tf.map_fn`) `decode_candidates`
(per-level threshold and top-k, grid units), `soft_nms_tf` (in grid units,
as the reference) and `grid_to_seconds`.

Duration (decision). The reference clamps the seconds to the annotation's
video duration, which a serving client does not send. The signature clamps
to the span the features cover, `((length - 1) * feature_stride +
feature_window) / fps` seconds: the end of the last feature's frame window.
For features extracted over the whole video this is the video's duration up
to less than one stride; a detection never extends past the data it was
computed from.

The constructor takes the task config's own key names (`inference.*`,
`max_buffer_len_factor`, the dataset's `feature_stride` /
`feature_window`); `export_module_from_task` builds it from a task, as
`tfaction.serving.build_export_module` does.

Example:

```python
module = tfaction.serving.build_export_module(task, model)
export_saved_model(module, "models/actionformer")
# client: {"features": [1, 2000, 2048] float32, "lengths": [2000],
#          "fps": [30.0]} -> segments [1, 200, 2] seconds, scores, labels
```
"""

import inspect

import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.models.actionformer import decoding
from tfaction.ops import soft_nms as soft_nms_lib
from tfaction.serving import export_module
from tfaction.serving import factory
from tfaction.tasks import actionformer_config


class ActionFormerExportModule(export_module.ExportModule):
    """Serving module of `tfaction.models.actionformer.ActionFormer`.

    Args:
        model: a built `ActionFormer` with a `max_seq_len`.
        feature_stride: frames between consecutive feature steps.
        feature_window: frames per feature clip.
        max_buffer_len_factor: the signature accepts `T` up to
            `max_length = model.max_seq_len * max_buffer_len_factor` (the
            reference's point buffer); longer inputs fail with an
            `InvalidArgumentError` saying so.
        pre_nms_thresh, pre_nms_topk, duration_thresh: candidate decoding
            (`decode_candidates`; `duration_thresh` in grid units).
        iou_threshold, min_score, max_seg_num, nms_method, multiclass_nms,
        nms_sigma, voting_thresh: Soft-NMS (`soft_nms_tf`); `max_seg_num`
            is `N`.
        name: module name.

    Example:

    ```python
    module = ActionFormerExportModule(
        model, feature_stride=4, feature_window=16, max_buffer_len_factor=6.0,
        pre_nms_thresh=0.001, pre_nms_topk=2000, duration_thresh=0.05,
        iou_threshold=0.1, min_score=0.001, max_seg_num=200,
        nms_method="gaussian", multiclass_nms=True, nms_sigma=0.5,
        voting_thresh=0.7)
    out = module.signatures()["serving_default"](
        features=feats, lengths=tf.constant([2000]), fps=tf.constant([30.]))
    ```
    """

    def __init__(self, model, *, feature_stride, feature_window,
                 max_buffer_len_factor, pre_nms_thresh, pre_nms_topk,
                 duration_thresh, iou_threshold, min_score, max_seg_num,
                 nms_method, multiclass_nms, nms_sigma, voting_thresh,
                 name=None):
        super().__init__(model, name=name)
        if nms_method not in soft_nms_lib.METHODS:
            raise errors.ConfigError(
                f"nms_method must be one of {soft_nms_lib.METHODS}, got "
                f"{nms_method!r}")
        if model.max_seq_len is None:
            raise errors.ConfigError(
                "ActionFormerExportModule needs a model with max_seq_len "
                "(the signature accepts max_seq_len * max_buffer_len_factor "
                "steps)")
        for key, value in (("feature_stride", feature_stride),
                           ("feature_window", feature_window),
                           ("max_buffer_len_factor", max_buffer_len_factor),
                           ("max_seg_num", max_seg_num),
                           ("pre_nms_topk", pre_nms_topk)):
            if not value > 0:
                raise errors.ConfigError(f"{key} must be > 0, got {value}")
        self.feature_stride = float(feature_stride)
        self.feature_window = float(feature_window)
        self.max_length = int(model.max_seq_len * max_buffer_len_factor)
        self.pre_nms_thresh = float(pre_nms_thresh)
        self.pre_nms_topk = int(pre_nms_topk)
        self.duration_thresh = float(duration_thresh)
        self.nms_kwargs = dict(
            iou_threshold=float(iou_threshold), min_score=float(min_score),
            max_seg_num=int(max_seg_num), method=nms_method,
            multiclass=bool(multiclass_nms), sigma=float(nms_sigma),
            voting_thresh=float(voting_thresh))
        self.max_seg_num = int(max_seg_num)

    def input_specs(self):
        """`features [B, T, C]`, `lengths [B]`, `fps [B]`."""
        return {
            "features": tf.TensorSpec([None, None, self.model.input_dim],
                                      tf.float32),
            "lengths": tf.TensorSpec([None], tf.int32),
            "fps": tf.TensorSpec([None], tf.float32),
        }

    def warmup_inputs(self):
        """One video of `min(max_length, max_seq_len)` random steps, 30 fps."""
        length = min(self.max_length, self.model.max_seq_len)
        rng = np.random.RandomState(0)
        return {
            "features": rng.standard_normal(
                [1, length, self.model.input_dim]).astype(np.float32),
            "lengths": np.array([length], np.int32),
            "fps": np.array([30.0], np.float32),
        }

    def batching_parameters(self):
        """Small batches (long sequences); pad variable `T` across requests."""
        return {"max_batch_size": 8, "pad_variable_length_inputs": True}

    def padded_length(self, length):
        """`ActionFormer.padded_length` (inference) on a scalar tensor."""
        div = self.model.max_div_factor
        rounded = (tf.maximum(length, 1) + div - 1) // div * div
        if self.model.max_seq_len is None:
            return rounded
        return tf.maximum(rounded, self.model.max_seq_len)

    def _check_inputs(self, features, lengths, fps):
        batch, steps = tf.shape(features)[0], tf.shape(features)[1]
        return [
            tf.debugging.assert_less_equal(
                steps, self.max_length,
                message=f"features has more steps than max_length "
                f"{self.max_length} of this export (T must be <= "
                f"{self.max_length}; split longer videos or export with a "
                "larger max_buffer_len_factor)"),
            tf.debugging.assert_equal(
                tf.shape(lengths)[0], batch,
                message="lengths needs one entry per video of features"),
            tf.debugging.assert_equal(
                tf.shape(fps)[0], batch,
                message="fps needs one entry per video of features"),
            tf.debugging.assert_greater_equal(
                lengths, 1, message="lengths must be >= 1"),
            tf.debugging.assert_less_equal(
                lengths, steps,
                message="lengths must not exceed the features' T"),
            tf.debugging.assert_positive(fps, message="fps must be > 0"),
        ]

    def serve(self, inputs):
        """Features -> detections in seconds (see the module docstring)."""
        features = inputs["features"]
        lengths, fps = inputs["lengths"], inputs["fps"]
        with tf.control_dependencies(
                self._check_inputs(features, lengths, fps)):
            steps = tf.shape(features)[1]
            padded = self.padded_length(steps)
            features = tf.pad(features, [[0, 0], [0, padded - steps], [0, 0]])
        mask = tf.sequence_mask(lengths, padded)
        out = self.model({"features": features, "mask": mask},
                         training=False)
        strides = self.model.fpn_strides
        sizes = tf.stack([(padded + s - 1) // s for s in strides])
        num_classes = self.model.num_classes
        n = self.max_seg_num

        def one_video(args):
            logits, offsets, valid, length, rate = args
            segs, scores, labels = decoding.decode_candidates(
                tf.split(logits, sizes, num=len(strides)),
                tf.split(offsets, sizes, num=len(strides)), strides,
                masks=tf.split(valid, sizes, num=len(strides)),
                pre_nms_thresh=self.pre_nms_thresh,
                pre_nms_topk=self.pre_nms_topk,
                duration_thresh=self.duration_thresh)
            segs, scores, labels, count = soft_nms_lib.soft_nms_tf(
                segs, scores, labels, num_classes=num_classes,
                **self.nms_kwargs)
            # The span the features cover (module docstring, "Duration").
            duration = (tf.cast(length - 1, tf.float32) * self.feature_stride
                        + self.feature_window) / rate
            seconds = decoding.grid_to_seconds(
                segs, rate, self.feature_stride, self.feature_window,
                duration)
            found = tf.range(n) < count
            seconds = tf.where(found[:, None], seconds, 0.0)
            return (tf.ensure_shape(seconds, [n, 2]),
                    tf.ensure_shape(scores, [n]),
                    tf.ensure_shape(tf.cast(labels, tf.int32), [n]),
                    tf.cast(count, tf.int32))

        segments, scores, labels, count = tf.map_fn(
            one_video,
            (out["cls_logits"], out["offsets"], out["mask"], lengths, fps),
            fn_output_signature=(tf.TensorSpec([n, 2], tf.float32),
                                 tf.TensorSpec([n], tf.float32),
                                 tf.TensorSpec([n], tf.int32),
                                 tf.TensorSpec([], tf.int32)))
        return {"segments": segments, "scores": scores, "labels": labels,
                "num_detections": count}


@factory.register_export_module(actionformer_config.TASK_NAME)
def export_module_from_task(task, model):
    """The `ActionFormerExportModule` of an `ActionFormerTask`'s model.

    Args:
        task: the task (its `config` and dataset `info`).
        model: its restored model.

    Returns:
        An `ActionFormerExportModule` with the config's `inference` values.

    Raises:
        ConfigError: the config resamples the features or fuses external
            scores (ActivityNet), which the signature does not do.

    Example:

    ```python
    module = export_module_from_task(task, trainer.model)
    ```
    """
    c = task.config
    if c.resample_length or c.inference.ext_score_file:
        raise errors.ConfigError(
            "the ActionFormer serving signature takes features at the "
            "dataset's fixed stride and returns the model's own labels; "
            "task.resample_length and task.inference.ext_score_file "
            "(ActivityNet recipe) are not part of it")
    arguments = inspect.signature(ActionFormerExportModule).parameters
    return ActionFormerExportModule(
        model, feature_stride=float(task.info["feature_stride"]),
        feature_window=float(task.info["feature_window"]),
        max_buffer_len_factor=float(c.max_buffer_len_factor),
        **{k: v for k, v in c.inference.items() if k in arguments})
