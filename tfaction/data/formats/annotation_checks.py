"""Checks and choices on read localisation annotations (`VideoAnnotation`s).

* `check_segments`: `0 <= start <= end <= duration + tolerance`, finite.
  Zero-length segments (`start == end`) are valid annotations. Ends past the
  duration by at most `tolerance` seconds are kept unchanged and reported:
  ActivityNet 1.3's annotations were made on versions of the videos that
  differ slightly from the downloaded ones (215 segments end up to 0.848 s
  after `duration_second` in the BSN files), and the official evaluator
  scores against the unchanged values; ActionFormer clamps to the feature
  span at training time.
* `select_subsets`: which subsets to convert; unknown subset names must be
  asked for explicitly.
* `default_classes`: the class order when no class list is given.

Example:

```python
videos = activitynet_annotations.read_activitynet_json("thumos_gt.json")
classes, order = default_classes(videos)
past = check_segments(videos[0], videos[0].duration, tolerance=1.0)
```
"""

import math

from absl import logging

from tfaction import errors
from tfaction.data.formats import class_list as class_list_lib
from tfaction.data.formats import common

# Subset names found in public files (compared lower-cased; THUMOS files from
# ActionFormer use "Validation"/"Test"). Others must be named in `subsets`.
KNOWN_SUBSETS = ("training", "validation", "testing", "train", "val", "test")


def check_segments(video, duration, tolerance):
    """Validates a video's segments against [0, duration].

    Args:
        video: a `VideoAnnotation`.
        duration: seconds, or None to check only order and sign.
        tolerance: allowed overrun of `end` past `duration` (seconds).

    Returns:
        List of dicts for segments ending in (duration, duration + tolerance]
        (kept unchanged; reported).

    Raises:
        SegmentError: non-finite bound, start < 0, end < start, or end >
            duration + tolerance (naming video and annotation index).

    Example:

    >>> check_segments(video, 82.73, tolerance=1.0)  # doctest: +SKIP
    [{'video_id': 'x', 'subset': 'validation', 'index': 0, 'start': 6.19,
      'end': 83.0, 'duration': 82.73}]
    """
    past = []
    for i, (start, end) in enumerate(video.segments):
        where = dict(path=video.path, video_id=video.video_id,
                     key=f"annotations[{i}].segment")
        if not (math.isfinite(start) and math.isfinite(end)):
            raise errors.SegmentError(
                f"segment [{start}, {end}] is not finite", **where)
        if start < 0:
            raise errors.SegmentError(
                f"segment [{start}, {end}] starts before 0", **where)
        if end < start:
            raise errors.SegmentError(
                f"segment [{start}, {end}] ends before it starts; expected "
                "start <= end", **where)
        if duration is not None and end > duration:
            if end > duration + tolerance:
                raise errors.SegmentError(
                    f"segment [{start}, {end}] ends after the video "
                    f"(duration {duration} s, tolerance {tolerance} s); "
                    "expected 0 <= start <= end <= duration", **where)
            past.append({"video_id": video.video_id, "subset": video.subset,
                         "index": i, "start": float(start),
                         "end": float(end), "duration": float(duration)})
    return past


def default_classes(videos):
    """The class order when no class list is given, and how it was chosen.

    ActionFormer's JSON files give each annotation a `label_id`, which its
    data loader uses as the class index: when every annotation of the file
    has one and the ids map one-to-one to names, that order is kept
    ("label_id"); ids without an annotation below the largest one (classes
    absent from the file, as some EPIC-Kitchens nouns) get a placeholder
    name (`class_list.unannotated_name`). Otherwise the sorted names are
    used ("sorted"), over the whole file so indices do not depend on the
    subsets converted.

    Args:
        videos: every `VideoAnnotation` of the annotation file.

    Returns:
        `(ClassList, order)` with order "label_id" or "sorted".

    Example:

    >>> classes, order = default_classes(videos)  # doctest: +SKIP
    >>> order  # doctest: +SKIP
    'label_id'
    """
    names = sorted({label for v in videos for label in v.labels})
    if videos and all(v.label_ids is not None for v in videos):
        by_id = {}
        consistent = True
        for video in videos:
            for label, label_id in zip(video.labels, video.label_ids):
                consistent &= by_id.setdefault(label_id, label) == label
        if (consistent and len(by_id) == len(names)
                and min(by_id, default=0) >= 0):
            # ActionFormer uses label_id as the class index even when some
            # ids have no annotation (EPIC-Kitchens nouns): keep the ids,
            # with a placeholder name for each unannotated one.
            size = max(by_id, default=-1) + 1
            order = [by_id.get(i, class_list_lib.unannotated_name(i))
                     for i in range(size)]
            return class_list_lib.ClassList(order), "label_id"
        logging.warning(
            "the annotations' label_id values are not a one-to-one map of "
            "the labels onto non-negative ids; using the sorted label names "
            "instead (pass --class_list to impose an order)")
    return class_list_lib.ClassList(names), "sorted"


def select_subsets(videos, subsets, path):
    """The subsets to convert, checked against those the videos have.

    Args:
        videos: every `VideoAnnotation` of the annotation file.
        subsets: requested subsets (comma string or list), or None for all.
        path: annotation file (for errors).

    Returns:
        Sorted lower-cased subset names: the requested ones, else every
        subset present.

    Raises:
        UnknownSubsetError: a video's subset is neither in `KNOWN_SUBSETS`
            nor requested, or a requested subset has no video.

    Example:

    >>> select_subsets(videos, "Validation", "thumos_gt.json")  # doctest: +SKIP
    ['validation']
    """
    selected = [s.lower() for s in common.parse_list_flag(subsets)]
    known = set(KNOWN_SUBSETS) | set(selected)
    present = set()
    for video in videos:
        if video.subset not in known:
            raise errors.UnknownSubsetError(
                f"subset {video.subset!r} is not a known subset "
                f"{sorted(known)}; name it in --subsets to convert it",
                path=video.path or path, video_id=video.video_id,
                key="subset")
        present.add(video.subset)
    for subset in selected:
        if subset not in present:
            raise errors.UnknownSubsetError(
                f"no video has subset {subset!r}; the annotations have "
                f"{sorted(present)}", path=path, key="subset")
    return sorted(selected or present)
