"""Reading per-frame embeddings and phase labels for the frame-wise metrics.

Two layouts are accepted (both pickle-free):

* **npz** (`np.savez`, read with `allow_pickle=False`): arrays
  `[<dataset>/]{train,val}_embs_<i>` (T_i x D floats) and
  `[<dataset>/]{train,val}_labels_<i>` (T_i ints), i = 0..N-1 contiguous,
  in dataset order. Without a `<dataset>/` prefix the dataset is "default".
* **JSON** (the anchor layout): `{dataset: {"train"|"val": {"embs": [T_i x D
  nested lists], "labels": [T_i int lists]}}}`; a top-level "config" key is
  ignored. JSON embeddings are read as float32 (the dtype of the official
  model outputs); npz keeps the stored float dtype.

Labels and embeddings may come from different files (labels from the ground
truth, embeddings from the predictions) or from the same file.

Example:

>>> import tempfile, os, numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "e.npz")
>>> np.savez(path, train_embs_0=np.zeros((3, 2)), train_labels_0=[0, 0, 1],
...          val_embs_0=np.ones((2, 2)), val_labels_0=[0, 1])
>>> data = load_framewise(path, path)
>>> sorted(data), len(data["default"]["val"]["embs"])
(['default'], 1)
"""

import re
import zipfile

import numpy as np

from tfaction.data import filesystems
from tfaction.errors import (FeatureShapeError, FrameCountMismatchError,
                             MalformedFileError, NonFiniteFeatureError)

SPLITS = ("train", "val")
_KEY = re.compile(r"^(?:(?P<ds>.+)/)?(?P<split>train|val)_(?P<kind>embs|labels)"
                  r"_(?P<idx>\d+)$")


def _read_npz(path, kind):
    """{dataset: {split: [arrays]}} of `kind` ("embs"/"labels") from an npz."""
    try:
        npz = filesystems.load_numpy(path)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise MalformedFileError(f"cannot read npz: {e}", path=path) from e
    found = {}
    with npz:
        for key in npz.files:
            m = _KEY.match(key)
            if m is None:
                raise MalformedFileError(
                    "unexpected array; expected '[<dataset>/]{train,val}_"
                    "{embs,labels}_<i>'", path=path, key=key)
            if m["kind"] != kind:
                continue
            try:
                arr = npz[key]
            except ValueError as e:  # object arrays need pickle
                raise MalformedFileError(f"cannot load array: {e}", path=path,
                                         key=key) from e
            found.setdefault(m["ds"] or "default", {}).setdefault(
                m["split"], {})[int(m["idx"])] = (key, arr)
    out = {}
    for ds, splits in found.items():
        out[ds] = {}
        for split, items in splits.items():
            if sorted(items) != list(range(len(items))):
                missing = sorted(set(range(max(items) + 1)) - set(items))
                prefix = "" if ds == "default" else f"{ds}/"
                raise MalformedFileError(
                    "video indices must be 0..N-1 without gaps", path=path,
                    key=f"{prefix}{split}_{kind}_{missing[0]}")
            out[ds][split] = [items[i] for i in range(len(items))]
    return out


def _read_json(path, kind):
    try:
        data = filesystems.read_json(path)
    except (OSError, ValueError) as e:
        raise MalformedFileError(f"cannot read JSON: {e}", path=path) from e
    if not isinstance(data, dict):
        raise MalformedFileError("top level must be an object {dataset: ...}",
                                 path=path)
    out = {}
    for ds, splits in data.items():
        if ds == "config":
            continue
        if not isinstance(splits, dict):
            raise MalformedFileError("expected {'train': ..., 'val': ...}",
                                     path=path, key=ds)
        out[ds] = {}
        for split in SPLITS:
            entry = splits.get(split)
            if not isinstance(entry, dict) or not isinstance(
                    entry.get(kind), list):
                raise MalformedFileError(f"missing list '{kind}'", path=path,
                                         key=f"{ds}.{split}.{kind}")
            dtype = np.float32 if kind == "embs" else None
            arrays = []
            for i, item in enumerate(entry[kind]):
                key = f"{ds}.{split}.{kind}[{i}]"
                try:
                    arrays.append((key, np.asarray(item, dtype=dtype)))
                except (TypeError, ValueError) as e:
                    raise MalformedFileError(f"not a rectangular numeric "
                                             f"array: {e}", path=path,
                                             key=key) from e
            out[ds][split] = arrays
    return out


