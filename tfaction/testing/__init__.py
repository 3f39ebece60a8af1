"""Test helpers shared by every tfaction layer and model test.

`run_layer_test` checks the whole Keras layer contract of DESIGN.md §3
(shapes, masks, config, `.keras` round trip, mixed precision, XLA, a fit
step); `run_model_test` the model-level part. The individual `check_*`
functions can be called on their own.

Example:

>>> from tfaction.testing import run_layer_test
>>> run_layer_test(MyLayer, {"units": 4}, np.ones((2, 5, 3), "float32"),
...                expected_output_shape=(2, 5, 4))
"""

from tfaction.testing.layer_test import MIXED_POLICIES
from tfaction.testing.layer_test import CallInputs
from tfaction.testing.layer_test import check_build
from tfaction.testing.layer_test import check_config
from tfaction.testing.layer_test import check_jit
from tfaction.testing.layer_test import check_keras_saving
from tfaction.testing.layer_test import check_masking
from tfaction.testing.layer_test import check_mixed_precision
from tfaction.testing.layer_test import check_registered
from tfaction.testing.layer_test import check_serialization
from tfaction.testing.layer_test import check_training
from tfaction.testing.layer_test import run_layer_test
from tfaction.testing.layer_test import run_model_test

__all__ = [
    "CallInputs",
    "MIXED_POLICIES",
    "check_build",
    "check_config",
    "check_jit",
    "check_keras_saving",
    "check_masking",
    "check_mixed_precision",
    "check_registered",
    "check_serialization",
    "check_training",
    "run_layer_test",
    "run_model_test",
]
