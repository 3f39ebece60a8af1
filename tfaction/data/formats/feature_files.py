"""Per-video feature files (`<prefix><video_id>.npy|.npz`): find, load, check.

The layout consumed by ActionFormer and most temporal-localisation code: one
array [T, C] per video, `.npy`, or `.npz` with the array under a key (`feats`
in ActionFormer's EPIC-Kitchens release).
"""

import collections
import io

import numpy as np
from numpy.lib import format as npy_format

from tfaction import errors
from tfaction.data.formats import common

FEATURE_EXTENSIONS = (".npy", ".npz")


class FeatureIndex:
    """The feature files present in one folder, listed once.

    Listing once (instead of one `exists` call per video) keeps conversion of
    tens of thousands of videos fast, also on remote file systems.

    Args:
        features_dir: folder holding the feature files.
        extension: ".npy", ".npz" or "auto" (".npy" first, then ".npz").

    Raises:
        MalformedFileError: the folder does not exist.

    Example:

    >>> index = FeatureIndex("tsp_features")  # doctest: +SKIP
    >>> index.path_for("v_QOlSCBRmfWY")  # doctest: +SKIP
    'tsp_features/v_QOlSCBRmfWY.npy'
    """

    def __init__(self, features_dir, extension="auto"):
        if extension not in ("auto",) + FEATURE_EXTENSIONS:
            raise ValueError(f"extension must be 'auto', '.npy' or '.npz', "
                             f"got {extension!r}")
        if not common.is_dir(features_dir):
            raise errors.MalformedFileError("features folder not found",
                                            path=features_dir)
        self.features_dir = str(features_dir)
        self.extensions = (FEATURE_EXTENSIONS if extension == "auto"
                           else (extension,))
        self._names = set(common.listdir(features_dir))

    def path_for(self, name):
        """Path of the feature file for base name `name`, or None."""
        for ext in self.extensions:
            if name + ext in self._names:
                return common.join(self.features_dir, name + ext)
        return None


def peek_shape(path):
    """Shape from a local `.npy` header without reading the data, or None."""
    if not (common.is_local(path) and path.endswith(".npy")):
        return None
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                shape, _, _ = npy_format.read_array_header_1_0(f)
            else:
                shape, _, _ = npy_format.read_array_header_2_0(f)
        return tuple(shape)
    except (OSError, ValueError):
        return None  # reported properly when the file is loaded


def majority_dim(paths):
    """The most common C among rank-2 `.npy` headers (None if none readable).

    Used as the expected feature dimension when none is imposed, so that one
    odd file is reported as the odd one (not every other file).
    """
    dims = collections.Counter()
    for path in paths:
        shape = peek_shape(path)
        if shape is not None and len(shape) == 2:
            dims[shape[1]] += 1
    return dims.most_common(1)[0][0] if dims else None


def guess_feature_dim(items, npz_key="feats"):
    """The feature dimension C to expect when none is imposed.

    C of most `.npy` headers (see `majority_dim`), else of the first file
    that loads as a rank-2 array.

    Args:
        items: list of `(video_id, path)` pairs of the feature files.
        npz_key: array name inside `.npz` files.

    Returns:
        C, or None when no file is readable.

    Example:

    >>> guess_feature_dim([("v1", "f/v1.npy")])  # doctest: +SKIP
    2048
    """
    dim = majority_dim(path for _, path in items)
    if dim is not None:
        return dim
    for video_id, path in items:  # e.g. .npz files: no cheap header
        try:
            array = load_features(path, video_id=video_id, npz_key=npz_key)
        except errors.DataError:
            continue  # reported when the video itself is converted
        if array.ndim == 2:
            return array.shape[1]
    return None


def load_features(path, *, video_id, npz_key="feats"):
    """Loads one feature array (no pickles).

    Raises:
        MalformedFileError: unreadable file, pickled content, or missing npz
            key (naming file, video and key).
    """
    try:
        data = common.read_bytes(path)
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                if npz_key not in loaded.files:
                    raise errors.MalformedFileError(
                        f"npz feature file has no array {npz_key!r} (it has "
                        f"{sorted(loaded.files)})", path=path,
                        video_id=video_id, key=npz_key)
                return loaded[npz_key]
        return loaded
    except errors.DataError:
        raise
    except Exception as e:  # numpy raises ValueError/OSError/EOFError/...
        raise errors.MalformedFileError(
            f"cannot read feature file ({type(e).__name__}: {e})", path=path,
            video_id=video_id) from e


def check_features(features, *, path, video_id, feature_dim, dtype):
    """Validates a [T, C] feature array and casts it to the storage dtype.

    Args:
        features: the loaded array.
        path: its file (for errors).
        video_id: its video (for errors).
        feature_dim: the required C.
        dtype: storage dtype (`np.float32` or `np.float16`).

    Returns:
        The array as `dtype`.

    Raises:
        FeatureShapeError: rank != 2, T == 0, C != feature_dim, not numeric.
        NonFiniteFeatureError: NaN/inf (also after a float16 cast overflow),
            naming the first offending step and channel.
    """
    if features.ndim != 2:
        raise errors.FeatureShapeError(
            f"features have shape {features.shape}; expected rank 2 [T, C]",
            path=path, video_id=video_id)
    if features.shape[0] == 0:
        raise errors.FeatureShapeError(
            f"features have shape {features.shape}; expected T >= 1 steps",
            path=path, video_id=video_id)
    if features.shape[1] != feature_dim:
        raise errors.FeatureShapeError(
            f"features have shape {features.shape}; expected feature "
            f"dimension C = {feature_dim} like the other videos (pass "
            "--feature_dim to impose one)", path=path, video_id=video_id)
    if not (np.issubdtype(features.dtype, np.floating)
            or np.issubdtype(features.dtype, np.integer)):
        raise errors.FeatureShapeError(
            f"features have dtype {features.dtype}; expected a numeric "
            "array", path=path, video_id=video_id)
    _check_finite(features, path, video_id, "")
    with np.errstate(over="ignore"):  # overflow is reported just below
        cast = features.astype(dtype)
    _check_finite(cast, path, video_id,
                  f" after casting to {np.dtype(dtype).name} (values beyond "
                  "its range)")
    return cast


def _check_finite(array, path, video_id, suffix):
    if np.issubdtype(array.dtype, np.integer):
        return
    bad = ~np.isfinite(array)
    if bad.any():
        step, channel = np.argwhere(bad)[0]
        raise errors.NonFiniteFeatureError(
            f"{int(bad.sum())} non-finite value(s){suffix}, first at step "
            f"{step}, channel {channel} ({array[step, channel]}); expected "
            "finite features", path=path, video_id=video_id)