def _read(path, kind):
    path = str(path)
    if not filesystems.isfile(path):
        raise MalformedFileError("file not found", path=path)
    if path.endswith(".npz"):
        return _read_npz(path, kind)
    if path.endswith(".json"):
        return _read_json(path, kind)
    raise MalformedFileError("expected a .npz or .json file", path=path)


def _check_embs(key, arr, path):
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise FeatureShapeError(f"embeddings must be (T > 0, D), got shape "
                                f"{arr.shape}", path=path, key=key)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise NonFiniteFeatureError("embeddings contain NaN or inf",
                                    path=path, key=key)
    return arr


def _check_labels(key, arr, path):
    if arr.ndim != 1:
        raise MalformedFileError(f"labels must be 1-D, got shape {arr.shape}",
                                 path=path, key=key)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.floating)
                and np.all(arr == np.round(arr))):
            raise MalformedFileError("labels must be integers", path=path,
                                     key=key)
    return arr.astype(np.int64)


def load_framewise(ground_truth, predictions=None):
    """Load {dataset: {"train"|"val": {"embs": [...], "labels": [...]}}}.

    Args:
        ground_truth: .npz/.json file holding the frame labels.
        predictions: .npz/.json file holding the embeddings (default: the
            ground-truth file).

    Returns:
        dict of datasets; every video has T_i embeddings and T_i labels.

    Raises:
        MalformedFileError: unreadable file, unknown key, missing split,
            non-integer labels, dataset or video count mismatch.
        FeatureShapeError / NonFiniteFeatureError: bad embeddings.
        FrameCountMismatchError: T_i differs between embeddings and labels.
    """
    predictions = ground_truth if predictions is None else predictions
    labels = _read(ground_truth, "labels")
    embs = _read(predictions, "embs")
    if not labels:
        raise MalformedFileError("no labels found", path=ground_truth)
    if set(labels) != set(embs):
        raise MalformedFileError(
            f"datasets differ: labels have {sorted(labels)}, embeddings have "
            f"{sorted(embs)}", path=predictions)
    out = {}
    for ds in labels:
        out[ds] = {}
        for split in SPLITS:
            labs = labels[ds].get(split)
            ems = embs[ds].get(split)
            if not labs:
                raise MalformedFileError(f"no {split} labels", path=ground_truth,
                                         key=f"{ds}/{split}")
            if not ems or len(ems) != len(labs):
                raise MalformedFileError(
                    f"{len(labs)} {split} label videos but "
                    f"{len(ems or [])} embedding videos", path=predictions,
                    key=f"{ds}/{split}")
            e_list, l_list = [], []
            for (ek, e), (lk, lab) in zip(ems, labs):
                e = _check_embs(ek, e, predictions)
                lab = _check_labels(lk, lab, ground_truth)
                if len(e) != len(lab):
                    raise FrameCountMismatchError(
                        f"{len(e)} embedding frames but {len(lab)} labels",
                        path=predictions, key=ek)
                dims = {x.shape[1] for x in e_list}
                if dims and e.shape[1] not in dims:
                    raise FeatureShapeError(
                        f"embedding size {e.shape[1]} differs from the "
                        f"dataset's {dims.pop()}", path=predictions, key=ek)
                e_list.append(e)
                l_list.append(lab)
            out[ds][split] = {"embs": e_list, "labels": l_list}
    return out
