"""AVA label maps: the shipped ones by name, reading, writing, class lists.

An AVA label map names the action ids (1-based, not necessarily
contiguous): the official files are pbtxt, `item { name: "..." id: N }`;
tfaction also reads a JSON list `[{"id", "name"}]`
(`tfaction.evaluation.ava_io.read_label_map` parses both). Records of the
AVA converter store label index = action id - 1, so a model with 80 outputs
reads them directly and `class_list_for` gives the matching class list.

Shipped maps (the repository's `data/ava/`, see
`tfaction.data.public_metadata`): `"ava"`, the 80 AVA actions;
`"ava60"`, the official 60-class evaluation map of the ActivityNet
challenge.

Light on dependencies (no OpenCV / PyAV), so training pipelines can use it.

Example:

>>> [i for i, _ in read_action_label_map("ava60")][:4]
[1, 3, 4, 5]
"""

import os

from tfaction import errors
from tfaction.data import public_metadata
from tfaction.data.formats import class_list as class_list_lib
from tfaction.evaluation import ava_io

# Label maps shipped in the repository's data/ava folder, by name.
LABEL_MAPS = {
    "ava": "ava/ava_action_list_v2.0.json",
    "ava60": "ava/ava_action_list_v2.1_for_activitynet_2018.pbtxt.txt",
}
DEFAULT_LABEL_MAP = "ava"


def label_map_path(value):
    """Resolves a `--label_map` value: a shipped map's name, or a path.

    Args:
        value: None (the default 80-class list), `"ava"` (the 80 AVA
            actions), `"ava60"` (the official 60-class evaluation map), or a
            pbtxt / JSON path.

    Returns:
        The path (str).

    Example:

    >>> os.path.basename(label_map_path("ava60"))
    'ava_action_list_v2.1_for_activitynet_2018.pbtxt.txt'
    """
    value = DEFAULT_LABEL_MAP if value is None else str(value)
    if value in LABEL_MAPS and not os.path.exists(value):
        return str(public_metadata.data_dir() / LABEL_MAPS[value])
    return value


def read_action_label_map(value):
    """Reads an AVA label map (pbtxt or JSON list) with positive ids.

    Args:
        value: see `label_map_path`.

    Returns:
        List of `(action_id, name)` in file order.

    Raises:
        MalformedFileError: unreadable map (see `ava_io.read_label_map`) or
            an id < 1 (AVA ids are 1-based).

    Example:

    >>> read_action_label_map("ava")[:2]
    [(1, 'bend/bow (at the waist)'), (2, 'crawl')]
    """
    path = label_map_path(value)
    items = ava_io.read_label_map(path)
    for action_id, name in items:
        if action_id < 1:
            raise errors.MalformedFileError(
                f"action id {action_id} ({name!r}) < 1; AVA action ids are "
                "1-based (label index = id - 1)", path=path, key="id")
    return items


def label_map_text(items):
    """The pbtxt text of a label map, as the official AVA files write it.

    Args:
        items: `(action_id, name)` pairs.

    Returns:
        `item {\\n  name: "..."\\n  id: N\\n}` blocks, one per class.

    Example:

    >>> print(label_map_text([(12, "stand")]), end="")
    item {
      name: "stand"
      id: 12
    }
    """
    for _, name in items:
        if '"' in name or "\n" in name:
            raise ValueError(f"class name {name!r} cannot be written to a "
                             "pbtxt label map (quote or newline)")
    return "".join(f'item {{\n  name: "{name}"\n  id: {action_id}\n}}\n'
                   for action_id, name in items)


def action_ids(value):
    """The action ids of a label map, in file order.

    Args:
        value: see `label_map_path`.

    Returns:
        Tuple of ints.

    Example:

    >>> len(action_ids("ava60")), action_ids("ava")[-1]
    (60, 80)
    """
    return tuple(i for i, _ in read_action_label_map(value))


def class_list_for(items):
    """The `ClassList` of label indices: line k = action id k + 1.

    Args:
        items: `(action_id, name)` pairs with ids >= 1.

    Returns:
        A `ClassList` of max(id) names; ids absent from `items` get the
        placeholder `class_list.unannotated_name(id)`.

    Example:

    >>> class_list_for([(1, "bend"), (3, "crouch")]).names
    ['bend', '__unannotated_label_id_2', 'crouch']
    """
    names = dict(items)
    size = max(names)
    return class_list_lib.ClassList(
        [names.get(i, class_list_lib.unannotated_name(i))
         for i in range(1, size + 1)])
