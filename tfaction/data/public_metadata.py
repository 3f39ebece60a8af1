"""The public dataset metadata shipped with tfaction (class lists by name).

The repository's `data/` folder holds the class lists, split lists and
label maps of the public benchmarks, each derived from a primary source
(its README says which). A source checkout reads them in place; a wheel
carries the same files as the package data `tfaction/public_data/`.

Every `--class_list` flag (and `class_list.read_class_list`) accepts one of
the names below instead of a path, and the converters of single-dataset
formats (`ego4d_mq`, `charades_frames`) default to their list, so a
converter command for a public dataset needs no class file of its own:

| name | file under data/ | classes |
|---|---|---|
| `thumos14` | `thumos14/classes.txt` | 20 |
| `activitynet13` | `activitynet13/classes.txt` | 200 |
| `hmdb51` | `hmdb51/actions.txt` | 51 |
| `charades` | `charades/Charades_v1_classes_hf.txt` (`cNNN name` lines) | 157 |
| `ava` | `ava/classes_80.txt` | 80 |
| `ava60` | `ava/classes_60.txt` | 60 |
| `epic_kitchens100_verb` | `epic_kitchens100/verb_classes.txt` | 97 |
| `epic_kitchens100_noun` | `epic_kitchens100/noun_classes.txt` | 300 |
| `ego4d_mq` | `ego4d_mq/classes.txt` | 110 |

A value is taken as a name only when it is one of these names and no file
of that name exists in the working directory; anything else is a path.
`$TFACTION_DATA_DIR` overrides where the files are looked for.

Example:

>>> import os
>>> os.path.basename(class_list_path("thumos14"))
'classes.txt'
>>> class_list_path("my_classes.txt")
'my_classes.txt'
"""

import os
import pathlib

from tfaction import errors

# name -> path relative to the metadata folder.
CLASS_LISTS = {
    "thumos14": "thumos14/classes.txt",
    "activitynet13": "activitynet13/classes.txt",
    "hmdb51": "hmdb51/actions.txt",
    "charades": "charades/Charades_v1_classes_hf.txt",
    "ava": "ava/classes_80.txt",
    "ava60": "ava/classes_60.txt",
    "epic_kitchens100_verb": "epic_kitchens100/verb_classes.txt",
    "epic_kitchens100_noun": "epic_kitchens100/noun_classes.txt",
    "ego4d_mq": "ego4d_mq/classes.txt",
}

ENV_VAR = "TFACTION_DATA_DIR"
_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
# A source checkout (or editable install) has data/ beside the package; a
# wheel installs the same files as tfaction/public_data/.
_CANDIDATES = (_PACKAGE.parent / "data", _PACKAGE / "public_data")


def data_dir():
    """The folder holding the shipped metadata (`data/` of the repository).

    Returns:
        `$TFACTION_DATA_DIR` when set, else the checkout's `data/`, else the
        installed `tfaction/public_data/`.

    Raises:
        ConfigError: none of these holds the metadata (`README.md` plus the
            dataset folders).

    Example:

    >>> (data_dir() / "thumos14" / "classes.txt").exists()
    True
    """
    override = os.environ.get(ENV_VAR)
    candidates = (pathlib.Path(override),) if override else _CANDIDATES
    for folder in candidates:
        if (folder / CLASS_LISTS["thumos14"]).is_file():
            return folder
    raise errors.ConfigError(
        "tfaction's public dataset metadata was not found (looked in "
        f"{', '.join(str(c) for c in candidates)}); set ${ENV_VAR} to the "
        "repository's data/ folder")


def is_name(value):
    """Whether `value` names a shipped class list rather than a file.

    Args:
        value: a `--class_list` value.

    Returns:
        True for a key of `CLASS_LISTS` with no file of that name in the
        working directory.

    Example:

    >>> is_name("ava60"), is_name("data/ava/classes_60.txt")
    (True, False)
    """
    return value in CLASS_LISTS and not os.path.exists(value)


def class_list_path(value):
    """Resolves a `--class_list` value: a shipped list's name, or a path.

    Args:
        value: None, a name of `CLASS_LISTS`, or a file path / URL.

    Returns:
        None for None, the shipped file's path (str) for a name, else
        `value` unchanged.

    Raises:
        ConfigError: a name whose file is missing from the metadata folder.

    Example:

    >>> class_list_path(None) is None
    True
    """
    if value is None or not is_name(str(value)):
        return value
    path = data_dir() / CLASS_LISTS[value]
    if not path.is_file():
        raise errors.ConfigError(
            f"class list {value!r} should be at {path}, which is missing")
    return str(path)
