"""The Keras model contract (`run_model_test`) on real ActionFormer configs.

Config round trip, registration, output shapes, XLA equal to eager, and a
`.keras` save / reload in safe mode giving identical outputs; for the plain
configuration, for the absolute position encoding, for several feature
sets with per-set projections, and under a mixed dtype policy.
"""

import numpy as np
import pytest

from tfaction.models.actionformer.model import ActionFormer
from tfaction.testing import run_model_test

SMALL = dict(input_dim=8, num_classes=3, embed_dim=16, num_heads=2,
             arch=(2, 1, 2), window_size=5, head_dim=16, max_seq_len=64,
             regression_range=((0, 4), (4, 8), (8, 10000)))


@pytest.mark.parametrize("extra", [
    {},
    {"use_abs_pe": True, "window_size": (5, 5, -1)},
    {"input_splits": (5, 3), "projection_dims": (10, 6)},
    {"dtype": "mixed_float16"},
], ids=["plain", "abs_pe_global_top", "projections", "mixed_float16"])
def test_model_contract(extra):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 64, 8)).astype("float32")
    mask = np.arange(64)[None] < np.array([[64], [40]])
    points = 64 + 32 + 16
    # Activations follow the dtype policy; the point grid stays float32.
    # XLA may round float16 logits differently: one ulp (~4e-3 at |4|).
    compute = "float16" if "dtype" in extra else "float32"
    jit_atol = 1e-2 if "dtype" in extra else 1e-4
    run_model_test(
        ActionFormer, dict(SMALL, **extra), {"features": x, "mask": mask},
        expected_output_shape={"cls_logits": (2, points, 3),
                               "offsets": (2, points, 2),
                               "mask": (2, points), "points": (2, points, 4)},
        expected_output_dtype={"cls_logits": compute,
                               "offsets": compute, "mask": "bool",
                               "points": "float32"},
        jit_atol=jit_atol, jit_rtol=jit_atol)
