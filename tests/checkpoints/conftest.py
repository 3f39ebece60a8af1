"""Fixtures of the checkpoint-reader tests."""

import pathlib

import pytest

from tests.conftest import bundle_dirs


@pytest.fixture(scope="session")
def torch_fixtures():
    """Folder of files written by PyTorch 2.13 (see its README.md)."""
    return pathlib.Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def checkpoint_bundles(anchors_dir):
    """ActionFormer parity bundles holding the authors' `epoch_001.pth.tar`.

    Their README: the file is what the authors' `train.py` writes;
    `state_dict_ema` equals `weights.npz`, `state_dict` differs (three
    optimiser steps later).
    """
    return bundle_dirs(anchors_dir, "actionformer_", (
        "config.json", "weights.npz", "io.npz", "inference.npz",
        "epoch_001.pth.tar"))
