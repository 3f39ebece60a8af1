"""`ActionFormerExportModule`: features in, detections in seconds out.

The signatures run the whole of ActionFormer's inference (optional
resampling, per-level decoding, Soft-NMS, conversion to seconds, optional
video-level class-score fusion) in the graph.

`serving_default`:

| input | dtype | shape | meaning |
|---|---|---|---|
| `features` | float32 | `[B, T, C]` | zero-padded to the longest video |
| `lengths` | int32 | `[B]` | valid steps, `1 <= lengths[i] <= T` |
| `fps` | float32 | `[B]` | frame rate the features come from |

Without resampling any `T <= max_length = max_seq_len *
max_buffer_len_factor` is accepted (a `None` dimension); with
`resample_length` (the ActivityNet recipe) any `T`.

| output | dtype | shape | meaning |
|---|---|---|---|
| `segments` | float32 | `[B, N, 2]` | `[start, end]` in seconds |
| `scores` | float32 | `[B, N]` | detection scores, descending |
| `labels` | int32 | `[B, N]` | class ids |
| `class_names` | string | `[B, N]` | the labels' names |
| `num_detections` | int32 | `[B]` | rows of each video that are detections |

`N = max_seg_num`; rows `>= num_detections[i]` hold segment `[0, 0]`,
score 0, label -1 and name `""`. A class-agnostic model (`class_agnostic`,
one output class: the ActivityNet recipe) labels its detections 0, named
`"action"` (`tfaction.evaluation.activitynet_detection.AGNOSTIC_LABEL`, as
the task's class-agnostic evaluation).

`serving_with_class_scores` (modules built with `class_scores=True`; the
builder adds it for class-agnostic or `inference.ext_score_file` recipes)
takes the same inputs plus

| input | dtype | shape | meaning |
|---|---|---|---|
| `class_scores` | float64 | `[B, K]` | video-level class scores, `>= 0` |

(`K` = the class list; e.g. a row of the CUHK ActivityNet classifier's
file) and returns the same outputs after ActivityNet score fusion
(`tfaction.models.actionformer.score_fusion`): the first
`fusion_topk_segments` detections, repeated for each of the video's
`fusion_topk_classes` best classes (class-major: every segment with the
best class, then with the second), scored `sqrt(class_score * score)` and
labelled with the class. Its `N = fusion_topk_classes *
min(max_seg_num, fusion_topk_segments)`. TF Serving signatures have no
optional inputs, so the class scores are a second signature rather than an
input that may be left out. (Exactly tied scores may be ranked in another
order than NumPy's unstable sort of the task's evaluation.)

Class list (decision): every export carries its class list as the asset
`assets/classes.txt` (line i = class i); `class_names` is looked up from it
in the graph. It lists the model's classes, or, for a class-agnostic model,
the classes of `class_scores` (the external score file's `"class"` list
when it has one, as the task's evaluation labels its fused detections, else
the dataset's).

Steps: with `resample_length` each video's `lengths[i]` steps are first
resampled to exactly `resample_length` steps by the evaluation's own rule
(`tfaction.data.segment_rules.resample_features`: PyTorch's linear
interpolation, stride and window becoming the resampled spacing). `T` is
zero-padded to the model's inference length (at least `max_seq_len`, a
multiple of `max_div_factor`: `ActionFormer.padded_length`, computed on the
dynamic `T`), the mask comes from `lengths`, the model runs with
`training=False`; then per video (`tf.map_fn`) `decode_candidates`
(per-level threshold and top-k, grid units), `soft_nms_tf` (in grid units,
as the reference; class-agnostic with `multiclass_nms=False`) and
`grid_to_seconds`.

Duration (decision). The reference clamps the seconds to the annotation's
video duration, which a serving client does not send. The signature clamps
to the span the features cover, `((length - 1) * feature_stride +
feature_window) / fps` seconds (after any resampling): the end of the last
feature's frame window. For features extracted over the whole video this
is the video's duration up to less than one stride; a detection never
extends past the data it was computed from.

The constructor takes the task config's own key names (`inference.*`,
`max_buffer_len_factor`, `resample_length`, `class_agnostic`, the dataset's
`feature_stride` / `feature_window`); `export_module_from_task` builds it
from a task, as `tfaction.serving.build_export_module` does.

Example:

```python
module = tfaction.serving.build_export_module(task, model)
export_saved_model(module, "models/actionformer")
# client: {"features": [1, 2000, 2048] float32, "lengths": [2000],
#          "fps": [30.0]} -> segments [1, 200, 2] seconds, scores, labels,
#          class_names
# ActivityNet: signature_name "serving_with_class_scores", plus
#          "class_scores": [1, 200] float64 -> 2 x 100 fused detections
```
"""

