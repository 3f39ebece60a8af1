"""Comparisons shared by the ActionFormer parity tests."""

import numpy as np

TOL = 1e-4  # the relative-error bound


def channels_last(x):
    """The reference's (B, C, T) arrays as Keras' (B, T, C)."""
    return np.transpose(x, (0, 2, 1))


def assert_parity(actual, expected, what, tol=TOL):
    """Asserts relative error (norm of the difference / norm) <= `tol`.

    Returns:
        The relative error, for reporting.
    """
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (what, actual.shape,
                                            expected.shape)
    rel = np.linalg.norm(actual - expected) / max(np.linalg.norm(expected),
                                                  1e-12)
    assert rel <= tol, f"{what}: relative error {rel:.3g}"
    np.testing.assert_allclose(actual, expected, atol=tol, rtol=tol,
                               err_msg=what)
    return rel
