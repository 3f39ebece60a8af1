"""K-means centres that initialise ActionVLAD's `NetVLAD` layer.

ActionVLAD clusters L2-normalised conv5_3 descriptors (pre-ReLU) of random
training frames and starts the pooling layer from the centres
(`vlad_utils/cluster_feats.py` of rohitgirdhar/ActionVLAD, scikit-learn
`KMeans(64)`). The original settings (`n_init=10` on ~1M descriptors) take
hours; what matters is a good starting point, since stage 1 freezes the
centres and stage 2 fine-tunes them. So, by sample size:

* up to `minibatch_threshold` descriptors: `KMeans(n_init=1)` seeded with
  k-means++ run on a subsample of at most `seed_sample` descriptors;
* beyond: `MiniBatchKMeans(batch_size=4096)` (inertia within ~0.5 % of the
  full algorithm on 200k x 512 synthetic descriptors).

Centres are saved as `.npz` (`centers` [K, D] float32 plus the settings),
never pickled.
"""

import json

import numpy as np

from tfaction import errors
from tfaction.data import filesystems

CENTERS_KEY = "centers"


def l2_normalize(x, epsilon=1e-12):
    """Rows divided by `sqrt(max(sum x^2, eps))` (TF `l2_normalize`)."""
    x = np.asarray(x, np.float32)
    norm = np.sqrt(np.maximum((x * x).sum(-1, keepdims=True), epsilon))
    return x / norm


def cluster_descriptors(descriptors, num_clusters, *, seed=0,
                        minibatch_threshold=500_000, seed_sample=50_000,
                        max_iter=300, normalize=True):
    """K-means centres of descriptors.

    Args:
        descriptors: `[N, D]` array (e.g. conv features of sampled frames,
            flattened over positions).
        num_clusters: `K`.
        seed: random seed (subsampling, k-means++ and the algorithm).
        minibatch_threshold: above this many descriptors, use
            `MiniBatchKMeans`.
        seed_sample: k-means++ runs on at most this many descriptors.
        max_iter: iterations of Lloyd's algorithm.
        normalize: L2-normalise the descriptors first (as the network does).

    Returns:
        `(centers [K, D] float32, info dict)`; info holds the algorithm, the
        inertia per descriptor and the sizes.

    Raises:
        DataError: fewer descriptors than clusters, or non-finite values.

    Example:

    >>> x = np.random.default_rng(0).normal(size=(1000, 16))
    >>> centers, info = cluster_descriptors(x, 8)
    >>> centers.shape, info["algorithm"]
    ((8, 16), 'kmeans')
    """
    from sklearn import cluster

    x = np.asarray(descriptors, np.float32)
    if x.ndim != 2:
        raise errors.DataError(
            f"descriptors must be [N, D], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise errors.NonFiniteFeatureError(
            "descriptors contain NaN or inf values")
    if x.shape[0] < num_clusters:
        raise errors.DataError(
            f"{x.shape[0]} descriptors cannot make {num_clusters} clusters")
    if normalize:
        x = l2_normalize(x)
    rng = np.random.default_rng(seed)
    if x.shape[0] > minibatch_threshold:
        algorithm = "minibatch_kmeans"
        model = cluster.MiniBatchKMeans(
            num_clusters, batch_size=4096, max_iter=max_iter, n_init=1,
            random_state=seed)
        model.fit(x)
    else:
        algorithm = "kmeans"
        sample = x
        if x.shape[0] > seed_sample:
            sample = x[rng.choice(x.shape[0], seed_sample, replace=False)]
        init, _ = cluster.kmeans_plusplus(sample, num_clusters,
                                          random_state=seed)
        model = cluster.KMeans(num_clusters, init=init, n_init=1,
                               max_iter=max_iter, random_state=seed)
        model.fit(x)
    centers = model.cluster_centers_.astype(np.float32)
    info = {"algorithm": algorithm, "num_descriptors": int(x.shape[0]),
            "num_clusters": int(num_clusters), "dim": int(x.shape[1]),
            "normalized": bool(normalize), "seed": int(seed),
            "inertia_per_descriptor": float(model.inertia_ / x.shape[0])}
    return centers, info


def save_centers(path, centers, info=None):
    """Writes centres (and settings, as JSON) to an `.npz` file.

    The file appears complete or not at all (written aside, then renamed).

    Args:
        path: the `.npz` file, local or remote (`s3://`, `gs://`, ...).
        centers: `[K, D]` array.
        info: JSON-serialisable settings stored beside (optional).

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "centers.npz")
    >>> save_centers(path, np.eye(2), {"seed": 0})
    >>> load_centers(path, num_clusters=2).shape
    (2, 2)
    """
    filesystems.save_npz(path, **{
        CENTERS_KEY: np.asarray(centers, np.float32),
        "info": np.array(json.dumps(info or {}))})


def load_centers(path, num_clusters=None, dim=None):
    """Reads centres written by `save_centers`.

    Args:
        path: the `.npz` file, local or remote.
        num_clusters, dim: expected shape (checked when given).

    Returns:
        `[K, D]` float32 array.

    Raises:
        MalformedFileError: missing key, wrong shape or non-finite values.
        OSError: the file cannot be read (`FileNotFoundError`: missing).
    """
    with filesystems.load_numpy(path) as data:
        if CENTERS_KEY not in data:
            raise errors.MalformedFileError(
                f"no {CENTERS_KEY!r} array (keys: {sorted(data.files)})",
                path=str(path), key=CENTERS_KEY)
        centers = np.asarray(data[CENTERS_KEY], np.float32)
    expected = (num_clusters, dim)
    if centers.ndim != 2 or any(
            e is not None and e != s for e, s in zip(expected,
                                                     centers.shape)):
        raise errors.MalformedFileError(
            f"centres of shape {centers.shape}, expected "
            f"[{num_clusters or 'K'}, {dim or 'D'}]", path=str(path),
            key=CENTERS_KEY)
    if not np.isfinite(centers).all():
        raise errors.MalformedFileError("centres contain NaN or inf",
                                        path=str(path), key=CENTERS_KEY)
    return centers