import inspect

import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.data import segment_rules
from tfaction.evaluation import activitynet_detection
from tfaction.models.actionformer import decoding
from tfaction.models.actionformer import score_fusion
from tfaction.ops import soft_nms as soft_nms_lib
from tfaction.serving import export_module
from tfaction.serving import factory
from tfaction.tasks import actionformer_config

CLASS_SCORES_SIGNATURE = "serving_with_class_scores"
AGNOSTIC_LABEL = activitynet_detection.AGNOSTIC_LABEL


class ActionFormerExportModule(export_module.ExportModule):
    """Serving module of `tfaction.models.actionformer.ActionFormer`.

    Args:
        model: a built `ActionFormer` with a `max_seq_len`.
        class_names: the class list saved with the model
            (`assets/classes.txt`): the model's classes, or for a
            class-agnostic model the classes of `class_scores`.
        feature_stride: frames between consecutive feature steps.
        feature_window: frames per feature clip.
        max_buffer_len_factor: without resampling the signature accepts `T`
            up to `max_length = model.max_seq_len * max_buffer_len_factor`
            (the reference's point buffer); longer inputs fail with an
            `InvalidArgumentError` saying so.
        pre_nms_thresh, pre_nms_topk, duration_thresh: candidate decoding
            (`decode_candidates`; `duration_thresh` in grid units).
        iou_threshold, min_score, max_seg_num, nms_method, multiclass_nms,
        nms_sigma, voting_thresh: Soft-NMS (`soft_nms_tf`); `max_seg_num`
            is `N`.
        class_agnostic: the model's one class means "an action": its
            detections are named `AGNOSTIC_LABEL`.
        resample_length: 0, or resample every video to this many steps
            (ActivityNet's `force_upsampling`; any `T` is then accepted).
        class_scores: add the `serving_with_class_scores` signature.
        fusion_topk_classes, fusion_topk_segments: its score fusion.
        name: module name.

    Raises:
        ConfigError: a setting out of range, class names that do not fit
            the model, or a model without `max_seq_len`.

    Example:

    ```python
    module = ActionFormerExportModule(
        model, class_names=names, feature_stride=4, feature_window=16,
        max_buffer_len_factor=6.0, pre_nms_thresh=0.001, pre_nms_topk=2000,
        duration_thresh=0.05, iou_threshold=0.1, min_score=0.001,
        max_seg_num=200, nms_method="gaussian", multiclass_nms=True,
        nms_sigma=0.5, voting_thresh=0.7)
    out = module.signatures()["serving_default"](
        features=feats, lengths=tf.constant([2000]), fps=tf.constant([30.]))
    out["class_names"]   # [1, 200] names of out["labels"]
    ```
    """

    def __init__(self, model, *, class_names, feature_stride, feature_window,
                 max_buffer_len_factor, pre_nms_thresh, pre_nms_topk,
                 duration_thresh, iou_threshold, min_score, max_seg_num,
                 nms_method, multiclass_nms, nms_sigma, voting_thresh,
                 class_agnostic=False, resample_length=0, class_scores=False,
                 fusion_topk_classes=2, fusion_topk_segments=200, name=None):
        super().__init__(model, class_names=class_names, name=name)
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
                           ("pre_nms_topk", pre_nms_topk),
                           ("fusion_topk_segments", fusion_topk_segments)):
            if not value > 0:
                raise errors.ConfigError(f"{key} must be > 0, got {value}")
        if not resample_length >= 0:
            raise errors.ConfigError(
                f"resample_length must be >= 0 (0 = off), got "
                f"{resample_length}")
        self.class_agnostic = bool(class_agnostic)
        if self.class_agnostic and model.num_classes != 1:
            raise errors.ConfigError(
                f"class_agnostic needs a model with one class, this one has "
                f"{model.num_classes}")
        if not self.class_agnostic and (
                len(self.class_names) != model.num_classes):
            raise errors.ConfigError(
                f"{len(self.class_names)} class_names for a model with "
                f"{model.num_classes} classes")
        self.class_scores = bool(class_scores)
        if self.class_scores and not (
                1 <= fusion_topk_classes <= len(self.class_names)):
            raise errors.ConfigError(
                f"fusion_topk_classes must be in [1, "
                f"{len(self.class_names)}] (the class list), got "
                f"{fusion_topk_classes}")
        self.feature_stride = float(feature_stride)
        self.feature_window = float(feature_window)
        self.resample_length = int(resample_length)
        self.max_length = (None if self.resample_length else
                           int(model.max_seq_len * max_buffer_len_factor))
        self.pre_nms_thresh = float(pre_nms_thresh)
        self.pre_nms_topk = int(pre_nms_topk)
        self.duration_thresh = float(duration_thresh)
        self.nms_kwargs = dict(
            iou_threshold=float(iou_threshold), min_score=float(min_score),
            max_seg_num=int(max_seg_num), method=nms_method,
            multiclass=bool(multiclass_nms), sigma=float(nms_sigma),
            voting_thresh=float(voting_thresh))
        self.max_seg_num = int(max_seg_num)
        self.fusion_topk_classes = int(fusion_topk_classes)
        self.fusion_topk_segments = int(fusion_topk_segments)

    def input_specs(self):
        """`features [B, T, C]`, `lengths [B]`, `fps [B]`."""
        return {
            "features": tf.TensorSpec([None, None, self.model.input_dim],
                                      tf.float32),
            "lengths": tf.TensorSpec([None], tf.int32),
            "fps": tf.TensorSpec([None], tf.float32),
        }

    def class_scores_input_specs(self):
        """`input_specs()` plus `class_scores [B, K]` float64."""
        return dict(self.input_specs(), class_scores=tf.TensorSpec(
            [None, len(self.class_names)], tf.float64))

    def signature_definitions(self):
        """`serving_default`, and `serving_with_class_scores` if enabled."""
        definitions = {export_module.SERVING_DEFAULT: (self.input_specs(),
                                                       self.serve)}
        if self.class_scores:
            definitions[CLASS_SCORES_SIGNATURE] = (
                self.class_scores_input_specs(),
                self.serve_with_class_scores)
        return definitions

    def warmup_inputs(self):
        """One video of `max_seq_len` random steps (at most `max_length`),
        30 fps."""
        length = min(self.max_length or self.model.max_seq_len,
                     self.model.max_seq_len)
        rng = np.random.RandomState(0)
        return {
            "features": rng.standard_normal(
                [1, length, self.model.input_dim]).astype(np.float32),
            "lengths": np.array([length], np.int32),
            "fps": np.array([30.0], np.float32),
        }

    def warmup_requests(self):
        """The `warmup_inputs()` video for each signature (class scores
        descending over the class list)."""
        requests = [(export_module.SERVING_DEFAULT, self.warmup_inputs())]
        if self.class_scores:
            k = len(self.class_names)
            scores = np.linspace(1.0, 0.0, k, dtype=np.float64)[None]
            requests.append((CLASS_SCORES_SIGNATURE,
                             dict(self.warmup_inputs(), class_scores=scores)))
        return requests

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
        checks = [
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
        if self.max_length is not None:
            checks.append(tf.debugging.assert_less_equal(
                steps, self.max_length,
                message=f"features has more steps than max_length "
                f"{self.max_length} of this export (T must be <= "
                f"{self.max_length}; split longer videos or export with a "
                "larger max_buffer_len_factor)"))
        return checks

    def _resample(self, features, lengths):
        """Each video's `lengths[i]` steps -> `resample_length` steps.

        Returns:
            `(features [B, L, C], lengths [B], strides [B], windows [B])`.
        """
        steps = self.resample_length

        def one_video(args):
            feats, length = args
            ex = segment_rules.resample_features(
                {"features": feats[:length],
                 "feature_stride": tf.constant(self.feature_stride,
                                               tf.float32),
                 "feature_window": tf.constant(self.feature_window,
                                               tf.float32)}, length=steps)
            return ex["features"], ex["feature_stride"]

        features, strides = tf.map_fn(
            one_video, (features, lengths),
            fn_output_signature=(
                tf.TensorSpec([steps, self.model.input_dim], tf.float32),
                tf.TensorSpec([], tf.float32)))
        return (features, tf.fill(tf.shape(lengths), steps), strides,
                strides)

    def _detections(self, inputs):
        """Features -> per-video detections in seconds, `N = max_seg_num`.

        Returns:
            `(segments [B, N, 2], scores [B, N], labels [B, N] int32,
            num_detections [B] int32)`.
        """
        features = inputs["features"]
        lengths, fps = inputs["lengths"], inputs["fps"]
        with tf.control_dependencies(
                self._check_inputs(features, lengths, fps)):
            features = tf.identity(features)
        if self.resample_length:
            features, lengths, strides, windows = self._resample(features,
                                                                 lengths)
        else:
            strides = tf.fill(tf.shape(lengths), self.feature_stride)
            windows = tf.fill(tf.shape(lengths), self.feature_window)
        steps = tf.shape(features)[1]
        padded = self.padded_length(steps)
        features = tf.pad(features, [[0, 0], [0, padded - steps], [0, 0]])
        mask = tf.sequence_mask(lengths, padded)
        out = self.model({"features": features, "mask": mask},
                         training=False)
        levels = self.model.fpn_strides
        sizes = tf.stack([(padded + s - 1) // s for s in levels])
        num_classes = self.model.num_classes
        n = self.max_seg_num

        def one_video(args):
            logits, offsets, valid, length, rate, stride, window = args
            segs, scores, labels = decoding.decode_candidates(
                tf.split(logits, sizes, num=len(levels)),
                tf.split(offsets, sizes, num=len(levels)), levels,
                masks=tf.split(valid, sizes, num=len(levels)),
                pre_nms_thresh=self.pre_nms_thresh,
                pre_nms_topk=self.pre_nms_topk,
                duration_thresh=self.duration_thresh)
            segs, scores, labels, count = soft_nms_lib.soft_nms_tf(
                segs, scores, labels, num_classes=num_classes,
                **self.nms_kwargs)
            # The span the features cover (module docstring, "Duration").
            duration = (tf.cast(length - 1, tf.float32) * stride
                        + window) / rate
            seconds = decoding.grid_to_seconds(segs, rate, stride, window,
                                               duration)
            found = tf.range(n) < count
            seconds = tf.where(found[:, None], seconds, 0.0)
            return (tf.ensure_shape(seconds, [n, 2]),
                    tf.ensure_shape(scores, [n]),
                    tf.ensure_shape(tf.cast(labels, tf.int32), [n]),
                    tf.cast(count, tf.int32))

        return tf.map_fn(
            one_video,
            (out["cls_logits"], out["offsets"], out["mask"], lengths, fps,
             strides, windows),
            fn_output_signature=(tf.TensorSpec([n, 2], tf.float32),
                                 tf.TensorSpec([n], tf.float32),
                                 tf.TensorSpec([n], tf.int32),
                                 tf.TensorSpec([], tf.int32)))

    def serve(self, inputs):
        """Features -> detections in seconds (see the module docstring)."""
        segments, scores, labels, count = self._detections(inputs)
        if self.class_agnostic:
            names = tf.where(labels >= 0, AGNOSTIC_LABEL, "")
        else:
            names = self.class_name_lookup(labels)
        return {"segments": segments, "scores": scores, "labels": labels,
                "class_names": names, "num_detections": count}

    def _fuse(self, args):
        """One video's detections x its class scores (`score_fusion`)."""
        segments, scores, count, class_scores = args
        k = self.fusion_topk_classes
        n = min(self.max_seg_num, self.fusion_topk_segments)
        kept = tf.minimum(count, n)        # NMS output is sorted by score
        top_scores, classes = tf.math.top_k(class_scores, k)
        rows = tf.range(k * n)
        found = rows < k * kept
        per_class = tf.maximum(kept, 1)
        cls = tf.where(found, rows // per_class, 0)   # class-major
        seg = tf.where(found, rows % per_class, 0)
        fused = tf.sqrt(tf.gather(top_scores, cls)
                        * tf.cast(tf.gather(scores, seg), tf.float64))
        return (tf.where(found[:, None], tf.gather(segments, seg), 0.0),
                tf.where(found, tf.cast(fused, tf.float32), 0.0),
                tf.where(found, tf.gather(classes, cls), -1),
                k * kept)

    def serve_with_class_scores(self, inputs):
        """Features + video class scores -> fused detections."""
        class_scores = inputs["class_scores"]
        checks = [
            tf.debugging.assert_equal(
                tf.shape(class_scores)[0], tf.shape(inputs["features"])[0],
                message="class_scores needs one row per video of features"),
            tf.debugging.assert_all_finite(
                class_scores, "class_scores must be finite"),
            tf.debugging.assert_non_negative(
                class_scores, message="class_scores must be >= 0 (they "
                "enter a square root)"),
        ]
        with tf.control_dependencies(checks):
            class_scores = tf.identity(class_scores)
        segments, scores, _, count = self._detections(inputs)
        m = self.fusion_topk_classes * min(self.max_seg_num,
                                           self.fusion_topk_segments)
        segments, scores, labels, count = tf.map_fn(
            self._fuse, (segments, scores, count, class_scores),
            fn_output_signature=(tf.TensorSpec([m, 2], tf.float32),
                                 tf.TensorSpec([m], tf.float32),
                                 tf.TensorSpec([m], tf.int32),
                                 tf.TensorSpec([], tf.int32)))
        return {"segments": segments, "scores": scores, "labels": labels,
                "class_names": self.class_name_lookup(labels),
                "num_detections": count}


def served_class_names(task):
    """The class list an `ActionFormerTask`'s export carries.

    The dataset's classes; with `inference.ext_score_file`, the classes its
    scores index (the file's `"class"` list when present), as the task's
    evaluation names its fused detections.

    Args:
        task: an `ActionFormerTask`.

    Returns:
        List of class names.

    Raises:
        MalformedFileError: the external score file is missing or
            malformed, or its class count differs from the dataset's.
        ConfigError: a multi-class model whose classes differ from the
            external file's (one export serves one class list).

    Example:

    ```python
    names = served_class_names(task)   # ActivityNet: the CUHK file's 200
    ```
    """
    inf = task.config.inference
    names = [str(n) for n in task.class_names]
    if not inf.ext_score_file:
        return names
    external = score_fusion.load_external_scores(inf.ext_score_file)
    if external.class_names is None:
        if external.num_classes != len(names):
            raise errors.MalformedFileError(
                f"{external.num_classes} scores per video but {len(names)} "
                "dataset classes (and no \"class\" list)",
                path=inf.ext_score_file, key="results")
        return names
    if not task.config.class_agnostic and external.class_names != names:
        raise errors.ConfigError(
            "the model's classes differ from those of "
            f"task.inference.ext_score_file {inf.ext_score_file!r}; the "
            "export serves one class list: use the dataset's class order "
            "in the file")
    return list(external.class_names)


@factory.register_export_module(actionformer_config.TASK_NAME)
def export_module_from_task(task, model):
    """The `ActionFormerExportModule` of an `ActionFormerTask`'s model.

    Class-agnostic recipes and recipes with `inference.ext_score_file` (the
    ActivityNet one) also get `serving_with_class_scores`; the class list
    is `served_class_names(task)`.

    Args:
        task: the task (its `config`, dataset `info` and classes).
        model: its restored model.

    Returns:
        An `ActionFormerExportModule` with the config's `inference`,
        `resample_length` and `class_agnostic` values.

    Raises:
        MalformedFileError, ConfigError: see `served_class_names`.

    Example:

    ```python
    module = export_module_from_task(task, trainer.model)
    ```
    """
    c = task.config
    arguments = inspect.signature(ActionFormerExportModule).parameters
    return ActionFormerExportModule(
        model, class_names=served_class_names(task),
        feature_stride=float(task.info["feature_stride"]),
        feature_window=float(task.info["feature_window"]),
        max_buffer_len_factor=float(c.max_buffer_len_factor),
        class_agnostic=bool(c.class_agnostic),
        resample_length=int(c.resample_length),
        class_scores=bool(c.class_agnostic or c.inference.ext_score_file),
        **{k: v for k, v in c.inference.items() if k in arguments})
