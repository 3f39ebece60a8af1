"""Class lists: reading, writing and mapping names to indices.

A class list is a text file with one class name per line; the 0-based line
number (blank lines excluded) is the class index. Converters write the list
they used as `classes.txt` beside the records, so label indices in the records
can always be mapped back to names.

Example:

>>> classes = ClassList(["brush_hair", "cartwheel"])
>>> classes.index("cartwheel")
1
>>> classes.name(0)
'brush_hair'
"""

import tensorflow as tf

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data import public_metadata

CLASS_LIST_FILE = "classes.txt"


UNANNOTATED_PREFIX = "__unannotated_label_id_"


def unannotated_name(label_id):
    """Placeholder name of a class id no annotation uses.

    Example:

    >>> unannotated_name(7)
    '__unannotated_label_id_7'
    """
    return f"{UNANNOTATED_PREFIX}{int(label_id)}"


def unannotated_ids(names):
    """Indices of the placeholder names in a class-name list."""
    return [i for i, name in enumerate(names)
            if str(name).startswith(UNANNOTATED_PREFIX)]


class ClassList:
    """An ordered list of unique class names.

    Args:
        names: class names in index order (unique, non-empty, no newlines).
        path: file the names were read from (used in error messages).

    Raises:
        MalformedFileError: a name is empty, repeated or spans lines.
    """

    def __init__(self, names, path=None):
        self.names = [str(n) for n in names]
        self.path = None if path is None else str(path)
        self._index = {}
        for i, name in enumerate(self.names):
            if not name.strip() or "\n" in name or name != name.strip():
                raise errors.MalformedFileError(
                    f"class {i} has an invalid name {name!r}; expected a "
                    "non-empty name without surrounding whitespace",
                    path=self.path)
            if name in self._index:
                raise errors.MalformedFileError(
                    f"class name {name!r} appears twice (indices "
                    f"{self._index[name]} and {i}); names must be unique",
                    path=self.path)
            self._index[name] = i

    def __len__(self):
        return len(self.names)

    def __contains__(self, name):
        return name in self._index

    def index(self, name, *, path=None, line=None, video_id=None,
              key=None):
        """Returns the index of `name`.

        Args:
            name: a class name.
            path, line, video_id, key: where `name` came from, for the error.

        Raises:
            UnknownLabelError: `name` is not in the list.
        """
        try:
            return self._index[name]
        except KeyError:
            source = (f" ({self.path})" if self.path is not None else "")
            raise errors.UnknownLabelError(
                f"label {name!r} is not in the class list{source} of "
                f"{len(self.names)} classes", path=path, line=line,
                video_id=video_id, key=key) from None

    def name(self, index):
        """Returns the name of class `index`."""
        return self.names[index]

    def check_index(self, index, *, path=None, line=None, video_id=None,
                    key=None):
        """Checks that `index` is a valid class index.

        Raises:
            UnknownLabelError: `index` is outside [0, len(self)).
        """
        if not 0 <= index < len(self.names):
            raise errors.UnknownLabelError(
                f"class index {index} is out of range; expected 0 <= index < "
                f"{len(self.names)}", path=path, line=line, video_id=video_id,
                key=key)
        return index

    def to_text(self):
        """The list in file form: one name per line."""
        return "".join(name + "\n" for name in self.names)


def read_class_list(path):
    """Reads a class list file (one name per line, blank lines ignored).

    Args:
        path: local path or URL, or the name of a list shipped with
            tfaction (`thumos14`, `activitynet13`, `hmdb51`, `ava`, `ava60`,
            `epic_kitchens100_verb`, `epic_kitchens100_noun`, `ego4d_mq`;
            see `tfaction.data.public_metadata`).

    Returns:
        A `ClassList`.

    Raises:
        MalformedFileError: the file is missing, empty or repeats a name.

    Example:

    >>> len(read_class_list("thumos14"))
    20
    """
    path = filesystems.ensure_filesystem(public_metadata.class_list_path(path))
    if not tf.io.gfile.exists(path):
        raise errors.MalformedFileError("class list file not found",
                                        path=path)
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise errors.MalformedFileError(f"not UTF-8 text ({e})",
                                        path=path) from e
    names = []
    seen = {}
    for number, line in enumerate(text.splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        if name in seen:
            raise errors.MalformedFileError(
                f"class name {name!r} repeats line {seen[name]}", path=path,
                line=number)
        seen[name] = number
        names.append(name)
    if not names:
        raise errors.MalformedFileError("class list is empty", path=path)
    return ClassList(names, path=path)
