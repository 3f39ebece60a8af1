"""Class list files."""

import pytest

from tfaction import errors
from tfaction.data.formats import class_list

from . import _builders as b


def test_read_and_index(tmp_path):
    path = b.write_text(tmp_path / "c.txt", "\ufeffbrush_hair\n cartwheel \n\n")
    classes = class_list.read_class_list(path)
    assert classes.names == ["brush_hair", "cartwheel"]
    assert classes.index("cartwheel") == 1 and classes.name(0) == "brush_hair"
    assert classes.to_text() == "brush_hair\ncartwheel\n"
    with pytest.raises(errors.UnknownLabelError) as e:
        classes.index("fly", path="gt.json", video_id="v1", key="label")
    assert (e.value.path, e.value.video_id, e.value.key) == ("gt.json", "v1",
                                                             "label")
    assert path in str(e.value)  # names the class list too
    with pytest.raises(errors.UnknownLabelError, match="0 <= index < 2"):
        classes.check_index(2)


@pytest.mark.parametrize("text, line", [("a\nb\na\n", 3), ("", None),
                                        ("\n \n", None)])
def test_bad_files(tmp_path, text, line):
    path = b.write_text(tmp_path / "c.txt", text)
    with pytest.raises(errors.MalformedFileError) as e:
        class_list.read_class_list(path)
    assert e.value.line == line


def test_missing_file(tmp_path):
    with pytest.raises(errors.MalformedFileError, match="not found"):
        class_list.read_class_list(tmp_path / "nope.txt")
