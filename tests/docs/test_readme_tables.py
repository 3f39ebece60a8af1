"""What the README's tensorflow-addons table names exists.

Every `keras.*` and `tfaction.*` name in the right-hand column of the
"tensorflow-addons -> Keras 3" table must resolve in the pinned Keras and
in this package, so the table cannot promise a replacement that is not
there.
"""

import importlib
import re

import keras

from tests.conftest import REPO_ROOT


def _table_rows():
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## tensorflow-addons", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines()
            if line.startswith("| `tfa.") or line.startswith("| warm-up")]


def _resolve(dotted):
    if dotted.startswith("keras."):
        obj = keras
        for part in dotted.split(".")[1:]:
            obj = getattr(obj, part)
        return obj
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return importlib.import_module(dotted)


def test_every_named_replacement_exists():
    rows = _table_rows()
    assert len(rows) >= 10
    names = []
    for row in rows:
        replacement = row.split("|")[2]
        for dotted in re.findall(r"`((?:keras|tfaction)\.[\w.]+)", replacement):
            names.append(dotted)
            assert _resolve(dotted) is not None, dotted
    assert any(n.startswith("tfaction.") for n in names)
    assert any(n.startswith("keras.") for n in names)
