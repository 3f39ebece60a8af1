"""Test helpers shared by every tfaction layer and model test.

`run_layer_test` checks the whole Keras layer contract every tfaction layer
follows (shapes, masks, config, `.keras` round trip, mixed precision, XLA, a fit
step); `run_model_test` the model-level part (both in `contract`). The
individual `check_*` functions (one module per concern: `config_checks`,
`build_checks`, `masking_checks`, `jit_checks`, `mixed_precision_checks`,
`saving_checks`, `training_checks`) can be called on their own with a
`CallInputs`.

Example:

>>> from tfaction.testing import run_layer_test
>>> run_layer_test(MyLayer, {"units": 4}, np.ones((2, 5, 3), "float32"),
...                expected_output_shape=(2, 5, 4))
"""

from tfaction.testing.build_checks import check_build
from tfaction.testing.call_inputs import CallInputs
from tfaction.testing.config_checks import check_config
from tfaction.testing.config_checks import check_registered
from tfaction.testing.config_checks import check_serialization
from tfaction.testing.contract import run_layer_test
from tfaction.testing.contract import run_model_test
from tfaction.testing.docstring_checks import check_docstring_examples
from tfaction.testing.jit_checks import check_jit
from tfaction.testing.masking_checks import check_masking
from tfaction.testing.mixed_precision_checks import MIXED_POLICIES
from tfaction.testing.mixed_precision_checks import check_mixed_precision
from tfaction.testing.saving_checks import check_keras_saving
from tfaction.testing.training_checks import check_training

__all__ = [
    "CallInputs",
    "MIXED_POLICIES",
    "check_build",
    "check_config",
    "check_docstring_examples",
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
