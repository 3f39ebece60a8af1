"""Fixtures shared by the data tests."""

import pytest

from tfaction.data import filesystems


@pytest.fixture
def no_tfio(monkeypatch):
    """Makes importing tensorflow-io fail; returns the list of names asked for."""
    calls = []

    def fake_import(name):
        calls.append(name)
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(filesystems, "_tfio_loaded", False)
    monkeypatch.setattr(filesystems.importlib, "import_module", fake_import)
    return calls
