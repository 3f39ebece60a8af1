"""Ground truth for temporal detection / proposal metrics.

Two layouts are read, through the readers of
`tfaction.data.formats.activitynet_annotations` (no separate parser):

* ActivityNet layout `{"database": {vid: {"subset", "annotations": [...]}}}`
  (official ActivityNet files, THUMOS14 `thumos_gt.json`, ActionFormer
  JSONs with `label_id`);
* BSN layout `anet_anno_action.json` + `video_info_new.csv` (the subset comes
  from the CSV; the `v_` prefix is stripped, as in official ActivityNet ids).

Note: the readers lower-case subset names (the official code compares them
exactly); `subset` arguments are lower-cased too. The file is read once
(strictly: duplicated keys are errors); of an ActivityNet-layout file only
the videos of the evaluated subset are parsed, as the official code does
(every video's `subset` is still checked).

Example:

```python
gt = load_ground_truth("anet_anno_action.json", subset="validation")
print(len(gt.video_ids), gt.num_instances, gt.classes()[:3])
```
"""

import dataclasses
import os

import numpy as np

from tfaction import errors
from tfaction.data import filesystems


@dataclasses.dataclass
class GroundTruth:
    """Flat GT instances of one subset, in file order.

    Attributes:
        video_ids: ids of the subset's videos (file order; videos without
            annotations included).
        video: int64 [M] index into `video_ids` per instance.
        segments: float64 [M, 2].
        labels: M class names.
        label_ids: M int label ids, or None when the file has none.
        subset: the evaluated subset.
        path: the file (for messages).
    """

    video_ids: list
    video: np.ndarray
    segments: np.ndarray
    labels: list
    label_ids: list = None
    subset: str = None
    path: str = None

    @property
    def num_instances(self):
        return int(self.video.shape[0])

    def classes(self):
        """Labels in order of first appearance (the official class order).

        Returns:
            list of str.

        Example:

        >>> GroundTruth(["v"], np.zeros(2, np.int64), np.zeros((2, 2)),
        ...             ["B", "A"]).classes()
        ['B', 'A']
        """
        return list(dict.fromkeys(self.labels))


def _subset_database(data, subset):
    """`data` with only the videos of `subset` in its `database` (and those
    whose entry or subset is malformed, for the reader to report), or None
    when `data` is not ActivityNet-layout or no video is of `subset`."""
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        return None

    def keep(entry):
        name = entry.get("subset") if isinstance(entry, dict) else None
        return not isinstance(name, str) or not name or (
            name.lower() == subset)

    kept = {k: v for k, v in database.items() if keep(v)}
    return dict(data, database=kept) if kept else None


def _read_videos(path, video_info, layout, subset=None):
    from tfaction.data.formats import activitynet_annotations as anet
    from tfaction.evaluation import common

    if layout not in anet.LAYOUTS:
        raise errors.ConfigError(
            f"layout must be one of {anet.LAYOUTS}, got {layout!r}")
    # Read (strictly) once, for the layout and the reader.
    data = common.load_json(path, what="annotation file")
    if layout == "auto":
        layout = anet.detect_layout(path, data=data)
    if layout == anet.LAYOUT_ACTIVITYNET:
        # Only the evaluated subset's annotations are parsed (the official
        # code reads only them); every video's subset is still checked.
        kept = None if subset is None else _subset_database(data, subset)
        return anet.read_activitynet_json(path, data=kept or data)
    if video_info is None:
        video_info = filesystems.join(os.path.dirname(str(path)),
                                      "video_info_new.csv")
        if not filesystems.exists(video_info):
            raise errors.MalformedFileError(
                "BSN-layout ground truth needs its video info CSV (subset per "
                f"video); pass --video_info (looked for {video_info})",
                path=str(path))
    videos, _ = anet.read_bsn_annotations(path, video_info, data=data)
    return videos


def load_ground_truth(path, subset="validation", *, video_info=None,
                      layout="auto"):
    """Loads the GT instances of one subset.

    Args:
        path: ActivityNet-layout JSON, or BSN `anet_anno_action.json`.
        subset: subset to keep (e.g. "validation", "test"); None keeps all.
        video_info: BSN `video_info_new.csv` (default: next to `path`).
        layout: "auto", "activitynet" or "bsn".

    Returns:
        `GroundTruth`.

    Raises:
        MalformedFileError: malformed file (see the readers).
        UnknownSubsetError: no video of `subset` (names the subsets found).
        SegmentError: a GT segment that is not finite or ends before it
            starts.

    Example:

    >>> gt = load_ground_truth("thumos_gt.json", "test")  # doctest: +SKIP
    >>> gt.num_instances  # doctest: +SKIP
    3311
    """
    path = str(path)
    subset = None if subset is None else str(subset).lower()
    videos = _read_videos(path, video_info, layout, subset)
    kept = [v for v in videos if subset is None or v.subset == subset]
    if not kept:
        found = sorted({v.subset for v in videos})
        raise errors.UnknownSubsetError(
            f"no video of subset {subset!r}; subsets in the file: {found}",
            path=path, key="subset")
    video_ids, video, segs, labels, label_ids = [], [], [], [], []
    have_ids = True
    for i, v in enumerate(kept):
        video_ids.append(v.video_id)
        n = len(v.labels)
        video.extend([i] * n)
        segs.append(np.asarray(v.segments, np.float64).reshape(-1, 2))
        labels.extend(v.labels)
        if v.label_ids is None and n:
            have_ids = False
        elif n:
            label_ids.extend(v.label_ids)
    segments = (np.concatenate(segs) if segs else np.zeros((0, 2)))
    bad = ~np.isfinite(segments).all(1) | (segments[:, 1] < segments[:, 0])
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise errors.SegmentError(
            f"ground-truth segment {segments[j].tolist()} ends before it "
            "starts or is not finite", path=path,
            video_id=video_ids[video[j]], key="segment")
    return GroundTruth(video_ids=video_ids, video=np.asarray(video, np.int64),
                       segments=segments, labels=labels,
                       label_ids=label_ids if have_ids else None,
                       subset=subset, path=path)
