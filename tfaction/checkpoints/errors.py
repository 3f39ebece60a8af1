"""Exceptions raised while reading PyTorch checkpoint files.

Both are `tfaction.errors.DataError`s (hence `ValueError`s): the message
names the file and, where there is one, the entry (`key`) at fault.

Example:

>>> print(CheckpointError("no 'state_dict_ema'", path="ck.pth.tar"))
ck.pth.tar: no 'state_dict_ema'
"""

from tfaction.errors import DataError


class CheckpointError(DataError):
    """A checkpoint file is malformed, of an unsupported format, or does not
    hold what was asked for (a missing key, a weight of the wrong shape)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint's pickle names a callable outside the allowed set; it was
    refused before being looked up, so nothing it names has run."""
