"""Serving: SavedModel export with in-graph pre/post-processing for TF Serving.

- `export_module`: `ExportModule`, the base of every model's serving module
  (signatures with a `None` batch dimension, warm-up inputs, the class list
  as the asset `assets/classes.txt` with an in-graph id -> name lookup);
- `factory`: `build_export_module(task, model)`, the module of a task's
  model by task name (`register_export_module` adds one);
- `saved_model_export`: `export_saved_model` (integer versions, staged and
  read back before they appear), `list_versions`, `next_version`;
- `model_server_config`: the `models.config` model_config_list;
- `batching_parameters`: the `batching_parameters.txt` template;
- `warmup_requests`: `assets.extra/tf_serving_warmup_requests`;
- `action_transformer`: `ActionTransformerExportModule` (a clip's uint8
  or JPEG frames -> person boxes, per-action probabilities and the class
  names, person NMS in the graph);
- `actionformer`: `ActionFormerExportModule` (features -> detections in
  seconds, named; ActivityNet: per-video resampling, class-agnostic
  detections, and `serving_with_class_scores` fusing video-level class
  scores);
- `adafocus`: `AdaFocusExportModule` (a video's T uint8 or JPEG frames
  -> class probabilities, top-k and their names, the focus patch centre
  of every frame in input pixels; with V2+ early-exit thresholds baked in,
  the exit step and its GFLOPs);
- `actionvlad`: `ActionVLADExportModule` (sampled JPEG / uint8 frames of
  one stream -> probabilities, top-k and their class names) and
  `TwoStreamExportModule` (RGB + flow, late fusion of the logits);
- `carl`: `CARLExportModule` (a video's uint8 or JPEG frames -> one
  embedding per frame, chunked as the task's evaluation).

Example:

```python
module = build_export_module(task, model)
path = export_saved_model(module, "models/actionformer")
```
"""

from tfaction.serving.action_transformer import ActionTransformerExportModule
from tfaction.serving.actionformer import ActionFormerExportModule
from tfaction.serving.actionvlad import ActionVLADExportModule
from tfaction.serving.adafocus import AdaFocusExportModule
from tfaction.serving.actionvlad import TwoStreamExportModule
from tfaction.serving.carl import CARLExportModule
from tfaction.serving.export_module import SERVING_DEFAULT
from tfaction.serving.export_module import ExportModule
from tfaction.serving.factory import build_export_module
from tfaction.serving.factory import register_export_module
from tfaction.serving.saved_model_export import export_saved_model
from tfaction.serving.saved_model_export import list_versions
from tfaction.serving.saved_model_export import next_version

__all__ = [
    "SERVING_DEFAULT",
    "ActionFormerExportModule",
    "ActionTransformerExportModule",
    "ActionVLADExportModule",
    "AdaFocusExportModule",
    "CARLExportModule",
    "ExportModule",
    "TwoStreamExportModule",
    "build_export_module",
    "export_saved_model",
    "list_versions",
    "next_version",
    "register_export_module",
]
